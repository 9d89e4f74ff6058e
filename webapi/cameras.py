"""``/v1/cameras``: the camera registry, and each camera's current frame through the API.

Cameras are registered by an admin key with their URL, credentials and TLS trust
(``facebank.cameras``); jobs, sessions and the page then name them (``{"camera": "room12"}``) and
the process that fetches a frame looks the rest up. A password goes in and never comes out:
answers say ``has_password``. A ``jobs`` key sees names and labels only, never URLs (a URL's path or
query may hold a token). ``ROLLCALL_UI_CAMERAS`` is listed beside the registry, read only.

A browser cannot fetch a camera itself (no CORS, and the camera lives on the school network). The
API fetches the snapshot for it, through the same allowlist, limits and DNS pinning as the workers
(``sources.camera``), so the page can show exactly the bytes it then sends in a job.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any, Literal, get_type_hints

from flask import Blueprint, Response, jsonify, url_for
from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from contract.fields import CAMERA_URL_PATTERN, CameraName
from contract.people import Timestamp
from errors import CameraProtocolError, Conflict
from facebank.limits import (
    CAMERA_NAME,
    MAX_CA_PEM_BYTES,
    MAX_CAMERA_LABEL,
    MAX_CAMERA_PASSWORD,
    MAX_CAMERA_URL,
    MAX_CAMERA_USERNAME,
)
from facebank.records import Camera
from sources.camera import FetchLimits, fetch_frame
from sources.imagebytes import IMAGE_TYPES, sniff_content_type
from sources.probe import CameraTestReport, probe_camera
from webapi.auth import current_caller
from webapi.services import cameras, current_settings, live_cameras
from webapi.validation import VISIBLE_TEXT, ErrorResponse, documented, parse_body, storable_text

bp = Blueprint("cameras", __name__, url_prefix="/v1/cameras")
log = logging.getLogger("rollcall.api")
NAME_PARAMETER = {"name": {"type": "string", "pattern": CAMERA_NAME}}
SmallFaceMode = Literal["off", "auto", "on"]
# What a jobs key does not see of a camera: a URL's path or query may hold a token.
ADMIN_ONLY = ("url", "username", "tls_fingerprint_sha256", "tls_ca_pem")

_URL: dict[str, Any] = {
    "max_length": MAX_CAMERA_URL,
    "description": "The camera's URL (snapshot, MJPEG or RTSP stream: docs/cameras.md); a `user:password@` "
    "in it is split out into username and password.",
    "examples": ["http://192.168.1.20/ISAPI/Streaming/channels/101/picture"],
    "json_schema_extra": {"pattern": CAMERA_URL_PATTERN},
}


class CameraUpdate(BaseModel):
    """The fields to change; left out: unchanged; null clears an optional one (``url`` cannot be null)."""

    model_config = ConfigDict(extra="forbid", strict=True)

    url: str = Field(None, **_URL)
    username: str | None = Field(None, min_length=1, max_length=MAX_CAMERA_USERNAME)
    password: str | None = Field(
        None,
        max_length=MAX_CAMERA_PASSWORD,
        description="Stored encrypted (ROLLCALL_SECRET_KEY) and never shown again: answers say "
        "`has_password`.",
        json_schema_extra={"writeOnly": True},
    )
    tls_fingerprint_sha256: str | None = Field(
        None,
        max_length=200,
        description="Trust an https or rtsps camera by its certificate's SHA-256 (64 hex digits; colons "
        "and case ignored); the host name is then not checked.",
    )
    tls_ca_pem: str | None = Field(
        None, max_length=MAX_CA_PEM_BYTES, description="Trust it by this CA bundle (PEM) instead."
    )
    small_faces: SmallFaceMode | None = Field(
        None, description="The camera's small-face mode; a job's own `small_faces` wins."
    )
    label: str | None = Field(None, min_length=1, max_length=MAX_CAMERA_LABEL, json_schema_extra=VISIBLE_TEXT)

    _text = field_validator("username", "label")(storable_text)


class CameraCreate(CameraUpdate):
    """A new camera: its ``name`` and ``url``, and what else it needs."""

    name: CameraName
    url: str = Field(..., **_URL)


class CameraOut(BaseModel):
    """A camera; ``url``, ``username`` and the TLS trust are null for a ``jobs`` key."""

    name: str
    label: str | None
    source: Literal["registry", "settings"] = Field(
        description="`registry`: managed here; `settings`: ROLLCALL_UI_CAMERAS, read only."
    )
    frame_url: str
    url: str | None = Field(description="Without credentials.")
    username: str | None
    has_password: bool
    tls_fingerprint_sha256: str | None
    tls_ca_pem: str | None
    small_faces: SmallFaceMode | None
    created_at: Timestamp | None
    updated_at: Timestamp | None


# The probe's report (a dataclass of sources.probe) as a model of the OpenAPI document, field for field.
CameraTestOut = create_model(
    "CameraTestReport", **{field: (hint, ...) for field, hint in get_type_hints(CameraTestReport).items()}
)


class CameraList(BaseModel):
    items: list[CameraOut]
    can_manage: bool = Field(description="Whether this API key may add, change, test and remove cameras.")


def may_manage() -> bool:
    """Whether this request's caller may see a camera's details and change the registry (an admin key)."""
    return current_caller().admin


def camera_json(camera: Camera) -> dict[str, Any]:
    """The camera as this caller may see it (details for admin keys only); a record holds no password."""
    shown = asdict(camera)
    if not may_manage():
        shown.update(dict.fromkeys(ADMIN_ONLY))
    frame_url = url_for("cameras.camera_frame", name=camera.name)
    return CameraOut(**shown, frame_url=frame_url).model_dump(mode="json")


def _registered(name: str) -> None:
    """Refuse to change a camera of ``ROLLCALL_UI_CAMERAS`` (it answers 404 when neither source knows it)."""
    directory = cameras()
    if directory.get(name).source != "registry":
        raise Conflict(f"camera {name!r} comes from ROLLCALL_UI_CAMERAS: change that setting instead")


@bp.get("")
@documented(
    "Every camera: the registry's by name, then those of ROLLCALL_UI_CAMERAS.",
    responses={200: CameraList},
    tag="cameras",
)
def list_cameras() -> Any:
    items = [camera_json(camera) for camera in cameras().all()]
    return jsonify({"items": items, "can_manage": may_manage()})


@bp.post("")
@documented(
    "Register a camera (its password is stored encrypted and never shown again).",
    body=CameraCreate,
    responses={201: CameraOut},
    tag="cameras",
    role="admin",
    errors=(409,),
)
def create_camera() -> Any:
    body = parse_body(CameraCreate)
    camera = cameras().create(**body.model_dump())
    location = url_for("cameras.get_camera", name=camera.name)
    return jsonify(camera_json(camera)), 201, {"Location": location}


@bp.get("/<name>")
@documented("One camera.", responses={200: CameraOut}, tag="cameras", path=NAME_PARAMETER)
def get_camera(name: str) -> Any:
    return jsonify(camera_json(cameras().get(name)))


@bp.patch("/<name>")
@documented(
    "Change a registered camera (null clears a field; a new password replaces the old one).",
    body=CameraUpdate,
    responses={200: CameraOut},
    tag="cameras",
    role="admin",
    errors=(409,),
    path=NAME_PARAMETER,
)
def update_camera(name: str) -> Any:
    body = parse_body(CameraUpdate)
    _registered(name)
    return jsonify(camera_json(cameras().registry.update(name, **body.model_dump(exclude_unset=True))))


@bp.delete("/<name>")
@documented(
    "Remove a registered camera (jobs and session ticks naming it later fail with camera_not_found).",
    responses={204: None},
    tag="cameras",
    role="admin",
    errors=(409,),
    path=NAME_PARAMETER,
)
def delete_camera(name: str) -> Any:
    _registered(name)
    cameras().registry.delete(name)
    return Response(status=204)


@bp.post("/<name>/test")
@documented(
    "Fetch one frame as a job would and report how it went: reachable, authentication, TLS trust, time to "
    "the first frame, its size, or the error's code and message.",
    responses={200: CameraTestOut},
    tag="cameras",
    role="admin",
    path=NAME_PARAMETER,
)
def test_camera(name: str) -> Any:
    settings = current_settings()
    camera = cameras().resolve(name)
    report = probe_camera(camera.endpoint, settings.camera_allow, FetchLimits.from_settings(settings))
    log.info("camera %r tested: %s", name, report.error_code or "ok")
    return jsonify(report.to_dict())


@bp.get("/<name>/frame")
@documented(
    "The camera's current frame (JPEG or PNG as the camera sent it), fetched inside the allowlist, or its "
    "live reader's shared frame when one is fresh (`X-Frame-Source: live`). Each request keeps the camera "
    "live for ROLLCALL_LIVE_WATCH_TTL_S seconds.",
    responses={200: None, 502: ErrorResponse, 504: ErrorResponse},
    tag="cameras",
    path=NAME_PARAMETER,
)
def camera_frame(name: str) -> Any:
    settings = current_settings()
    camera = cameras().resolve(name)
    caller = current_caller()
    viewer = caller.fingerprint if caller is not None else "cli"
    shared = live_cameras().frame_for_viewer(name, viewer, settings)
    if shared is not None:
        headers = {
            "Cache-Control": "no-store",
            "X-Frame-Source": "live",
            "X-Frame-Age-Ms": f"{shared.age_s * 1000:.0f}",
            "X-Frame-Number": str(shared.frame_no),
            "X-Frame-Ts": repr(shared.ts),  # the live event of this frame carries the same ts
        }
        return Response(shared.data, mimetype="image/jpeg", headers=headers)
    fetched = fetch_frame(camera.endpoint, settings.camera_allow, FetchLimits.from_settings(settings))
    content_type = sniff_content_type(fetched.data)
    if content_type not in IMAGE_TYPES:
        raise CameraProtocolError(
            f"camera {name!r} sent something that is not a JPEG, PNG, WebP or BMP image"
        )
    headers = {
        "Cache-Control": "no-store",
        "X-Frame-Source": "camera",
        "X-Fetch-Ms": f"{fetched.elapsed_s * 1000:.0f}",
    }
    return Response(fetched.data, mimetype=content_type, headers=headers)
