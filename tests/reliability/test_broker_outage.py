"""Redis, the broker and result store, hangs and dies: the API answers 503 in bounded time, jobs survive.

The deployment runs on a Redis server of its own with an fsynced append-only file, the way
``make run`` starts one. The test freezes it (SIGSTOP: connections hang), then kills it
(SIGKILL) while jobs are queued and one is running, and starts it again on the same files.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import RedisServer, WorkerProcess, free_port, wait_for_job, wait_until
from tests.reliability.conftest import STATE_DIR, Deployment, HoldingCamera, state_of, submit, successes

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
BROKER_TIMEOUT_S = 1.0
# What a user may wait for a 503 while the broker is away: the timeout plus the request's own work.
BOUND_S = BROKER_TIMEOUT_S + 2


@pytest.fixture(scope="module")
def durable_redis() -> Iterator[RedisServer]:
    server = RedisServer(
        free_port(),
        STATE_DIR / "durable-redis",
        extra_args=["--appendonly", "yes", "--appendfsync", "always"],
    )
    server.start()
    yield server
    if server.process is not None and server.process.poll() is None:
        server.process.send_signal(signal.SIGCONT)  # in case a failed test left it frozen
    server.stop()


@pytest.fixture(scope="module")
def outage(deploy: Any, durable_redis: RedisServer) -> Iterator[tuple[Deployment, WorkerProcess]]:
    deployment: Deployment = deploy(
        "outage",
        redis_url=durable_redis.url,
        ROLLCALL_BROKER_TIMEOUT_S=str(BROKER_TIMEOUT_S),
        ROLLCALL_BROKER_VISIBILITY_TIMEOUT_S="10",
    )
    worker = deployment.start_worker("w1")
    yield deployment, worker
    deployment.stop()


def timed(call: Any) -> tuple[Any, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def assert_unavailable_in_time(client: Any, camera: HoldingCamera, job_id: str) -> float:
    """Submit, poll and readiness all answer 503 within the bound; returns the slowest answer's seconds."""
    slowest = 0.0
    for call in (
        lambda: client.post("/v1/jobs/detect", json={"url": camera.url()}),
        lambda: client.get(f"/v1/jobs/{job_id}"),
    ):
        response, took = timed(call)
        assert response.status_code == 503, response.get_data(as_text=True)
        assert response.get_json()["error"]["code"] == "broker_unavailable"
        assert took < BOUND_S, f"503 took {took:.2f} s"
        slowest = max(slowest, took)
    ready, took = timed(lambda: client.get("/readyz"))
    assert ready.status_code == 503 and took < BOUND_S
    return max(slowest, took)


def test_a_hung_redis_gets_a_503_in_bounded_time_and_nothing_is_lost(
    outage: tuple[Deployment, WorkerProcess],
    durable_redis: RedisServer,
    holding_camera: HoldingCamera,
    report: dict[str, Any],
) -> None:
    deployment, worker = outage
    client = deployment.client()
    accepted = submit(client, "detect", {"url": holding_camera.url()})
    assert durable_redis.process is not None
    durable_redis.process.send_signal(signal.SIGSTOP)
    try:
        slowest = assert_unavailable_in_time(client, holding_camera, accepted)
    finally:
        durable_redis.process.send_signal(signal.SIGCONT)
    assert wait_for_job(client, accepted, timeout=60)["state"] == "succeeded"
    assert submit(client, "detect", {"url": holding_camera.url()})
    report["redis_hung"] = {
        "broker_timeout_s": BROKER_TIMEOUT_S,
        "slowest_503_s": round(slowest, 2),
        "lost": 0,
    }


def test_jobs_accepted_before_redis_dies_complete_after_it_restarts(
    outage: tuple[Deployment, WorkerProcess],
    durable_redis: RedisServer,
    holding_camera: HoldingCamera,
    report: dict[str, Any],
) -> None:
    deployment, worker = outage
    client = deployment.client()
    held_url, _ = holding_camera.held_url(2)
    jobs = [submit(client, "detect", {"url": held_url})]
    jobs += [submit(client, "detect", {"url": holding_camera.url()}) for _ in range(3)]
    wait_until(lambda: state_of(client, jobs[0]) == "running", 30, "the first job to start")
    assert worker.process is not None
    worker_pid = worker.process.pid

    assert durable_redis.process is not None
    durable_redis.process.kill()
    durable_redis.process.wait()
    durable_redis.process = None
    slowest = assert_unavailable_in_time(client, holding_camera, jobs[1])
    time.sleep(2)  # the running job finishes its frame while Redis is away
    durable_redis.start()
    restarted_at = time.monotonic()

    def accepts() -> bool:
        return client.post("/v1/jobs/detect", json={"url": holding_camera.url()}).status_code == 202

    wait_until(accepts, 30, "the API to accept jobs again", interval=0.2)
    recovered_in = time.monotonic() - restarted_at
    finals = [wait_for_job(client, job, timeout=90) for job in jobs]
    drained_in = time.monotonic() - restarted_at

    assert [job["state"] for job in finals] == ["succeeded"] * len(jobs), finals
    assert worker.alive() and worker.process.pid == worker_pid, "the worker reconnected by itself"
    results = {job_id: final["result"]["faces"] for job_id, final in zip(jobs, finals, strict=True)}
    assert all(successes(job_id, worker) >= 1 for job_id in jobs)
    report["redis_killed_and_restarted"] = {
        "appendfsync": "always",
        "jobs_accepted_before": len(jobs),
        "lost": 0,
        "slowest_503_s": round(slowest, 2),
        "api_recovered_s": round(recovered_in, 2),
        "all_done_after_restart_s": round(drained_in, 2),
        "reruns": sum(successes(job_id, worker) - 1 for job_id in results),
    }


@pytest.fixture(scope="module")
def result_store() -> Iterator[RedisServer]:
    """A Redis server that holds only the results (the broker is elsewhere), durable like the other."""
    server = RedisServer(
        free_port(),
        STATE_DIR / "result-store",
        extra_args=["--appendonly", "yes", "--appendfsync", "always"],
    )
    server.start()
    yield server
    server.stop()


def test_a_job_that_ends_while_the_result_store_is_away_is_stored_as_succeeded_not_failed(
    deploy: Any, result_store: RedisServer, holding_camera: HoldingCamera, report: dict[str, Any]
) -> None:
    """The broker stays up; the result store dies while a job runs and comes back after it ended."""
    deployment: Deployment = deploy(
        "store-outage",
        ROLLCALL_RESULT_BACKEND=f"{result_store.url}/1",
        ROLLCALL_BROKER_TIMEOUT_S=str(BROKER_TIMEOUT_S),
    )
    worker = deployment.start_worker("w1")
    client = deployment.client()
    held_url, token = holding_camera.held_url(1)
    jobs = [
        submit(client, "detect", {"url": held_url}),
        submit(client, "detect", {"url": holding_camera.url()}),
    ]
    # Its frame is being fetched: the job has stored its start and read its record, and ends in 1 s.
    wait_until(lambda: holding_camera.requests_for(token) == 1, 30, "the first job to fetch its frame")

    assert result_store.process is not None
    result_store.process.kill()
    result_store.process.wait()
    result_store.process = None
    # Long past the held frame: the first job ends while nothing can store its result.
    wait_until(lambda: successes(jobs[0], worker) == 1, 30, "the first job to finish its work")
    time.sleep(3)
    result_store.start()
    finals = [wait_for_job(client, job, timeout=60) for job in jobs]

    assert [final["state"] for final in finals] == ["succeeded", "succeeded"], finals
    assert all(final["result"]["faces"] for final in finals)
    assert worker.alive()
    report["result_store_killed_while_a_job_ran"] = {"jobs": len(jobs), "lost": 0, "failed": 0}
