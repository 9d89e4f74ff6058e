"""A loopback TCP proxy that can be cut: every open connection dropped and new ones refused, then restored.

Put between a worker and PostgreSQL, it is the network failing under a running system, without
touching the database server that other tests share.
"""

from __future__ import annotations

import socket
import threading


class TcpProxy:
    """Forwards ``127.0.0.1:<port>`` to ``target``; ``cut()`` and ``restore()`` switch the link off and on."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._listener = self._listen(0)
        self.port: int = self._listener.getsockname()[1]
        self.accepted = 0

    def start(self) -> TcpProxy:
        threading.Thread(target=self._accept, args=(self._listener,), daemon=True).start()
        return self

    def cut(self) -> None:
        """Refuse new connections and drop every open one, like a link that went down."""
        with self._lock:
            _shut(self._listener)
            self._listener.close()
            for sock in self._connections:
                _shut(sock)
                sock.close()
            self._connections.clear()

    def restore(self) -> None:
        """Listen again on the same port."""
        with self._lock:
            self._listener = self._listen(self.port)
        self.start()

    def stop(self) -> None:
        self.cut()

    @staticmethod
    def _listen(port: int) -> socket.socket:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)
        return listener

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:  # the listener was shut down by cut()
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._connections.update((client, upstream))
                self.accepted += 1
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
            except OSError:  # cut() closed one side: this direction is over
                break
        with self._lock:
            for sock in (source, sink):
                if sock in self._connections:
                    self._connections.discard(sock)
                    _shut(sock)
                    sock.close()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # not connected (any more): nothing left to shut down
        return
