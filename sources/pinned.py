"""HTTP requests that connect only to addresses the allowlist checked, within a wall-clock budget.

``sources.netguard`` resolves and checks a URL once; ``PinnedAdapter`` then connects only to those
checked addresses while Host, SNI and the certificate check keep the URL's host name, so a DNS
answer that changes between check and connect (DNS rebinding) cannot steer the request elsewhere.
``Deadline`` shuts the sockets down when the budget is spent, so a peer that trickles bytes cannot
hold a worker past it. Camera fetches (``sources.camera``) and callback deliveries (``post``) use both.
"""

from __future__ import annotations

import logging
import math
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, cast

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.exceptions import ConnectTimeoutError, NewConnectionError

import errors
from sources.netguard import CameraAllowlist, ResolvedTarget
from sources.tls import TlsPolicy

log = logging.getLogger(__name__)


# --- the time budget ---
class Deadline:
    """A request's wall-clock budget; when it ends, every socket it tracks is shut down.

    Socket timeouts bound each wait, not the total: a server sending one byte a second resets them
    forever. Shutting the socket down from a timer wakes any blocked read at the deadline.
    """

    def __init__(self, budget_s: float) -> None:
        self._start = time.monotonic()
        self._end = self._start + budget_s
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._expired = False
        self._timer = threading.Timer(budget_s, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> Deadline:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()

    def elapsed(self) -> float:
        return time.monotonic() - self._start

    def remaining(self) -> float:
        return self._end - time.monotonic()

    @property
    def expired(self) -> bool:
        return self._expired or self.remaining() <= 0

    def lift(self) -> None:
        """End the budget without closing anything: a stream that delivered its first frame reads on.

        The live readers' streams (``sources.stream``) spend the budget on connecting and the first
        frame only; from then on each read's own timeout is what notices a camera that fell silent.
        """
        self._timer.cancel()
        with self._lock:
            self._end = math.inf

    def cut(self) -> None:
        """Shut every tracked socket down now (from any thread): a blocked read wakes up and fails."""
        self._timer.cancel()
        self._expire()

    def track(self, sock: socket.socket) -> None:
        """Keep a duplicate of ``sock`` (it outlives a TLS wrap of the original) to shut down later."""
        with self._lock:
            duplicate = sock.dup()
            self._sockets.append(duplicate)
            if self._expired:
                _shutdown(duplicate)

    def _expire(self) -> None:
        with self._lock:
            self._expired = True
            for sock in self._sockets:
                _shutdown(sock)


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError as exc:  # the peer may have closed it already; nothing is left to stop
        log.debug("socket already closed at the deadline: %s", exc)


# --- one request, pinned to the checked addresses ---
class _PinnedConnectionMixin:
    """A urllib3 connection whose TCP connect goes only to the addresses the allowlist checked.

    Everything else (Host header, TLS SNI, certificate host name) keeps using the URL's host.
    """

    timeout: Any
    port: int
    host: str
    source_address: tuple[str, int] | None
    socket_options: Any

    def __init__(
        self,
        *args: Any,
        pinned_addresses: tuple[str, ...],
        on_socket: Callable[[socket.socket], None],
        **kw: Any,
    ) -> None:
        self._pinned_addresses = pinned_addresses
        self._on_socket = on_socket
        super().__init__(*args, **kw)

    def _new_conn(self) -> socket.socket:
        timeout = self.timeout if isinstance(self.timeout, int | float) else None
        try:
            sock = connect_pinned(
                self._pinned_addresses, self.port, timeout, self.socket_options, self.source_address
            )
        except TimeoutError as exc:
            raise ConnectTimeoutError(
                cast(HTTPConnection, self), f"connection to {self.host} timed out"
            ) from exc
        except OSError as exc:
            raise NewConnectionError(
                cast(HTTPConnection, self), f"failed to connect to {self.host}: {exc}"
            ) from exc
        self._on_socket(sock)
        return sock


def connect_pinned(
    addresses: tuple[str, ...],
    port: int,
    timeout: float | None,
    socket_options: Any = None,
    source_address: tuple[str, int] | None = None,
) -> socket.socket:
    """A TCP connection to the first of the checked ``addresses`` that accepts; no name resolution at all.

    Raises the last address's ``OSError`` (``TimeoutError`` for a connect timeout) when none accepts.
    """
    failure: OSError = OSError("no address to connect to")
    for address in addresses:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            for option in socket_options or ():
                sock.setsockopt(*option)
            sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect((address, port))
        except OSError as exc:  # try the next checked address; the last failure is reported
            sock.close()
            failure = exc
            continue
        return sock
    raise failure


class _PinnedHTTPConnection(_PinnedConnectionMixin, HTTPConnection):
    pass


class _PinnedHTTPSConnection(_PinnedConnectionMixin, HTTPSConnection):
    """Also checks a pinned certificate fingerprint (``TlsPolicy.check_peer``) right after the handshake."""

    def __init__(self, *args: Any, tls_policy: TlsPolicy, origin: str, **kw: Any) -> None:
        self._tls_policy = tls_policy
        self._origin = origin
        super().__init__(*args, **kw)

    def connect(self) -> None:
        super().connect()
        if self._tls_policy.fingerprint_sha256 is not None:
            sock = cast(ssl.SSLSocket, self.sock)
            try:
                self._tls_policy.check_peer(sock.getpeercert(binary_form=True), self._origin)
            except errors.CameraTLSFailed:
                self.close()
                raise
            self.is_verified = True  # by fingerprint: urllib3 would warn of an unverified connection


class _PinnedHTTPPool(HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


class PinnedAdapter(HTTPAdapter):
    """A requests adapter with one pool, for one checked target; it never consults a proxy or DNS."""

    def __init__(
        self,
        target: ResolvedTarget,
        deadline: Deadline,
        refuse: type[errors.RollcallError] = errors.CameraNotAllowed,
        trust: TlsPolicy | None = None,
    ) -> None:
        super().__init__(max_retries=0)
        self._target = target
        self._refuse = refuse
        self._trust = trust or TlsPolicy()
        pinned: dict[str, Any] = {"pinned_addresses": target.addresses, "on_socket": deadline.track}
        self._pool: HTTPConnectionPool
        if target.scheme == "https":
            # ca_cert_data reaches each connection through the pool's connection keywords.
            self._pool = _PinnedHTTPSPool(
                target.host,
                target.port,
                maxsize=1,
                tls_policy=self._trust,
                origin=target.origin,
                ca_cert_data=self._trust.ca_pem,
                **pinned,
            )
        else:
            self._pool = _PinnedHTTPPool(target.host, target.port, maxsize=1, **pinned)

    def get_connection_with_tls_context(
        self, request: requests.PreparedRequest, verify: Any, proxies: Any = None, cert: Any = None
    ) -> HTTPConnectionPool:
        # urllib3 parses URLs a little differently from urllib.parse; refuse any disagreement.
        parsed = urllib3.util.parse_url(request.url or "")
        host = (parsed.host or "").strip("[]").lower().rstrip(".")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        if (parsed.scheme, host, port) != (self._target.scheme, self._target.host, self._target.port):
            raise self._refuse(f"the URL for {self._target.origin} is ambiguous")
        return self._pool

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        """Apply the camera's ``TlsPolicy`` whatever ``verify`` says: no caller can turn checks off."""
        if self._trust.ca_pem is not None:  # only the camera's CA, given to the pool above
            conn.cert_reqs, conn.ca_certs, conn.ca_cert_dir = "CERT_REQUIRED", None, None
        elif self._trust.fingerprint_sha256 is not None:
            # The handshake accepts any certificate; the connection then compares its fingerprint.
            conn.cert_reqs, conn.ca_certs, conn.ca_cert_dir = "CERT_NONE", None, None
            conn.assert_hostname = False
        else:
            super().cert_verify(conn, url, True, cert)

    def close(self) -> None:
        self._pool.close()
        super().close()


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    allowlist: CameraAllowlist,
    timeout_s: float,
    refuse: type[errors.RollcallError] = errors.CameraNotAllowed,
) -> int:
    """POST ``body`` to ``url`` through a pinned connection and return the HTTP status.

    Redirects are not followed (their status is returned). Raises what ``allowlist.check_url``
    raises (``CameraNotAllowed``, ``InvalidInput``, ``CameraUnreachable``), ``refuse`` for a URL
    urllib3 would read differently, and ``requests.RequestException`` when no answer came.
    The answer's body is not read: only its status matters.
    """
    with Deadline(2 * timeout_s) as deadline:
        target = allowlist.check_url(url)
        request = requests.Request("POST", url, data=body, headers=dict(headers)).prepare()
        adapter = PinnedAdapter(target, deadline, refuse)
        try:
            response = adapter.send(request, stream=True, timeout=(timeout_s, timeout_s))
            response.close()
        finally:
            adapter.close()
    return int(response.status_code)
