"""rollcall's test suite (tests/conftest.py has the shared fixtures)."""

import os

# As in the workers (tasks.application) and the benchmarks: torch's OpenMP threads that spin while waiting
# made the in-process model tests several times slower on a busy 2-core machine (detection at 640×480:
# 216 ms a frame against 39 ms). It must be in the environment before torch is imported, and this package
# is imported before any test module or conftest.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
