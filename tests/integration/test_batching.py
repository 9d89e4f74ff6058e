"""Batching across jobs with a real worker: ``ROLLCALL_WORKER_BATCH_SIZE=4`` and Celery's threads pool.

The jobs are queued before the worker starts, so it takes four at once; results, errors and
revocation stay per job (``recognition.batching``).
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from tests.conftest import wait_for_job
from tests.shared_data import shared_dir

pytestmark = pytest.mark.integration
SCENES = "oracles/mtcnn_facenet_pytorch/images"


def submit(client: Any, body: dict[str, Any]) -> str:
    response = client.post("/v1/jobs/attendance", json=body)
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["job_id"]
    return job_id


def job_lines(log: str) -> dict[str, dict[str, Any]]:
    lines = [json.loads(line.split("job ", 1)[1]) for line in log.splitlines() if ' job {"job_id"' in line]
    return {line["job_id"]: line for line in lines}


def test_jobs_batched_in_one_worker_keep_their_own_results_errors_and_revocation(
    system_factory: Any, camera: str
) -> None:
    system = system_factory("batching", ROLLCALL_WORKER_BATCH_SIZE="4", ROLLCALL_WORKER_BATCH_WAIT_MS="3000")
    client = system.client()
    good = {"url": f"{camera}/{SCENES}/two_people.jpg"}
    truncated = (shared_dir() / SCENES / "obama_small.jpg").read_bytes()[:300]  # a JPEG cut short
    first = submit(client, good)
    revoked = submit(client, good)
    bad = submit(client, {"image_b64": base64.b64encode(truncated).decode()})
    others = [submit(client, good), submit(client, good)]
    assert client.delete(f"/v1/jobs/{revoked}").status_code == 200

    worker = system.worker(pool="threads", concurrency=4)
    results = {job: wait_for_job(client, job) for job in [first, revoked, bad, *others]}

    succeeded = [results[job] for job in [first, *others]]
    assert [r["state"] for r in succeeded] == ["succeeded"] * 3
    assert all(len(r["result"]["unknown_faces"]) == 2 for r in succeeded), "each job gets its own faces"
    assert max(r["result"]["batch"]["detect"] for r in succeeded) >= 2, "frames were detected as a batch"
    assert max(r["result"]["batch"]["embed"] for r in succeeded) >= 2, "faces were embedded as a batch"
    assert results[bad]["state"] == "failed"
    assert results[bad]["error"]["code"] == "not_an_image"
    assert results[revoked]["state"] == "revoked"
    assert results[revoked]["result"] is None
    lines = job_lines(worker.log())
    assert lines[revoked]["outcome"] == "revoked" and lines[revoked]["timings_ms"] == {}, "it never ran"
    assert lines[bad]["outcome"] == "not_an_image"
