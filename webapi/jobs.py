"""``/v1/jobs``: submit detect / identify / attendance jobs, poll them, revoke them."""

from __future__ import annotations

import base64
import json
from typing import Any, TypeVar

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from errors import InvalidInput
from tasks.imagebytes import check_image_upload
from webapi.jobclient import JobClient
from webapi.schemas import (
    AttendanceRequest,
    DetectRequest,
    FrameSource,
    IdentifyRequest,
    JobAccepted,
    JobState,
)
from webapi.validation import documented, parse_body, parse_obj

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
SourceT = TypeVar("SourceT", bound=FrameSource)


def job_client() -> JobClient:
    client: JobClient = current_app.extensions["rollcall.jobs"]
    return client


def parse_frame_request(model: type[SourceT]) -> SourceT:
    """A JSON body, or a multipart upload (file field ``image``; other fields as JSON strings).

    An uploaded image is checked here (base64, size, image signature), so a broken upload is
    refused with the request instead of failing its job later.
    """
    if "image" not in request.files:
        body = parse_body(model)
    else:
        payload: dict[str, Any] = {}
        for key, value in request.form.items():
            try:
                payload[key] = json.loads(value)
            except (json.JSONDecodeError, RecursionError):
                payload[key] = value
        payload["image_b64"] = base64.b64encode(request.files["image"].read()).decode("ascii")
        body = parse_obj(model, payload)
    if body.image_b64 is not None:
        check_image_upload(body.image_b64, current_app.extensions["rollcall.settings"].max_upload_bytes)
    return body


def accepted(job_id: str) -> tuple[Response, int, dict[str, str]]:
    status_url = url_for("jobs.get_job", job_id=job_id)
    body = JobAccepted(job_id=job_id, state="queued", status_url=status_url)
    return jsonify(body.model_dump()), 202, {"Location": status_url}


@bp.post("/detect")
@documented("Find the faces in a frame (boxes, probabilities, 5 landmarks).", body=DetectRequest,
            responses={202: JobAccepted})
def submit_detect() -> Any:
    body = parse_frame_request(DetectRequest)
    kwargs = {"source": body.source(), "small_faces": body.small_face_options()}
    return accepted(job_client().submit("detect", kwargs))


@bp.post("/identify")
@documented("Identify one face, given by landmarks or a box.", body=IdentifyRequest, responses={202: JobAccepted})
def submit_identify() -> Any:
    body = parse_frame_request(IdentifyRequest)
    kwargs = {"source": body.source(), "face": body.face(), "top_k": body.top_k}
    return accepted(job_client().submit("identify", kwargs))


@bp.post("/attendance")
@documented("Who of the enrolled people (or of a roster) is in the frame.", body=AttendanceRequest,
            responses={202: JobAccepted})
def submit_attendance() -> Any:
    body = parse_frame_request(AttendanceRequest)
    kwargs = {"source": body.source(), "roster": body.roster, "small_faces": body.small_face_options()}
    return accepted(job_client().submit("attendance", kwargs))


def _job_id(job_id: str) -> str:
    if len(job_id) > 64 or not all(c.isalnum() or c == "-" for c in job_id):
        raise InvalidInput("malformed job id")
    return job_id


@bp.get("/<job_id>")
@documented("A job's state, with its result or error.", responses={200: JobState})
def get_job(job_id: str) -> Any:
    return jsonify(job_client().status(_job_id(job_id)).to_json())


@bp.delete("/<job_id>")
@documented("Revoke a job (a queued job never runs; a running one is not interrupted).",
            responses={200: JobState})
def revoke_job(job_id: str) -> Any:
    return jsonify(job_client().revoke(_job_id(job_id)).to_json())
