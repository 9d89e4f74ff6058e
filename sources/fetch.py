"""What one frame fetch takes (limits) and gives (the frame, and a trace of how it went).

Shared by every protocol (``sources.http_camera``, ``sources.rtsp_camera``) and by their one entry
point, ``sources.camera.fetch_frame``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from settings import Settings
from sources.endpoint import TlsTrust

# The answer a camera's challenge got: nothing asked (``none``), Basic, or Digest with its hash.
AuthScheme = Literal["none", "basic", "digest-md5", "digest-sha256"]


@dataclass(frozen=True)
class FetchLimits:
    """How long and how much one frame fetch may take."""

    connect_timeout_s: float
    read_timeout_s: float  # longest wait for the next bytes
    total_s: float  # wall-clock budget of the whole fetch: retries, redirects, handshakes and download
    max_bytes: int
    retries: int  # extra attempts after a connect timeout (the one failure another attempt may not meet)
    max_redirects: int = 3
    backoff_s: float = 0.2  # first pause between attempts; doubles each time
    max_pixels: int = 40_000_000  # largest decoded frame of a video stream (width × height)

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        """Limits from ``ROLLCALL_CAMERA_*``: the budget is one connect timeout plus the download budget."""
        return cls(
            connect_timeout_s=settings.camera_connect_timeout_s,
            read_timeout_s=settings.camera_read_timeout_s,
            total_s=settings.camera_connect_timeout_s + settings.camera_read_timeout_s,
            max_bytes=settings.camera_max_bytes,
            retries=settings.camera_retries,
            max_pixels=settings.frame_max_pixels,
        )


@dataclass(frozen=True)
class FetchedFrame:
    """The bytes of one frame (still encoded) and where they finally came from."""

    data: bytes
    content_type: str
    final_url: str  # the URL after redirects, without user:password (the query is kept as given)
    elapsed_s: float


@dataclass
class FetchTrace:
    """How a fetch went, filled in as it goes, so a failed fetch still tells how far it got.

    The camera test (``sources.probe``) reports it; the benchmark counts round trips with it.
    """

    connected: bool = False  # a TCP connection (and its TLS handshake, if any) to the camera succeeded
    round_trips: int = 0  # requests sent: HTTP requests, or RTSP requests up to PLAY
    auth: AuthScheme = "none"
    tls: TlsTrust = "none"
    codec: str | None = None  # a video stream's codec (``h264``, ``hevc``); None for a snapshot
