"""Worker lifecycle: SIGTERM finishes the running job and takes no new one; slow-starting children live."""

from __future__ import annotations

import signal

import pytest
import redis

from tests.conftest import System, wait_for_job
from tests.ops.conftest import FRAME, Workers, submit_detect, wait_for

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_sigterm_finishes_the_running_job_and_leaves_the_queued_one_to_the_next_worker(
    lifecycle_system: System, workers: Workers, camera: str, pool: str
) -> None:
    client = lifecycle_system.client()
    first = workers.start(lifecycle_system, f"{pool}-stopping", pool=pool)
    running = submit_detect(client, {"url": f"{camera}/slow/3/{FRAME}"})
    wait_for(
        lambda: client.get(f"/v1/jobs/{running}").get_json()["state"] == "running",
        30,
        "the slow job to start",
    )
    queued = submit_detect(client, {"url": f"{camera}/{FRAME}"})

    assert first.process is not None
    first.process.send_signal(signal.SIGTERM)
    finished = wait_for_job(client, running, timeout=60)
    assert finished["state"] == "succeeded", finished
    assert finished["result"]["worker"] == first.node
    exit_code = wait_for(lambda: first.process.poll() is not None and (first.process.returncode,), 60, "exit")
    assert exit_code == (0,), f"warm shutdown exits cleanly:\n{first.log()[-3000:]}"

    assert client.get(f"/v1/jobs/{queued}").get_json()["state"] == "queued"
    assert queued not in first.log(), "the stopping worker must not have started the queued job"
    broker = redis.Redis.from_url(lifecycle_system.env["ROLLCALL_BROKER_URL"])
    assert broker.llen("rollcall.models") == 1, "the backlog an autoscaler reads (LLEN, KEDA's redis trigger)"

    second = workers.start(lifecycle_system, f"{pool}-next", pool=pool)
    done = wait_for_job(client, queued, timeout=60)
    assert done["state"] == "succeeded"
    assert done["result"]["worker"] == second.node


def test_replacement_child_that_loads_slowly_is_not_killed_before_it_runs_jobs(
    lifecycle_system: System, workers: Workers, camera: str
) -> None:
    # A prefork child is replaced after a hard time limit, a crash or --max-tasks-per-child, and loads the
    # models and the gallery before it reports up; Celery kills one that takes over 4 s by default.
    worker = workers.start(
        lifecycle_system, "slow-start", pool="prefork", options=("--max-tasks-per-child", "1"),
        module="tests.ops.slow_start_worker", ROLLCALL_TEST_SLOW_START_S="6",
    )  # fmt: skip
    client = lifecycle_system.client()
    for _ in range(2):  # the second job runs in the replacement child
        job = wait_for_job(client, submit_detect(client, {"url": f"{camera}/{FRAME}"}), timeout=90)
        assert job["state"] == "succeeded", job
    assert "Timed out waiting for UP message" not in worker.log()
