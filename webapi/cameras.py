"""``/v1/cameras``: the cameras the browser page offers, and their current frame through the API.

A browser cannot fetch a camera itself (no CORS, and the camera lives on the school network).
The API fetches the snapshot for it, through the same allowlist, limits and DNS pinning as the
workers (``sources.camera``), so the page can show exactly the bytes it then sends in a job.
Camera URLs may carry passwords: the API names cameras, it never shows their URLs.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, url_for
from pydantic import BaseModel

from errors import CameraNotFound, CameraProtocolError
from sources.camera import FetchLimits, fetch_frame
from sources.endpoint import CameraEndpoint
from sources.imagebytes import IMAGE_TYPES, sniff_content_type
from webapi.services import current_settings
from webapi.validation import ErrorResponse, documented

bp = Blueprint("cameras", __name__, url_prefix="/v1/cameras")


class CameraOut(BaseModel):
    name: str
    frame_url: str


class CameraList(BaseModel):
    items: list[CameraOut]


@bp.get("")
@documented(
    "The cameras configured for the browser page (ROLLCALL_UI_CAMERAS), by name.",
    responses={200: CameraList},
    tag="cameras",
)
def list_cameras() -> Any:
    items = [
        {"name": name, "frame_url": url_for("cameras.camera_frame", name=name)}
        for name in current_settings().ui_cameras
    ]
    return jsonify({"items": items})


@bp.get("/<name>/frame")
@documented(
    "The camera's current frame (JPEG or PNG as the camera sent it), fetched inside the allowlist.",
    responses={200: None, 502: ErrorResponse, 504: ErrorResponse},
    tag="cameras",
)
def camera_frame(name: str) -> Any:
    settings = current_settings()
    camera = settings.ui_cameras.get(name)
    if camera is None:
        raise CameraNotFound(f"no camera named {name!r} in ROLLCALL_UI_CAMERAS")
    fetched = fetch_frame(
        CameraEndpoint(camera.url), settings.camera_allow, FetchLimits.from_settings(settings)
    )
    content_type = sniff_content_type(fetched.data)
    if content_type not in IMAGE_TYPES:
        raise CameraProtocolError(
            f"camera {name!r} sent something that is not a JPEG, PNG, WebP or BMP image"
        )
    headers = {"Cache-Control": "no-store", "X-Fetch-Ms": f"{fetched.elapsed_s * 1000:.0f}"}
    return Response(fetched.data, mimetype=content_type, headers=headers)
