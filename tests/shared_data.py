"""Where tests find the read-only shared data (ROLLCALL_SHARED_DIR, default ../shared).

The benchmarks resolve it the same way; one definition serves both (benchmarks never import tests).
"""

from benchmarks.frames import REPO_ROOT, shared_dir

__all__ = ["REPO_ROOT", "shared_dir"]
