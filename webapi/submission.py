"""Submitting a job from a request: frame parsed, callback URL checked, ``Idempotency-Key`` honoured
(``webapi.idempotency``), the caller handed to the job client, and the 202 answer."""

from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

from flask import Response, jsonify, request, url_for
from pydantic import BaseModel

import errors
from contract.jobs import JobArgs, SmallFaces
from errors import InvalidInput
from settings import Settings
from sources.imagebytes import check_image_upload
from webapi.auth import current_caller
from webapi.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER, claim_for
from webapi.schemas import FrameRequest, JobAccepted
from webapi.services import cameras, current_settings, job_client
from webapi.validation import parse_body, parse_obj

RequestT = TypeVar("RequestT", bound=FrameRequest)


def parse_frame_request(model: type[RequestT]) -> RequestT:
    """A JSON body, or a multipart upload (file field ``image``; other fields as JSON strings).

    An uploaded image is checked here (base64, size, image signature), so a broken upload is
    refused with the request instead of failing its job later.
    """
    images = request.files.getlist("image")
    if len(images) > 1:  # one would be ignored without a word: which one did the client mean?
        raise InvalidInput(f"send one 'image' field; this request has {len(images)}")
    if not images:
        body = parse_body(model)
    else:
        payload: dict[str, Any] = {}
        for key, value in request.form.items():
            try:
                payload[key] = json.loads(value)
            except (json.JSONDecodeError, RecursionError):
                payload[key] = value
        payload["image_b64"] = base64.b64encode(images[0].read()).decode("ascii")
        body = parse_obj(model, payload)
    settings = current_settings()
    if body.image_b64 is not None:
        check_image_upload(body.image_b64, settings.max_upload_bytes)
    if body.camera is not None:
        check_camera_exists(body.camera)
    small_faces: SmallFaces | None = getattr(body, "small_faces", None)
    if small_faces is not None:
        small_faces.check_cost(settings.small_faces_max_tile_cost)
    return body


def check_camera_exists(name: str) -> None:
    """``camera_not_found`` now rather than a failed job later (one deleted meanwhile still fails it)."""
    cameras().get(name)


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
    client, caller = job_client(), current_caller()
    callback_url = checked_callback_url(body)
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return accepted(client.submit(args, caller, callback_url))
    submitted = {"type": args.job_type, "body": body.model_dump(mode="json")}
    claim = claim_for(key, caller, submitted, current_settings().idempotency_window_s)
    submission = client.submit_once(args, caller, claim, callback_url)
    return accepted(submission.job_id, submission.replayed)


def checked_callback_url(body: BaseModel) -> str | None:
    """The request's ``callback_url``, refused now (not when the job ends) if it could never be sent."""
    callback_url: str | None = getattr(body, "callback_url", None)
    if callback_url is not None:
        check_callback_url(callback_url, current_settings())
    return callback_url


def check_callback_url(url: str, settings: Settings) -> None:
    """Refuse a callback at submission: no secret to sign it with, or a URL outside the allowlist cameras
    share (checked again at each delivery, ``tasks.callbacks``)."""
    if not settings.callback_secret.get_secret_value():
        raise errors.CallbacksNotConfigured(
            "callback_url needs ROLLCALL_CALLBACK_SECRET on the server to sign deliveries; it is not set"
        )
    try:
        settings.camera_allow.check_url(url)
    except errors.CameraNotAllowed as exc:
        raise errors.CallbackNotAllowed(f"callback_url refused: {exc.message} (callbacks share it)") from exc
    except errors.CameraUnreachable as exc:
        raise errors.InvalidInput(f"callback_url refused: {exc.message}") from exc
