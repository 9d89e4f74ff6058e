"""A real HTTP server on loopback that receives job callbacks, answering from a script per path."""

from __future__ import annotations

import http.server
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Delivery:
    """One POST the receiver got, and the status it answered."""

    path: str
    headers: dict[str, str]
    body: bytes
    status: int
    received_at: float


class CallbackReceiver:
    """Records every POST; ``answer(path, [500, 500])`` makes the first two on ``path`` fail, then 200."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._lock = threading.Lock()
        self._scripts: dict[str, list[int]] = defaultdict(list)
        self._deliveries: list[Delivery] = []

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, statuses: list[int]) -> None:
        with self._lock:
            self._scripts[path] = list(statuses)

    def received(self, path: str) -> list[Delivery]:
        with self._lock:
            return [delivery for delivery in self._deliveries if delivery.path == path]

    def record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        with self._lock:
            script = self._scripts[path]
            status = script.pop(0) if script else 200
            self._deliveries.append(Delivery(path, headers, body, status, time.time()))
            return status


def _handler(receiver: CallbackReceiver) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - stdlib naming
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            status = receiver.record(self.path, dict(self.headers.items()), body)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            pass

    return Handler


@contextmanager
def callback_receiver() -> Iterator[CallbackReceiver]:
    """Serve on a free loopback port for the duration of the block."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    receiver = CallbackReceiver(int(server.server_address[1]))
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
