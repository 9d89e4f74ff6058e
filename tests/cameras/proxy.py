"""A loopback TCP proxy in front of a real camera that records every connection: the camera's own view.

The tests put it between the readers and a camera server (GStreamer's RTSP server, the MJPEG server) and
ask it how many connections were ever open at once, how many were made, and whether one is open now.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass


@dataclass
class Connection:
    opened: float  # time.monotonic()
    closed: float | None = None


class CountingProxy:
    """Forwards ``127.0.0.1:<port>`` to ``127.0.0.1:<target_port>``, recording each connection's lifetime."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)  # accept() wakes to see stop()
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._connections: list[Connection] = []
        self._sockets: list[socket.socket] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._accept, name=f"proxy-{self.port}", daemon=True)

    def start(self) -> CountingProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                sock.close()

    # --- what the camera saw ---
    @property
    def accepted(self) -> int:
        with self._lock:
            return len(self._connections)

    @property
    def open_now(self) -> int:
        with self._lock:
            return sum(1 for connection in self._connections if connection.closed is None)

    def most_at_once(self) -> int:
        """The most connections that were ever open at the same time."""
        with self._lock:
            events = [(c.opened, 1) for c in self._connections]
            events += [(c.closed, -1) for c in self._connections if c.closed is not None]
        most = current = 0
        for _, step in sorted(events, key=lambda event: (event[0], event[1])):  # a close before an open
            current += step
            most = max(most, current)
        return most

    def last_closed(self) -> float | None:
        """When the last connection closed (``time.monotonic()``), if none is open."""
        with self._lock:
            if any(c.closed is None for c in self._connections) or not self._connections:
                return None
            return max(c.closed for c in self._connections if c.closed is not None)

    # --- relaying ---
    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            connection = Connection(time.monotonic())
            with self._lock:
                self._connections.append(connection)
                self._sockets += [client, upstream]
            ends = [threading.Event(), threading.Event()]
            for (source, sink), done in zip(((client, upstream), (upstream, client)), ends, strict=True):
                threading.Thread(target=_pump, args=(source, sink, done), daemon=True).start()
            threading.Thread(target=self._close_when, args=(connection, ends), daemon=True).start()

    def _close_when(self, connection: Connection, ends: list[threading.Event]) -> None:
        """The connection is closed once either side hung up (the pumps then shut both down)."""
        while not any(end.is_set() for end in ends):
            ends[0].wait(0.01)
        with self._lock:
            connection.closed = time.monotonic()


def _pump(source: socket.socket, sink: socket.socket, done: threading.Event) -> None:
    try:
        while chunk := source.recv(65536):
            sink.sendall(chunk)
    except OSError:
        pass  # either side closed: this direction is over
    for sock in (source, sink):
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass  # the other direction shut it first
    done.set()
