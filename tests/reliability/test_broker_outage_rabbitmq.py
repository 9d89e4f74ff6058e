"""RabbitMQ, the broker, hangs and dies while the results stay in Redis: bounded answers, no job lost.

The same faults as test_broker_outage.py (Redis), on a RabbitMQ node of the suite's own
(tests/reliability/rabbitmq.py): the machine's RabbitMQ is never touched. What a user sees differs
from Redis in one way, by design: results live in Redis, so polling a job keeps working while the
broker is away; only submissions depend on RabbitMQ.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import WorkerProcess, wait_for_job, wait_until
from tests.reliability.conftest import Deployment, HoldingCamera, state_of, submit, successes
from tests.reliability.rabbitmq import RabbitServer
from tests.reliability.test_broker_outage import BOUND_S, BROKER_TIMEOUT_S, timed

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
# A submission to a hung RabbitMQ waits for the publisher confirm (ROLLCALL_BROKER_TIMEOUT_S), then its one
# retry reconnects to a broker whose port accepts TCP but whose AMQP handshake never comes (kombu's own
# timeouts): 7.0 s measured with a 1 s broker timeout. Bounded, unlike a publish with no confirm timeout,
# which hung until the broker woke.
HUNG_BOUND_S = 10.0


@pytest.fixture(scope="module")
def rabbit(rabbitmq_server: Any) -> RabbitServer:
    server: RabbitServer = rabbitmq_server("outage")
    return server


@pytest.fixture(scope="module")
def outage(deploy: Any, rabbit: RabbitServer) -> Iterator[tuple[Deployment, WorkerProcess]]:
    deployment: Deployment = deploy(
        "outage-rabbitmq",
        ROLLCALL_BROKER_URL=rabbit.url,
        ROLLCALL_BROKER_TIMEOUT_S=str(BROKER_TIMEOUT_S),
    )
    worker = deployment.start_worker("w1")
    yield deployment, worker
    deployment.stop()


def test_a_hung_rabbitmq_answers_in_bounded_time_and_loses_nothing(
    outage: tuple[Deployment, WorkerProcess],
    rabbit: RabbitServer,
    holding_camera: HoldingCamera,
    report: dict[str, Any],
) -> None:
    deployment, worker = outage
    client = deployment.client()
    before = submit(client, "detect", {"url": holding_camera.url()})
    rabbit.freeze()
    try:
        # A frozen broker still accepts TCP and never confirms: the submission gives up (503) in bounded
        # time. Should a confirm still arrive in time, the job was accepted (202) and must run.
        during, took = timed(lambda: client.post("/v1/jobs/detect", json={"url": holding_camera.url()}))
        assert took < HUNG_BOUND_S, f"the submission took {took:.2f} s"
        assert during.status_code in (202, 503), during.get_data(as_text=True)
        if during.status_code == 503:
            assert during.get_json()["error"]["code"] == "broker_unavailable"
        polled, poll_took = timed(lambda: client.get(f"/v1/jobs/{before}"))
        assert polled.status_code == 200, "results live in Redis: polling works while RabbitMQ hangs"
        assert poll_took < BOUND_S
    finally:
        rabbit.thaw()
    accepted = [before] + ([during.get_json()["job_id"]] if during.status_code == 202 else [])
    finals = [wait_for_job(client, job, timeout=120) for job in accepted]
    assert [job["state"] for job in finals] == ["succeeded"] * len(accepted), finals
    report["rabbitmq_hung"] = {
        "broker_timeout_s": BROKER_TIMEOUT_S,
        "publisher_confirms": True,
        "submission_status": during.status_code,
        "submission_s": round(took, 2),
        "poll_s": round(poll_took, 2),
        "lost": 0,
    }


def test_jobs_accepted_before_rabbitmq_dies_complete_after_it_restarts(
    outage: tuple[Deployment, WorkerProcess],
    rabbit: RabbitServer,
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

    rabbit.kill()
    refused, refused_took = timed(lambda: client.post("/v1/jobs/detect", json={"url": holding_camera.url()}))
    assert refused.status_code == 503, refused.get_data(as_text=True)
    assert refused.get_json()["error"]["code"] == "broker_unavailable"
    assert refused_took < BOUND_S, f"503 took {refused_took:.2f} s"
    assert client.get(f"/v1/jobs/{jobs[1]}").status_code == 200, "polling needs only Redis"
    time.sleep(2)  # the running job finishes its frame while RabbitMQ is away
    rabbit.start()  # the same database: durable queues, persistent messages
    restarted_at = time.monotonic()

    def accepts() -> bool:
        return client.post("/v1/jobs/detect", json={"url": holding_camera.url()}).status_code == 202

    wait_until(accepts, 60, "the API to accept jobs again", interval=0.2)
    recovered_in = time.monotonic() - restarted_at
    finals = [wait_for_job(client, job, timeout=120) for job in jobs]
    drained_in = time.monotonic() - restarted_at

    assert [job["state"] for job in finals] == ["succeeded"] * len(jobs), finals
    assert worker.alive() and worker.process.pid == worker_pid, "the worker reconnected by itself"
    assert all(successes(job_id, worker) >= 1 for job_id in jobs)
    report["rabbitmq_killed_and_restarted"] = {
        "jobs_accepted_before": len(jobs),
        "lost": 0,
        "slowest_503_s": round(refused_took, 2),
        "api_recovered_s": round(recovered_in, 2),
        "all_done_after_restart_s": round(drained_in, 2),
        "reruns": sum(successes(job_id, worker) - 1 for job_id in jobs),
    }
