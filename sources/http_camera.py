"""Fetching one frame from an HTTP(S) camera: inside the allowlist, a byte limit and a wall-clock budget.

Every hop (the URL and each redirect, followed by hand) is checked by ``sources.netguard`` and the
TCP connection goes only to the addresses that check approved (``sources.pinned``), while Host, SNI
and the certificate check keep the URL's host name: a DNS answer that changes between check and
connect (DNS rebinding) cannot steer the worker elsewhere. A watchdog shuts the socket down when the
budget is spent, so a camera that trickles bytes (or headers) cannot hold a worker past it.

Credentials are sent only to answer the camera's own ``401`` challenge (Digest, or Basic when the
camera asks for Basic; ``sources.challenge``), only to the endpoint's own origin, and through the
same checked, pinned, time-limited connection as every other request; the challenge is remembered
per process (``sources.authcache``) so later fetches answer with their first request.
"""

from __future__ import annotations

import http.client
import logging
import ssl
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
from sources.authcache import CHALLENGES, CacheKey
from sources.challenge import choose, parse_challenges, refusal
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchedFrame, FetchLimits, FetchTrace
from sources.netguard import CameraAllowlist, ResolvedTarget
from sources.pinned import Deadline, PinnedAdapter
from sources.tls import TlsPolicy
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


def fetch_http(
    endpoint: CameraEndpoint, allowlist: CameraAllowlist, limits: FetchLimits, trace: FetchTrace
) -> FetchedFrame:
    """Download one frame from an ``http``/``https`` endpoint or raise a ``RollcallError`` (see
    ``sources.camera.fetch_frame`` for the codes)."""
    with Deadline(limits.total_s) as deadline:
        with open_http(endpoint, allowlist, limits, trace, deadline) as answer:
            data, content_type = _read_frame(answer, limits, deadline)
        elapsed = deadline.elapsed()
        log.info("fetched %d bytes from camera %s in %.3f s", len(data), answer.target.origin, elapsed)
        return FetchedFrame(data, content_type, answer.url, elapsed)


@dataclass(frozen=True)
class CameraAnswer:
    """A camera's answer to the GET of a frame, its status checked: a snapshot or an MJPEG stream."""

    response: requests.Response
    target: ResolvedTarget
    url: str  # the URL after redirects, without user:password
    media: str  # the Content-Type's media type, lower case
    boundary: bytes | None  # an MJPEG stream's part boundary; None for a snapshot


@contextmanager
def open_http(
    endpoint: CameraEndpoint,
    allowlist: CameraAllowlist,
    limits: FetchLimits,
    trace: FetchTrace,
    deadline: Deadline,
) -> Iterator[CameraAnswer]:
    """The camera's answer (redirects followed, its challenge answered), open for the ``with`` block.

    The one way into an HTTP camera, for a job's one frame (``fetch_http``) and for a live reader's
    stream (``sources.http_stream``).
    """
    trust = TlsPolicy.of(endpoint)
    current = endpoint.url
    home = allowlist.check_url(current)
    for _hop in range(limits.max_redirects + 1):
        target = home if current == endpoint.url else allowlist.check_url(current)
        # Credentials belong to the camera's own origin: a redirect elsewhere gets none.
        credentials = endpoint if target.same_origin(home) else None
        with _authorised_exchange(target, current, credentials, trust, limits, deadline, trace) as response:
            location = _redirect_location(response, target)
            if location is None:
                media, boundary = _frame_media(response, target, limits)
                yield CameraAnswer(response, target, without_credentials(current), media, boundary)
                return
        log.info("camera %s redirects (HTTP %d)", target.origin, response.status_code)
        current = without_credentials(urljoin(current, location))
    raise errors.CameraProtocolError(
        f"camera {target.origin} redirected more than {limits.max_redirects} times"
    )


@contextmanager
def _authorised_exchange(
    target: ResolvedTarget,
    url: str,
    credentials: CameraEndpoint | None,
    trust: TlsPolicy,
    limits: FetchLimits,
    deadline: Deadline,
    trace: FetchTrace,
) -> Iterator[requests.Response]:
    """GET ``url`` and yield the response, answering one ``401`` challenge with ``credentials``.

    A challenge remembered from an earlier fetch is answered with the first request; if the camera
    challenges again (a stale nonce), the fresh challenge is answered once more, never a third time.
    """
    try:
        request = requests.Request("GET", url, headers=_REQUEST_HEADERS).prepare()
    except requests.exceptions.RequestException as exc:
        raise errors.InvalidInput(f"camera URL for {target.origin} is invalid: {type(exc).__name__}") from exc
    user, password = (credentials.username or "", credentials.password or "") if credentials else ("", "")
    key: CacheKey = (target.scheme, target.host, target.port, target.addresses, user)
    uri = request.path_url
    cached = CHALLENGES.authorization(key, "GET", uri, user, password) if credentials else None
    if cached is not None:
        request.headers["Authorization"], challenge = cached
        trace.auth = challenge.label  # type: ignore[assignment]
    for attempt in (1, 2):
        with _exchange(target, request, trust, limits, deadline, trace) as response:
            if response.status_code != 401:
                yield response
                return
            challenges = parse_challenges(response.raw.headers.getlist("WWW-Authenticate"))
        have = "elsewhere" if credentials is None else "set" if credentials.has_credentials else "none"
        failure = refusal(target.origin, challenges, credentials=have, answered_before=attempt == 2)
        if failure is not None:
            CHALLENGES.forget(key)
            raise failure
        chosen = choose(challenges)
        assert chosen is not None  # refusal() found one to answer
        request.headers["Authorization"] = CHALLENGES.answer(key, chosen, "GET", uri, user, password)
        trace.auth = chosen.label  # type: ignore[assignment]  # a label is an AuthScheme
        log.info("camera %s asked for %s; answering", target.origin, chosen.label)


@contextmanager
def _exchange(
    target: ResolvedTarget,
    request: requests.PreparedRequest,
    trust: TlsPolicy,
    limits: FetchLimits,
    deadline: Deadline,
    trace: FetchTrace,
) -> Iterator[requests.Response]:
    """Send ``request`` to ``target`` (retrying a connect timeout) and yield the open response."""
    attempt = 0
    while True:
        adapter = PinnedAdapter(target, deadline, trust=trust)
        trace.round_trips += 1
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
        trace.connected = True
        try:
            yield response
        finally:
            response.close()
            adapter.close()
        return


class _TransientError(Exception):
    """A connect timeout: the one failure before any response that another attempt may not meet.

    A refused or reset connection is not retried: a closed port stays closed for the next 0.6 s, and
    answering it at once keeps every failure that is not a silence in the same time band.
    """

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
        return adapter.send(request, stream=True, timeout=timeout)
    except requests.exceptions.RequestException as exc:
        raise _send_error(exc, target, limits, deadline) from exc


def _send_error(
    exc: requests.exceptions.RequestException,
    target: ResolvedTarget,
    limits: FetchLimits,
    deadline: Deadline,
) -> Exception:
    """Map a failure before the response headers to our errors; a connect timeout is wrapped for retry."""
    origin = target.origin
    if deadline.expired:
        return errors.CameraTimeout(
            f"camera {origin}: the {limits.total_s:g} s budget ran out before it answered"
        )
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return _TransientError(errors.CameraTimeout(f"camera {origin}: connect timed out"))
    if isinstance(exc, requests.exceptions.ReadTimeout):
        return errors.CameraTimeout(f"camera {origin} accepted the connection but did not answer in time")
    root = _root_cause(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        if isinstance(root, ssl.SSLCertVerificationError):
            return errors.CameraTLSFailed(
                f"camera {origin}: its certificate is not trusted ({root.verify_message})"
            )
        reason = root.reason if isinstance(root, ssl.SSLError) and root.reason else type(root).__name__
        return errors.CameraTLSFailed(f"camera {origin}: the TLS handshake failed ({reason})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        if isinstance(root, http.client.HTTPException) and not isinstance(root, ConnectionError):
            return errors.CameraProtocolError(f"camera {origin} did not answer HTTP ({type(root).__name__})")
        reason = root.strerror if isinstance(root, OSError) and root.strerror else type(root).__name__
        return errors.CameraUnreachable(f"camera {origin} is unreachable: {reason}")
    return errors.CameraProtocolError(f"camera {origin}: {type(exc).__name__}")


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
        raise errors.CameraProtocolError(
            f"camera {target.origin} answered HTTP {response.status_code} without Location"
        )
    return location


def _frame_media(
    response: requests.Response, target: ResolvedTarget, limits: FetchLimits
) -> tuple[str, bytes | None]:
    """Check status, encoding, type and announced size; the media type, and an MJPEG stream's boundary."""
    origin, status = target.origin, response.status_code
    if status in (401, 403):
        raise errors.CameraAuthFailed(f"camera {origin} answered HTTP {status}: it refuses this user")
    if status != 200:
        raise errors.CameraProtocolError(f"camera {origin} answered HTTP {status}, not a frame")
    encoding = response.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise errors.CameraProtocolError(
            f"camera {origin} sent a {encoding}-encoded body; frames must be sent as is"
        )
    header = Message()
    header["Content-Type"] = response.headers.get("Content-Type", "application/octet-stream")
    media = header.get_content_type()
    if media == _MJPEG:
        boundary = header.get_param("boundary")
        if not isinstance(boundary, str) or not boundary:
            raise errors.CameraProtocolError(f"camera {origin} sent an MJPEG stream without a boundary")
        return media, boundary.encode("latin-1")
    if not (media.startswith("image/") or media == "application/octet-stream"):
        raise errors.CameraProtocolError(f"camera {origin} answered {media}, not an image")
    declared = response.headers.get("Content-Length")
    if declared is not None and declared.strip().isdigit() and int(declared) > limits.max_bytes:
        raise errors.FrameTooLarge(
            f"camera {origin} announced {int(declared)} bytes; the limit is {limits.max_bytes}"
        )
    return media, None


def _read_frame(answer: CameraAnswer, limits: FetchLimits, deadline: Deadline) -> tuple[bytes, str]:
    """The frame: the whole body of a snapshot, or an MJPEG stream's first part."""
    chunks = body_chunks(answer, limits, deadline)
    if answer.boundary is not None:
        return next(mjpeg_parts(chunks, answer.boundary, answer.target, limits))
    return read_snapshot(chunks, answer, limits)


def read_snapshot(chunks: Iterator[bytes], answer: CameraAnswer, limits: FetchLimits) -> tuple[bytes, str]:
    """A snapshot's whole body, within the byte limit."""
    origin = answer.target.origin
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limits.max_bytes:
            raise errors.FrameTooLarge(f"camera {origin} sent more than {limits.max_bytes} bytes")
    if not body:
        raise errors.CameraProtocolError(f"camera {origin} answered with an empty body")
    return bytes(body), answer.media


def body_chunks(answer: CameraAnswer, limits: FetchLimits, deadline: Deadline) -> Iterator[bytes]:
    """The body as it arrives (``read1``: whatever is there, not a full chunk), within the budget."""
    response, origin = answer.response, answer.target.origin
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


def mjpeg_parts(
    chunks: Iterator[bytes], boundary: bytes, target: ResolvedTarget, limits: FetchLimits
) -> Iterator[tuple[bytes, str]]:
    """The parts of a ``multipart/x-mixed-replace`` (MJPEG) stream as each completes: ``(body, type)``.

    A stream never ends by itself: a job takes the first part, a live reader every part it wants.
    """
    stream = _MjpegParts(boundary, target.origin)
    parts = 0
    for chunk in chunks:
        for data, content_type in stream.feed(chunk):
            if len(data) > limits.max_bytes:
                raise errors.FrameTooLarge(
                    f"camera {target.origin} sent an MJPEG frame over {limits.max_bytes} bytes"
                )
            if not data or not content_type.startswith("image/"):
                raise errors.CameraProtocolError(
                    f"camera {target.origin} sent an MJPEG part that is not an image"
                )
            parts += 1
            yield data, content_type
        if stream.size > limits.max_bytes:
            raise errors.FrameTooLarge(
                f"camera {target.origin} sent an MJPEG frame over {limits.max_bytes} bytes"
            )
    which = "first" if parts == 0 else "next"
    raise errors.CameraProtocolError(f"camera {target.origin}: MJPEG stream ended before its {which} frame")


class _MjpegParts:
    """Splits an MJPEG stream into its parts (each ended by its Content-Length, its JPEG end, or the next
    boundary), keeping only the bytes of the part not yet complete."""

    def __init__(self, boundary: bytes, origin: str) -> None:
        self._origin = origin
        # Some cameras put the leading "--" into the boundary parameter itself; accept both spellings.
        self._delimiters = [b"--" + boundary] + ([boundary] if boundary.startswith(b"--") else [])
        self._buffer = bytearray()
        self._scanned = 0  # the closing boundary is known not to start before this offset

    @property
    def size(self) -> int:
        return len(self._buffer)

    def feed(self, chunk: bytes) -> list[tuple[bytes, str]]:
        """Add ``chunk``; return every part it completed, as ``(body, content type)``."""
        self._buffer += chunk
        parts = []
        while (part := self._next_part()) is not None:
            parts.append(part)
        return parts

    def _next_part(self) -> tuple[bytes, str] | None:
        """The first complete part in the buffer (removed from it), or None."""
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
            return self._take(body_start, body_start + int(length), content_type)
        if content_type == "image/jpeg":
            # No length: a JPEG ends itself (EOI), so the part is complete without waiting for the next
            # boundary, which a camera sends only with its next frame (a whole frame interval later).
            jpeg_end = _jpeg_end(buffer, body_start)
            if jpeg_end is not None:
                return self._take(body_start, jpeg_end, content_type)
        closing = b"\n" + delimiter
        end = buffer.find(closing, max(body_start, self._scanned))
        if end < 0:
            self._scanned = max(body_start, len(buffer) - len(closing))
            return None
        if end > body_start and buffer[end - 1] == ord("\r"):
            end -= 1
        return self._take(body_start, end, content_type)

    def _take(self, start: int, end: int, content_type: str) -> tuple[bytes, str]:
        """The part's body at ``start:end``; everything up to its end leaves the buffer."""
        body = bytes(self._buffer[start:end])
        del self._buffer[:end]
        self._scanned = 0
        return body, content_type

    def _check_preamble(self, size: int) -> None:
        """Refuse a stream whose first boundary or part headers do not come within the first 16 KiB."""
        if size > _MAX_PART_PREAMBLE:
            raise errors.CameraProtocolError(
                f"camera {self._origin} sent no MJPEG part headers in the first {_MAX_PART_PREAMBLE} bytes"
            )


_STANDALONE_MARKERS = frozenset({0x01, *range(0xD0, 0xD8)})  # TEM and RST0-7 carry no length


def _jpeg_end(buffer: bytearray, start: int) -> int | None:
    """The offset just past the JPEG's end-of-image marker, if the JPEG starting at ``start`` is complete.

    Walks the segments by their lengths (so an EXIF thumbnail's own EOI inside APP1 is skipped) and
    scans entropy-coded data after each start-of-scan, where 0xFF is always followed by 0x00 or a
    restart marker unless a real marker begins. None: not complete yet (or not a JPEG).
    """
    if buffer[start : start + 2] != b"\xff\xd8":
        return None
    position = start + 2
    while position + 2 <= len(buffer):
        if buffer[position] != 0xFF:
            return None
        marker = buffer[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker == 0xD9:
            return position + 2
        if marker in _STANDALONE_MARKERS:
            position += 2
            continue
        if position + 4 > len(buffer):
            return None
        position += 2 + int.from_bytes(buffer[position + 2 : position + 4], "big")
        if marker != 0xDA:
            continue
        while True:  # entropy-coded data of a scan, up to the next real marker
            position = buffer.find(b"\xff", position)
            if position < 0 or position + 1 >= len(buffer):
                return None
            following = buffer[position + 1]
            if following == 0x00 or 0xD0 <= following <= 0xD7:
                position += 2
                continue
            break
    return None
