"""Part 4: a worker's resident memory after loading the models and as it runs jobs.

Read from ``/proc/<pid>/status`` (``VmRSS``, and ``VmHWM`` for the peak); the worker is a ``--pool
solo`` process, so its PID is the process that runs the jobs. A leak shows as RSS still climbing
after the first few hundred jobs, once allocator pools and caches have filled.
"""

from __future__ import annotations

import logging
from typing import Any

from benchmarks.loadgen import Target, run_level
from benchmarks.processes import WorkerProcess, rss_kib

log = logging.getLogger("benchmarks.memory")
SAMPLES = 10
CLIENTS = 2


def _mib(kib: int) -> float:
    return round(kib / 1024.0, 1)


def measure(
    worker: WorkerProcess, target: Target, after_load: dict[str, int], jobs_done: int, total_jobs: int
) -> dict[str, Any]:
    """Run jobs until the worker has run ``total_jobs`` in all, sampling its RSS ``SAMPLES`` times."""
    curve = [{"jobs": 0, "rss_mib": _mib(after_load["VmRSS"])}]
    remaining = max(0, total_jobs - jobs_done)
    curve.append({"jobs": jobs_done, "rss_mib": _mib(rss_kib(worker.pid)["VmRSS"])})
    step = max(1, -(-remaining // SAMPLES))
    while remaining > 0:
        batch = min(step, remaining)
        run_level(target, clients=CLIENTS, jobs=batch)
        jobs_done += batch
        remaining -= batch
        curve.append({"jobs": jobs_done, "rss_mib": _mib(rss_kib(worker.pid)["VmRSS"])})
        log.info("memory: %d jobs, RSS %.1f MiB", jobs_done, curve[-1]["rss_mib"])
    final = rss_kib(worker.pid)
    return {
        "worker_pool": "solo",
        "rss_after_load_mib": _mib(after_load["VmRSS"]),
        "jobs": jobs_done,
        "rss_after_jobs_mib": _mib(final["VmRSS"]),
        "growth_mib": round(_mib(final["VmRSS"]) - _mib(after_load["VmRSS"]), 1),
        "peak_rss_mib": _mib(final["VmHWM"]),
        "curve": curve,
    }
