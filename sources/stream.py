"""Reading a camera continuously, for the live readers: one persistent connection, frames as they come.

A job takes one frame and hangs up (``sources.camera.fetch_frame``); a live reader (``live.feed``)
keeps the connection and takes frames for as long as it holds the camera. Both go through the same
doors (``sources.rtsp_camera.open_rtsp``, ``sources.http_camera.open_http``): allowlist, pinned
addresses, the camera's challenge, TLS trust, byte and pixel limits. The time budget covers the
connection and the first frame; from then on each read's own timeout notices a camera that fell
silent. RTSP and MJPEG streams are read on one connection; a snapshot camera is polled, one
connection per frame, at the reader's rate.

Frames are converted only when asked: a reader hands on a few of the frames a camera sends (its rate),
and shares them as JPEG (a snapshot's or MJPEG part's own bytes, untouched).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import cv2
import numpy as np

import errors
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits
from sources.imagebytes import sniff_content_type
from sources.netguard import CameraAllowlist

JPEG_QUALITY = (
    95  # a frame goes on as a JPEG (jobs, the page, the shared frame): nearly lossless, ~10x smaller
)


class StreamFrame:
    """One frame of a stream, decoded or encoded only when asked (and then once)."""

    def __init__(
        self,
        width: int,
        height: int,
        image: Callable[[], np.ndarray],
        encoded: bytes | None = None,
    ) -> None:
        self.width = width
        self.height = height
        self.ts = time.time()  # when it arrived, seconds since the epoch
        self._image = functools.cache(image)
        self._encoded = encoded

    def image(self) -> np.ndarray:
        """The frame as a BGR array."""
        return self._image()

    def jpeg(self) -> bytes:
        """The frame as a JPEG: the camera's own bytes when it sent one, else encoded here."""
        if self._encoded is None or sniff_content_type(self._encoded) != "image/jpeg":
            self._encoded = encode_jpeg(self.image())
        return self._encoded


class FrameStream(Protocol):
    """A camera's frames as they come; ``close`` (from any thread) ends ``frames`` soon after."""

    def frames(self) -> Iterator[StreamFrame]:
        """Each frame as it arrives; raises a ``RollcallError`` (the camera codes) when the camera fails,
        and returns only once closed."""
        ...

    def close(self) -> None: ...


def open_stream(
    endpoint: CameraEndpoint, allowlist: CameraAllowlist, limits: FetchLimits, poll_interval_s: float
) -> FrameStream:
    """The stream of the camera at ``endpoint`` (nothing is connected before ``frames`` is iterated).

    ``poll_interval_s``: how often a snapshot camera (an HTTP URL that answers one image) is asked.
    """
    scheme = endpoint.scheme
    if scheme in ("http", "https"):
        from sources.http_stream import HttpStream

        return HttpStream(endpoint, allowlist, limits, poll_interval_s)
    if scheme in ("rtsp", "rtsps"):
        from sources.rtsp_stream import RtspStream  # PyAV: only in processes that read RTSP

        return RtspStream(endpoint, allowlist, limits)
    raise errors.CameraNotAllowed(
        f"camera URLs must be http, https, rtsp or rtsps, not {scheme or 'empty'!r}"
    )


def encode_jpeg(image: np.ndarray) -> bytes:
    """``image`` (BGR) as a JPEG of ``JPEG_QUALITY``."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise errors.CameraProtocolError("a camera frame could not be encoded as JPEG")
    return bytes(encoded.tobytes())
