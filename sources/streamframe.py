"""What a camera stream hands on: a frame decoded or encoded only when asked, and the stream's protocol.

Apart from ``sources.stream`` (which chooses the kind of stream for a URL) so that the kinds
(``sources.http_stream``, ``sources.rtsp_stream``) import these without importing their chooser.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from typing import Protocol

import cv2
import numpy as np

import errors
from sources.imagebytes import sniff_content_type

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


def encode_jpeg(image: np.ndarray) -> bytes:
    """``image`` (BGR) as a JPEG of ``JPEG_QUALITY``."""
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise errors.CameraProtocolError("a camera frame could not be encoded as JPEG")
    return bytes(encoded.tobytes())
