"""The job client's pure parts: a job's state as a caller sees it, rate refusals, idempotency claims.

Fast: no Redis and no worker; a Redis that is down is a refused connection (the submission protocol over
real Redis and workers is proven in tests/integration/test_jobs.py, test_idempotency.py and
tests/reliability/test_fairness.py).
"""

from __future__ import annotations

import socket

import pytest
from celery import Celery

from contract.admission import rate_refusal
from contract.callers import OPERATOR, Caller
from contract.jobs import DetectArgs, FrameSource
from contract.records import JobRecord
from errors import BrokerUnavailable, CameraUnreachable, IdempotencyConflict, InvalidInput
from settings import Settings
from webapi.idempotency import claim_for, replayed_job
from webapi.jobclient import JobClient, job_state

ALICE, BOB, ADMIN = Caller("alice", admin=False), Caller("bob", admin=False), Caller("root", admin=True)
RECORD = JobRecord(type="detect", submitted_at=1_700_000_000.0, owner="alice")
RESULT = {"type": "detect", "faces": [], "worker": "celery@gpu-7.lan", "timings_ms": {"total": 12.0}}


def test_a_succeeded_job_shows_its_result_and_names_its_worker_to_admins_only() -> None:
    shown = job_state("j1", RECORD, "succeeded", RESULT, ALICE)
    assert (shown.state, shown.type, shown.error) == ("succeeded", "detect", None)
    assert shown.result == {key: value for key, value in RESULT.items() if key != "worker"}
    assert job_state("j1", RECORD, "succeeded", RESULT, ADMIN).result == RESULT
    assert job_state("j1", RECORD, "succeeded", RESULT, OPERATOR).result == RESULT


def test_a_failed_job_shows_its_errors_code_and_message_and_no_result() -> None:
    shown = job_state("j1", RECORD, "failed", CameraUnreachable("no answer from 10.0.0.9:80"), ALICE)
    assert shown.state == "failed" and shown.result is None
    assert shown.error == {"code": "camera_unreachable", "message": "no answer from 10.0.0.9:80"}
    unexpected = job_state("j1", RECORD, "failed", KeyError("x"), ALICE)
    assert unexpected.error is not None and unexpected.error["code"] == "internal_error"


def test_a_revoked_job_still_queued_shows_revoked_though_celery_says_pending() -> None:
    revoked = RECORD.model_copy(update={"revoked": True})
    shown = job_state("j1", revoked, "queued", None, ALICE)
    assert shown.state == "revoked" and shown.error is not None and shown.error["code"] == "job_revoked"
    assert job_state("j1", RECORD, "queued", None, ALICE).state == "queued"
    assert job_state("j1", RECORD, "running", None, ALICE).model_dump() == {
        "job_id": "j1",
        "type": "detect",
        "state": "running",
        "submitted_at": 1_700_000_000.0,
        "result": None,
        "error": None,
    }


def test_callers_own_what_they_create_and_see_their_own_and_shared_work() -> None:
    assert (ALICE.owner, ADMIN.owner, OPERATOR.owner) == ("alice", None, None)
    assert ALICE.may_see("alice") and ALICE.may_see(None) and not ALICE.may_see("bob")
    assert ADMIN.may_see("bob") and OPERATOR.may_see("bob")
    assert ALICE.limited and not ADMIN.limited and not OPERATOR.limited


def test_the_submission_over_the_rate_is_refused_until_the_next_minute() -> None:
    assert rate_refusal(limit=5, count=5, now=600.0) is None
    assert rate_refusal(limit=0, count=500, now=600.0) is None
    refused = rate_refusal(limit=5, count=6, now=630.5)
    assert refused is not None and refused.code == "rate_limited" and refused.status == 429
    assert refused.retry_after_s == 30  # the minute ends at 660 s: 29.5 s, rounded up


def test_an_idempotency_key_is_per_caller_and_its_request_is_fingerprinted_canonically() -> None:
    request = {"type": "detect", "body": {"url": "http://cam/x", "small_faces": None}}
    reordered = {"body": {"small_faces": None, "url": "http://cam/x"}, "type": "detect"}
    mine, theirs = claim_for("k-1", ALICE, request, 600), claim_for("k-1", BOB, request, 600)
    assert mine.redis_key != theirs.redis_key
    assert mine.fingerprint == claim_for("k-1", ALICE, reordered, 600).fingerprint
    assert mine.window_s == 600
    other = claim_for("k-1", ALICE, {"type": "detect", "body": {"url": "http://cam/y"}}, 600)
    assert other.redis_key == mine.redis_key and other.fingerprint != mine.fingerprint


@pytest.mark.parametrize("key", ["", "k" * 256, "clé", "tab\there"])
def test_a_malformed_idempotency_key_is_invalid_input(key: str) -> None:
    with pytest.raises(InvalidInput, match="Idempotency-Key"):
        claim_for(key, ALICE, {}, 600)


def test_a_key_held_for_the_same_request_replays_its_job_and_for_another_is_a_conflict() -> None:
    claim = claim_for("k-1", ALICE, {"type": "detect", "body": {"url": "http://cam/x"}}, 600)
    held = f'{{"job_id": "first-job", "fingerprint": "{claim.fingerprint}"}}'.encode()
    assert replayed_job(claim, held) == "first-job"
    with pytest.raises(IdempotencyConflict):
        replayed_job(claim, b'{"job_id": "first-job", "fingerprint": "another request"}')


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released): a Redis that is down."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_with_redis_down_every_call_is_broker_unavailable_and_nothing_is_left_half_done() -> None:
    """No Redis at all (a refused connection, no worker): the client answers 503 ``broker_unavailable``
    for a submission, a poll and a revoke, and says the queue is unreachable, not why Redis failed."""
    down = f"redis://127.0.0.1:{_closed_port()}/0"
    client = JobClient(
        Celery("jobclient-test", broker=down, backend=down), Settings(broker_url=down, result_backend=down)
    )
    args = DetectArgs(source=FrameSource(url="http://camera.example/snapshot.jpg"))
    calls = (
        lambda: client.admit_submission(ALICE),
        lambda: client.submit(args, ALICE),
        lambda: client.status("j1", ALICE),
        lambda: client.revoke("j1", ALICE),
    )
    for call in calls:
        with pytest.raises(BrokerUnavailable) as refused:
            call()
        assert (refused.value.code, refused.value.status) == ("broker_unavailable", 503)
        assert "unreachable" in refused.value.message
