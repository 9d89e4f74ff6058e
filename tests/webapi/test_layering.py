"""The API process loads no worker code and no model: ``webapi`` imports no ``tasks`` and no ``ml`` module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Imports every webapi module (what create_app imports, and the CLI) and builds a task message through
# the API's Celery client (its message builder, contract.redaction, is loaded then), the two ways the API
# once pulled in ``tasks``; then lists what got imported.
_PROBE = """
import importlib, json, pkgutil, sys
import webapi
from settings import get_settings
for info in pkgutil.walk_packages(webapi.__path__, "webapi."):
    importlib.import_module(info.name)
client = webapi.celery_client(get_settings())
client.amqp.as_task_v2("job-1", "rollcall.models.detect", (), {"source": {"url": "http://u:p@cam/x"}})
print(json.dumps(sorted(sys.modules)))
"""


def _modules_after(code: str) -> set[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return set(json.loads(out.stdout.strip().splitlines()[-1]))


def _worker_or_model(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if m.split(".")[0] in {"tasks", "ml", "torch"})


def test_importing_webapi_loads_no_worker_or_model_module() -> None:
    assert _worker_or_model(_modules_after(_PROBE)) == []
