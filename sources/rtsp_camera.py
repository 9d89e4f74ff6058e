"""One frame from an RTSP(S) camera: the newest decodable frame after connecting, as a JPEG.

The connection is made here, to an address the allowlist checked (TLS for ``rtsps``, trusted as
the endpoint says), and handed to a loopback relay (``sources.rtsp_relay``) that FFmpeg, through
PyAV, reads from: FFmpeg resolves no name, follows no redirect and holds no password. PyAV was
chosen over OpenCV's FFmpeg backend (both measured, docs/cameras.md): its options are per call
(OpenCV reads them from a process-wide environment variable), it hands over packets (keyframe
flags, codec, size before decoding, arrival pace) and raises typed errors instead of returning
``False``.

Options keep latency low (TCP interleaved, no probing beyond the SDP, no input buffering), so the
first frame costs about one keyframe interval. A camera that joined mid-group-of-pictures sends
predicted frames first: they decode to nothing until the next keyframe. A server that replays a
cached group of pictures sends it in a burst: frames are decoded until packets arrive at the
stream's own pace, so the frame returned is current, not the start of the cache.
"""

from __future__ import annotations

import logging
import socket
import ssl
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import av
import av.container
import av.error

import errors
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchedFrame, FetchLimits, FetchTrace
from sources.netguard import CameraAllowlist, ResolvedTarget
from sources.pinned import Deadline, connect_pinned
from sources.rtsp_relay import RelayCredentials, RelayReport, RtspRelay
from sources.streamframe import encode_jpeg
from sources.tls import TlsPolicy
from sources.urls import without_credentials

log = logging.getLogger(__name__)

RTSP_SCHEMES = ("rtsp", "rtsps")
# FFmpeg's options: TCP interleaved (one connection, through the relay); nothing probed beyond the SDP;
# no input buffering; only the video track set up; only the relay's loopback TCP may be opened.
FFMPEG_OPTIONS = {
    "rtsp_transport": "tcp",
    "analyzeduration": "0",
    "probesize": "32768",
    "fflags": "nobuffer",
    "allowed_media_types": "video",
    "protocol_whitelist": "rtsp,tcp",
}


def fetch_rtsp(
    endpoint: CameraEndpoint, allowlist: CameraAllowlist, limits: FetchLimits, trace: FetchTrace
) -> FetchedFrame:
    """One frame from an ``rtsp``/``rtsps`` endpoint, or a ``RollcallError`` (codes: see
    ``sources.camera.fetch_frame``). Redirects are checked like the first URL and followed up to
    ``limits.max_redirects``; credentials go only to the endpoint's own origin."""
    with Deadline(limits.total_s) as deadline:
        with open_rtsp(endpoint, allowlist, limits, trace, deadline) as opened:
            frame = _newest_frame(opened, limits, deadline, trace)
        data = _jpeg(frame, opened.target, limits)
        elapsed = deadline.elapsed()
        log.info("fetched a %s frame from camera %s in %.3f s", trace.codec, opened.target.origin, elapsed)
        return FetchedFrame(data, "image/jpeg", opened.url, elapsed)


@dataclass(frozen=True)
class OpenedRtsp:
    """An RTSP stream FFmpeg has opened through the relay: its container and video track, and where."""

    container: av.container.InputContainer
    stream: av.VideoStream
    target: ResolvedTarget
    url: str  # the URL after redirects, without user:password
    relay: RtspRelay


@contextmanager
def open_rtsp(
    endpoint: CameraEndpoint,
    allowlist: CameraAllowlist,
    limits: FetchLimits,
    trace: FetchTrace,
    deadline: Deadline,
) -> Iterator[OpenedRtsp]:
    """The camera's video stream, opened through the relay (redirects followed), for the ``with`` block.

    The one way into an RTSP camera, for a job's one frame (``fetch_rtsp``) and for a live reader's
    stream (``sources.rtsp_stream``). An FFmpeg failure inside the block becomes the camera error code
    the relay's report points to; a ``RollcallError`` raised inside passes as it is.
    """
    trust = TlsPolicy.of(endpoint)
    current = endpoint.url
    home = allowlist.check_url(current, RTSP_SCHEMES)
    for hop in range(limits.max_redirects + 1):
        target = home if hop == 0 else allowlist.check_url(current, RTSP_SCHEMES)
        credentials = None
        if endpoint.has_credentials and target.same_origin(home):
            key = (target.scheme, target.host, target.port, target.addresses, endpoint.username or "")
            credentials = RelayCredentials(endpoint.username or "", endpoint.password or "", key)
        upstream = _connect(target, trust, limits, deadline, trace)
        parts = urlsplit(without_credentials(current))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        relay = RtspRelay(
            upstream,
            f"{parts.scheme}://{parts.netloc}",
            credentials,
            limits.max_bytes,
            trace,
            target.origin,
        )
        read: BaseException | None = None  # how the block's reading failed, if it did
        with relay:
            try:
                container = _open(relay.loopback_url(path), target, limits, deadline, trace)
            except av.error.FFmpegError as exc:
                failure: BaseException = exc
            else:
                with container:
                    url = without_credentials(current)
                    opened = OpenedRtsp(container, container.streams.video[0], target, url, relay)
                    try:
                        yield opened
                    except (av.error.FFmpegError, NoFrame) as exc:
                        read = exc
                if read is None:
                    return
        # The relay has closed (its report is complete): what it saw tells the code.
        if read is not None:
            raise _stream_error(read, relay.report, target, limits, deadline) from read
        if relay.report.redirect is None:
            raise _stream_error(failure, relay.report, target, limits, deadline) from failure
        if not relay.report.redirect:
            raise errors.CameraProtocolError(f"camera {target.origin} redirected without a Location")
        log.info("camera %s redirects (RTSP %d)", target.origin, relay.report.statuses[-1][1])
        current = without_credentials(urljoin(current, relay.report.redirect))
    raise errors.CameraProtocolError(
        f"camera {target.origin} redirected more than {limits.max_redirects} times"
    )


# --- the connection to the camera ---
def _connect(
    target: ResolvedTarget, trust: TlsPolicy, limits: FetchLimits, deadline: Deadline, trace: FetchTrace
) -> socket.socket:
    """A TCP connection to a checked address (retrying a connect timeout), TLS-wrapped for ``rtsps``."""
    attempt = 0
    while True:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise errors.CameraTimeout(f"camera {target.origin}: the {limits.total_s:g} s budget ran out")
        try:
            sock = connect_pinned(target.addresses, target.port, min(limits.connect_timeout_s, remaining))
            break
        except TimeoutError as exc:
            pause = limits.backoff_s * 2**attempt
            if attempt >= limits.retries or deadline.remaining() <= pause:
                raise errors.CameraTimeout(f"camera {target.origin}: connect timed out") from exc
            attempt += 1
            log.warning(
                "camera %s: connect timed out; retry %d of %d", target.origin, attempt, limits.retries
            )
            time.sleep(pause)
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise errors.CameraUnreachable(f"camera {target.origin} is unreachable: {reason}") from exc
    deadline.track(sock)
    sock.settimeout(min(limits.read_timeout_s, max(deadline.remaining(), 0.01)))
    if target.scheme == "rtsps":
        sock = _tls(sock, target, trust)
    trace.connected = True
    return sock


def _tls(sock: socket.socket, target: ResolvedTarget, trust: TlsPolicy) -> ssl.SSLSocket:
    try:
        wrapped = trust.context().wrap_socket(sock, server_hostname=target.host)
    except ssl.SSLCertVerificationError as exc:
        sock.close()
        raise errors.CameraTLSFailed(
            f"camera {target.origin}: its certificate is not trusted ({exc.verify_message})"
        ) from exc
    except (ssl.SSLError, OSError) as exc:
        sock.close()
        reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else type(exc).__name__
        raise errors.CameraTLSFailed(f"camera {target.origin}: the TLS handshake failed ({reason})") from exc
    try:
        trust.check_peer(wrapped.getpeercert(binary_form=True), target.origin)
    except errors.CameraTLSFailed:
        wrapped.close()
        raise
    return wrapped


# --- the frame ---
class NoFrame(Exception):
    """The stream ended, or the budget did, before any frame decoded (``open_rtsp`` turns it into a code)."""


def _open(
    url: str, target: ResolvedTarget, limits: FetchLimits, deadline: Deadline, trace: FetchTrace
) -> av.container.InputContainer:
    """FFmpeg's input on ``url`` (the relay), checked to hold a video track of an allowed size."""
    read_timeout = min(limits.read_timeout_s, max(deadline.remaining(), 0.01))
    container = av.open(url, options=FFMPEG_OPTIONS, timeout=(max(deadline.remaining(), 0.01), read_timeout))
    if not container.streams.video:
        container.close()
        raise errors.CameraProtocolError(f"camera {target.origin}'s stream has no video track")
    context = container.streams.video[0].codec_context
    trace.codec = context.name
    try:
        check_pixels(context.width, context.height, target, limits)
    except errors.FrameTooLarge:
        container.close()
        raise
    return container


def _newest_frame(
    opened: OpenedRtsp, limits: FetchLimits, deadline: Deadline, trace: FetchTrace
) -> av.VideoFrame:
    """Decode until a frame arrives at the stream's own pace."""
    stream = opened.stream
    latest: av.VideoFrame | None = None
    previous: tuple[float, int] | None = None  # (arrival, pts) of the last packet
    for packet in opened.container.demux(stream):
        if deadline.expired:
            break
        arrival = time.monotonic()
        if packet.size == 0:  # the demuxer's end-of-stream flush
            continue
        for frame in packet.decode():
            check_pixels(frame.width, frame.height, opened.target, limits)
            latest = frame
        live = _at_stream_pace(previous, arrival, packet, stream.time_base)
        previous = (arrival, packet.pts) if packet.pts is not None else None
        if latest is not None and live:
            return latest
    raise NoFrame()


def _at_stream_pace(
    previous: tuple[float, int] | None, arrival: float, packet: av.Packet, time_base: object
) -> bool:
    """Whether ``packet`` came no sooner than half its timestamp step after the last one.

    Packets of a live stream arrive at their own pace; a replayed cache arrives all at once. The first
    packet has nothing to compare with: the next one tells (one frame interval).
    """
    if previous is None or packet.pts is None or time_base is None:
        return False
    step = float((packet.pts - previous[1]) * time_base)  # type: ignore[operator]
    return arrival - previous[0] >= 0.5 * step


def check_pixels(width: int, height: int, target: ResolvedTarget, limits: FetchLimits) -> None:
    """``frame_too_large`` for a stream whose frames are over ``limits.max_pixels``."""
    if width * height > limits.max_pixels:
        raise errors.FrameTooLarge(
            f"camera {target.origin} streams {width}×{height} pixels; the limit is {limits.max_pixels} pixels"
        )


def _jpeg(frame: av.VideoFrame, target: ResolvedTarget, limits: FetchLimits) -> bytes:
    data = encode_jpeg(frame.to_ndarray(format="bgr24"))
    if len(data) > limits.max_bytes:
        raise errors.FrameTooLarge(f"camera {target.origin}'s frame is over {limits.max_bytes} bytes as JPEG")
    return data


def _stream_error(
    failure: BaseException,
    report: RelayReport,
    target: ResolvedTarget,
    limits: FetchLimits,
    deadline: Deadline,
) -> errors.RollcallError:
    """The code for a stream that gave no frame, from what the relay saw (FFmpeg's own text is not used:
    it names the loopback URL and says little)."""
    origin = target.origin
    if report.failure is not None:
        return report.failure
    if deadline.expired:
        return errors.CameraTimeout(
            f"camera {origin}: the {limits.total_s:g} s budget ran out before a frame"
        )
    refused = [(method, status) for method, status in report.statuses if status >= 300]
    if refused:
        method, status = refused[-1]
        return errors.CameraProtocolError(f"camera {origin} answered {method} with RTSP {status}")
    if report.silent or isinstance(failure, av.error.TimeoutError | av.error.ExitError):
        if report.waiting_for is not None:
            return errors.CameraTimeout(
                f"camera {origin} did not answer RTSP {report.waiting_for} within {limits.read_timeout_s:g} s"
            )
        return errors.CameraTimeout(f"camera {origin} sent no frame for {limits.read_timeout_s:g} s")
    if report.closed_by_camera and not report.statuses:
        return errors.CameraUnreachable(f"camera {origin} closed the connection without answering")
    if isinstance(failure, NoFrame):
        return errors.CameraProtocolError(f"camera {origin}'s stream ended before a decodable frame")
    return errors.CameraProtocolError(
        f"camera {origin}'s stream could not be read ({type(failure).__name__})"
    )
