"""Fetching one frame from an IP camera: inside the allowlist, a byte limit and a wall-clock budget.

Every hop (the URL and each redirect, followed by hand) is checked by ``sources.netguard`` and the
TCP connection goes only to the addresses that check approved (``sources.pinned``), while Host, SNI
and the certificate check keep the URL's host name: a DNS answer that changes between check and
connect (DNS rebinding) cannot steer the worker elsewhere. A watchdog shuts the socket down when the
budget is spent, so a camera that trickles bytes (or headers) cannot hold a worker past it.
"""

from __future__ import annotations

import http.client
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import Message
from urllib.parse import urljoin

import requests
import urllib3
from urllib3.exceptions import ReadTimeoutError

import errors
from settings import Settings
from sources.netguard import CameraAllowlist, ResolvedTarget
from sources.pinned import Deadline, PinnedAdapter
from sources.urls import without_credentials

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_REDIRECTS = (301, 302, 303, 307, 308)
_MJPEG = "multipart/x-mixed-replace"
_MAX_PART_PREAMBLE = 16 * 1024
_REQUEST_HEADERS = {
    "Accept": "image/jpeg, image/*;q=0.9, multipart/x-mixed-replace;q=0.5, application/octet-stream;q=0.5",
    # Frames are compressed already; asking for identity also rules out gzip bombs.
    "Accept-Encoding": "identity",
    "Connection": "close",
    "User-Agent": "rollcall-camera-fetch",
}


@dataclass(frozen=True)
class FetchLimits:
    """How long and how much one frame fetch may take."""

    connect_timeout_s: float
    read_timeout_s: float  # longest wait for the next bytes
    total_s: float  # wall-clock budget of the whole fetch: retries, redirects and download
    max_bytes: int
    retries: int  # extra attempts after a transient connect failure (refused, reset, connect timeout)
    max_redirects: int = 3
    backoff_s: float = 0.2  # first pause between attempts; doubles each time
    ca_bundle: str | None = None  # CA file or directory for https cameras; None = the default bundle

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchLimits:
        """Limits from ``ROLLCALL_CAMERA_*``: the budget is one connect timeout plus the download budget."""
        return cls(
            connect_timeout_s=settings.camera_connect_timeout_s,
            read_timeout_s=settings.camera_read_timeout_s,
            total_s=settings.camera_connect_timeout_s + settings.camera_read_timeout_s,
            max_bytes=settings.camera_max_bytes,
            retries=settings.camera_retries,
        )


@dataclass(frozen=True)
class FetchedFrame:
    """The bytes of one frame (still encoded) and where they finally came from."""

    data: bytes
    content_type: str
    final_url: str  # the URL after redirects, without user:password (the query is kept as given)
    elapsed_s: float


def fetch_frame(url: str, allowlist: CameraAllowlist, limits: FetchLimits) -> FetchedFrame:
    """Download one frame from ``url`` or raise a ``RollcallError`` with a stable code.

    ``CameraNotAllowed`` (URL, address or redirect outside the allowlist), ``CameraUnreachable``
    (DNS failure, refused, reset), ``CameraTimeout`` (connect or read timeout, budget spent),
    ``CameraBadResponse`` (HTTP status, not an image type, empty body, too many redirects),
    ``FrameTooLarge`` (more than ``limits.max_bytes``).
    """
    with Deadline(limits.total_s) as deadline:
        current = url
        for _hop in range(limits.max_redirects + 1):
            target = allowlist.check_url(current)
            with _exchange(target, current, limits, deadline) as response:
                location = _redirect_location(response, target)
                if location is None:
                    data, content_type = _read_frame(response, target, limits, deadline)
                    elapsed = deadline.elapsed()
                    log.info("fetched %d bytes from camera %s in %.3f s", len(data), target.origin, elapsed)
                    return FetchedFrame(data, content_type, without_credentials(current), elapsed)
            log.info("camera %s redirects (HTTP %d)", target.origin, response.status_code)
            current = urljoin(current, location)
        raise errors.CameraBadResponse(
            f"camera {target.origin} redirected more than {limits.max_redirects} times"
        )


@contextmanager
def _exchange(
    target: ResolvedTarget, url: str, limits: FetchLimits, deadline: Deadline
) -> Iterator[requests.Response]:
    """Send GET to ``target`` (with retries on transient connect failures) and yield the open response."""
    try:
        request = requests.Request("GET", url, headers=_REQUEST_HEADERS).prepare()
    except requests.exceptions.RequestException as exc:
        raise errors.InvalidInput(f"camera URL for {target.origin} is invalid: {type(exc).__name__}") from exc
    attempt = 0
    while True:
        adapter = PinnedAdapter(target, deadline)
        try:
            response = _send(adapter, request, target, limits, deadline)
        except _TransientError as transient:
            adapter.close()
            pause = limits.backoff_s * 2**attempt
            if attempt >= limits.retries or deadline.remaining() <= pause:
                raise transient.error from transient
            attempt += 1
            log.warning(
                "camera %s: %s; retry %d of %d in %.2f s",
                target.origin,
                transient.error.code,
                attempt,
                limits.retries,
                pause,
            )
            time.sleep(pause)
            continue
        except BaseException:
            adapter.close()
            raise
        try:
            yield response
        finally:
            response.close()
            adapter.close()
        return


class _TransientError(Exception):
    """A failure before any response that another attempt may not meet (refused, reset, connect timeout)."""

    def __init__(self, error: errors.RollcallError) -> None:
        super().__init__(error.message)
        self.error = error


def _send(
    adapter: PinnedAdapter,
    request: requests.PreparedRequest,
    target: ResolvedTarget,
    limits: FetchLimits,
    deadline: Deadline,
) -> requests.Response:
    remaining = deadline.remaining()
    if remaining <= 0:
        raise errors.CameraTimeout(f"camera {target.origin}: the {limits.total_s:g} s budget ran out")
    timeout = (min(limits.connect_timeout_s, remaining), min(limits.read_timeout_s, remaining))
    try:
        return adapter.send(request, stream=True, timeout=timeout, verify=limits.ca_bundle or True)
    except requests.exceptions.RequestException as exc:
        raise _send_error(exc, target, limits, deadline) from exc


def _send_error(
    exc: requests.exceptions.RequestException,
    target: ResolvedTarget,
    limits: FetchLimits,
    deadline: Deadline,
) -> Exception:
    """Map a failure before the response headers to our errors; transient ones are wrapped for retry."""
    origin = target.origin
    if deadline.expired:
        return errors.CameraTimeout(
            f"camera {origin}: the {limits.total_s:g} s budget ran out before it answered"
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return _TransientError(errors.CameraTimeout(f"camera {origin}: connect timed out"))
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return errors.CameraTimeout(f"camera {origin} accepted the connection but did not answer in time")
    if isinstance(exc, requests.exceptions.SSLError):
        return errors.CameraBadResponse(f"camera {origin}: TLS handshake or certificate check failed")
    if isinstance(exc, requests.exceptions.ConnectionError):
        root = _root_cause(exc)
        if isinstance(root, http.client.HTTPException) and not isinstance(root, ConnectionError):
            return errors.CameraBadResponse(f"camera {origin} did not answer HTTP ({type(root).__name__})")
        reason = root.strerror if isinstance(root, OSError) and root.strerror else type(root).__name__
        return _TransientError(errors.CameraUnreachable(f"camera {origin} is unreachable: {reason}"))
    return errors.CameraBadResponse(f"camera {origin}: {type(exc).__name__}")


def _root_cause(exc: BaseException) -> BaseException:
    """The innermost cause (``ConnectionRefusedError``, ``BadStatusLine``) under requests' wrappers."""
    seen = {id(exc)}
    while True:
        wrapped = [arg for arg in exc.args if isinstance(arg, BaseException)]
        inner = exc.__cause__ or exc.__context__ or (wrapped[-1] if wrapped else None)
        if inner is None or id(inner) in seen:
            return exc
        seen.add(id(inner))
        exc = inner


# --- reading the answer ---
def _redirect_location(response: requests.Response, target: ResolvedTarget) -> str | None:
    if response.status_code not in _REDIRECTS:
        return None
    location = response.headers.get("Location")
    if not location:
        raise errors.CameraBadResponse(
            f"camera {target.origin} answered HTTP {response.status_code} without Location"
        )
    return location


def _read_frame(
    response: requests.Response, target: ResolvedTarget, limits: FetchLimits, deadline: Deadline
) -> tuple[bytes, str]:
    """Check status, type and size, then read the frame: the whole body, or an MJPEG stream's first part."""
    origin, status = target.origin, response.status_code
    if status != 200:
        raise errors.CameraBadResponse(f"camera {origin} answered HTTP {status}, not a frame")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise errors.CameraBadResponse(
            f"camera {origin} sent a {encoding}-encoded body; frames must be sent as is"
        )
    header = Message()
    header["Content-Type"] = response.headers.get("Content-Type", "application/octet-stream")
    media = header.get_content_type()
    chunks = _chunks(response, target, limits, deadline)
    if media == _MJPEG:
        boundary = header.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise errors.CameraBadResponse(f"camera {origin} sent an MJPEG stream without a boundary")
        return _first_part(chunks, boundary.encode("latin-1"), target, limits)
    if not (media.startswith("image/") or media == "application/octet-stream"):
        raise errors.CameraBadResponse(f"camera {origin} answered {media}, not an image")
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limits.max_bytes:
        raise errors.FrameTooLarge(
            f"camera {origin} announced {int(declared)} bytes; the limit is {limits.max_bytes}"
        )
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limits.max_bytes:
            raise errors.FrameTooLarge(f"camera {origin} sent more than {limits.max_bytes} bytes")
    if not body:
        raise errors.CameraBadResponse(f"camera {origin} answered with an empty body")
    return bytes(body), media


def _chunks(
    response: requests.Response, target: ResolvedTarget, limits: FetchLimits, deadline: Deadline
) -> Iterator[bytes]:
    """The body as it arrives (``read1``: whatever is there, not a full chunk), within the budget."""
    origin = target.origin
    received = 0
    while True:
        if deadline.expired:
            raise errors.CameraTimeout(
                f"camera {origin}: the {limits.total_s:g} s budget ran out after {received} bytes"
            )
        try:
            chunk = response.raw.read1(_CHUNK, decode_content=False)
        except urllib3.exceptions.HTTPError as exc:
            if deadline.expired:
                raise errors.CameraTimeout(
                    f"camera {origin}: the {limits.total_s:g} s budget ran out"
                ) from exc
            if isinstance(exc, ReadTimeoutError):
                raise errors.CameraTimeout(f"camera {origin} stopped sending after {received} bytes") from exc
            raise errors.CameraUnreachable(
                f"connection to camera {origin} broke after {received} bytes"
            ) from exc
        if not chunk:
            if deadline.expired:  # a shutdown socket reads as a clean end of a length-less body
                raise errors.CameraTimeout(f"camera {origin}: the {limits.total_s:g} s budget ran out")
            return
        received += len(chunk)
        yield chunk


def _first_part(
    chunks: Iterator[bytes], boundary: bytes, target: ResolvedTarget, limits: FetchLimits
) -> tuple[bytes, str]:
    """The first part of a ``multipart/x-mixed-replace`` (MJPEG) stream, which never ends by itself."""
    stream = _FirstPart(boundary, target.origin)
    for chunk in chunks:
        part = stream.feed(chunk)
        if part is not None:
            data, content_type = part
            if len(data) > limits.max_bytes:
                break
            if not data or not content_type.startswith("image/"):
                raise errors.CameraBadResponse(
                    f"camera {target.origin} sent an MJPEG part that is not an image"
                )
            return data, content_type
        if stream.size > limits.max_bytes:
            break
    else:
        raise errors.CameraBadResponse(f"camera {target.origin}: MJPEG stream ended before its first frame")
    raise errors.FrameTooLarge(f"camera {target.origin} sent an MJPEG frame over {limits.max_bytes} bytes")


class _FirstPart:
    """Collects an MJPEG stream until its first part is complete (by Content-Length, else next boundary)."""

    def __init__(self, boundary: bytes, origin: str) -> None:
        self._origin = origin
        # Some cameras put the leading "--" into the boundary parameter itself; accept both spellings.
        self._delimiters = [b"--" + boundary] + ([boundary] if boundary.startswith(b"--") else [])
        self._buffer = bytearray()
        self._scanned = 0  # the closing boundary is known not to start before this offset

    @property
    def size(self) -> int:
        return len(self._buffer)

    def feed(self, chunk: bytes) -> tuple[bytes, str] | None:
        """Add ``chunk``; return ``(body, content type)`` once the first part is complete."""
        self._buffer += chunk
        buffer = self._buffer
        found = sorted((buffer.find(d), d) for d in self._delimiters if buffer.find(d) >= 0)
        if not found:
            self._check_preamble(len(buffer))
            return None
        start, delimiter = found[0]
        ends = [(buffer.find(sep, start), len(sep)) for sep in (b"\r\n\r\n", b"\n\n")]
        ends = [(position, length) for position, length in ends if position >= 0]
        if not ends:
            self._check_preamble(len(buffer) - start)
            return None
        header_end, separator = min(ends)
        headers = Message()
        for line in bytes(buffer[start + len(delimiter) : header_end]).decode("latin-1").splitlines():
            name, colon, value = line.partition(":")
            if colon:
                headers[name.strip()] = value.strip()
        content_type = headers.get_content_type() if headers["Content-Type"] else "image/jpeg"
        body_start = header_end + separator
        length = (headers["Content-Length"] or "").strip()
        if length.isdigit():
            if len(buffer) < body_start + int(length):
                return None
            return bytes(buffer[body_start : body_start + int(length)]), content_type
        closing = b"\n" + delimiter
        end = buffer.find(closing, max(body_start, self._scanned))
        if end < 0:
            self._scanned = max(body_start, len(buffer) - len(closing))
            return None
        if end > body_start and buffer[end - 1] == ord("\r"):
            end -= 1
        return bytes(buffer[body_start:end]), content_type

    def _check_preamble(self, size: int) -> None:
        """Refuse a stream whose first boundary or part headers do not come within the first 16 KiB."""
        if size > _MAX_PART_PREAMBLE:
            raise errors.CameraBadResponse(
                f"camera {self._origin} sent no MJPEG part headers in the first {_MAX_PART_PREAMBLE} bytes"
            )
