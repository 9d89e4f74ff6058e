"""Turning a job's frame source (camera URL, registered camera or uploaded image) into a decoded BGR frame.

A registered camera is looked up here, in the worker (``facebank.cameras.CameraDirectory``): its
password is decrypted in this process and goes nowhere but to the camera.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from contract.jobs import FrameInfo, FrameSource
from errors import InvalidInput, RollcallError
from facebank.cameras import CameraDirectory
from ml.image import decode_image
from ml.timing import StageTimer
from settings import Settings
from sources.camera import FetchedFrame, FetchLimits, fetch_frame
from sources.endpoint import CameraEndpoint
from sources.imagebytes import decode_base64, sniff_content_type
from sources.netguard import CameraAllowlist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Frame:
    """A decoded frame, its original bytes, where it came from (a host or a camera's name: never a URL,
    which may carry credentials), and the small-face mode its camera asks for (None: no opinion)."""

    image: np.ndarray
    data: bytes
    source: str
    small_faces: str | None = None

    @property
    def content_type(self) -> str:
        return sniff_content_type(self.data)

    def describe(self) -> FrameInfo:
        height, width = self.image.shape[:2]
        return FrameInfo(width=width, height=height, source=self.source)


def load_frame(
    source: FrameSource,
    settings: Settings,
    allowlist: CameraAllowlist,
    timer: StageTimer,
    cameras: Callable[[], CameraDirectory] | None = None,
    read_upload: Callable[[str], bytes] | None = None,
    shared_frame: Callable[[str], bytes | None] | None = None,
) -> Frame:
    """Fetch (for a URL or a camera name) and decode the frame a job names, timing ``fetch`` and ``decode``.

    ``cameras`` gives what resolves a camera's name (``camera_not_found`` when it was deleted since the
    job was submitted); it is called only for a camera's name, so other jobs never need the facebank.
    The lookup counts as part of the fetch. ``read_upload`` reads an upload sent by reference
    (``contract.uploads``: the bytes under a job's id). ``shared_frame`` gives a live camera's fresh
    shared frame (``live.framestore``), or None: then the camera is fetched as for any job.
    """
    small_faces: str | None = None
    if source.url is not None:
        url = source.url
        label = f"camera:{urlsplit(url).hostname}"
        small_faces = _host_mode(url, settings)
        with timer.stage("fetch"):
            fetched = _fetch_from_camera(CameraEndpoint(url), allowlist, settings)
        data = fetched.data
    elif source.camera is not None:
        if cameras is None:
            raise InvalidInput("this process has no camera registry to look up a camera's name in")
        label = f"camera:{source.camera}"
        with timer.stage("fetch"):
            camera = cameras().resolve(source.camera)
            shared = shared_frame(source.camera) if shared_frame is not None else None
            data = (
                shared
                if shared is not None
                else _fetch_from_camera(camera.endpoint, allowlist, settings).data
            )
        small_faces = camera.small_faces or _host_mode(camera.endpoint.url, settings)
    elif source.upload is not None:
        if read_upload is None:
            raise InvalidInput("this worker has no result store to read uploads from")
        with timer.stage("fetch"):
            data, label = read_upload(source.upload), "upload"
    elif source.image_b64 is not None:
        with timer.stage("fetch"):
            data, label = decode_base64(source.image_b64, settings.max_upload_bytes), "upload"
    else:
        raise InvalidInput("a frame source needs 'url', 'camera', 'upload' or 'image_b64'")
    with timer.stage("decode"):
        image = decode_image(data, settings.frame_max_pixels)
    return Frame(image=image, data=data, source=label, small_faces=small_faces)


def _host_mode(url: str, settings: Settings) -> str | None:
    """The small-face mode ``ROLLCALL_SMALL_FACES_CAMERAS`` gives the camera's host, if any."""
    return settings.small_faces_cameras.get((urlsplit(url).hostname or "").lower())


def _fetch_from_camera(
    endpoint: CameraEndpoint, allowlist: CameraAllowlist, settings: Settings
) -> FetchedFrame:
    """``fetch_frame`` for a job's camera; a failure is logged, then raised.

    Each failure keeps its own code (``camera_unreachable``, ``camera_timeout``, ``camera_auth_failed``,
    ``camera_tls_failed``, ``camera_protocol_error``...) so that an admin can act on it; docs/cameras.md
    says what each one tells a caller about the allowed networks, and why that is accepted.
    """
    try:
        return fetch_frame(endpoint, allowlist, FetchLimits.from_settings(settings))
    except RollcallError as exc:
        log.warning("camera fetch failed: %s: %s", exc.code, exc.message)
        raise
