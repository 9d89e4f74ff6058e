"""``Idempotency-Key`` on job submission: one key, one job, whether retried in turn or at the same moment."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from tests.conftest import ADMIN_KEY, JOBS_KEY, WorkerProcess, keyed_client, wait_for_job

pytestmark = pytest.mark.integration

PHOTO = "oracles/mtcnn_facenet_pytorch/images/obama_small.jpg"


def job_count(app: Any) -> int:
    """Job records in the result store: one per job the API queued."""
    return sum(1 for _ in app.extensions["rollcall.jobs"].redis.scan_iter("rollcall:job:*"))


def detect(client: Any, camera: str, key: str, **extra: Any) -> Any:
    return client.post(
        "/v1/jobs/detect", json={"url": f"{camera}/{PHOTO}", **extra}, headers={"Idempotency-Key": key}
    )


def test_the_same_key_sent_again_answers_the_first_job(app: Any, worker: WorkerProcess, camera: str) -> None:
    client = keyed_client(app, JOBS_KEY)
    key = str(uuid.uuid4())
    before = job_count(app)

    first = detect(client, camera, key)
    again = detect(client, camera, key)

    assert (first.status_code, again.status_code) == (202, 202)
    assert again.get_json() == first.get_json()
    assert "Idempotent-Replayed" not in first.headers
    assert again.headers["Idempotent-Replayed"] == "true"
    assert job_count(app) == before + 1
    assert wait_for_job(client, first.get_json()["job_id"])["state"] == "succeeded"
    assert detect(client, camera, key).get_json() == first.get_json()  # also once the job has ended


def test_concurrent_submissions_with_one_key_make_one_job(
    app: Any, worker: WorkerProcess, camera: str
) -> None:
    key = str(uuid.uuid4())
    threads = 8
    barrier = threading.Barrier(threads)
    answers: list[Any] = [None] * threads
    before = job_count(app)

    def submit(index: int) -> None:
        client = keyed_client(app, JOBS_KEY)
        barrier.wait()
        answers[index] = detect(client, camera, key)

    running = [threading.Thread(target=submit, args=(i,)) for i in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(timeout=60)

    assert all(answer.status_code == 202 for answer in answers)
    assert len({answer.get_json()["job_id"] for answer in answers}) == 1
    assert sum("Idempotent-Replayed" not in answer.headers for answer in answers) == 1
    assert job_count(app) == before + 1


def test_the_same_key_with_a_different_body_is_a_conflict(app: Any, camera: str) -> None:
    client = keyed_client(app, JOBS_KEY)
    key = str(uuid.uuid4())
    assert detect(client, camera, key).status_code == 202

    response = detect(client, camera, key, small_faces={"mode": "on"})

    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "idempotency_conflict"


def test_keys_belong_to_their_caller(app: Any, camera: str) -> None:
    key = str(uuid.uuid4())
    mine = detect(keyed_client(app, JOBS_KEY), camera, key)
    theirs = detect(keyed_client(app, ADMIN_KEY), camera, key)
    assert mine.get_json()["job_id"] != theirs.get_json()["job_id"]
    assert "Idempotent-Replayed" not in theirs.headers


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve"])
def test_a_malformed_key_is_refused(app: Any, camera: str, key: str) -> None:
    response = detect(keyed_client(app, JOBS_KEY), camera, key)
    assert response.status_code == 400
    assert response.get_json()["error"]["code"] == "invalid_input"
