"""A project module as an earlier commit had it, importable beside today's: the before/after scripts' base."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType


def import_at(revision: str, path: str) -> ModuleType:
    """``path`` (e.g. ``ml/mtcnn.py``) as it was at ``revision``, imported as ``<stem>_base``.

    The file is copied out of git into a temporary folder and loaded under its own name, so today's
    module and the base's live side by side in one process; its own imports resolve to today's tree."""
    source = subprocess.run(
        ["git", "show", f"{revision}:{path}"], check=True, capture_output=True, text=True
    ).stdout
    name = f"{Path(path).stem}_base"
    copy = Path(tempfile.mkdtemp()) / f"{name}.py"
    copy.write_text(source)
    spec = importlib.util.spec_from_file_location(name, copy)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
