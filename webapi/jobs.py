"""``/v1/jobs``: submit detect / identify / attendance jobs, poll them, revoke them."""

from __future__ import annotations

import base64
import json
import re
from typing import Any, TypeVar

from flask import Blueprint, current_app, jsonify, request

import contract.jobs as contract
from contract.jobs import AttendanceArgs, DetectArgs, FaceHint, IdentifyArgs
from errors import InvalidInput, PersonNotFound
from sources.imagebytes import check_image_upload
from webapi.jobclient import JobClient
from webapi.schemas import (
    AttendanceRequest,
    DetectRequest,
    FrameSource,
    IdentifyRequest,
    JobAccepted,
    JobState,
    check_tile_cost,
)
from webapi.submission import submit_job
from webapi.validation import documented, parse_body, parse_obj

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
# Job ids are UUIDs; anything of their alphabet and length is looked up (and may be 404).
JOB_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
JOB_ID_PARAMETER = {"job_id": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}$"}}
UPLOAD_ERRORS = (422,)  # not_an_image: an uploaded frame that is no JPEG, PNG, WebP or BMP
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
    settings = current_app.extensions["rollcall.settings"]
    if body.image_b64 is not None:
        check_image_upload(body.image_b64, settings.max_upload_bytes)
    small_faces = getattr(body, "small_faces", None)
    if small_faces is not None:
        check_tile_cost(small_faces.options(), settings.small_faces_max_tile_cost)
    return body


def job_source(body: FrameSource) -> contract.FrameSource:
    return contract.FrameSource(**body.source())


def small_faces(body: DetectRequest) -> contract.SmallFaces | None:
    options = body.small_face_options()
    return contract.SmallFaces(**options) if options is not None else None


@bp.post("/detect")
@documented(
    "Find the faces in a frame (boxes, probabilities, 5 landmarks).",
    body=DetectRequest,
    responses={202: JobAccepted},
    errors=UPLOAD_ERRORS,
    idempotent=True,
)
def submit_detect() -> Any:
    body = parse_frame_request(DetectRequest)
    return submit_job(DetectArgs(source=job_source(body), small_faces=small_faces(body)), body)


@bp.post("/identify")
@documented(
    "Identify one face, given by landmarks or a box.",
    body=IdentifyRequest,
    responses={202: JobAccepted},
    errors=UPLOAD_ERRORS,
    idempotent=True,
)
def submit_identify() -> Any:
    body = parse_frame_request(IdentifyRequest)
    args = IdentifyArgs(source=job_source(body), face=FaceHint(**body.face()), top_k=body.top_k)
    return submit_job(args, body)


@bp.post("/attendance")
@documented(
    "Who of the enrolled people (or of a roster) is in the frame.",
    body=AttendanceRequest,
    responses={202: JobAccepted},
    errors=UPLOAD_ERRORS,
    idempotent=True,
)
def submit_attendance() -> Any:
    body = parse_frame_request(AttendanceRequest)
    roster = body.roster
    if roster:  # unknown ids are the caller's mistake: say so now, not as a failed job later
        bank = current_app.extensions["rollcall.facebank"]
        missing = sorted(set(roster) - {person.id for person in bank.people.get_many(roster)})
        if missing:
            raise PersonNotFound(f"no person with id {', '.join(map(str, missing))}")
    if body.roster_id is not None:  # resolved now: the job matches the members as they are at submission
        roster = list(current_app.extensions["rollcall.facebank"].rosters.get(body.roster_id).person_ids)
    args = AttendanceArgs(source=job_source(body), roster=roster, small_faces=small_faces(body))
    return submit_job(args, body)


def _job_id(job_id: str) -> str:
    if not JOB_ID.fullmatch(job_id):
        raise InvalidInput("malformed job id")
    return job_id


@bp.get("/<job_id>")
@documented("A job's state, with its result or error.", responses={200: JobState}, path=JOB_ID_PARAMETER)
def get_job(job_id: str) -> Any:
    return jsonify(job_client().status(_job_id(job_id)).to_json())


@bp.delete("/<job_id>")
@documented(
    "Revoke a job (a queued job never runs; a running one is not interrupted).",
    responses={200: JobState},
    path=JOB_ID_PARAMETER,
)
def revoke_job(job_id: str) -> Any:
    return jsonify(job_client().revoke(_job_id(job_id)).to_json())
