"""Submitting a job from a request: its callback URL checked, its ``Idempotency-Key`` honoured.

A client that lost the answer to a submission (timeout, dropped connection) sends it again with
the same ``Idempotency-Key`` header: within ``ROLLCALL_IDEMPOTENCY_WINDOW_S`` it gets the same job
back (``Idempotent-Replayed: true``) instead of a second job. Keys are per caller (per API key),
and a key sent again with a different request answers 409 ``idempotency_conflict``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from flask import Response, current_app, jsonify, request, url_for
from pydantic import BaseModel

from contract.jobs import JobArgs
from errors import InvalidInput
from settings import Settings
from sources.netguard import CameraAllowlist, check_callback_url
from webapi.auth import caller_fingerprint
from webapi.jobclient import IdempotencyClaim, JobClient
from webapi.schemas import JobAccepted

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


def accepted(job_id: str, replayed: bool = False) -> tuple[Response, int, dict[str, str]]:
    """``202`` with the job's id and where to poll it (a replay answers exactly as the first time)."""
    status_url = url_for("jobs.get_job", job_id=job_id)
    body = JobAccepted(job_id=job_id, state="queued", status_url=status_url)
    headers = {"Location": status_url}
    if replayed:
        headers[REPLAYED_HEADER] = "true"
    return jsonify(body.model_dump()), 202, headers


def submit_job(args: JobArgs, body: BaseModel) -> tuple[Response, int, dict[str, str]]:
    """Queue a job for this request (once per ``Idempotency-Key``) and answer 202.

    ``body`` is the validated request: its ``callback_url``, if any, is checked here, and its
    fields (not the job's arguments, which may be resolved at submission) identify the request.
    """
    settings: Settings = current_app.extensions["rollcall.settings"]
    client: JobClient = current_app.extensions["rollcall.jobs"]
    callback_url = checked_callback_url(body)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return accepted(client.submit(args, callback_url))
    claim = idempotency_claim(key, {"type": args.job_type, "body": body.model_dump(mode="json")}, settings)
    submission = client.submit_once(args, claim, callback_url)
    return accepted(submission.job_id, submission.replayed)


def checked_callback_url(body: BaseModel) -> str | None:
    """The request's ``callback_url``, refused now (not when the job ends) if it could never be sent."""
    callback_url: str | None = getattr(body, "callback_url", None)
    if callback_url is not None:
        settings: Settings = current_app.extensions["rollcall.settings"]
        check_callback_url(callback_url, settings, CameraAllowlist.parse(settings.camera_allow))
    return callback_url


def idempotency_claim(key: str, request_body: dict[str, Any], settings: Settings) -> IdempotencyClaim:
    """Where this caller's ``key`` lives in Redis, and a hash of the request it came with."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidInput(f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    scope = hashlib.sha256(f"{caller_fingerprint()}\0{key}".encode()).hexdigest()
    canonical = json.dumps(request_body, sort_keys=True, separators=(",", ":"))
    return IdempotencyClaim(
        redis_key=f"rollcall:idempotency:{scope}",
        fingerprint=hashlib.sha256(canonical.encode()).hexdigest(),
        window_s=settings.idempotency_window_s,
    )
