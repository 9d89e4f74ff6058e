"""Turning a job's frame source (camera URL or uploaded image) into a decoded BGR frame."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np

from contract.jobs import FrameInfo, FrameSource
from errors import CameraBadResponse, CameraTimeout, CameraUnreachable, InvalidInput
from ml.image import decode_image
from ml.timing import StageTimer
from settings import Settings
from sources.camera import FetchedFrame, FetchLimits, fetch_frame
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
    source: FrameSource,
    settings: Settings,
    allowlist: CameraAllowlist,
    timer: StageTimer,
    read_upload: Callable[[str], bytes] | None = None,
) -> Frame:
    """Fetch (for a URL) and decode the frame a job names, timing ``fetch`` and ``decode``.

    ``read_upload`` reads an upload sent by reference (``contract.uploads``: the bytes under a job's id).
    """
    if source.url is not None:
        url = source.url
        label = f"camera:{urlsplit(url).hostname}"
        with timer.stage("fetch"):
            fetched = _fetch_from_camera(url, label, allowlist, settings)
        data = fetched.data
    elif source.upload is not None:
        if read_upload is None:
            raise InvalidInput("this worker has no result store to read uploads from")
        with timer.stage("fetch"):
            data, label = read_upload(source.upload), "upload"
    elif source.image_b64 is not None:
        with timer.stage("fetch"):
            data, label = decode_base64(source.image_b64, settings.max_upload_bytes), "upload"
    else:
        raise InvalidInput("a frame source needs 'url', 'upload' or 'image_b64'")
    with timer.stage("decode"):
        image = decode_image(data, settings.frame_max_pixels)
    return Frame(image=image, data=data, source=label)


def _fetch_from_camera(url: str, label: str, allowlist: CameraAllowlist, settings: Settings) -> FetchedFrame:
    """``fetch_frame``, with every way a camera can fail to deliver answered as one ``camera_unreachable``.

    Refused, reset, silent, not speaking HTTP, an HTTP error page: telling a caller which one it was
    would let any API key map the ports and web servers of the allowed networks. The caller learns
    that no frame came; the worker's log keeps the reason (its code and message) for the operator.
    """
    try:
        return fetch_frame(url, allowlist, FetchLimits.from_settings(settings))
    except (CameraUnreachable, CameraTimeout, CameraBadResponse) as exc:
        log.warning("camera fetch failed: %s: %s", exc.code, exc.message)
        raise CameraUnreachable(f"{label} sent no frame (the worker's log says why)") from exc
