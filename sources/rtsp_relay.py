"""A one-connection RTSP relay on loopback: FFmpeg talks to it, it talks to the one checked camera address.

FFmpeg (through PyAV) would resolve the camera's name itself, follow an RTSP redirect to any host
and answer the camera's challenge with whatever is in the URL. So it is given none of that: it
connects to ``rtsp://127.0.0.1:<relay>/<path>``, and the relay holds the only connection to the
camera, made by ``sources.rtsp_camera`` to an address the allowlist checked (TLS for ``rtsps``
done there too, with the camera's trust). With ``rtsp_transport=tcp`` every RTSP request and every
media packet (interleaved ``$`` frames) crosses this one connection, so FFmpeg has nothing else
to connect to. On the way the relay

- rewrites each request line's URL back to the camera's own (``rtsp://host:port/...``), so the
  camera sees the URL it was given;
- answers the camera's ``401`` challenge with the endpoint's credentials (Digest or Basic, as the
  camera asks, with ``sources.challenge`` and the per-process ``sources.authcache``), resending the
  request once; FFmpeg never holds a password, so none can reach its logs or errors;
- holds back a ``3xx`` redirect (FFmpeg never sees it) and reports its ``Location``, which the
  caller checks against the allowlist like any other URL;
- counts the bytes the camera sends against the frame byte limit.

Everything it learns goes into ``RelayReport`` for the caller to turn into an error code.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import sys
import threading
from dataclasses import dataclass, field

import errors
from sources.authcache import CHALLENGES, CacheKey
from sources.challenge import Challenge, choose, parse_challenges, refusal
from sources.fetch import FetchTrace

log = logging.getLogger(__name__)

_HEADER_END = b"\r\n\r\n"
_MAX_HEADER = 64 * 1024
_CHUNK = 64 * 1024
_REQUEST_LINE = re.compile(rb"^([A-Z_]+) (\S+) (RTSP/\d\.\d)$")
_STATUS_LINE = re.compile(rb"^RTSP/\d\.\d (\d{3})(?: .*)?$")


@dataclass
class RelayReport:
    """What crossed the relay: the last answer, a held-back redirect, a failure found on the way."""

    statuses: list[tuple[str, int]] = field(default_factory=list)  # (method, status) of each answer
    redirect: str | None = None  # the Location of a held-back 3xx
    failure: errors.RollcallError | None = None  # auth refused, too many bytes, not RTSP at all
    media_bytes: int = 0  # interleaved bytes from the camera
    closed_by_camera: bool = False  # the camera ended the connection
    silent: bool = False  # the camera sent nothing for the read timeout
    waiting_for: str | None = None  # the method of a request the camera has not answered yet


@dataclass(frozen=True)
class RelayCredentials:
    """Who to answer the camera's challenge as, and where its challenge is remembered."""

    username: str
    password: str = field(repr=False)
    cache_key: CacheKey


class RtspRelay:
    """Relays one FFmpeg connection to ``upstream`` (already connected to the checked camera address).

    Use as a context manager; ``loopback_url(path)`` is what FFmpeg opens. Closing it closes both
    sockets and waits for its threads.
    """

    def __init__(
        self,
        upstream: socket.socket,
        camera_prefix: str,
        credentials: RelayCredentials | None,
        max_bytes: int,
        trace: FetchTrace,
        origin: str,
    ) -> None:
        self.report = RelayReport()
        self._upstream = upstream
        self._camera_prefix = camera_prefix.encode("ascii")  # rtsp://host:port, as the camera is named
        self._credentials = credentials
        self._max_bytes = max_bytes
        self._trace = trace
        self._origin = origin
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self._port = self._listener.getsockname()[1]
        self._loopback_prefix = f"rtsp://127.0.0.1:{self._port}".encode("ascii")
        self._client: socket.socket | None = None
        self._send_lock = threading.Lock()
        self._pending: dict[bytes, tuple[bytes, list[bytes], bytes, bool]] = {}  # by CSeq
        self._basic: Challenge | None = None  # a Basic challenge of this session, answered per request
        self._closing = threading.Event()
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> RtspRelay:
        thread = threading.Thread(target=self._serve, name=f"rtsp-relay-{self._port}", daemon=True)
        self._threads.append(thread)
        thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closing.set()
        for sock in (self._listener, self._client, self._upstream):
            if sock is not None:
                _shutdown(sock)
        for thread in self._threads:
            thread.join(timeout=5)
        for sock in (self._listener, self._client, self._upstream):
            if sock is not None:
                sock.close()

    def lift_byte_limit(self) -> None:
        """Stop counting bytes against the limit: a frame decoded, and a live stream reads on for hours."""
        self._max_bytes = sys.maxsize

    def loopback_url(self, path_and_query: str) -> str:
        return f"rtsp://127.0.0.1:{self._port}{path_and_query}"

    # --- the two directions ---
    def _serve(self) -> None:
        """Accept FFmpeg's one connection, then relay camera → FFmpeg here and FFmpeg → camera in a thread.

        Another process on this machine could connect to the loopback port first and be answered with
        the camera's credentials: a connection that is not this process's own is closed unserved.
        """
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed before FFmpeg connected: the fetch ended (error or budget)
                self._listener.close()
                return
            if _from_this_process(client):
                break
            log.warning("rtsp relay %d: a connection from another process was refused", self._port)
            client.close()
        self._listener.close()
        self._client = client
        if self._closing.is_set():
            _shutdown(client)
            return
        requests = threading.Thread(
            target=self._relay_requests, name=f"rtsp-relay-{self._port}-up", daemon=True
        )
        self._threads.append(requests)
        requests.start()
        self._relay_answers(client)

    def _relay_requests(self) -> None:
        """FFmpeg → camera: each request's URL rewritten and, once challenged, its Authorization added."""
        assert self._client is not None
        reader = _MessageReader(self._client)
        try:
            for kind, head, body in reader:
                if kind == "interleaved":  # RTCP receiver reports
                    self._send_upstream(head + body)
                    continue
                self._forward_request(head, body)
        except OSError as exc:  # FFmpeg closed its side, or the relay is closing
            log.debug("rtsp relay: FFmpeg side ended: %s", exc)
        except errors.RollcallError as exc:
            self.report.failure = self.report.failure or exc
        _shutdown(self._upstream)

    def _relay_answers(self, client: socket.socket) -> None:
        """Camera → FFmpeg: answers checked (challenge, redirect), media passed on, bytes counted."""
        reader = _MessageReader(self._upstream)
        try:
            for kind, head, body in reader:
                if kind == "interleaved":
                    self.report.media_bytes += len(head) + len(body)
                    if self.report.media_bytes > self._max_bytes:
                        raise errors.FrameTooLarge(
                            f"camera {self._origin} sent {self._max_bytes}+ bytes without a decodable frame"
                        )
                    client.sendall(head + body)
                    continue
                if kind == "request":
                    if _REQUEST_LINE.match(head.split(b"\r\n", 1)[0]) is None:  # e.g. "HTTP/1.1 400"
                        raise errors.CameraProtocolError(f"camera {self._origin} does not speak RTSP")
                    continue  # a server-to-client request (ANNOUNCE, GET_PARAMETER): not for a viewer
                forward = self._check_answer(head)
                if forward:
                    client.sendall(head + body)
            self.report.closed_by_camera = not self._closing.is_set()
        except TimeoutError:
            self.report.silent = not self._closing.is_set()
        except OSError as exc:
            self.report.closed_by_camera = not self._closing.is_set()
            log.debug("rtsp relay: camera side ended: %s", exc)
        except _Redirected:
            log.info("camera %s redirects; held back from FFmpeg", self._origin)
        except errors.RollcallError as exc:
            self.report.failure = self.report.failure or exc
        _shutdown(client)

    # --- requests ---
    def _forward_request(self, head: bytes, body: bytes) -> None:
        lines = head[: -len(_HEADER_END)].split(b"\r\n")
        match = _REQUEST_LINE.match(lines[0])
        if match is None:
            raise errors.CameraProtocolError("FFmpeg sent something that is not an RTSP request")
        method, url, version = match.groups()
        if url.startswith(self._loopback_prefix):
            url = self._camera_prefix + url[len(self._loopback_prefix) :]
        headers = [line for line in lines[1:] if not line.lower().startswith(b"authorization:")]
        cseq = _header(headers, b"cseq") or b""
        self._pending[cseq] = (method + b" " + url + b" " + version, headers, body, False)
        self._send_request(cseq)

    def _send_request(self, cseq: bytes, challenge: Challenge | None = None) -> None:
        """Send a pending request; with ``challenge`` (just received) answer it, else answer a remembered
        Digest challenge if there is one. A Basic challenge is answered per request, never remembered:
        FFmpeg's later requests of the session carry the answer the relay adds to each."""
        request_line, headers, body, _ = self._pending[cseq]
        method, url = request_line.split(b" ")[:2]
        lines = [request_line, *headers]
        credentials = self._credentials
        if challenge is not None and challenge.scheme == "basic":
            self._basic = challenge
        challenge = challenge or self._basic
        if credentials is not None:
            args = (method.decode("ascii"), url.decode("latin-1"), credentials.username, credentials.password)
            value: str | None = None
            if challenge is not None:
                value = CHALLENGES.answer(credentials.cache_key, challenge, *args)
            else:
                cached = CHALLENGES.authorization(credentials.cache_key, *args)
                if cached is not None:
                    value, challenge = cached
            if value is not None and challenge is not None:
                lines.append(b"Authorization: " + value.encode("latin-1"))
                self._trace.auth = challenge.label  # type: ignore[assignment]  # a label is an AuthScheme
        self._trace.round_trips += 1
        self.report.waiting_for = method.decode("ascii")
        self._send_upstream(b"\r\n".join(lines) + _HEADER_END + body)

    def _send_upstream(self, data: bytes) -> None:
        with self._send_lock:
            self._upstream.sendall(data)

    # --- answers ---
    def _check_answer(self, head: bytes) -> bool:
        """Whether to pass this answer to FFmpeg; a challenge is answered here, a redirect held back."""
        lines = head[: -len(_HEADER_END)].split(b"\r\n")
        match = _STATUS_LINE.match(lines[0])
        if match is None:
            raise errors.CameraProtocolError(f"camera {self._origin} does not speak RTSP")
        status = int(match.group(1))
        cseq = _header(lines[1:], b"cseq") or b""
        request_line, headers, body, retried = self._pending.get(cseq, (b"?", [], b"", False))
        method = request_line.split(b" ")[0].decode("ascii", "replace")
        self.report.statuses.append((method, status))
        self.report.waiting_for = None
        if status == 401:
            return not self._answer_challenge(cseq, method, lines[1:], retried)
        if 300 <= status < 400:
            location = _header(lines[1:], b"location")
            self.report.redirect = location.decode("latin-1") if location else ""
            raise _Redirected()
        self._pending.pop(cseq, None)
        return True

    def _answer_challenge(self, cseq: bytes, method: str, headers: list[bytes], retried: bool) -> bool:
        """Resend the challenged request with credentials (once); False lets the 401 through to FFmpeg."""
        challenges = parse_challenges(
            value.decode("latin-1") for value in _headers(headers, b"www-authenticate")
        )
        credentials = self._credentials
        failure = refusal(
            self._origin,
            challenges,
            credentials="set" if credentials is not None else "none",
            answered_before=retried,
            context=f"RTSP {method}",
        )
        chosen = choose(challenges)
        if failure is not None or credentials is None or chosen is None or cseq not in self._pending:
            if credentials is not None:
                CHALLENGES.forget(credentials.cache_key)
            self.report.failure = self.report.failure or failure
            return False
        log.info("camera %s asked for %s; answering", self._origin, chosen.label)
        request_line, request_headers, body, _ = self._pending[cseq]
        self._pending[cseq] = (request_line, request_headers, body, True)
        self._send_request(cseq, chosen)
        return True


class _Redirected(errors.CameraProtocolError):
    """The camera answered 3xx; ``RelayReport.redirect`` holds where to."""

    def __init__(self) -> None:
        super().__init__("redirected")


class _MessageReader:
    """Splits an RTSP byte stream into messages: ``("interleaved", $-header, payload)`` frames and
    ``("request"|"answer", header block, body)`` text messages (body by Content-Length)."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._buffer = bytearray()

    def __iter__(self) -> _MessageReader:
        return self

    def __next__(self) -> tuple[str, bytes, bytes]:
        if not self._fill(1):
            raise StopIteration
        if self._buffer[0] == 0x24:  # "$": channel (1 byte), length (2 bytes), payload
            if not self._fill(4):
                raise StopIteration
            length = int.from_bytes(self._buffer[2:4], "big")
            if not self._fill(4 + length):
                raise StopIteration
            return "interleaved", self._take(4), self._take(length)
        end = self._buffer.find(_HEADER_END)
        while end < 0:
            if len(self._buffer) > _MAX_HEADER:
                raise errors.CameraProtocolError(f"an RTSP message header is over {_MAX_HEADER} bytes")
            if not self._fill(len(self._buffer) + 1):
                raise StopIteration
            end = self._buffer.find(_HEADER_END)
        head = self._take(end + len(_HEADER_END))
        lines = head.split(b"\r\n")
        length_text = _header(lines[1:], b"content-length") or b"0"
        length = int(length_text) if length_text.strip().isdigit() else 0
        if length > _MAX_HEADER:
            raise errors.CameraProtocolError(f"an RTSP message body is over {_MAX_HEADER} bytes")
        if not self._fill(length):
            raise StopIteration
        kind = "answer" if head.startswith(b"RTSP/") else "request"
        return kind, head, self._take(length)

    def _fill(self, size: int) -> bool:
        while len(self._buffer) < size:
            chunk = self._sock.recv(_CHUNK)
            if not chunk:
                return False
            self._buffer += chunk
        return True

    def _take(self, size: int) -> bytes:
        taken = bytes(self._buffer[:size])
        del self._buffer[:size]
        return taken


def _headers(lines: list[bytes], name: bytes) -> list[bytes]:
    found = []
    for line in lines:
        key, colon, value = line.partition(b":")
        if colon and key.strip().lower() == name:
            found.append(value.strip())
    return found


def _header(lines: list[bytes], name: bytes) -> bytes | None:
    found = _headers(lines, name)
    return found[0] if found else None


def _from_this_process(client: socket.socket) -> bool:
    """Whether the loopback connection ``client`` accepted was opened by this process (Linux: the other
    end's socket inode, found in ``/proc/net/tcp``, is one of this process's descriptors)."""
    peer_port = client.getpeername()[1]
    local = f"0100007F:{peer_port:04X}"  # 127.0.0.1 in /proc/net/tcp's little-endian hex
    remote = f"0100007F:{client.getsockname()[1]:04X}"
    try:
        with open("/proc/net/tcp") as table:
            rows = [line.split() for line in table.readlines()[1:]]
        inodes = {row[9] for row in rows if row[1] == local and row[2] == remote}
        descriptors = os.listdir("/proc/self/fd")
    except OSError as exc:  # no /proc (not Linux): the check cannot be made
        log.warning("rtsp relay: cannot tell who connected (%s); accepting", exc)
        return True
    for descriptor in descriptors:
        try:
            target = os.readlink(f"/proc/self/fd/{descriptor}")
        except OSError:  # closed since the listing
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            return True
    return False


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:  # not connected, or closed already: nothing left to stop
        log.debug("rtsp relay: socket already closed: %s", exc)
