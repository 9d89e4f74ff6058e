"""A real HTTP(S) server on a loopback address that behaves like good and bad IP cameras, by path.

Paths: ``/photo.jpg`` ``/photo.png`` (real photos), ``/octet`` (octet-stream), ``/notype`` (no
Content-Type), ``/mjpeg`` ``/mjpeg-nolength`` ``/mjpeg-dashed`` (endless MJPEG streams),
``/mjpeg-slow`` (a frame every 5 s, parts without Content-Length), ``/mjpeg-live`` (10 frames/s until
the client leaves, alternately with and without Content-Length),
``/trickle`` (one body byte a second), ``/trickle-headers`` (one header byte a second),
``/hang`` (never answers), ``/not-http`` (an SSH banner), ``/gzip``, ``/mjpeg-garbage``,
``/status/<code>``, ``/html``,
``/truncated.jpg`` (half a JPEG, honest length), ``/cut.jpg`` (announces the whole JPEG, sends
half, closes), ``/empty``, ``/huge`` (announces 50 MB; ``/huge/<bytes>`` that many),
``/endless`` (zeros until the client leaves, no length), ``/bomb.png`` (30,000×30,000 PNG),
``/redirect?to=URL``, ``/chain/<n>`` (n ≥ 1 redirects, then the photo), ``/reset`` (TCP reset),
``/basic/<path>`` (``<path>`` behind HTTP Basic with the server's ``credentials``).
Every request is recorded in ``requests`` so a test can see what reached the server.
"""

from __future__ import annotations

import base64
import gzip
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from tests.images import png_bomb, shared_photo

JPEG_NAME = "obama_small.jpg"
PNG_NAME = "lin-manuel-miranda.png"


@dataclass(frozen=True)
class SeenRequest:
    path: str
    host_header: str | None
    authorization: str | None


class _Handler(BaseHTTPRequestHandler):
    server: _CameraHTTPServer
    protocol_version = "HTTP/1.0"  # the body of a length-less answer ends when the connection closes

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        """Keep test output clean; requests are recorded in ``server.seen`` instead."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        camera = self.server.camera
        camera.record(SeenRequest(self.path, self.headers.get("Host"), self.headers.get("Authorization")))
        path, _, query = self.path.partition("?")
        if path.startswith("/basic/"):
            expected = base64.b64encode(":".join(camera.credentials).encode()).decode()
            if self.headers.get("Authorization") != f"Basic {expected}":
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            path = path.removeprefix("/basic")
        try:
            self._route(path, parse_qs(query), camera)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            # Expected: the client under test gave up on purpose (limit, budget, first MJPEG part).
            self.close_connection = True

    def _route(self, path: str, query: dict[str, list[str]], camera: CameraServer) -> None:
        jpeg = shared_photo(JPEG_NAME)
        if path == "/photo.jpg":
            self._send(200, jpeg, "image/jpeg")
        elif path == "/photo.png":
            self._send(200, shared_photo(PNG_NAME), "image/png")
        elif path == "/octet":
            self._send(200, jpeg, "application/octet-stream")
        elif path == "/notype":
            self._send(200, jpeg, None)
        elif path == "/html":
            self._send(200, b"<html><body>Please log in</body></html>", "text/html; charset=utf-8")
        elif path == "/truncated.jpg":
            self._send(200, jpeg[: len(jpeg) // 2], "image/jpeg")
        elif path == "/empty":
            self._send(200, b"", "image/jpeg")
        elif path == "/bomb.png":
            self._send(200, png_bomb(30_000, 30_000), "image/png")
        elif path.startswith("/status/"):
            self._send(int(path.rsplit("/", 1)[1]), b"error page", "text/plain")
        elif path == "/redirect":
            self._redirect(query["to"][0])
        elif path.startswith("/chain/"):
            left = int(path.rsplit("/", 1)[1])
            self._redirect(f"/chain/{left - 1}" if left > 1 else "/photo.jpg")
        elif path == "/cut.jpg":
            self._head(200, "image/jpeg", len(jpeg))
            self.wfile.write(jpeg[: len(jpeg) // 2])
            self.close_connection = True
        elif path == "/huge" or path.startswith("/huge/"):
            size = int(path.rsplit("/", 1)[1]) if path.startswith("/huge/") else 50_000_000
            self._head(200, "image/jpeg", size)
            self._stream_zeros(camera)
        elif path == "/endless":
            self._head(200, "image/jpeg", None)
            self._stream_zeros(camera)
        elif path == "/trickle":
            self._head(200, "image/jpeg", len(jpeg))
            self._trickle(jpeg, camera)
        elif path == "/trickle-headers":
            self._trickle(b"HTTP/1.0 200 OK\r\nContent-Type: image/jpeg\r\nX-Padding: " + b"a" * 1000, camera)
        elif path == "/gzip":
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Encoding", "gzip")
            body = gzip.compress(jpeg)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        elif path == "/mjpeg-garbage":
            self._head(200, "multipart/x-mixed-replace; boundary=rollcallframe", None)
            self._stream_zeros(camera)
        elif path == "/not-http":
            self.wfile.write(b"SSH-2.0-OpenSSH_9.6\r\n")
            self.close_connection = True
        elif path == "/hang":
            camera.stopping.wait()
        elif path == "/reset":
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        elif path == "/mjpeg-slow":
            self._head(200, "multipart/x-mixed-replace; boundary=rollcallframe", None)
            while not camera.stopping.is_set():  # one frame every 5 s, each part ended only by the next
                self.wfile.write(b"--rollcallframe\r\nContent-Type: image/jpeg\r\n\r\n" + jpeg + b"\r\n")
                self.wfile.flush()
                camera.stopping.wait(5.0)
        elif path == "/mjpeg-live":
            self._head(200, "multipart/x-mixed-replace; boundary=rollcallframe", None)
            sent = 0
            while not camera.stopping.is_set():
                length = f"Content-Length: {len(jpeg)}\r\n".encode() if sent % 2 == 0 else b""
                self.wfile.write(
                    b"--rollcallframe\r\nContent-Type: image/jpeg\r\n" + length + b"\r\n" + jpeg + b"\r\n"
                )
                self.wfile.flush()
                sent += 1
                camera.stopping.wait(0.1)
        elif path in ("/mjpeg", "/mjpeg-nolength", "/mjpeg-dashed"):
            self._mjpeg(jpeg, with_length=path == "/mjpeg", dashed=path == "/mjpeg-dashed", camera=camera)
        else:
            self._send(404, b"no such path", "text/plain")

    def _head(self, status: int, content_type: str | None, length: int | None) -> None:
        self.send_response(status)
        if content_type is not None:
            self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: int, body: bytes, content_type: str | None) -> None:
        self._head(status, content_type, len(body))
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _stream_zeros(self, camera: CameraServer) -> None:
        block = b"\x00" * 65536
        while not camera.stopping.is_set():
            self.wfile.write(block)

    def _trickle(self, data: bytes, camera: CameraServer) -> None:
        for index in range(len(data)):
            self.wfile.write(data[index : index + 1])
            if camera.stopping.wait(1.0):
                return

    def _mjpeg(self, jpeg: bytes, with_length: bool, dashed: bool, camera: CameraServer) -> None:
        # Some cameras repeat the "--" of the delimiter lines in the boundary parameter ("dashed").
        boundary = "--rollcallframe" if dashed else "rollcallframe"
        self._head(200, f"multipart/x-mixed-replace; boundary={boundary}", None)
        for _ in range(2):
            part = b"--rollcallframe\r\nContent-Type: image/jpeg\r\n"
            if with_length:
                part += f"Content-Length: {len(jpeg)}\r\n".encode()
            self.wfile.write(part + b"\r\n" + jpeg + b"\r\n")
        camera.stopping.wait()  # a live stream never ends by itself


class _CameraHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], camera: CameraServer) -> None:
        self.camera = camera
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


class CameraServer:
    """One fake camera: ``start()`` it, build URLs with ``url(path)``, ``stop()`` it."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        tls: ssl.SSLContext | None = None,
        credentials: tuple[str, str] = ("admin", "hunter2"),
    ) -> None:
        self.host = host
        self.credentials = credentials
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._seen: list[SeenRequest] = []
        self._httpd = _CameraHTTPServer((host, port), self)
        if tls is not None:
            # Handshake in the handler thread (on first read), not in the accepting thread.
            self._httpd.socket = tls.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self.port = self._httpd.server_address[1]
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"camera-{self.port}",
            daemon=True,
        )

    def start(self) -> CameraServer:
        # Made before the first request: compressing it in the handler took seconds on a loaded machine,
        # past a worker's read timeout, so the job failed as a silent camera instead of a too-large frame.
        png_bomb(30_000, 30_000)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def url(self, path: str, host: str | None = None) -> str:
        return f"{self.scheme}://{host or self.host}:{self.port}{path}"

    def record(self, seen: SeenRequest) -> None:
        with self._lock:
            self._seen.append(seen)

    @property
    def requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self._seen)

    def paths(self) -> list[str]:
        return [seen.path for seen in self.requests]

    def wait_for_requests(self, count: int, timeout_s: float = 2.0) -> list[SeenRequest]:
        """The recorded requests once ``count`` arrived (the handler records from its own thread)."""
        deadline = time.monotonic() + timeout_s
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.requests


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
