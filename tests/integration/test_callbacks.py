"""Job callbacks through the real system: signed deliveries, retries with backoff, refusal at submission."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import JOBS_KEY, System, WorkerProcess, wait_for_job, wait_until
from tests.integration.callback_receiver import CallbackReceiver, Delivery, callback_receiver

pytestmark = pytest.mark.integration

SECRET = "test-callback-secret-0123456789"
MAX_RETRIES = 3
PHOTO = "oracles/mtcnn_facenet_pytorch/images/obama_small.jpg"


def verify_signature(secret: bytes, headers: dict[str, str], body: bytes, tolerance_s: float = 300) -> bool:
    """What a receiver does (docs/callbacks.md): recompute the HMAC and check the timestamp is fresh."""
    timestamp = headers["X-Rollcall-Timestamp"]
    scheme, _, sent = headers["X-Rollcall-Signature"].partition("=")
    expected = hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return (
        scheme == "v1"
        and hmac.compare_digest(sent, expected)
        and abs(time.time() - int(timestamp)) <= tolerance_s
    )


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    with callback_receiver() as server:
        yield server


@pytest.fixture(scope="module")
def hooked(system_factory: Any) -> Iterator[tuple[System, WorkerProcess]]:
    system = system_factory(
        "callbacks",
        ROLLCALL_CALLBACK_SECRET=SECRET,
        ROLLCALL_CALLBACK_RETRY_BACKOFF_S="1",
        ROLLCALL_CALLBACK_MAX_RETRIES=str(MAX_RETRIES),
    )
    worker = system.worker()
    yield system, worker
    worker.stop()


def submit_detect(system: System, url: str, callback_url: str) -> str:
    response = system.client().post("/v1/jobs/detect", json={"url": url, "callback_url": callback_url})
    assert response.status_code == 202, response.get_json()
    job_id: str = response.get_json()["job_id"]
    return job_id


def deliveries(receiver: CallbackReceiver, path: str, count: int, timeout: float = 90) -> list[Delivery]:
    wait_until(lambda: len(receiver.received(path)) >= count, timeout, f"{count} callback(s) on {path}")
    return receiver.received(path)


def test_a_finished_job_posts_its_final_json_signed(
    hooked: tuple[System, WorkerProcess], receiver: CallbackReceiver, camera: str
) -> None:
    system, _ = hooked
    job_id = submit_detect(system, f"{camera}/{PHOTO}", receiver.url("/hook/ok"))

    (delivery,) = deliveries(receiver, "/hook/ok", 1)

    assert verify_signature(SECRET.encode(), delivery.headers, delivery.body)
    assert not verify_signature(b"another secret", delivery.headers, delivery.body)
    assert delivery.headers["Content-Type"] == "application/json"
    sent = json.loads(delivery.body)
    assert sent == wait_for_job(system.client(), job_id)  # the same JSON GET /v1/jobs/<id> answers
    assert sent["state"] == "succeeded" and len(sent["result"]["faces"]) == 1


def test_a_failed_job_posts_its_error(
    hooked: tuple[System, WorkerProcess], receiver: CallbackReceiver, camera: str
) -> None:
    system, _ = hooked
    job_id = submit_detect(system, f"{camera}/no/such/frame.jpg", receiver.url("/hook/failed"))

    (delivery,) = deliveries(receiver, "/hook/failed", 1)

    sent = json.loads(delivery.body)
    assert verify_signature(SECRET.encode(), delivery.headers, delivery.body)
    assert (sent["job_id"], sent["state"], sent["result"]) == (job_id, "failed", None)
    assert sent["error"]["code"] == "camera_protocol_error"  # the camera answered 404


def test_a_receiver_that_fails_gets_retries_until_it_answers_2xx(
    hooked: tuple[System, WorkerProcess], receiver: CallbackReceiver, camera: str
) -> None:
    system, worker = hooked
    receiver.answer("/hook/flaky", [500, 503])
    job_id = submit_detect(system, f"{camera}/{PHOTO}", receiver.url("/hook/flaky"))

    attempts = deliveries(receiver, "/hook/flaky", 3)
    wait_until(
        lambda: f"callback for job {job_id} delivered" in worker.log(), 30, "the delivery to be logged"
    )

    assert [attempt.status for attempt in attempts] == [500, 503, 200]
    assert all(verify_signature(SECRET.encode(), a.headers, a.body) for a in attempts)
    assert len({a.body for a in attempts}) == 1  # the same JSON, re-signed per attempt
    assert json.loads(attempts[-1].body)["job_id"] == job_id


def test_retries_stop_after_the_configured_number(
    hooked: tuple[System, WorkerProcess], receiver: CallbackReceiver, camera: str
) -> None:
    system, worker = hooked
    receiver.answer("/hook/down", [500] * 20)
    job_id = submit_detect(system, f"{camera}/{PHOTO}", receiver.url("/hook/down"))

    wait_until(
        lambda: f"callback for job {job_id}: attempt {MAX_RETRIES + 1} failed" in worker.log(),
        90,
        "the last attempt",
    )
    wait_until(lambda: "giving up" in worker.log(), 10, "the worker to give up")

    assert len(receiver.received("/hook/down")) == MAX_RETRIES + 1


@pytest.mark.parametrize(
    "url",
    ["http://10.20.30.40/hook", "http://169.254.169.254/latest/meta-data", "http://[::ffff:10.0.0.1]/hook"],
)
def test_a_callback_url_outside_the_allowlist_is_refused_at_submission(
    hooked: tuple[System, WorkerProcess], camera: str, url: str
) -> None:
    system, _ = hooked
    response = system.client(JOBS_KEY).post(
        "/v1/jobs/detect", json={"url": f"{camera}/{PHOTO}", "callback_url": url}
    )
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "callback_not_allowed"


def test_callbacks_are_refused_when_no_secret_is_configured(system_factory: Any, camera: str) -> None:
    unsigned = system_factory("no-callback-secret")
    response = unsigned.client().post(
        "/v1/jobs/detect", json={"url": f"{camera}/{PHOTO}", "callback_url": "http://127.0.0.1:9/hook"}
    )
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "callbacks_not_configured"
    assert "ROLLCALL_CALLBACK_SECRET" in error["message"]
