"""Turning a job's frame source (camera URL or uploaded image) into a decoded BGR frame."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from contract.jobs import FrameInfo, FrameSource
from errors import InvalidInput, RollcallError
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
    """A decoded frame, its original bytes, and where it came from (host only: URLs may carry credentials)."""

    image: np.ndarray
    data: bytes
    source: str

    @property
    def content_type(self) -> str:
        return sniff_content_type(self.data)

    def describe(self) -> FrameInfo:
        height, width = self.image.shape[:2]
        return FrameInfo(width=width, height=height, source=self.source)


def load_frame(
    source: FrameSource, settings: Settings, allowlist: CameraAllowlist, timer: StageTimer
) -> Frame:
    """Fetch (for a URL) and decode the frame a job names, timing ``fetch`` and ``decode``."""
    if source.url is not None:
        url = source.url
        label = f"camera:{urlsplit(url).hostname}"
        with timer.stage("fetch"):
            fetched = _fetch_from_camera(url, allowlist, settings)
        data = fetched.data
    elif source.image_b64 is not None:
        with timer.stage("fetch"):
            data, label = decode_base64(source.image_b64, settings.max_upload_bytes), "upload"
    else:
        raise InvalidInput("a frame source needs 'url' or 'image_b64'")
    with timer.stage("decode"):
        image = decode_image(data, settings.frame_max_pixels)
    return Frame(image=image, data=data, source=label)


def _fetch_from_camera(url: str, allowlist: CameraAllowlist, settings: Settings) -> FetchedFrame:
    """``fetch_frame`` for a job's URL (credentials in its ``user:pass@``); a failure is logged, then raised.

    Each failure keeps its own code (``camera_unreachable``, ``camera_timeout``, ``camera_auth_failed``,
    ``camera_tls_failed``, ``camera_protocol_error``...) so that an admin can act on it; docs/cameras.md
    says what each one tells a caller about the allowed networks, and why that is accepted.
    """
    try:
        return fetch_frame(CameraEndpoint(url), allowlist, FetchLimits.from_settings(settings))
    except RollcallError as exc:
        log.warning("camera fetch failed: %s: %s", exc.code, exc.message)
        raise
