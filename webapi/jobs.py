"""``/v1/jobs``: submit detect / identify / attendance jobs, poll them, revoke them."""

from __future__ import annotations

import re
from typing import Any

from flask import Blueprint, jsonify

from contract.jobs import AttendanceArgs, DetectArgs, IdentifyArgs
from contract.records import JobState
from errors import InvalidInput, PersonNotFound
from webapi.auth import current_caller
from webapi.schemas import AttendanceRequest, DetectRequest, IdentifyRequest, JobAccepted, job_args
from webapi.services import facebank, job_client
from webapi.submission import parse_frame_request, submit_job
from webapi.validation import documented

bp = Blueprint("jobs", __name__, url_prefix="/v1/jobs")
# Job ids are UUIDs; anything of their alphabet and length is looked up (and may be 404).
JOB_ID = re.compile(r"[A-Za-z0-9-]{1,64}")
JOB_ID_PARAMETER = {"job_id": {"type": "string", "pattern": "^[A-Za-z0-9-]{1,64}$"}}
UPLOAD_ERRORS = (422,)  # not_an_image: an uploaded frame that is no JPEG, PNG, WebP or BMP


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
    return submit_job(job_args(DetectArgs, body), body)


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
    return submit_job(job_args(IdentifyArgs, body, face=body.face()), body)


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
        bank = facebank()
        missing = sorted(set(roster) - {person.id for person in bank.people.get_many(roster)})
        if missing:
            raise PersonNotFound.naming(missing)
    if body.roster_id is not None:  # resolved now: the job matches the members as they are at submission
        roster = list(facebank().rosters.get(body.roster_id).person_ids)
    return submit_job(job_args(AttendanceArgs, body, roster=roster), body)


def _job_id(job_id: str) -> str:
    if not JOB_ID.fullmatch(job_id):
        raise InvalidInput("malformed job id")
    return job_id


@bp.get("/<job_id>")
@documented("A job's state, with its result or error.", responses={200: JobState}, path=JOB_ID_PARAMETER)
def get_job(job_id: str) -> Any:
    return jsonify(job_client().status(_job_id(job_id), current_caller()).model_dump(mode="json"))


@bp.delete("/<job_id>")
@documented(
    "Revoke a job (a queued job never runs; a running one is not interrupted).",
    responses={200: JobState},
    path=JOB_ID_PARAMETER,
)
def revoke_job(job_id: str) -> Any:
    return jsonify(job_client().revoke(_job_id(job_id), current_caller()).model_dump(mode="json"))
