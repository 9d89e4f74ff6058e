"""``/v1/cameras``: the cameras the browser page offers, and their current frame through the API.

A browser cannot fetch a camera itself (no CORS, and the camera lives on the school network).
The API fetches the snapshot for it, through the same allowlist, limits and DNS pinning as the
workers (``sources.camera``), so the page can show exactly the bytes it then sends in a job.
Camera URLs may carry passwords: the API names cameras, it never shows their URLs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, url_for
from flask.blueprints import BlueprintSetupState
from pydantic import BaseModel

from errors import CameraBadResponse, CameraNotFound, InvalidInput
from sources.camera import FetchLimits, fetch_frame
from sources.imagebytes import IMAGE_TYPES, sniff_content_type
from sources.netguard import CameraAllowlist
from sources.urls import is_http_url
from webapi.validation import ErrorResponse, documented

bp = Blueprint("cameras", __name__, url_prefix="/v1/cameras")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


@dataclass(frozen=True)
class UiCamera:
    """One camera of ``ROLLCALL_UI_CAMERAS``: the name the page shows and the snapshot URL it stands for."""

    name: str
    url: str


@dataclass(frozen=True)
class CameraConfig:
    cameras: dict[str, UiCamera]
    allowlist: CameraAllowlist
    limits: FetchLimits


def parse_ui_cameras(spec: str) -> dict[str, UiCamera]:
    """``name=url`` pairs separated by commas; a malformed entry stops the API from starting."""
    cameras: dict[str, UiCamera] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        name, sep, url = (part.strip() for part in entry.partition("="))
        if not sep or not _NAME.match(name):
            raise InvalidInput(
                "ROLLCALL_UI_CAMERAS entries must be name=url with a name of letters, digits, '.', '_' or '-'"
            )
        if not is_http_url(url):
            raise InvalidInput(f"ROLLCALL_UI_CAMERAS: the URL of camera {name!r} must be http:// or https://")
        if name in cameras:
            raise InvalidInput(f"ROLLCALL_UI_CAMERAS names camera {name!r} twice")
        cameras[name] = UiCamera(name, url)
    return cameras


@bp.record_once
def _configure(state: BlueprintSetupState) -> None:
    settings = state.app.extensions["rollcall.settings"]
    state.app.extensions["rollcall.cameras"] = CameraConfig(
        cameras=parse_ui_cameras(settings.ui_cameras),
        allowlist=CameraAllowlist.parse(settings.camera_allow),
        limits=FetchLimits.from_settings(settings),
    )


def camera_config() -> CameraConfig:
    config: CameraConfig = current_app.extensions["rollcall.cameras"]
    return config


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
        for name in camera_config().cameras
    ]
    return jsonify({"items": items})


@bp.get("/<name>/frame")
@documented(
    "The camera's current frame (JPEG or PNG as the camera sent it), fetched inside the allowlist.",
    responses={200: None, 502: ErrorResponse, 504: ErrorResponse},
    tag="cameras",
)
def camera_frame(name: str) -> Any:
    config = camera_config()
    camera = config.cameras.get(name)
    if camera is None:
        raise CameraNotFound(f"no camera named {name!r} in ROLLCALL_UI_CAMERAS")
    fetched = fetch_frame(camera.url, config.allowlist, config.limits)
    content_type = sniff_content_type(fetched.data)
    if content_type not in IMAGE_TYPES:
        raise CameraBadResponse(f"camera {name!r} sent something that is not a JPEG, PNG, WebP or BMP image")
    headers = {"Cache-Control": "no-store", "X-Fetch-Ms": f"{fetched.elapsed_s * 1000:.0f}"}
    return Response(fetched.data, mimetype=content_type, headers=headers)
