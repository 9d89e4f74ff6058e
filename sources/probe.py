"""Trying a camera once and saying what happened: the camera registry's ``POST /v1/cameras/<name>/test``.

An admin adding a camera needs more than "no frame": whether anything answered, which authentication
the camera asked for, how its certificate was trusted, how long the first frame took and what it was.
``probe_camera`` fetches one frame exactly as a job would and reports all of that, or the error's
code and message (which never carry a credential).
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image, UnidentifiedImageError

import errors
from sources.camera import fetch_frame
from sources.endpoint import CameraEndpoint, TlsTrust
from sources.fetch import AuthScheme, FetchedFrame, FetchLimits, FetchTrace
from sources.netguard import CameraAllowlist

_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")  # what a job decodes (ml.image.ACCEPTED_FORMATS)


@dataclass(frozen=True)
class CameraTestReport:
    """What one attempt to fetch a frame from a camera found (JSON-ready through ``to_dict``)."""

    ok: bool  # a frame arrived
    reachable: bool  # a connection to the camera was made (and its TLS handshake passed, if any)
    protocol: str  # http, https, rtsp or rtsps
    auth: AuthScheme  # what answered the camera's challenge: none, basic, digest-md5, digest-sha256
    tls: TlsTrust  # how its certificate was checked: system, ca, fingerprint; none for plain http/rtsp
    round_trips: int  # requests sent (HTTP requests; RTSP requests up to PLAY)
    elapsed_s: float  # the whole attempt
    first_frame_s: float | None  # from the start to the frame's last byte; None without a frame
    width: int | None
    height: int | None
    bytes: int | None  # the frame's size as fetched (an RTSP frame: as JPEG)
    content_type: str | None  # the frame's type (image/jpeg, image/png); for RTSP the JPEG made of it
    codec: str | None  # the video codec of an RTSP stream (h264, hevc); None for snapshots
    error_code: str | None
    error_message: str | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def probe_camera(
    endpoint: CameraEndpoint, allowlist: CameraAllowlist, limits: FetchLimits
) -> CameraTestReport:
    """Fetch one frame from ``endpoint`` and report how it went; never raises for a camera's failure.

    A frame counts only if its header reads as an image within ``limits.max_pixels`` (what a job
    checks before decoding). ``InvalidInput`` (a URL that cannot be fetched at all) is raised, as
    for a job.
    """
    trace = FetchTrace()
    started = time.monotonic()
    try:
        fetched = fetch_frame(endpoint, allowlist, limits, trace)
        width, height = _size(fetched.data, limits.max_pixels)
    except errors.InvalidInput:
        raise
    except errors.RollcallError as exc:
        return _report(endpoint, trace, started, error=exc)
    return _report(endpoint, trace, started, fetched=fetched, size=(width, height))


def _report(
    endpoint: CameraEndpoint,
    trace: FetchTrace,
    started: float,
    fetched: FetchedFrame | None = None,
    size: tuple[int, int] | None = None,
    error: errors.RollcallError | None = None,
) -> CameraTestReport:
    return CameraTestReport(
        ok=error is None,
        reachable=trace.connected,
        protocol=endpoint.scheme,
        auth=trace.auth,
        tls=trace.tls,
        round_trips=trace.round_trips,
        elapsed_s=round(time.monotonic() - started, 3),
        first_frame_s=round(fetched.elapsed_s, 3) if fetched else None,
        width=size[0] if size else None,
        height=size[1] if size else None,
        bytes=len(fetched.data) if fetched else None,
        content_type=fetched.content_type if fetched else None,
        codec=trace.codec,
        error_code=error.code if error else None,
        error_message=error.message if error else None,
    )


def _size(data: bytes, max_pixels: int) -> tuple[int, int]:
    """The frame's width and height from its header alone (nothing decoded)."""
    try:
        with Image.open(io.BytesIO(data), formats=_FORMATS) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise errors.NotAnImage(f"the camera's frame is not a {'/'.join(_FORMATS)} image") from exc
    if width * height > max_pixels:
        raise errors.FrameTooLarge(f"the frame is {width}×{height} pixels; the limit is {max_pixels} pixels")
    return width, height
