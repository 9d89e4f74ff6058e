"""Memory per worker after the models are loaded stays within what docs/operations.md tells operators.

Read from /proc: ``VmRSS`` (resident), ``VmHWM`` (peak resident) and ``Pss`` (resident, shared pages
divided among the processes sharing them: prefork children share much of the parent's memory, so
their RSS double-counts and the sum of PSS is the real footprint). Run with ``-s`` to see the figures.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import System
from tests.ops.conftest import Workers, health, wait_for

pytestmark = pytest.mark.integration
MIB = 1024
# Budgets with headroom over the figures measured on the development machine (docs/operations.md).
SOLO_RSS_BUDGET_MIB = 1536
PREFORK_PSS_BUDGET_MIB = {2: 2048}


def memory_mib(pid: int) -> dict[str, float]:
    status = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    rollup = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
    )
    kib = {"rss": status["VmRSS"], "peak_rss": status["VmHWM"], "pss": rollup["Pss"]}
    return {name: round(int(value.split()[0]) / MIB, 1) for name, value in kib.items()}


def children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_solo_worker_memory_after_model_load(lifecycle_system: System, workers: Workers) -> None:
    # A worker of its own, as the prefork one below: the package's shared worker has served the other
    # modules' jobs by now, and its figure depended on which ran first (1.2–1.6 GiB), not on the load.
    worker = workers.start(lifecycle_system, "memory-solo")
    wait_for(
        lambda: health(lifecycle_system.env, "--node", worker.node, "--ready").returncode == 0,
        60,
        "the worker to load its models",
    )
    assert worker.process is not None
    memory = memory_mib(worker.process.pid)
    print(f"\nsolo worker after model load: {memory} MiB")
    assert memory["rss"] < SOLO_RSS_BUDGET_MIB


def test_prefork_worker_memory_after_model_load(lifecycle_system: System, workers: Workers) -> None:
    worker = workers.start(lifecycle_system, "memory", pool="prefork", concurrency=2)
    wait_for(
        lambda: health(lifecycle_system.env, "--node", worker.node, "--ready").returncode == 0,
        60,
        "both children to load their models",
    )
    assert worker.process is not None
    main = memory_mib(worker.process.pid)
    kids = [memory_mib(pid) for pid in children(worker.process.pid)]
    assert len(kids) == 2
    total_pss = round(main["pss"] + sum(kid["pss"] for kid in kids), 1)
    print(f"\nprefork worker, 2 children: main {main}, children {kids}, total PSS {total_pss} MiB")
    assert total_pss < PREFORK_PSS_BUDGET_MIB[2]
