"""Workers killed with SIGKILL mid-job: the job runs again, nothing is lost, nothing is reported twice.

A held camera frame (the first fetch waits) keeps the job mid-flight while the test kills:
a prefork pool process (the job goes straight back to the queue: ``task_acks_late`` with
``task_reject_on_worker_lost``), or a whole solo worker (nobody is left to give it back, so
Redis hands it to another worker once the visibility timeout passes; RabbitMQ does so as soon as the
dead worker's connection closes). Every test runs on both brokers: Redis, and RabbitMQ (a node of the
suite's own, tests/reliability/rabbitmq.py) with the results in Redis.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import WorkerProcess, wait_for_job, wait_until
from tests.reliability.conftest import (
    BROKERS,
    Deployment,
    HoldingCamera,
    broker_env,
    children_of,
    state_of,
    submit,
    successes,
)

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
VISIBILITY_TIMEOUT_S = 4
HOLD_S = 4


def running_on(deployment: Deployment, job_id: str, timeout: float = 30) -> tuple[str, int]:
    """(node name, pid) of the process running ``job_id``, from ``celery inspect active``."""
    control = deployment.app.extensions["rollcall.jobs"].celery.control
    found: dict[str, tuple[str, int]] = {}

    def look() -> bool:
        for node, tasks in (control.inspect(timeout=1.0).active() or {}).items():
            for task in tasks:
                if task["id"] == job_id:
                    found["where"] = (node, int(task["worker_pid"]))
        return "where" in found

    wait_until(look, timeout, f"job {job_id} to be active on a worker")
    return found["where"]


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


@pytest.fixture(scope="module", params=BROKERS)
def broker(request: Any) -> str:
    return str(request.param)


def suffix(broker: str) -> str:
    """Report keys: the Redis figures keep their names, RabbitMQ's get a suffix."""
    return "" if broker == "redis" else f"_{broker}"


@pytest.fixture(scope="module")
def prefork(deploy: Any, broker: str, rabbitmq_server: Any) -> Iterator[tuple[Deployment, WorkerProcess]]:
    name = f"prefork-{broker}"
    deployment: Deployment = deploy(name, **broker_env(broker, name, rabbitmq_server))
    worker = deployment.start_worker("p1", pool="prefork")
    yield deployment, worker
    deployment.stop()


@pytest.fixture(scope="module")
def pair(deploy: Any, broker: str, rabbitmq_server: Any) -> Iterator[tuple[Deployment, list[WorkerProcess]]]:
    name = f"redelivery-{broker}"
    deployment: Deployment = deploy(
        name,
        ROLLCALL_BROKER_VISIBILITY_TIMEOUT_S=str(VISIBILITY_TIMEOUT_S),
        **broker_env(broker, name, rabbitmq_server),
    )
    workers = [deployment.start_worker(suffix, wait=False) for suffix in ("a", "b")]
    for worker in workers:
        worker.wait_ready()
    yield deployment, workers
    deployment.stop()


def test_a_job_whose_pool_process_is_killed_is_requeued_and_succeeds(
    prefork: tuple[Deployment, WorkerProcess],
    broker: str,
    holding_camera: HoldingCamera,
    report: dict[str, Any],
) -> None:
    deployment, worker = prefork
    client = deployment.client()
    held_url, token = holding_camera.held_url(HOLD_S)
    held = submit(client, "detect", {"url": held_url})
    queued = [submit(client, "detect", {"url": holding_camera.url()}) for _ in range(2)]
    wait_until(lambda: state_of(client, held) == "running", 30, "the held job to start")
    assert worker.process is not None
    node, child = running_on(deployment, held)
    assert node == worker.node
    assert parent_of(child) == worker.process.pid, "the job should run in a pool process of the worker"

    killed_at = time.monotonic()
    os.kill(child, signal.SIGKILL)
    final = wait_for_job(client, held, timeout=60)
    requeued_in = time.monotonic() - killed_at

    assert final["state"] == "succeeded", final
    assert holding_camera.requests_for(token) == 2, "the job should have run again after the kill"
    others = [wait_for_job(client, job, timeout=60) for job in queued]
    assert [job["state"] for job in others] == ["succeeded", "succeeded"]
    assert worker.alive(), "the worker itself survives the loss of a pool process"
    assert child not in children_of(worker.process.pid), "the killed pool process was replaced"
    assert all(successes(job, worker) == 1 for job in [held, *queued]), "every job is reported exactly once"
    assert "SIGKILL" in worker.log()
    report[f"sigkill_pool_process{suffix(broker)}"] = {
        "jobs": 3,
        "lost": 0,
        "reported_twice": 0,
        "requeued_and_succeeded_s": round(requeued_in, 2),
    }


def test_a_job_whose_worker_is_killed_is_redelivered_to_another_worker(
    pair: tuple[Deployment, list[WorkerProcess]],
    broker: str,
    holding_camera: HoldingCamera,
    report: dict[str, Any],
) -> None:
    deployment, workers = pair
    client = deployment.client()
    held_url, token = holding_camera.held_url(HOLD_S)
    held = submit(client, "detect", {"url": held_url})
    wait_until(lambda: state_of(client, held) == "running", 30, "the held job to start")
    # A busy solo worker cannot answer `inspect active`; its log says it took the job.
    victim = next(worker for worker in workers if f"[{held}] received" in worker.log())
    survivor = next(worker for worker in workers if worker is not victim)
    assert victim.process is not None
    pid = victim.process.pid
    later = [submit(client, "detect", {"url": holding_camera.url()}) for _ in range(3)]

    killed_at = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    victim.process.wait(timeout=10)
    final = wait_for_job(client, held, timeout=VISIBILITY_TIMEOUT_S + 30)
    redelivered_in = time.monotonic() - killed_at

    assert final["state"] == "succeeded", final
    assert final["result"]["worker"] == survivor.node
    assert holding_camera.requests_for(token) == 2
    if broker == "redis":
        # Redis gave the job back only after the visibility timeout, counted from its first delivery.
        assert redelivered_in >= VISIBILITY_TIMEOUT_S - HOLD_S / 2
    others = [wait_for_job(client, job, timeout=60) for job in later]
    assert all(job["state"] == "succeeded" for job in others)
    assert all(successes(job, *workers) == 1 for job in [held, *later]), "every job is reported exactly once"
    report[f"sigkill_solo_worker{suffix(broker)}"] = {
        # RabbitMQ redelivers when the connection closes; the visibility timeout is Redis's alone.
        "visibility_timeout_s": VISIBILITY_TIMEOUT_S if broker == "redis" else None,
        "jobs": 1 + len(later),
        "lost": 0,
        "reported_twice": 0,
        "redelivered_and_succeeded_s": round(redelivered_in, 2),
    }
