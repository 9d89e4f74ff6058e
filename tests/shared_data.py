"""Where tests and benchmarks find the read-only shared data (ROLLCALL_SHARED_DIR, default ../shared)."""

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_dir() -> Path:
    path = Path(os.environ.get("ROLLCALL_SHARED_DIR", REPO_ROOT.parent / "shared"))
    if not (path / "datasets").is_dir():
        raise FileNotFoundError(
            f"shared data not found at {path}: set ROLLCALL_SHARED_DIR to the shared/ folder"
        )
    return path
