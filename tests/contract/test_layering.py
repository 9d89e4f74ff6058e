"""The contract sits below both its users: it imports no API, worker, model or database code."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What the contract may stand on besides libraries: the settings, the error codes, URL helpers, and the
# facebank's field limits (constants: a camera's name is checked with the registry's own pattern).
ALLOWED_PRODUCT = {"settings", "errors", "sources.urls", "facebank.limits"}
PRODUCT_PACKAGES = {"webapi", "tasks", "recognition", "ml", "facebank", "sources", "cli", "live"}
FORBIDDEN_LIBRARIES = {"flask", "sqlalchemy", "psycopg", "torch", "numpy", "cv2"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    found = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    found |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    return found


def test_the_contract_imports_only_the_settings_errors_url_helpers_and_field_limits() -> None:
    crossing = {}
    for path in sorted((ROOT / "contract").glob("*.py")):
        outside = {
            name
            for name in _imports(path)
            if (name.split(".")[0] in PRODUCT_PACKAGES and name not in ALLOWED_PRODUCT)
            or name.split(".")[0] in FORBIDDEN_LIBRARIES
        }
        if outside:
            crossing[path.name] = sorted(outside)
    assert crossing == {}


def test_ml_reads_the_small_face_options_without_importing_the_contract() -> None:
    assert not {name for name in _imports(ROOT / "ml" / "tiling.py") if name.startswith("contract")}
