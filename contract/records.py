"""The job record the API keeps beside each job in the result backend's Redis.

``rollcall:job:<id>`` holds the job's type, submission time, owner, callback URL and whether it was
revoked (``JobRecord``). The API writes it (``webapi.jobclient``); workers read it through their own
``JobRecords`` connection: the revoked flag before starting a job, because Celery's revoke broadcast
can reach a busy ``solo`` worker after it already took the next job from the queue, and the callback
URL when the job ended.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import redis
from pydantic import BaseModel
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from contract.inflight import InFlight
from contract.uploads import Uploads
from settings import Settings

# A worker retries a Redis read until Redis answers (as Celery stores results), at most this far apart.
RETRY_CAP_S = 1.0


class JobRecord(BaseModel):
    type: str
    submitted_at: float
    owner: str | None = None  # the caller's identity (webapi.auth); None for admin keys and the CLI
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
    """The job records as a worker reads them, through its own connection to the result backend's Redis.

    A connection error is retried until Redis answers again, like the storing of results: a job must
    never fail because Redis blinked while it started or ended.
    """

    def __init__(self, client: redis.Redis, in_flight: InFlight, uploads: Uploads) -> None:
        self.client = client
        self.in_flight = in_flight
        self.uploads = uploads

    @classmethod
    def from_settings(cls, settings: Settings) -> JobRecords | None:
        """Records in the result backend's Redis; None when it is not Redis (no records then)."""
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
        return cls(client, InFlight.of(client, settings), Uploads(client, settings.result_expires_s))

    def get(self, job_id: str) -> JobRecord | None:
        """A job's record; None when there is none (a task sent without the API, or expired)."""
        if not job_id:
            return None
        return decode_record(self.client.get(job_record_key(job_id)))

    def add_session_frames(
        self, session_id: int, frame_ids: Sequence[str], record: JobRecord, expires_s: int
    ) -> None:
        """Record a tick's frames (one record each) and list them under their session, for its stop."""
        frames = session_frames_key(session_id)
        with self.client.pipeline() as pipe:
            for job_id in frame_ids:
                pipe.set(job_record_key(job_id), encode_record(record), ex=expires_s)
            pipe.sadd(frames, *frame_ids)
            pipe.expire(frames, expires_s)
            pipe.execute()

    def release_in_flight(self, job_id: str, record: JobRecord | None) -> None:
        """A worker's part of the in-flight count: the job ended (or was skipped), so it counts no more.

        ``record`` is the job's record as the caller read it (``get``), so one read serves every use.
        """
        if record is None:
            return
        if record.owner:
            self.in_flight.release(record.owner, job_id)
        if record.session_id is not None:
            self.client.srem(session_frames_key(record.session_id), job_id)


def job_json(
    job_id: str,
    record: JobRecord,
    state: str,
    result: dict[str, Any] | None,
    error: dict[str, str] | None,
) -> dict[str, Any]:
    """A job as ``GET /v1/jobs/<id>`` shows it (``webapi.jobclient.JobStatus``), e.g. for its callback."""
    return {
        "job_id": job_id,
        "type": record.type,
        "state": state,
        "submitted_at": record.submitted_at,
        "result": result,
        "error": error,
    }
