"""The job record kept beside each job in the result backend's Redis, and a job's state as shown.

``rollcall:job:<id>`` holds the job's type, submission time, owner, callback URL and whether it was
revoked (``JobRecord``). The API writes it (``webapi.jobclient``); workers read it through their own
``JobRecords`` connection: the revoked flag before starting a job, because Celery's revoke broadcast
can reach a busy ``solo`` worker after it already took the next job from the queue, and the callback
URL when the job ended. ``JobState`` is what a poll and a callback show of a job.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import redis
from pydantic import BaseModel
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from contract.admission import Admission
from contract.uploads import Uploads
from settings import Settings

# A worker retries a Redis read until Redis answers (as Celery stores results), at most this far apart.
RETRY_CAP_S = 1.0


class JobRecord(BaseModel):
    type: str
    submitted_at: float
    owner: str | None = None  # the caller's identity (contract.callers): None for admin keys and operators
    callback_url: str | None = None
    revoked: bool = False
    session_id: int | None = None  # a session frame's session (its frames are dropped when it stops)


def job_record_key(job_id: str) -> str:
    return f"rollcall:job:{job_id}"


def session_frames_key(session_id: int) -> str:
    """The set of an attendance session's frames (job ids) that are queued or running."""
    return f"rollcall:session-frames:{session_id}"


def encode_record(record: JobRecord) -> str:
    return record.model_dump_json(exclude_defaults=True)


def decode_record(raw: bytes | str | None) -> JobRecord | None:
    return None if raw is None else JobRecord.model_validate_json(raw)


class JobRecords:
    """The job records in the result backend's Redis, with the admission and uploads on one connection.

    The API reads and writes them through its connection (errors answer 503 at once); a worker through
    its own (``from_settings``), where a connection error is retried until Redis answers again, like the
    storing of results: a job must never fail because Redis blinked while it started or ended.
    """

    def __init__(self, client: redis.Redis, admission: Admission, uploads: Uploads, expires_s: int) -> None:
        self.client = client
        self.admission = admission
        self.uploads = uploads
        self.expires_s = expires_s  # a record lives as long as the job's result (ROLLCALL_RESULT_EXPIRES_S)

    @classmethod
    def of(cls, client: redis.Redis, settings: Settings) -> JobRecords:
        return cls(
            client,
            Admission.of(client, settings),
            Uploads(client, settings.result_expires_s),
            settings.result_expires_s,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> JobRecords | None:
        """A worker's records in the result backend's Redis; None when it is not Redis (no records then)."""
        url, timeout_s = settings.result_backend, settings.broker_timeout_s
        if not url.startswith(("redis://", "rediss://", "unix://")):
            return None
        retry = Retry(ExponentialBackoff(cap=RETRY_CAP_S, base=0.05), retries=-1)
        client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_s,
            socket_timeout=max(timeout_s, 5.0),
            retry=retry,
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        return cls.of(client, settings)

    def get(self, job_id: str) -> JobRecord | None:
        """A job's record; None when there is none (a task sent without the API, or expired)."""
        if not job_id:
            return None
        return decode_record(self.client.get(job_record_key(job_id)))

    def put(self, job_id: str, record: JobRecord) -> None:
        self.client.set(job_record_key(job_id), encode_record(record), ex=self.expires_s)

    def delete(self, job_id: str) -> None:
        self.client.delete(job_record_key(job_id))

    def add_session_frames(self, session_id: int, frame_ids: Sequence[str], record: JobRecord) -> None:
        """Record a tick's frames (one record each) and list them under their session, for its stop."""
        frames = session_frames_key(session_id)
        with self.client.pipeline() as pipe:
            for job_id in frame_ids:
                pipe.set(job_record_key(job_id), encode_record(record), ex=self.expires_s)
            pipe.sadd(frames, *frame_ids)
            pipe.expire(frames, self.expires_s)
            pipe.execute()

    def revoke(self, job_id: str, record: JobRecord) -> None:
        """Mark a job revoked (its worker skips it) and release it: it will never run."""
        self.put(job_id, record.model_copy(update={"revoked": True}))
        self.admission.release(record.owner, job_id)

    def drop_session_frames(self, session_id: int) -> None:
        """Revoke a stopped session's frames that are still queued or running.

        Each frame's record is marked revoked (the worker that takes it answers at once, without
        fetching or running a model, so its tick still completes) and leaves its key's work in flight now.
        """
        key = session_frames_key(session_id)
        members: set[bytes] = self.client.smembers(key)  # type: ignore[assignment]  # no decode_responses
        for job_id in sorted(raw.decode() for raw in members):
            record = self.get(job_id)
            if record is not None:
                self.revoke(job_id, record)
        self.client.delete(key)

    def ended(self, job_id: str, record: JobRecord | None) -> None:
        """A worker's part: the job ended (or was skipped), so it counts no more, and a session frame
        leaves its session's list. ``record`` is the job's record as the worker read it (one read)."""
        if record is None:
            return
        self.admission.release(record.owner, job_id)
        if record.session_id is not None:
            self.client.srem(session_frames_key(record.session_id), job_id)


StateName = Literal["queued", "running", "succeeded", "failed", "revoked"]


class JobState(BaseModel):
    """A job as ``GET /v1/jobs/<id>`` answers it, as its callback receives it, and as the OpenAPI
    document describes both: ``result`` once it succeeded, ``error`` ({code, message}) once it failed or
    was revoked."""

    job_id: str
    type: str
    state: StateName
    submitted_at: float
    result: dict[str, Any] | None
    error: dict[str, str] | None

    @classmethod
    def of(
        cls,
        job_id: str,
        record: JobRecord,
        state: StateName,
        result: dict[str, Any] | None = None,
        error: dict[str, str] | None = None,
    ) -> JobState:
        return cls(
            job_id=job_id,
            type=record.type,
            state=state,
            submitted_at=record.submitted_at,
            result=result,
            error=error,
        )
