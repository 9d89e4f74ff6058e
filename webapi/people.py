"""``/v1/people`` and ``/v1/facebank``: enrol and manage the people rollcall can name.

People and their photos are stored by the API directly; a photo's embedding needs the
models, so adding a face is a job run by a worker (``rollcall.models.enrol_face``). The
API waits for it (up to ``ROLLCALL_LEGACY_WAIT_S``) and answers 201 with the face, or 202
with the job when it takes longer.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, jsonify, url_for
from pydantic import BaseModel, ConfigDict, Field, field_validator

from contract.jobs import EnrolFaceArgs, EnrolFaceResult, RebuildArgs, read_result
from contract.people import FaceRecordOut, PersonOut, RecordOut
from errors import FaceNotFound, RollcallError
from facebank.limits import MAX_DISPLAY_NAME, MAX_EXTERNAL_ID, MAX_METADATA_BYTES
from facebank.records import Face
from webapi.auth import current_caller
from webapi.names import lookalike_warnings, normalised_name
from webapi.schemas import FacebankStatsOut, FrameRequest, JobAccepted
from webapi.services import current_settings, facebank, job_client
from webapi.submission import accepted, checked_callback_url, parse_frame_request
from webapi.validation import (
    JOB_ERRORS,
    NO_NUL,
    VISIBLE_TEXT,
    documented,
    parse_body,
    parse_query,
    storable_text,
)

bp = Blueprint("people", __name__)


def _has_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(key) or _has_nul(item) for key, item in value.items())
    return isinstance(value, list) and any(_has_nul(item) for item in value)


def _storable_metadata(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is None:
        return value
    try:
        encoded = json.dumps(value, allow_nan=False)
        has_nul = _has_nul(value)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"metadata is not storable JSON: {exc}") from exc
    if len(encoded.encode()) > MAX_METADATA_BYTES:
        raise ValueError(f"metadata is larger than {MAX_METADATA_BYTES} bytes as JSON")
    if has_nul:
        raise ValueError("metadata may not contain NUL characters")
    return value


class PersonCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    display_name: str = Field(..., min_length=1, max_length=MAX_DISPLAY_NAME, json_schema_extra=VISIBLE_TEXT)
    external_id: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_EXTERNAL_ID,
        json_schema_extra=VISIBLE_TEXT,
        description="Your own identifier (e.g. a student number); unique.",
    )
    metadata: dict[str, Any] = Field(
        default_factory=dict, description=f"Any JSON object up to {MAX_METADATA_BYTES // 1024} KiB."
    )

    _name = field_validator("display_name", "external_id", mode="before")(normalised_name)
    _text = field_validator("display_name", "external_id")(storable_text)
    _metadata = field_validator("metadata")(_storable_metadata)


class PersonUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    # Left out: unchanged. Only external_id may be null (it clears it); a null name or metadata is refused.
    display_name: str = Field(None, min_length=1, max_length=MAX_DISPLAY_NAME, json_schema_extra=VISIBLE_TEXT)
    external_id: str | None = Field(
        None, min_length=1, max_length=MAX_EXTERNAL_ID, json_schema_extra=VISIBLE_TEXT
    )
    metadata: dict[str, Any] = Field(
        None, description=f"Any JSON object up to {MAX_METADATA_BYTES // 1024} KiB; replaces the old one."
    )

    _name = field_validator("display_name", "external_id", mode="before")(normalised_name)
    _text = field_validator("display_name", "external_id")(storable_text)
    _metadata = field_validator("metadata")(_storable_metadata)


class PeopleQuery(BaseModel):
    q: str | None = Field(
        None,
        max_length=MAX_DISPLAY_NAME,
        description="Search in names and external ids.",
        json_schema_extra=NO_NUL,
    )

    _name = field_validator("q", mode="before")(normalised_name)
    _text = field_validator("q")(storable_text)
    offset: int = Field(0, ge=0, le=10_000_000)
    limit: int = Field(50, ge=1, le=500)


class NameWarning(BaseModel):
    code: str = Field(description="`mixed_script`: a word mixes scripts whose letters look alike.")
    message: str


class PersonSaved(PersonOut):
    warnings: list[NameWarning] = Field(
        default_factory=list,
        description="What to check in the name just saved (webapi.names); absent when nothing is to check.",
    )


def with_warnings(person: dict[str, Any], display_name: str | None) -> dict[str, Any]:
    """A created or changed person's answer, with ``warnings`` when its new name has something to check."""
    warnings = lookalike_warnings("display_name", display_name)
    return {**person, "warnings": warnings} if warnings else person


class PeoplePage(RecordOut):
    items: list[PersonOut]
    total: int
    offset: int
    limit: int


class FaceOut(FaceRecordOut):
    image_url: str
    quality: dict[str, Any] | None = Field(
        None, description="What the enrolment quality gate measured (in the answer to an enrolment only)."
    )


class FaceList(BaseModel):
    items: list[FaceOut]


def face_json(face: Face, **extra: Any) -> dict[str, Any]:
    """A face with the URL of its photo, and ``extra`` fields (``quality``) when given."""
    image_url = url_for("people.face_image", person_id=face.person_id, face_id=face.id)
    return {**FaceRecordOut.json_of(face), "image_url": image_url, **extra}


@bp.post("/v1/people")
@documented(
    "Add a person.",
    body=PersonCreate,
    responses={201: PersonSaved},
    tag="people",
    role="admin",
    errors=(409,),
)
def create_person() -> Any:
    body = parse_body(PersonCreate)
    person = facebank().people.create(body.display_name, body.external_id, body.metadata)
    return (
        jsonify(with_warnings(PersonOut.json_of(person), body.display_name)),
        201,
        {"Location": url_for("people.get_person", person_id=person.id)},
    )


@bp.get("/v1/people")
@documented(
    "List people (paginated, searchable).", query=PeopleQuery, responses={200: PeoplePage}, tag="people"
)
def list_people() -> Any:
    query = parse_query(PeopleQuery)
    page = facebank().people.page(query.q, query.offset, query.limit)
    return jsonify(PeoplePage.json_of(page))


@bp.get("/v1/people/<int:person_id>")
@documented("One person.", responses={200: PersonOut}, tag="people")
def get_person(person_id: int) -> Any:
    return jsonify(PersonOut.json_of(facebank().people.get(person_id)))


@bp.patch("/v1/people/<int:person_id>")
@documented(
    "Change a person's name, external id or metadata.",
    body=PersonUpdate,
    responses={200: PersonSaved},
    tag="people",
    role="admin",
    errors=(409,),
)
def update_person(person_id: int) -> Any:
    body = parse_body(PersonUpdate)
    changes = body.model_dump(exclude_unset=True)
    person = PersonOut.json_of(facebank().people.update(person_id, **changes))
    return jsonify(with_warnings(person, changes.get("display_name")))


@bp.delete("/v1/people/<int:person_id>")
@documented(
    "Delete a person with all their photos and embeddings.", responses={204: None}, tag="people", role="admin"
)
def delete_person(person_id: int) -> Any:
    facebank().people.delete(person_id)
    return Response(status=204)


@bp.get("/v1/people/<int:person_id>/faces")
@documented("A person's enrolled faces.", responses={200: FaceList}, tag="people")
def list_faces(person_id: int) -> Any:
    return jsonify({"items": [face_json(f) for f in facebank().faces.of_person(person_id)]})


@bp.post("/v1/people/<int:person_id>/faces")
@documented(
    "Enrol a photo holding exactly one face (upload, base64 or camera URL).",
    body=FrameRequest,
    responses={201: FaceOut, 202: JobAccepted},
    tag="people",
    role="admin",
    errors=JOB_ERRORS,
)
def add_face(person_id: int) -> Any:
    body = parse_frame_request(FrameRequest)
    facebank().people.get(person_id)  # 404 now rather than from the worker
    client = job_client()
    args = EnrolFaceArgs(person_id=person_id, source=body.frame_source())
    job_id = client.submit(args, current_caller(), checked_callback_url(body))
    try:
        waited = client.wait(job_id, current_settings().legacy_wait_s)
    except RollcallError as exc:
        if exc.code == "job_timeout":
            return accepted(job_id)
        raise
    result = read_result(EnrolFaceResult, waited)
    face = facebank().faces.get(result.face_id)
    return jsonify(face_json(face, quality=result.quality)), 201


@bp.get("/v1/people/<int:person_id>/faces/<int:face_id>/image")
@documented("The original photo of an enrolled face.", responses={200: None}, tag="people", role="admin")
def face_image(person_id: int, face_id: int) -> Any:
    image = facebank().faces.image(face_id)
    if image.person_id != person_id:
        raise FaceNotFound(f"person {person_id} has no face {face_id}")
    return Response(image.data, mimetype=image.content_type, headers={"Cache-Control": "private, no-store"})


@bp.delete("/v1/people/<int:person_id>/faces/<int:face_id>")
@documented("Remove one enrolled face and its embeddings.", responses={204: None}, tag="people", role="admin")
def delete_face(person_id: int, face_id: int) -> Any:
    facebank().faces.delete(person_id, face_id)
    return Response(status=204)


@bp.post("/v1/facebank/rebuild")
@documented(
    "Re-embed every face for the configured model (async job).",
    responses={202: JobAccepted},
    tag="people",
    role="admin",
)
def rebuild() -> Any:
    return accepted(job_client().submit(RebuildArgs(), current_caller()))


@bp.get("/v1/facebank/stats")
@documented(
    "Counts of people, faces and embeddings per model, and the facebank revision.",
    responses={200: FacebankStatsOut},
    tag="people",
)
def stats() -> Any:
    return jsonify(FacebankStatsOut.json_of(facebank().stats()))
