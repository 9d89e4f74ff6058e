"""The legacy v0 routes, same shapes, for existing frontends: ``/modelfr``, ``/modelin``, ``/modelat``.

They are the old system's (which the issue texts and benchmarks call "the seed") and keep its query
parameters and answers.

Each submits the same job as ``/v1/jobs/...`` and waits for it (``ROLLCALL_LEGACY_WAIT_S``).
Success keeps the old JSON; failures answer ``{"error": {...}}`` instead of an empty list.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify

from contract.jobs import (
    AttendanceArgs,
    AttendanceResult,
    DetectArgs,
    DetectResult,
    FaceHint,
    FrameSource,
    IdentifyArgs,
    IdentifyResult,
    JobArgs,
    SmallFaces,
    read_result,
)
from errors import InvalidInput, JobTimeout
from webapi.auth import current_caller
from webapi.schemas import LegacyDetectResponse, LegacyFrameQuery, LegacyIdentifyQuery, LegacyIdResponse
from webapi.services import current_settings, job_client
from webapi.submission import check_camera_exists
from webapi.validation import JOB_ERRORS, documented, parse_query

bp = Blueprint("legacy", __name__)
UNKNOWN = "Unknown"


def _source(query: LegacyFrameQuery) -> FrameSource:
    """The query's frame source; a camera name is looked up now (``camera_not_found``: 404)."""
    if query.camera is not None:
        check_camera_exists(query.camera)
    return query.frame_source()


def _run(args: JobArgs) -> dict[str, Any]:
    """Submit and wait; a job the route stopped waiting for is revoked, so no one runs it for nobody."""
    client, caller = job_client(), current_caller()
    job_id = client.submit(args, caller)
    try:
        return client.wait(job_id, current_settings().legacy_wait_s)
    except JobTimeout:
        client.revoke_quietly(job_id, caller)
        raise


@bp.get("/modelfr")
@documented(
    "Legacy v0 route: detect faces.",
    query=LegacyFrameQuery,
    responses={200: LegacyDetectResponse},
    tag="legacy",
    errors=JOB_ERRORS,
)
def modelfr() -> Any:
    query = parse_query(LegacyFrameQuery)
    result = read_result(DetectResult, _run(DetectArgs(source=_source(query))))
    boxes = []
    for face in result.faces:
        x1, y1, x2, y2 = face.box
        xs = [p[0] for p in face.landmarks]
        ys = [p[1] for p in face.landmarks]
        boxes.append({"x1": x1, "y1": y1, "x2": x2, "y2": y2, "landmarks": xs + ys})
    return jsonify({"box": boxes})


@bp.get("/modelin")
@documented(
    "Legacy v0 route: identify the face at the given landmarks.",
    query=LegacyIdentifyQuery,
    responses={200: LegacyIdResponse},
    tag="legacy",
    errors=JOB_ERRORS,
)
def modelin() -> Any:
    query = parse_query(LegacyIdentifyQuery)
    try:
        landmarks = query.landmarks()
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc
    args = IdentifyArgs(source=_source(query), face=FaceHint(landmarks=landmarks))
    person = read_result(IdentifyResult, _run(args)).person
    return jsonify({"id": [person.display_name if person else UNKNOWN]})


@bp.get("/modelat")
@documented(
    "Legacy v0 route: names of the enrolled people in the frame.",
    query=LegacyFrameQuery,
    responses={200: LegacyIdResponse},
    tag="legacy",
    errors=JOB_ERRORS,
)
def modelat() -> Any:
    query = parse_query(LegacyFrameQuery)
    # Like the old system's attendance server, look for the back rows too (tiles when the frame is wide).
    args = AttendanceArgs(source=_source(query), small_faces=SmallFaces(mode="auto"))
    result = read_result(AttendanceResult, _run(args))
    return jsonify({"id": [entry.person.display_name for entry in result.present]})
