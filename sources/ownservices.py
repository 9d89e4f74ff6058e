"""The deployment's own listeners, which no camera or callback URL may reach, whatever the allowlist says.

A job's camera URL is fetched, and its callback URL posted to, from inside the deployment: pointed at
Flower's API (``/api/worker/shutdown/…``), the broker, the database or a worker's metrics, it would make
rollcall attack itself with its own network position. ``CameraAllowlist.check_url`` therefore refuses
a target whose resolved address and port is one of these listeners (``OwnServices.refuse``): the
address as it will be connected, never the URL's text, so ``localhost``, ``127.0.0.2``, ``[::1]``,
``[::ffff:127.0.0.1]`` or the machine's own LAN address all name the same listener.

A listener named by a loopback or unspecified address (``127.0.0.1``, ``0.0.0.0``: how ``make run``
binds) stands for "this machine": any address that reaches this machine matches it, loopback or one of
its own interfaces (a service bound to ``0.0.0.0`` answers on all of them). A listener named by a host
name (``flower``, a compose service) is resolved at every check, so a container that moved is still
matched by the address it has now.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import errors

log = logging.getLogger(__name__)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_THIS_MACHINE = "this machine"


@dataclass(frozen=True)
class Listener:
    """One ``host:port`` the deployment serves on: a literal address or a name resolved at each check."""

    host: str  # lower case, no brackets
    port: int

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True)
class OwnServices:
    """Every listener of the deployment (``ROLLCALL_SERVICE_ENDPOINTS`` and what the other settings name)."""

    listeners: frozenset[Listener] = frozenset()

    @classmethod
    def parse(cls, spec: str) -> OwnServices:
        """``host:port`` entries separated by commas (``[v6]:port`` for IPv6 literals)."""
        listeners = set()
        for raw in spec.split(","):
            entry = raw.strip()
            if not entry:
                continue
            listener = listener_of(f"tcp://{entry}")
            if listener is None or entry.count("/"):
                raise ValueError(f"service endpoint {entry!r} is not host:port")
            listeners.add(listener)
        return cls(frozenset(listeners))

    def __str__(self) -> str:
        return ",".join(sorted(str(listener) for listener in self.listeners))

    def union(self, other: Iterable[Listener]) -> OwnServices:
        return OwnServices(self.listeners | frozenset(other))

    def refuse(self, host: str, addresses: Iterable[IPAddress], port: int) -> None:
        """Raise ``CameraNotAllowed`` when any of ``addresses`` on ``port`` is one of the listeners.

        ``addresses`` are what the connection will go to, IPv4 already unwrapped from IPv6 forms
        (``sources.netguard`` does it for both its checks).
        """
        listeners = [listener for listener in self.listeners if listener.port == port]
        if not listeners:
            return
        places = {place for listener in listeners for place in _places_of(listener)}
        for address in addresses:
            if _place(address) in places:
                raise errors.CameraNotAllowed(
                    f"{Listener(host, port)} is one of rollcall's own services (ROLLCALL_SERVICE_ENDPOINTS), "
                    "never a camera or a callback receiver"
                )


def listener_of(url: str, default_port: int | None = None) -> Listener | None:
    """The ``host:port`` a service URL (``redis://…``, ``postgresql+psycopg://…``) names; None if none."""
    try:
        parts = urlsplit(url)
        port = parts.port or default_port
    except ValueError:
        return None
    if not parts.hostname or port is None:
        return None
    return Listener(parts.hostname.lower().rstrip("."), port)


def _places_of(listener: Listener) -> set[str | IPAddress]:
    """Where a listener is: "this machine", or the addresses its name resolves to now."""
    try:
        addresses = [ipaddress.ip_address(listener.host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(listener.host, listener.port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as exc:
            # Not resolvable now (a compose service that is not up): nothing answers there to protect.
            log.debug("service endpoint %s does not resolve: %s", listener, exc)
            return set()
        addresses = [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]
    return {_place(address) for address in addresses}


def _place(address: IPAddress) -> str | IPAddress:
    """An address as a place: "this machine" for any address that reaches it, else the address itself."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return _THIS_MACHINE if _is_this_machine(address) else address


def _is_this_machine(address: IPAddress) -> bool:
    """Loopback, unspecified, or an address of one of this machine's interfaces.

    Binding a socket to an address succeeds only when the address is the machine's own (Linux answers
    ``EADDRNOTAVAIL`` otherwise), which is exact for every interface without listing them. A machine with
    ``net.ipv4.ip_nonlocal_bind=1`` takes every address for its own: more refusals, never fewer.
    """
    if address.is_loopback or address.is_unspecified:
        return True
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((str(address), 0))
        except OSError:
            return False
    return True
