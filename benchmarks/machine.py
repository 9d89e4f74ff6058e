"""What the figures were measured on: machine, library versions, commit, command line, load."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from benchmarks.frames import REPO_ROOT

THREAD_ENV = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "ROLLCALL_TORCH_THREADS")


def busy_warning() -> str | None:
    """A note when other work already loads the CPUs: wall-clock figures will then measure it too."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load < 0.5 * cores:
        return None
    note = f"machine busy at start (1-min load {load:.1f} on {cores} cores): figures include other work"
    if (os.environ.get("OMP_WAIT_POLICY") or "").lower() != "passive":
        note += (
            "; OMP_WAIT_POLICY is not PASSIVE, so torch's OpenMP threads spin while waiting for each other,"
            " which on a busy machine can slow multi-threaded stages many times over (see BENCHMARKS.md)"
        )
    return note


def _git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return f"unknown ({done.stderr.strip()[:200]})"
    return done.stdout.strip()


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine_info(argv: list[str]) -> dict[str, Any]:
    """Everything needed to tell whether two result files are comparable."""
    return {
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable), "-m", "benchmarks", *argv]),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda_available": torch.cuda.is_available(),
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        # OpenMP's spin-waiting threads turn a busy machine's slowdown into a collapse: record the knobs.
        "thread_env": {name: os.environ.get(name) for name in THREAD_ENV},
    }
