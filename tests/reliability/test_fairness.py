"""Fairness: one API key cannot take every worker, a seed route that gives up leaves no job behind,
and interactive jobs do not wait behind bulk work.

Real API app, real Redis, real solo workers and models; the camera holds frames to keep jobs busy.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, keyed_client, wait_for_job, wait_until
from tests.reliability.conftest import Deployment, HoldingCamera

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
ALICE = "fair-jobs-key-alice-0123456789"
BOB = "fair-jobs-key-bob-0123456789"
KEYS = f"{ALICE}:jobs,{BOB}:jobs,{ADMIN_KEY}:admin"


def job_lines(worker: Any, job: str) -> list[dict[str, Any]]:
    """The one log line per finished job (``tasks.joblog``) of one job type."""
    found = []
    for line in worker.log().splitlines():
        if "] job {" in line:
            fields = json.loads(line.split("] job ", 1)[1])
            if fields["job"] == job:
                found.append(fields)
    return found


def test_a_key_over_its_jobs_in_flight_gets_429_while_another_key_is_served(
    deploy: Any, holding_camera: HoldingCamera, report: dict[str, Any]
) -> None:
    deployment: Deployment = deploy("fair-inflight", ROLLCALL_API_KEYS=KEYS, ROLLCALL_MAX_JOBS_IN_FLIGHT="3")
    deployment.start_worker("w1")
    alice, bob = keyed_client(deployment.app, ALICE), keyed_client(deployment.app, BOB)

    held = [alice.post("/v1/jobs/detect", json={"url": holding_camera.held_url(2)[0]}) for _ in range(3)]
    assert [r.status_code for r in held] == [202] * 3
    refused = alice.post("/v1/jobs/detect", json={"url": holding_camera.url()})
    assert refused.status_code == 429
    assert refused.get_json()["error"]["code"] == "too_many_jobs_in_flight"
    assert int(refused.headers["Retry-After"]) >= 1
    other = bob.post("/v1/jobs/detect", json={"url": holding_camera.url()})
    assert other.status_code == 202, "another key is not held to alice's limit"

    assert wait_for_job(bob, other.get_json()["job_id"])["state"] == "succeeded"
    finals = [wait_for_job(alice, r.get_json()["job_id"]) for r in held]
    assert [f["state"] for f in finals] == ["succeeded"] * 3
    again = alice.post("/v1/jobs/detect", json={"url": holding_camera.url()})
    assert again.status_code == 202, "ended jobs no longer count"
    assert wait_for_job(alice, again.get_json()["job_id"])["state"] == "succeeded"
    report.setdefault("fairness", {})["jobs_in_flight"] = {"limit": 3, "refused_with": 429}


def test_a_key_over_its_rate_gets_429_with_retry_after(deploy: Any, holding_camera: HoldingCamera) -> None:
    """No worker needed: the limit is checked when the job is submitted."""
    deployment: Deployment = deploy("fair-rate", ROLLCALL_API_KEYS=KEYS, ROLLCALL_RATE_LIMIT_PER_MINUTE="5")
    alice, bob = keyed_client(deployment.app, ALICE), keyed_client(deployment.app, BOB)
    admin = keyed_client(deployment.app, ADMIN_KEY)
    body = {"url": holding_camera.url()}
    statuses = []
    for _ in range(11):  # two one-minute windows at most, should one end during the loop
        response = alice.post("/v1/jobs/detect", json=body)
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429, statuses
    assert 5 <= statuses.count(202) <= 10
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 61
    assert bob.post("/v1/jobs/detect", json=body).status_code == 202
    assert admin.post("/v1/jobs/detect", json=body).status_code == 202, "admin keys are not limited"


def test_a_seed_route_that_stops_waiting_revokes_its_job(
    deploy: Any, holding_camera: HoldingCamera, report: dict[str, Any]
) -> None:
    deployment: Deployment = deploy("fair-seed", ROLLCALL_LEGACY_WAIT_S="1")
    worker = deployment.start_worker("w1")
    client = deployment.client()

    busy = client.get("/modelfr", query_string={"ip": holding_camera.held_url(4)[0]})
    assert busy.status_code == 504  # its job runs on: a running job is not interrupted
    for _ in range(3):  # the worker is busy: these give up while their jobs are queued
        gave_up = client.get("/modelfr", query_string={"ip": holding_camera.url()})
        assert gave_up.status_code == 504
        assert gave_up.get_json()["error"]["code"] == "job_timeout"

    def skipped() -> int:
        """Revoked jobs the worker dropped: by Celery's revoke list, or by our record (``tasks.jobs``)."""
        dropped = worker.log().count("Discarding revoked task: rollcall.models.detect")
        return dropped + sum(line["outcome"] == "revoked" for line in job_lines(worker, "detect"))

    wait_until(lambda: skipped() == 3, 60, "the three abandoned jobs to be dropped unrun")
    outcomes = [line["outcome"] for line in job_lines(worker, "detect")]
    assert outcomes.count("succeeded") == 1, outcomes
    report.setdefault("fairness", {})["seed_route_gave_up"] = {"queued_jobs_revoked": 3, "ran": 0}


def test_interactive_jobs_do_not_wait_behind_bulk_work(
    deploy: Any, holding_camera: HoldingCamera, report: dict[str, Any]
) -> None:
    """Eight enrolments (bulk) queued first, each holding the worker 1 s; a detect then runs within two."""
    deployment: Deployment = deploy("fair-queues")
    worker = deployment.start_worker("w1")
    celery = deployment.app.extensions["rollcall.jobs"].celery
    for _ in range(8):
        url = holding_camera.held_url(1, "datasets/facebank_probe/two_people.jpg")[0]
        celery.send_task("rollcall.models.enrol_face", kwargs={"person_id": 10**9, "source": {"url": url}})
    wait_until(lambda: "enrol_face" in worker.log() or len(job_lines(worker, "enrol_face")) > 0, 30, "bulk")
    client = deployment.client()
    detect = client.post("/v1/jobs/detect", json={"url": holding_camera.url()}).get_json()["job_id"]
    assert wait_for_job(client, detect, timeout=60)["state"] == "succeeded"
    bulk_before = len(job_lines(worker, "enrol_face"))
    assert bulk_before <= 3, f"the detect job waited for {bulk_before} of 8 bulk jobs"
    wait_until(lambda: len(job_lines(worker, "enrol_face")) == 8, 60, "the bulk work to finish")
    report.setdefault("fairness", {})["interactive_behind_bulk"] = {
        "bulk_queued": 8,
        "ran_first": bulk_before,
    }
