"""The job record the API keeps beside each job in the result backend's Redis.

``rollcall:job:<id>`` holds the job's type, submission time and whether it was revoked. The
API writes it (``webapi.jobclient``); workers read the revoked flag before starting a job,
because Celery's revoke broadcast can reach a busy ``solo`` worker after it already took
the next job from the queue.
"""

from __future__ import annotations

import json
from typing import Any


def job_record_key(job_id: str) -> str:
    return f"rollcall:job:{job_id}"


def in_flight_key(owner: str) -> str:
    """The sorted set of one API key's jobs that are queued or running (``webapi.jobclient``)."""
    return f"rollcall:inflight:{owner}"


def release_in_flight(backend: Any, job_id: str) -> None:
    """A worker's part of the in-flight count: the job ended (or was skipped), so it counts no more."""
    record = read_record(backend, job_id)
    if record is not None and record.get("owner"):
        backend.ensure(backend.client.zrem, (in_flight_key(record["owner"]), job_id), max_retries=None)


def encode_record(record: dict[str, Any]) -> str:
    return json.dumps(record)


def decode_record(raw: bytes | str | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    record: dict[str, Any] = json.loads(raw)
    return record


def read_record(backend: Any, job_id: str) -> dict[str, Any] | None:
    """A job's record as a worker reads it, through the result backend's connection.

    A connection error is retried (the backend's ``ensure``, until Redis answers again) like the
    storing of results: a job must never fail because Redis blinked while it started or ended.
    None when there is no record, or when the backend is not Redis.
    """
    client = getattr(backend, "client", None)
    if client is None or not job_id:
        return None
    return decode_record(backend.ensure(client.get, (job_record_key(job_id),), max_retries=None))


def is_revoked(record: dict[str, Any] | None) -> bool:
    return bool(record and record.get("revoked"))


def job_json(
    job_id: str,
    record: dict[str, Any],
    state: str,
    result: dict[str, Any] | None,
    error: dict[str, str] | None,
) -> dict[str, Any]:
    """A job as ``GET /v1/jobs/<id>`` shows it (``webapi.jobclient.JobStatus``), e.g. for its callback."""
    return {
        "job_id": job_id,
        "type": record["type"],
        "state": state,
        "submitted_at": record["submitted_at"],
        "result": result,
        "error": error,
    }
