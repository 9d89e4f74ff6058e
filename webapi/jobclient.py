"""The API's side of the job queue: submit jobs by task name, read their state, revoke them.

The API never imports the task code (and so never loads a model): it sends tasks by name
(``rollcall.models.detect`` …). Each submitted job is also recorded under
``rollcall:job:<id>`` in the result backend's Redis, so an unknown job id answers 404
instead of Celery's eternal ``PENDING``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult
from kombu.exceptions import OperationalError

import errors
from contract.inflight import InFlight
from contract.jobs import SESSION_TICK, FrameSource, JobArgs, result_for, to_kwargs
from contract.records import JobRecord, decode_record, encode_record, job_record_key, session_frames_key
from contract.uploads import Uploads
from errors import error_of  # Celery rebuilds a job's error from the JSON backend
from settings import Settings
from sources.imagebytes import decode_base64
from webapi.auth import current_caller, may_see, owner_of_new

log = logging.getLogger("rollcall.jobclient")
# Tries at claiming an idempotency key whose holder vanished (its submission failed, or it just expired).
CLAIM_TRIES = 3
# One quick retry when sending: a broker that does not answer makes the API answer 503 promptly.
SEND_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1.0}
_STATES = {
    "PENDING": "queued",
    "RECEIVED": "queued",
    "RETRY": "queued",
    "STARTED": "running",
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "REVOKED": "revoked",
}


@dataclass(frozen=True)
class IdempotencyClaim:
    """Where one caller's ``Idempotency-Key`` is held in Redis, and a hash of the request it came with."""

    redis_key: str
    fingerprint: str
    window_s: int


@dataclass(frozen=True)
class Submission:
    job_id: str
    replayed: bool  # the answer names the job an earlier request with the same key created


def _unavailable(exc: Exception) -> errors.BrokerUnavailable:
    return errors.BrokerUnavailable(f"the job queue is unreachable ({type(exc).__name__}); retry later")


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    type: str
    state: str
    submitted_at: float
    result: dict[str, Any] | None
    error: dict[str, str] | None

    def to_json(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "type": self.type,
            "state": self.state,
            "submitted_at": self.submitted_at,
            "result": self.result,
            "error": self.error,
        }


class JobClient:
    """Submit, poll and revoke jobs; every broker failure becomes ``BrokerUnavailable`` (503)."""

    def __init__(self, celery: Celery, settings: Settings) -> None:
        self.celery = celery
        self.settings = settings
        self.redis = redis.Redis.from_url(
            settings.result_backend,
            socket_connect_timeout=settings.broker_timeout_s,
            socket_timeout=settings.broker_timeout_s,
        )
        self.in_flight = InFlight.of(self.redis, settings)
        self.uploads = Uploads(self.redis, settings.result_expires_s)

    def _key(self, job_id: str) -> str:
        return job_record_key(job_id)

    def submit(self, args: JobArgs, callback_url: str | None = None) -> str:
        """Record and queue a job; with ``callback_url``, its final JSON is POSTed there (tasks.callbacks)."""
        job_id = self._record_new(args.job_type, callback_url)
        try:
            self._send(args, job_id)
        except errors.BrokerUnavailable:
            self._release_quietly(job_id, owner_of_new())
            raise
        return job_id

    def submit_once(
        self, args: JobArgs, claim: IdempotencyClaim, callback_url: str | None = None
    ) -> Submission:
        """Submit, unless the claim's key was used within its window: then answer that job, or 409.

        The key is taken with one ``SET NX EX`` after this job's record is written, so of two
        concurrent submissions exactly one queues a job, and the other answers its id (which
        already has a record to poll). A job that could not be queued gives its key back.
        """
        for _ in range(CLAIM_TRIES):
            job_id = self._record_new(args.job_type, callback_url)
            held = json.dumps({"job_id": job_id, "fingerprint": claim.fingerprint})
            raw: bytes | None = None  # the winner's claim, when this one lost
            try:
                won = self.redis.set(claim.redis_key, held, nx=True, ex=claim.window_s)
                if not won:
                    self.redis.delete(self._key(job_id))
                    self._release(job_id, owner_of_new())
                    raw = self.redis.get(claim.redis_key)
            except redis.RedisError as exc:
                raise _unavailable(exc) from exc
            if won:
                try:
                    self._send(args, job_id)
                except errors.BrokerUnavailable:
                    self._give_back(claim.redis_key, job_id)
                    raise
                return Submission(job_id, replayed=False)
            if raw is None:  # its holder gave it back (or it expired) meanwhile: claim it again
                continue
            first = json.loads(raw)
            if first["fingerprint"] != claim.fingerprint:
                raise errors.IdempotencyConflict(
                    "this Idempotency-Key was used for a different request; use a new key for a new request"
                )
            return Submission(str(first["job_id"]), replayed=True)
        raise errors.BrokerUnavailable("the Idempotency-Key is being claimed and given back; retry later")

    def _give_back(self, claim_key: str, job_id: str) -> None:
        """Release the key and record of a job that was never queued, so a retry with the key can queue it."""
        try:
            self.redis.delete(claim_key, self._key(job_id))
            self._release(job_id, owner_of_new())
        except redis.RedisError as exc:  # the key expires with its window; the caller sees 503
            log.warning("could not release an Idempotency-Key after a failed submission: %s", exc)

    def admit_submission(self) -> None:
        """Count one submission against this caller's rate; refuse it over ``ROLLCALL_RATE_LIMIT_PER_MINUTE``.

        Per non-admin API key, in fixed one-minute windows kept in Redis (shared by every API process).
        """
        caller = current_caller()
        limit = self.settings.rate_limit_per_minute
        if caller is None or caller.admin or limit == 0:
            return
        now = time.time()
        window = int(now // 60)
        key = f"rollcall:rate:{caller.fingerprint}:{window}"
        try:
            with self.redis.pipeline() as pipe:
                count, _ = pipe.incr(key).expire(key, 120).execute()
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        if count > limit:
            refused = errors.RateLimited(f"more than {limit} job submissions in a minute from this API key")
            refused.retry_after_s = int((window + 1) * 60 - now) + 1
            raise refused

    def _admit_in_flight(self, job_id: str, owner: str | None) -> None:
        caller = current_caller()
        limit = self.settings.max_jobs_in_flight
        if owner is None or caller is None or caller.admin or limit == 0:
            return
        try:
            admitted = self.in_flight.admit_jobs(owner, [job_id], limit)
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        if not admitted:
            refused = errors.TooManyJobsInFlight(
                f"this API key has {limit} jobs queued or running; submit more when one has ended"
            )
            refused.retry_after_s = 2
            raise refused

    def _release(self, job_id: str, owner: str | None) -> None:
        """The job will never run (revoked, or never queued): it no longer counts as in flight."""
        if owner:
            self.in_flight.release(owner, job_id)

    def _record_new(self, job_type: str, callback_url: str | None) -> str:
        """A new job id with its record (``contract.records``); the callback URL travels in the record.

        The caller's limits are checked first: submissions per minute and jobs in flight (429).
        """
        self.admit_submission()
        job_id = str(uuid.uuid4())
        owner = owner_of_new()
        self._admit_in_flight(job_id, owner)
        record = JobRecord(type=job_type, submitted_at=time.time(), owner=owner, callback_url=callback_url)
        try:
            self.redis.set(self._key(job_id), encode_record(record), ex=self.settings.result_expires_s)
        except redis.RedisError as exc:
            self._release_quietly(job_id, owner)
            raise _unavailable(exc) from exc
        return job_id

    def _release_quietly(self, job_id: str, owner: str | None) -> None:
        try:
            self._release(job_id, owner)
        except redis.RedisError as exc:  # the entry is dropped as stale later
            log.warning("could not release a job's in-flight entry: %s", exc)

    def _send(self, args: JobArgs, job_id: str) -> None:
        args = self._upload_by_reference(args, job_id)
        try:
            self.celery.send_task(
                args.task_name(),
                kwargs=to_kwargs(args),
                task_id=job_id,
                retry=True,
                retry_policy=SEND_RETRY,
            )
        except (redis.RedisError, OperationalError, OSError) as exc:
            self._forget_upload(job_id)
            raise _unavailable(exc) from exc

    def _upload_by_reference(self, args: JobArgs, job_id: str) -> JobArgs:
        """Store an uploaded image once, under the job's id, and name it in the message instead."""
        source = getattr(args, "source", None)
        if not isinstance(source, FrameSource) or source.image_b64 is None:
            return args
        data = decode_base64(source.image_b64, self.settings.max_upload_bytes)
        try:
            self.uploads.put(job_id, data)
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc
        return args.model_copy(update={"source": FrameSource(upload=job_id)})

    def _forget_upload(self, job_id: str) -> None:
        try:
            self.uploads.delete(job_id)
        except redis.RedisError as exc:  # it expires with the job's record
            log.warning("could not delete the upload of a job that was never queued: %s", exc)

    def drop_session_frames(self, session_id: int) -> None:
        """Revoke a stopped session's frames that are still queued.

        Each frame's record is marked revoked (the worker that takes it answers at once, without
        fetching or running a model, so its tick still completes) and leaves its key's work in flight now.
        """
        key = session_frames_key(session_id)
        try:
            frame_ids = [raw.decode() for raw in self.redis.smembers(key)]
            for job_id in frame_ids:
                record = decode_record(self.redis.get(self._key(job_id)))
                if record is None:
                    continue
                revoked = record.model_copy(update={"revoked": True})
                self.redis.set(self._key(job_id), encode_record(revoked), ex=self.settings.result_expires_s)
                self._release(job_id, record.owner)
            self.redis.delete(key)
        except redis.RedisError as exc:
            raise _unavailable(exc) from exc

    def start_session(self, session_id: int) -> None:
        """Queue an attendance session's first tick; the tick task itself waits for the start time."""
        try:
            self.celery.send_task(SESSION_TICK, args=(session_id, 0), retry=True, retry_policy=SEND_RETRY)
        except (redis.RedisError, OperationalError, OSError) as exc:
            message = f"the job queue is unreachable ({type(exc).__name__}); retry later"
            raise errors.BrokerUnavailable(message) from exc

    def _record(self, job_id: str) -> JobRecord:
        try:
            raw = self.redis.get(self._key(job_id))
        except redis.RedisError as exc:
            raise errors.BrokerUnavailable(f"the result store is unreachable ({type(exc).__name__})") from exc
        record = decode_record(raw)
        # Another key's job answers exactly as an unknown one: its id says nothing to this caller.
        if record is None or not may_see(record.owner):
            raise errors.JobNotFound(f"no job {job_id!r} (unknown, or its result expired)")
        return record

    def status(self, job_id: str) -> JobStatus:
        record = self._record(job_id)
        result = AsyncResult(job_id, app=self.celery)
        try:
            state = result.state
            payload = result.result if state in ("SUCCESS", "FAILURE") else None
        except (redis.RedisError, OperationalError) as exc:
            raise errors.BrokerUnavailable(f"the result store is unreachable ({type(exc).__name__})") from exc
        mapped = _STATES.get(state, "queued")
        error = None
        if mapped == "failed":
            error = error_of(payload).to_dict()
            payload = None
        elif mapped == "revoked" or (mapped == "queued" and record.revoked):
            # A revoked job still queued stays PENDING in Celery until a worker discards it.
            mapped = "revoked"
            error = errors.JobRevoked("the job was cancelled").to_dict()
        caller = current_caller()
        return JobStatus(
            job_id,
            record.type,
            mapped,
            record.submitted_at,
            result_for(payload, caller is None or caller.admin) if mapped == "succeeded" else None,
            error,
        )

    def wait(self, job_id: str, timeout_s: float) -> dict[str, Any]:
        """Block until the job ends (the seed routes); raise its error, or ``JobTimeout``."""
        result = AsyncResult(job_id, app=self.celery)
        try:
            value = result.get(timeout=timeout_s, propagate=False)
        except CeleryTimeout as exc:
            # Stop listening for this result: the job may finish long after the caller gave up.
            result.backend.remove_pending_result(result)
            raise errors.JobTimeout(f"no worker finished the job within {timeout_s:g} s") from exc
        except (redis.RedisError, OperationalError) as exc:
            raise errors.BrokerUnavailable(f"the result store is unreachable ({type(exc).__name__})") from exc
        if result.state != "SUCCESS":
            raise error_of(value)
        return dict(value)

    def revoke(self, job_id: str) -> JobStatus:
        record = self._record(job_id)
        try:
            self.celery.control.revoke(job_id)
            revoked = record.model_copy(update={"revoked": True})
            self.redis.set(self._key(job_id), encode_record(revoked), ex=self.settings.result_expires_s)
            self._release(job_id, record.owner)
        except (redis.RedisError, OperationalError) as exc:
            raise errors.BrokerUnavailable(f"the job queue is unreachable ({type(exc).__name__})") from exc
        return self.status(job_id)

    def revoke_quietly(self, job_id: str) -> None:
        """Revoke a job nobody waits for any more (a seed route gave up); a broker error is only logged."""
        try:
            self.revoke(job_id)
        except errors.RollcallError as exc:
            log.warning("could not revoke job %s after its caller stopped waiting: %s", job_id, exc.code)

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False
