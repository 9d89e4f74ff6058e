"""An HTTP(S) camera read continuously: an MJPEG stream on one connection, or a snapshot polled.

The connection is ``sources.http_camera.open_http``'s, as for a job's one frame. A camera that
answers ``multipart/x-mixed-replace`` is read part after part on that connection (the budget lifted
after the first part); one that answers a single image is asked again every ``poll_interval_s``,
a new connection each time (snapshot cameras close theirs after each answer).
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Generator, Iterator

import numpy as np

import errors
from ml.image import decode_image, image_size
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits, FetchTrace
from sources.http_camera import body_chunks, mjpeg_parts, open_http, read_snapshot
from sources.netguard import CameraAllowlist
from sources.pinned import Deadline
from sources.streamframe import StreamFrame

log = logging.getLogger(__name__)


class HttpStream:
    """The frames of one HTTP camera (``sources.streamframe.FrameStream``)."""

    def __init__(
        self,
        endpoint: CameraEndpoint,
        allowlist: CameraAllowlist,
        limits: FetchLimits,
        poll_interval_s: float,
    ) -> None:
        self._endpoint = endpoint
        self._allowlist = allowlist
        self._limits = limits
        self._poll_interval_s = poll_interval_s
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._deadline: Deadline | None = None

    def close(self) -> None:
        """Shut the connection down (or end the wait for the next poll): ``frames`` ends soon after."""
        with self._lock:
            self._closed.set()
            deadline = self._deadline
        if deadline is not None:
            deadline.cut()

    def frames(self) -> Iterator[StreamFrame]:
        while not self._closed.is_set():
            asked = time.monotonic()
            try:
                snapshot = yield from self._exchange()
            except errors.RollcallError as exc:
                if self._closed.is_set():  # the reader closed it: the failure is the closing
                    log.debug("http stream closed: %s", exc.code)
                    return
                raise
            if snapshot is None:  # an MJPEG stream ended by close()
                return
            yield snapshot
            self._closed.wait(max(0.0, asked + self._poll_interval_s - time.monotonic()))

    def _exchange(self) -> Generator[StreamFrame, None, StreamFrame | None]:
        """One GET: an MJPEG stream's frames are yielded here; a snapshot is returned (after the connection
        closed), to be yielded by the caller."""
        with Deadline(self._limits.total_s) as deadline:
            with self._lock:
                if self._closed.is_set():
                    return None
                self._deadline = deadline
            trace = FetchTrace()
            with open_http(self._endpoint, self._allowlist, self._limits, trace, deadline) as answer:
                chunks = body_chunks(answer, self._limits, deadline)
                if answer.boundary is not None:
                    for data, _ in mjpeg_parts(chunks, answer.boundary, answer.target, self._limits):
                        deadline.lift()
                        yield _frame(data, answer.target.origin, self._limits)
                data, _ = read_snapshot(chunks, answer, self._limits)
                origin = answer.target.origin
        return _frame(data, origin, self._limits)


def _frame(data: bytes, origin: str, limits: FetchLimits) -> StreamFrame:
    """A frame of the camera's own encoded bytes, its size read from the header (checked, not decoded)."""
    try:
        width, height = image_size(data, limits.max_pixels)
    except errors.NotAnImage as exc:
        raise errors.CameraProtocolError(f"camera {origin} sent a frame that is not an image") from exc
    if width * height > limits.max_pixels:
        raise errors.FrameTooLarge(
            f"camera {origin} sent {width}×{height} pixels; the limit is {limits.max_pixels} pixels"
        )
    return StreamFrame(width, height, functools.partial(_decode, data, origin, limits), encoded=data)


def _decode(data: bytes, origin: str, limits: FetchLimits) -> np.ndarray:
    try:
        return decode_image(data, limits.max_pixels)
    except errors.NotAnImage as exc:
        raise errors.CameraProtocolError(f"camera {origin} sent a frame that does not decode") from exc
