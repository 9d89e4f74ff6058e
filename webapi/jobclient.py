"""The API's side of the job queue: submit jobs by task name, read their state, revoke them.

The API never imports the task code (and so never loads a model): it sends tasks by name
(``rollcall.models.detect`` …). Each submitted job is also recorded under
``rollcall:job:<id>`` in the result backend's Redis, so an unknown job id answers 404
instead of Celery's eternal ``PENDING``.
"""

from __future__ import annotations

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
from settings import Settings
from tasks.records import decode_record, encode_record, is_revoked, job_record_key

JOB_TYPES = ("detect", "identify", "attendance", "enrol_face", "rebuild_facebank")
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


def error_of(exc: BaseException | None) -> errors.RollcallError:
    """The rollcall error a failed job carries (Celery rebuilds it from the JSON backend)."""
    if isinstance(exc, errors.RollcallError):
        return exc
    return errors.RollcallError(f"job failed: {type(exc).__name__}")


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

    def _key(self, job_id: str) -> str:
        return job_record_key(job_id)

    def submit(self, job_type: str, kwargs: dict[str, Any]) -> str:
        if job_type not in JOB_TYPES:
            raise errors.InvalidInput(f"unknown job type {job_type!r}")
        job_id = str(uuid.uuid4())
        record = encode_record({"type": job_type, "submitted_at": time.time()})
        try:
            self.redis.set(self._key(job_id), record, ex=self.settings.result_expires_s)
            self.celery.send_task(
                f"rollcall.models.{job_type}",
                kwargs=kwargs,
                task_id=job_id,
                retry=True,
                retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1.0},
            )
        except (redis.RedisError, OperationalError, OSError) as exc:
            raise errors.BrokerUnavailable(f"the job queue is unreachable ({type(exc).__name__}); retry later") \
                from exc
        return job_id

    def _record(self, job_id: str) -> dict[str, Any]:
        try:
            raw = self.redis.get(self._key(job_id))
        except redis.RedisError as exc:
            raise errors.BrokerUnavailable(f"the result store is unreachable ({type(exc).__name__})") from exc
        if raw is None:
            raise errors.JobNotFound(f"no job {job_id!r} (unknown, or its result expired)")
        record = decode_record(raw)
        assert record is not None
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
        elif mapped == "revoked" or (mapped == "queued" and is_revoked(record)):
            # A revoked job still queued stays PENDING in Celery until a worker discards it.
            mapped = "revoked"
            error = errors.JobRevoked("the job was cancelled").to_dict()
        return JobStatus(job_id, record["type"], mapped, record["submitted_at"],
                         payload if mapped == "succeeded" else None, error)

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
            record["revoked"] = True
            self.redis.set(self._key(job_id), encode_record(record), ex=self.settings.result_expires_s)
        except (redis.RedisError, OperationalError) as exc:
            raise errors.BrokerUnavailable(f"the job queue is unreachable ({type(exc).__name__})") from exc
        return self.status(job_id)

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except redis.RedisError:
            return False
