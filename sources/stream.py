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

import errors
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits
from sources.netguard import CameraAllowlist

# What a stream hands on lives in ``sources.streamframe``, which the stream kinds import; this module
# only chooses the kind, so none of them imports it back.
from sources.streamframe import FrameStream, StreamFrame, encode_jpeg

__all__ = ["FrameStream", "StreamFrame", "encode_jpeg", "open_stream"]


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
