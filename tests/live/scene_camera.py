"""A real MJPEG camera on loopback whose picture a test changes while a reader streams it.

``/mjpeg`` sends the current picture 10 times a second until the client leaves (a real
``multipart/x-mixed-replace`` stream over HTTP, as ``live.feed`` reads from IP cameras); ``show(image)``
changes what every open stream sends from its next part on: people walk out of the picture.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

FPS = 10.0
BOUNDARY = "scene"


def jpeg(image: np.ndarray) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    if not ok:
        raise ValueError("the picture could not be encoded as JPEG")
    return data.tobytes()


class SceneCamera:
    """``start()`` it, read ``url``, ``show`` another picture, ``stop()`` it."""

    def __init__(self, image: np.ndarray) -> None:
        self._lock = threading.Lock()
        self._jpeg = jpeg(image)
        self.stopping = threading.Event()
        camera = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path != "/mjpeg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                try:
                    while not camera.stopping.wait(1 / FPS):
                        part = camera.current()
                        head = (
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(part)}\r\n\r\n"
                        )
                        self.wfile.write(head.encode() + part + b"\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    return  # the reader let the camera go

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
                pass

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = int(self._httpd.server_address[1])
        self.url = f"http://127.0.0.1:{self.port}/mjpeg"
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def current(self) -> bytes:
        with self._lock:
            return self._jpeg

    def show(self, image: np.ndarray) -> float:
        """Send ``image`` from now on; when it took effect (seconds since the epoch)."""
        data = jpeg(image)
        with self._lock:
            self._jpeg = data
        return time.time()

    def start(self) -> SceneCamera:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
