"""Import rules: the API loads no worker code or model; the recognition core and contract load no Celery."""

from __future__ import annotations

import ast
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
from webapi.jobqueue import celery_client
for info in pkgutil.walk_packages(webapi.__path__, "webapi."):
    importlib.import_module(info.name)
client = celery_client(get_settings())
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


# The recognition core and the job contract run anywhere: in a worker, a benchmark or a test, without Celery.
_CORE_PROBE = """
import importlib, json, pkgutil, sys
import recognition
for info in pkgutil.walk_packages(recognition.__path__, "recognition."):
    importlib.import_module(info.name)
import contract.jobs, contract.records
print(json.dumps(sorted(sys.modules)))
"""


def test_the_recognition_core_and_the_job_contract_load_no_celery_flask_or_worker_module() -> None:
    modules = _modules_after(_CORE_PROBE)
    loaded = sorted(m for m in modules if m.split(".")[0] in {"celery", "kombu", "flask", "tasks", "webapi"})
    assert loaded == []


def test_the_recognition_core_reaches_the_database_only_through_the_facebank() -> None:
    for path in sorted((ROOT / "recognition").glob("*.py")):
        tree = ast.parse(path.read_text())
        imported = {
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        }
        imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {name for name in imported if name.split(".")[0] in {"sqlalchemy", "psycopg"}}, path


def _webapi_imports(path: Path) -> set[str]:
    """The ``webapi`` modules a source file imports (``from webapi import x`` counts as ``webapi.x``)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "webapi":
            found |= {f"webapi.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("webapi."):
            found.add(str(node.module))
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("webapi.")}
    return found


def test_blueprints_import_no_other_blueprint() -> None:
    """Views (and the CLI) share services (``webapi.services``) and helpers, never a resource's module;
    only the app factory, which registers them, imports the blueprints."""
    sources = {
        f"webapi.{path.stem}": path for path in (ROOT / "webapi").glob("*.py") if path.stem != "__init__"
    }
    blueprints = {name for name, path in sources.items() if "Blueprint(" in path.read_text()}
    assert {"webapi.jobs", "webapi.people", "webapi.sessions"} <= blueprints
    crossing = {name: sorted(_webapi_imports(sources[name]) & blueprints) for name in sorted(sources)}
    assert {name: found for name, found in crossing.items() if found} == {}
