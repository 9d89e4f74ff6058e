"""Workers come and go: jobs wait in the queue for a worker, several workers share one queue, readiness."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import wait_for_job

pytestmark = pytest.mark.integration
FRAME = "oracles/mtcnn_facenet_pytorch/images/obama_small.jpg"


def submit(client: Any, camera: str, path: str = FRAME) -> str:
    response = client.post("/v1/jobs/detect", json={"url": f"{camera}/{path}"})
    assert response.status_code == 202
    job_id: str = response.get_json()["job_id"]
    return job_id


def test_jobs_queued_before_any_worker_run_when_one_starts(system_factory: Any, camera: str) -> None:
    system = system_factory("late-worker")
    client = system.client()
    assert client.get("/readyz").status_code == 503, "no worker yet: not ready"
    jobs = [submit(client, camera) for _ in range(3)]
    assert all(client.get(f"/v1/jobs/{job}").get_json()["state"] == "queued" for job in jobs)
    system.worker()
    results = [wait_for_job(client, job) for job in jobs]
    assert [r["state"] for r in results] == ["succeeded"] * 3
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json()["checks"]["workers"] == 1


def test_two_workers_share_one_queue(system_factory: Any, camera: str) -> None:
    system = system_factory("two-workers")
    first, second = system.worker("a", wait=False), system.worker("b", wait=False)
    first.wait_ready()
    second.wait_ready()
    client = system.client()
    # Slow frames keep a worker busy, so the queue must hand jobs to the other one.
    jobs = [submit(client, camera, f"slow/1/{FRAME}") for _ in range(6)]
    results = [wait_for_job(client, job) for job in jobs]
    assert all(r["state"] == "succeeded" for r in results)
    workers = {r["result"]["worker"].split("@")[0] for r in results}
    assert workers == {"two-workers-a", "two-workers-b"}, "both workers should have run jobs"
    assert client.get("/readyz").get_json()["checks"]["workers"] == 2
