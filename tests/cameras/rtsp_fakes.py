"""Small RTSP servers that misbehave on purpose, on real loopback sockets (GStreamer's server cannot).

By path: ``/redirect?to=URL`` answers ``DESCRIBE`` with ``302 Location: URL`` (an RTSP redirect, which
FFmpeg would follow to any host); ``/mute`` answers every request properly up to ``PLAY`` (a valid
H.264 SDP) and then never sends a packet; ``/hang`` never answers ``DESCRIBE``. Every request is
recorded (method, URL, Authorization).
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

# A real 320x240 H.264 stream's parameter sets (from x264), so FFmpeg can set up the track.
_SDP = (
    "v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=mute\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\n"
    "a=rtpmap:96 H264/90000\r\n"
    "a=fmtp:96 packetization-mode=1;sprop-parameter-sets=Z2QADKzZQUH7ARAAAAMAEAAAAwFA8UKZYA==,aOvjyyLA\r\n"
    "a=control:track1\r\n"
)


@dataclass(frozen=True)
class SeenRtspRequest:
    method: str
    url: str
    authorization: str | None


class FakeRtspCamera:
    """``start()`` it, name URLs with ``url(path)``, ``stop()`` it."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._listener = socket.create_server((host, 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._seen: list[SeenRtspRequest] = []
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, name=f"fake-rtsp-{self.port}", daemon=True)

    def start(self) -> FakeRtspCamera:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for connection in self._connections:
                connection.close()

    def url(self, path: str) -> str:
        return f"rtsp://{self.host}:{self.port}{path}"

    @property
    def requests(self) -> list[SeenRtspRequest]:
        with self._lock:
            return list(self._seen)

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except TimeoutError:  # wakes to see stop(): closing the listener does not interrupt accept()
                continue
            connection.settimeout(None)
            with self._lock:
                self._connections.append(connection)
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        buffer = b""
        try:
            while not self._stopping.is_set():
                while b"\r\n\r\n" not in buffer:
                    chunk = connection.recv(4096)
                    if not chunk:
                        return
                    buffer += chunk
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, url, _ = lines[0].split(" ", 2)
                headers = {
                    k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
                }
                with self._lock:
                    self._seen.append(SeenRtspRequest(method, url, headers.get("authorization")))
                if method == "DESCRIBE" and urlsplit(url).path == "/hang":
                    continue
                connection.sendall(self._answer(method, url, headers.get("cseq", "0")))
        except OSError:
            return

    def _answer(self, method: str, url: str, cseq: str) -> bytes:
        parts = urlsplit(url)
        status, extra, body = "200 OK", [], ""
        if method == "OPTIONS":
            extra = ["Public: OPTIONS, DESCRIBE, SETUP, PLAY, TEARDOWN"]
        elif method == "DESCRIBE" and parts.path == "/redirect":
            status, extra = "302 Found", [f"Location: {parse_qs(parts.query)['to'][0]}"]
        elif method == "DESCRIBE":
            extra, body = ["Content-Type: application/sdp", f"Content-Base: {url}/"], _SDP
        elif method == "SETUP":
            extra = ["Transport: RTP/AVP/TCP;unicast;interleaved=0-1", "Session: 12345678"]
        elif method in ("PLAY", "TEARDOWN"):
            extra = ["Session: 12345678"]
        lines = [f"RTSP/1.0 {status}", f"CSeq: {cseq}", *extra, f"Content-Length: {len(body)}"]
        return ("\r\n".join(lines) + "\r\n\r\n" + body).encode("latin-1")
