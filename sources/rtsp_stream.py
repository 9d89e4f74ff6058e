"""An RTSP(S) camera read continuously: one connection through the relay, every frame decoded.

The connection is ``sources.rtsp_camera.open_rtsp``'s, as for a job's one frame: checked address,
relay, the camera's challenge, redirects checked. Once a frame has decoded, the budget and the byte
limit (which bound how long and how much a camera may take to give its first frame) are lifted, and
the stream is read until it is closed or breaks. Every packet is decoded (a predicted frame needs the
one before it); converting a frame to pixels is left to whoever takes it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Iterator

import av
import av.error

import errors
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits, FetchTrace
from sources.netguard import CameraAllowlist
from sources.pinned import Deadline
from sources.rtsp_camera import NoFrame, OpenedRtsp, check_pixels, open_rtsp
from sources.streamframe import StreamFrame

log = logging.getLogger(__name__)


class RtspStream:
    """The frames of one RTSP camera over one connection (``sources.streamframe.FrameStream``)."""

    def __init__(self, endpoint: CameraEndpoint, allowlist: CameraAllowlist, limits: FetchLimits) -> None:
        self._endpoint = endpoint
        self._allowlist = allowlist
        self._limits = limits
        self._lock = threading.Lock()
        self._closed = False
        self._deadline: Deadline | None = None
        self.trace = FetchTrace()

    def close(self) -> None:
        """Shut the connection down: ``frames`` ends within a read."""
        with self._lock:
            self._closed = True
            deadline = self._deadline
        if deadline is not None:
            deadline.cut()

    def frames(self) -> Iterator[StreamFrame]:
        with Deadline(self._limits.total_s) as deadline:
            with self._lock:
                if self._closed:
                    return
                self._deadline = deadline
            try:
                with open_rtsp(self._endpoint, self._allowlist, self._limits, self.trace, deadline) as opened:
                    yield from self._decode(opened, deadline)
            except errors.RollcallError as exc:
                if self._closed:  # the reader closed it: the failure is the closing, not the camera
                    log.debug("rtsp stream closed: %s", exc.code)
                    return
                raise

    def _decode(self, opened: OpenedRtsp, deadline: Deadline) -> Iterator[StreamFrame]:
        delivered = 0
        origin = opened.target.origin
        try:
            for packet in opened.container.demux(opened.stream):
                if packet.size == 0:  # the demuxer's end-of-stream flush
                    continue
                for frame in packet.decode():
                    check_pixels(frame.width, frame.height, opened.target, self._limits)
                    if delivered == 0:
                        deadline.lift()
                        opened.relay.lift_byte_limit()
                    delivered += 1
                    yield StreamFrame(
                        frame.width, frame.height, functools.partial(frame.to_ndarray, format="bgr24")
                    )
        except av.error.FFmpegError as exc:
            if delivered == 0 or self._closed:
                raise  # open_rtsp gives the code from what the relay saw
            if opened.relay.report.silent:
                raise errors.CameraTimeout(
                    f"camera {origin} sent nothing for {self._limits.read_timeout_s:g} s"
                ) from exc
            raise errors.CameraUnreachable(
                f"camera {origin}'s stream broke off after {delivered} frames ({type(exc).__name__})"
            ) from exc
        if delivered == 0:
            raise NoFrame()
        if not self._closed:
            raise errors.CameraUnreachable(f"camera {origin} ended its stream after {delivered} frames")
