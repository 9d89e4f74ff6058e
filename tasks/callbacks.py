"""Callbacks: POST a finished job's JSON to the URL its submitter gave, signed, retried with backoff.

The body is exactly what ``GET /v1/jobs/<id>`` answers once the job has ended. Each attempt is
signed with HMAC-SHA256 over ``timestamp + "." + body`` (``ROLLCALL_CALLBACK_SECRET``), sent as
``X-Rollcall-Timestamp`` and ``X-Rollcall-Signature: v1=<hex>``, so a receiver can check both who
sent it and that it is fresh. Delivery is its own task (``rollcall.io.callback``) on its own queue
(``ROLLCALL_IO_QUEUE``): a slow receiver never holds a model job, and a failed attempt (network
error or any non-2xx answer) is retried after an exponentially growing, jittered pause. The URL
must pass the allowlist cameras use, at submission and again at every attempt, and the connection
goes only to the addresses that check approved (``sources.pinned``).

``schedule_callback`` is the one entry point for anything that wants a callback sent (jobs through
``job_ended``, attendance sessions or any later feature); ``webapi.submission.check_callback_url``
is what the API runs at submission.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import requests
from celery import Celery, Task
from celery.utils.time import get_exponential_backoff_interval

import errors
from contract.jobs import CALLBACK, result_for
from contract.records import JobRecord, JobState, StateName
from settings import Settings
from sources.netguard import CameraAllowlist
from sources.pinned import post
from sources.urls import without_credentials
from tasks import app, runtime

log = logging.getLogger("rollcall.callbacks")

TIMESTAMP_HEADER = "X-Rollcall-Timestamp"
SIGNATURE_HEADER = "X-Rollcall-Signature"
SIGNATURE_VERSION = "v1"


def encode_body(payload: dict[str, Any]) -> bytes:
    """The exact bytes that are sent and signed (compact JSON, keys sorted)."""
    return json.dumps(payload, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """``v1=<hex>``: HMAC-SHA256 of ``timestamp + "." + body`` under ``secret``."""
    digest = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()
    return f"{SIGNATURE_VERSION}={digest}"


def schedule_callback(celery: Celery, url: str, payload: dict[str, Any]) -> None:
    """Queue the delivery of ``payload`` to ``url`` (routed to the I/O queue by ``celeryconfig``)."""
    celery.send_task(CALLBACK, kwargs={"url": url, "payload": payload})


def job_ended(
    task: Task,
    job_id: str,
    record: JobRecord | None,
    state: StateName,
    result: dict[str, Any] | None,
    error: errors.RollcallError | None,
) -> None:
    """Queue the callback of a job that ended, if its submitter gave a ``callback_url`` (in ``record``).

    The body is what its submitter would read: a non-admin key's job (it has an owner) names no worker.
    """
    if record is None or not record.callback_url:
        return
    shown = result_for(result, admin=record.owner is None)
    ended = JobState.of(job_id, record, state, shown, error.to_dict() if error is not None else None)
    schedule_callback(task.app, record.callback_url, ended.model_dump(mode="json"))


def deliver(url: str, payload: dict[str, Any], settings: Settings, allowlist: CameraAllowlist) -> int:
    """One signed attempt; the answer's status, or ``CallbackFailed`` / ``CallbackNotAllowed``."""
    body = encode_body(payload)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "rollcall-callback",
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(settings.callback_secret.get_secret_value().encode(), timestamp, body),
    }
    try:
        status = post(url, body, headers, allowlist, settings.callback_timeout_s, errors.CallbackNotAllowed)
    except errors.CameraNotAllowed as exc:
        raise errors.CallbackNotAllowed(f"callback refused: {exc.message}") from exc
    except errors.CameraUnreachable as exc:  # DNS: may resolve again later
        raise errors.CallbackFailed(exc.message) from exc
    except requests.RequestException as exc:
        raise errors.CallbackFailed(f"no answer from {_host(url)}: {type(exc).__name__}") from exc
    if not 200 <= status < 300:
        raise errors.CallbackFailed(f"{_host(url)} answered HTTP {status}")
    return status


def _about(payload: dict[str, Any]) -> str:
    """What a delivery is for, in logs: ``job <id>``, or a live camera's presence change (live.webhook)."""
    if "job_id" in payload:
        return f"job {payload['job_id']}"
    return f"presence {payload.get('event', '?')} on camera {payload.get('camera', '?')}"


def _host(url: str) -> str:
    """Host and port for logs: never the path or query, which may carry a receiver's token."""
    return without_credentials(url, keep_query=False).split("/")[2]


@app.task(name=CALLBACK, bind=True, ignore_result=True, throws=(errors.RollcallError,))
def deliver_callback(self: Task, url: str, payload: dict[str, Any]) -> None:
    """Deliver one callback; retry a failed attempt up to ``ROLLCALL_CALLBACK_MAX_RETRIES`` times."""
    settings = runtime.current().settings
    what = _about(payload)
    attempt = self.request.retries + 1
    try:
        status = deliver(url, payload, settings, settings.camera_allow)
    except errors.CallbackFailed as exc:
        if self.request.retries >= settings.callback_max_retries:
            log.error("callback for %s: attempt %d failed (%s); giving up", what, attempt, exc.message)
            raise
        pause = get_exponential_backoff_interval(
            settings.callback_retry_backoff_s,
            self.request.retries,
            settings.callback_retry_backoff_max_s,
            full_jitter=True,
        )
        log.warning(
            "callback for %s: attempt %d failed (%s); next in %d s", what, attempt, exc.message, pause
        )
        raise self.retry(exc=exc, countdown=pause, max_retries=settings.callback_max_retries) from exc
    except errors.RollcallError as exc:  # not allowed, or not a URL: another attempt cannot help
        log.error("callback for %s refused: %s: %s", what, exc.code, exc.message)
        raise
    log.info("callback for %s delivered to %s (HTTP %d, attempt %d)", what, _host(url), status, attempt)
