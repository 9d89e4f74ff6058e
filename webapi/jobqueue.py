"""The API's Celery client at work: send a job by task name, read its state and result, revoke it.

The API never imports the task code (and so never loads a model): it sends tasks by name
(``rollcall.models.detect`` …, from the job's arguments model). Every broker or result-store failure
becomes ``BrokerUnavailable`` (503).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import redis
from celery import Celery
from celery.exceptions import TimeoutError as CeleryTimeout
from celery.result import AsyncResult
from kombu.exceptions import OperationalError

from contract.jobs import SESSION_CLOSE, SESSION_CLOSE_AFTER_S, SESSION_TICK, JobArgs, to_kwargs
from contract.records import StateName
from contract.routing import task_routes
from errors import BrokerUnavailable, JobTimeout, error_of
from settings import Settings

# One quick retry when sending: a broker that does not answer makes the API answer 503 promptly.
SEND_RETRY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 1.0}
CELERY_STATES: dict[str, StateName] = {
    "PENDING": "queued",
    "RECEIVED": "queued",
    "RETRY": "queued",
    "STARTED": "running",
    "SUCCESS": "succeeded",
    "FAILURE": "failed",
    "REVOKED": "revoked",
}
_BROKER_ERRORS = (redis.RedisError, OperationalError, OSError)


def celery_client(settings: Settings) -> Celery:
    """A Celery client for ``settings`` (the API only sends tasks by name; it registers none)."""
    client = Celery("rollcall", amqp="contract.redaction:RedactingAMQP")  # redacted argument reprs
    client.config_from_object("celeryconfig")
    client.conf.update(
        broker_url=settings.broker_url,
        result_backend=settings.result_backend,
        # Workers wait out a Redis outage to store results; the API answers 503 at once instead.
        result_backend_always_retry=False,
        task_default_queue=settings.model_queue,
        task_routes=task_routes(settings),
    )
    return client


def queue_unreachable(exc: Exception) -> BrokerUnavailable:
    return BrokerUnavailable(f"the job queue is unreachable ({type(exc).__name__}); retry later")


def store_unreachable(exc: Exception) -> BrokerUnavailable:
    return BrokerUnavailable(f"the result store is unreachable ({type(exc).__name__})")


class JobQueue:
    """One Celery client (``celery_client``): the broker and the result backend."""

    def __init__(self, celery: Celery) -> None:
        self.celery = celery

    def send(self, args: JobArgs, job_id: str) -> None:
        """Queue the job ``args`` describe under ``job_id`` (its queue comes from the task routes)."""
        try:
            self.celery.send_task(
                args.task_name(), kwargs=to_kwargs(args), task_id=job_id, retry=True, retry_policy=SEND_RETRY
            )
        except _BROKER_ERRORS as exc:
            raise queue_unreachable(exc) from exc

    def start_session(self, session_id: int) -> None:
        """Queue an attendance session's first tick; the tick task itself waits for the start time."""
        try:
            self.celery.send_task(SESSION_TICK, args=(session_id, 0), retry=True, retry_policy=SEND_RETRY)
        except _BROKER_ERRORS as exc:
            raise queue_unreachable(exc) from exc

    def close_session(self, session_id: int, stopped_at: datetime) -> None:
        """Queue a stopped session's close (its streaming cameras' last window, its unknown faces grouped),
        to run once its cameras' readers have closed their tracks."""
        not_before = stopped_at + timedelta(seconds=SESSION_CLOSE_AFTER_S)
        try:
            self.celery.send_task(
                SESSION_CLOSE, args=(session_id, not_before.isoformat()), retry=True, retry_policy=SEND_RETRY
            )
        except _BROKER_ERRORS as exc:
            raise queue_unreachable(exc) from exc

    def outcome(self, job_id: str) -> tuple[StateName, Any]:
        """The job's state as Celery knows it, with its result (succeeded) or exception (failed)."""
        result = AsyncResult(job_id, app=self.celery)
        try:
            state = result.state
            payload = result.result if state in ("SUCCESS", "FAILURE") else None
        except (redis.RedisError, OperationalError) as exc:
            raise store_unreachable(exc) from exc
        return CELERY_STATES.get(state, "queued"), payload

    def wait(self, job_id: str, timeout_s: float) -> dict[str, Any]:
        """Block until the job ends; its result, else its error, or ``JobTimeout``."""
        result = AsyncResult(job_id, app=self.celery)
        try:
            value = result.get(timeout=timeout_s, propagate=False)
        except CeleryTimeout as exc:
            # Stop listening for this result: the job may finish long after the caller gave up.
            result.backend.remove_pending_result(result)
            raise JobTimeout(f"no worker finished the job within {timeout_s:g} s") from exc
        except (redis.RedisError, OperationalError) as exc:
            raise store_unreachable(exc) from exc
        if result.state != "SUCCESS":
            raise error_of(value)
        return dict(value)

    def revoke(self, job_id: str) -> None:
        """Tell the workers to drop the job (a worker that already took it checks its record too)."""
        try:
            self.celery.control.revoke(job_id)
        except (redis.RedisError, OperationalError) as exc:
            raise queue_unreachable(exc) from exc
