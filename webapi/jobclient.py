"""The API's side of the job queue: submit a job for a caller, read its state, revoke it.

Submitting is one protocol over four pieces: the caller is admitted (``contract.admission``: rate and
jobs in flight), the job gets its record (``contract.records``: type, owner, callback URL; an unknown
job id then answers 404 instead of Celery's eternal ``PENDING``), an upload is stored once by reference
(``contract.uploads``), and the job is sent by task name (``webapi.jobqueue``); with an
``Idempotency-Key`` the key is held first (``webapi.idempotency``). A step that fails undoes the ones
before it. The caller is always passed in (``contract.callers``): the client reads no request context.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import redis
from celery import Celery

import errors
from contract.callers import Caller
from contract.jobs import FrameSource, JobArgs, result_for
from contract.records import JobRecord, JobRecords, JobState, StateName
from settings import Settings
from sources.imagebytes import decode_base64
from webapi.idempotency import Idempotency, IdempotencyClaim, replayed_job
from webapi.jobqueue import JobQueue, queue_unreachable, store_unreachable

log = logging.getLogger("rollcall.jobclient")
# Tries at claiming an idempotency key whose holder vanished (its submission failed, or it just expired).
CLAIM_TRIES = 3


@dataclass(frozen=True)
class Submission:
    job_id: str
    replayed: bool  # the answer names the job an earlier request with the same key created


@contextmanager
def _redis_errors_are_503() -> Iterator[None]:
    try:
        yield
    except redis.RedisError as exc:
        raise queue_unreachable(exc) from exc


def job_state(job_id: str, record: JobRecord, state: StateName, payload: Any, caller: Caller) -> JobState:
    """A job as ``caller`` sees it, from its record and Celery's state and payload (result or error).

    A revoked job still queued stays ``PENDING`` in Celery until a worker discards it: its record says
    it is revoked. Only an admin sees the deployment's insides in a result (``result_for``).
    """
    if state == "failed":
        return JobState.of(job_id, record, state, error=errors.error_of(payload).to_dict())
    if state == "revoked" or (state == "queued" and record.revoked):
        return JobState.of(
            job_id, record, "revoked", error=errors.JobRevoked("the job was cancelled").to_dict()
        )
    if state == "succeeded":
        return JobState.of(job_id, record, state, result=result_for(payload, caller.admin))
    return JobState.of(job_id, record, state)


class JobClient:
    """Submit, poll and revoke jobs for a caller; every broker or Redis failure is ``BrokerUnavailable``."""

    def __init__(self, celery: Celery, settings: Settings) -> None:
        self.redis = redis.Redis.from_url(
            settings.result_backend,
            socket_connect_timeout=settings.broker_timeout_s,
            socket_timeout=settings.broker_timeout_s,
        )
        self.records = JobRecords.of(self.redis, settings)
        self.idempotency = Idempotency(self.redis)
        self.queue = JobQueue(celery)
        self.max_upload_bytes = settings.max_upload_bytes

    @property
    def celery(self) -> Celery:
        return self.queue.celery

    def admit_submission(self, caller: Caller) -> None:
        """Count one submission against the caller's rate (429 over ``ROLLCALL_RATE_LIMIT_PER_MINUTE``)."""
        with _redis_errors_are_503():
            self.records.admission.admit_submission(caller)

    def submit(self, args: JobArgs, caller: Caller, callback_url: str | None = None) -> str:
        """Record and queue a job; with ``callback_url``, its final JSON is POSTed there (tasks.callbacks)."""
        job_id = self._record_new(args, caller, callback_url)
        try:
            self._send(args, job_id)
        except errors.BrokerUnavailable:
            self._never_queued(job_id, caller)
            raise
        return job_id

    def submit_once(
        self, args: JobArgs, caller: Caller, claim: IdempotencyClaim, callback_url: str | None = None
    ) -> Submission:
        """Submit, unless the claim's key was used within its window: then answer that job, or 409.

        The key is taken after this job's record is written, so of two concurrent submissions exactly
        one queues a job, and the other answers its id (which already has a record to poll). A job that
        could not be queued gives its key back.
        """
        for _ in range(CLAIM_TRIES):
            job_id = self._record_new(args, caller, callback_url)
            with _redis_errors_are_503():
                won, held = self.idempotency.hold(claim, job_id)
                if not won:
                    self.records.delete(job_id)
                    self.records.admission.release(caller.owner, job_id)
            if won:
                try:
                    self._send(args, job_id)
                except errors.BrokerUnavailable:
                    self._never_queued(job_id, caller, claim)
                    raise
                return Submission(job_id, replayed=False)
            if held is not None:
                return Submission(replayed_job(claim, held), replayed=True)
        raise errors.BrokerUnavailable("the Idempotency-Key is being claimed and given back; retry later")

    def _record_new(self, args: JobArgs, caller: Caller, callback_url: str | None) -> str:
        """A new job id with its record; the caller's limits are checked first (429)."""
        self.admit_submission(caller)
        job_id = str(uuid.uuid4())
        with _redis_errors_are_503():
            self.records.admission.admit_job(caller, job_id)
        record = JobRecord(
            type=args.job_type, submitted_at=time.time(), owner=caller.owner, callback_url=callback_url
        )
        try:
            self.records.put(job_id, record)
        except redis.RedisError as exc:
            self._never_queued(job_id, caller)
            raise queue_unreachable(exc) from exc
        return job_id

    def _never_queued(self, job_id: str, caller: Caller, claim: IdempotencyClaim | None = None) -> None:
        """Undo a submission that failed: its key, record, upload and admission; logged if Redis is away
        too (the key expires with its window, the rest with the job's record or as stale entries)."""
        try:
            if claim is not None:
                self.idempotency.give_back(claim)
                self.records.delete(job_id)
            self.records.uploads.delete(job_id)
            self.records.admission.release(caller.owner, job_id)
        except redis.RedisError as exc:
            log.warning("could not undo a submission that was never queued: %s", exc)

    def _send(self, args: JobArgs, job_id: str) -> None:
        self.queue.send(self._upload_by_reference(args, job_id), job_id)

    def _upload_by_reference(self, args: JobArgs, job_id: str) -> JobArgs:
        """Store an uploaded image once, under the job's id, and name it in the message instead."""
        source = getattr(args, "source", None)
        if not isinstance(source, FrameSource) or source.image_b64 is None:
            return args
        data = decode_base64(source.image_b64, self.max_upload_bytes)
        with _redis_errors_are_503():
            self.records.uploads.put(job_id, data)
        return args.model_copy(update={"source": FrameSource(upload=job_id)})

    def record(self, job_id: str, caller: Caller) -> JobRecord:
        """The job's record, if ``caller`` may see it; another key's job answers as an unknown one."""
        try:
            record = self.records.get(job_id)
        except redis.RedisError as exc:
            raise store_unreachable(exc) from exc
        if record is None or not caller.may_see(record.owner):
            raise errors.JobNotFound(f"no job {job_id!r} (unknown, or its result expired)")
        return record

    def status(self, job_id: str, caller: Caller) -> JobState:
        record = self.record(job_id, caller)
        state, payload = self.queue.outcome(job_id)
        return job_state(job_id, record, state, payload, caller)

    def wait(self, job_id: str, timeout_s: float) -> dict[str, Any]:
        """Block until the job ends (the legacy routes, enrolment); raise its error, or ``JobTimeout``."""
        return self.queue.wait(job_id, timeout_s)

    def revoke(self, job_id: str, caller: Caller) -> JobState:
        record = self.record(job_id, caller)
        self.queue.revoke(job_id)
        with _redis_errors_are_503():
            self.records.revoke(job_id, record)
        return self.status(job_id, caller)

    def revoke_quietly(self, job_id: str, caller: Caller) -> None:
        """Revoke a job nobody waits for any more (a legacy route gave up); a broker error is only logged."""
        try:
            self.revoke(job_id, caller)
        except errors.RollcallError as exc:
            log.warning("could not revoke job %s after its caller stopped waiting: %s", job_id, exc.code)

    def start_session(self, session_id: int) -> None:
        """Queue an attendance session's first tick; the tick task itself waits for the start time."""
        self.queue.start_session(session_id)

    def close_session(self, session_id: int, stopped_at: datetime) -> None:
        """Queue a stopped session's close (``JobQueue.close_session``)."""
        self.queue.close_session(session_id, stopped_at)

    def drop_session_frames(self, session_id: int) -> None:
        """Revoke a stopped session's frames that are still queued (``JobRecords.drop_session_frames``)."""
        with _redis_errors_are_503():
            self.records.drop_session_frames(session_id)

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False
