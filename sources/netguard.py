"""Which camera URLs a worker may fetch: the allowlist that stops server-side request forgery.

A job names a URL and a worker fetches it from inside the network, so an unchecked URL lets
whoever submits jobs read the cloud metadata service, the worker's own loopback services or any
internal web page. ``CameraAllowlist.check_url`` resolves the host once and checks every
address it resolves to; ``sources.camera`` then connects only to those checked addresses, so a
DNS answer that changes after the check (DNS rebinding) cannot move the connection elsewhere.
The same check refuses the deployment's own listeners (``sources.ownservices``: Flower, the broker,
the database, the API, worker metrics) by resolved address and port, whatever the allowlist says.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

import errors
from sources.ownservices import OwnServices
from sources.urls import DEFAULT_PORTS

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Never a camera, whatever the allowlist says: link-local (where cloud metadata answers),
# cloud metadata services, "this host" (0.0.0.0 connects to the local machine on Linux),
# multicast, reserved and broadcast.
_FORBIDDEN_NETWORKS: tuple[tuple[IPNetwork, str], ...] = tuple(
    (ipaddress.ip_network(cidr), why)
    for cidr, why in (
        ("169.254.169.254/32", "cloud metadata"),
        ("100.100.100.200/32", "cloud metadata"),
        ("fd00:ec2::254/128", "cloud metadata"),
        ("169.254.0.0/16", "link-local"),
        ("fe80::/10", "link-local"),
        ("0.0.0.0/8", "unspecified"),
        ("::/128", "unspecified"),
        ("224.0.0.0/4", "multicast"),
        ("ff00::/8", "multicast"),
        ("240.0.0.0/4", "reserved or broadcast"),
    )
)
# Translation prefixes whose IPv4 part cannot be read without knowing the local prefix length.
_OPAQUE_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_NAT64_WELL_KNOWN = ipaddress.ip_network("64:ff9b::/96")
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
HTTP_SCHEMES = ("http", "https")


@dataclass(frozen=True)
class ResolvedTarget:
    """A checked URL: the host to name in Host/SNI and the only addresses it may be reached at."""

    scheme: str
    host: str  # lower-case ASCII (IDNA), no brackets, no trailing dot
    port: int
    addresses: tuple[str, ...]  # every address the host resolved to, all checked, in resolver order

    @property
    def origin(self) -> str:
        """``host:port`` for messages and logs: never the path, query or credentials."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def same_origin(self, other: ResolvedTarget) -> bool:
        """Same scheme, host and port: where a camera's credentials may go, and nowhere else."""
        return (self.scheme, self.host, self.port) == (other.scheme, other.host, other.port)


@dataclass(frozen=True)
class CameraAllowlist:
    """Networks and host names cameras may live at (``ROLLCALL_CAMERA_ALLOW``)."""

    networks: tuple[IPNetwork, ...]
    names: frozenset[str]
    suffixes: tuple[str, ...]  # from ``*.school.lan`` entries, stored as ``.school.lan``
    # Never targets, whatever the lists above say; ``settings`` adds the deployment's own listeners.
    services: OwnServices = OwnServices()

    @classmethod
    def parse(cls, spec: str) -> CameraAllowlist:
        """Parse comma-separated CIDRs (IPv4/IPv6), host names and ``*.suffix`` wildcards."""
        networks: list[IPNetwork] = []
        names: set[str] = set()
        suffixes: list[str] = []
        for raw in spec.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
                continue
            except ValueError:
                pass  # not a network: it must be a host name or a wildcard, checked below
            wildcard = entry.startswith("*.")
            name = entry[2:] if wildcard else entry
            if _is_ip_literal(name) or not _is_host_name(name.rstrip(".")):
                raise ValueError(
                    f"camera allowlist entry {raw.strip()!r} is neither a CIDR, a host name nor *.domain"
                )
            if wildcard:
                suffixes.append("." + name.rstrip("."))
            else:
                names.add(name.rstrip("."))
        return cls(networks=tuple(networks), names=frozenset(names), suffixes=tuple(suffixes))

    def excluding(self, services: OwnServices) -> CameraAllowlist:
        """This allowlist, refusing ``services`` (the deployment's own listeners) as well."""
        return dataclasses.replace(self, services=self.services.union(services.listeners))

    def __str__(self) -> str:
        """The allowlist as ``parse`` reads it (normalised; the services are settings of their own)."""
        entries = [str(network) for network in self.networks]
        entries += sorted(self.names) + [f"*{suffix}" for suffix in self.suffixes]
        return ",".join(entries)

    def allows_name(self, host: str) -> bool:
        """Whether ``host`` (normalised) is listed by name or under a ``*.`` wildcard."""
        return host in self.names or any(host.endswith(suffix) for suffix in self.suffixes)

    def check_url(self, url: str, schemes: tuple[str, ...] = HTTP_SCHEMES) -> ResolvedTarget:
        """Parse, resolve and check ``url``; raise ``CameraNotAllowed`` unless every address passes.

        ``schemes``: the ones this caller can fetch (callbacks: http and https; cameras: RTSP too).
        """
        parts = _split(url)
        scheme = parts.scheme.lower()
        if scheme not in schemes:
            raise errors.CameraNotAllowed(
                f"these URLs must be {' or '.join(schemes)}, not {scheme or 'empty'!r}"
            )
        if not parts.hostname:
            raise errors.InvalidInput("camera URL has no host")
        host = _normalise_host(parts)
        port = _port(parts, scheme)
        # A canonical address is its own answer; names and legacy numeric forms go to the resolver.
        addresses = (host,) if _is_canonical_address(host) else _resolve(host, port)
        target = ResolvedTarget(scheme=scheme, host=host, port=port, addresses=addresses)
        self.check_addresses(target.host, target.addresses)
        effective = [_effective_address(ipaddress.ip_address(text)) for text in target.addresses]
        self.services.refuse(target.host, effective, target.port)
        return target

    def check_addresses(self, host: str, addresses: Iterable[str]) -> None:
        """Refuse unless every address of ``host`` is allowed; the message names the first refused one.

        An address passes when it lies in a listed network, or when the host is listed by name and
        the address is not loopback (a name does not open the worker's own services). Forbidden
        ranges (metadata, link-local, multicast, unspecified, broadcast) never pass. IPv4 addresses
        wrapped in IPv6 (mapped, compatible, 6to4, NAT64) are judged as the IPv4 address they carry.
        """
        by_name = not _is_ip_literal(host) and self.allows_name(host)
        checked = 0
        for text in addresses:
            checked += 1
            address = _effective_address(ipaddress.ip_address(text))
            forbidden = _forbidden_reason(address)
            if forbidden is not None:
                raise errors.CameraNotAllowed(
                    f"camera host {host} resolves to {address}, a {forbidden} address"
                )
            if any(address in network for network in self.networks):
                continue
            if by_name and not address.is_loopback:
                continue
            raise errors.CameraNotAllowed(
                f"camera host {host} resolves to {address}, which is outside ROLLCALL_CAMERA_ALLOW"
            )
        if checked == 0:
            raise errors.CameraUnreachable(f"camera host {host} resolved to no address")


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url.strip())
    except ValueError as exc:  # e.g. an unbalanced "[" in the host
        raise errors.InvalidInput(f"camera URL cannot be parsed: {exc}") from exc
    return parts


def _normalise_host(parts: SplitResult) -> str:
    """Lower-case ASCII host without brackets or trailing dot; refuse anything that is not a host."""
    host = parts.hostname or ""
    if _is_ip_literal(host):
        return host
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise errors.InvalidInput(f"camera host {host!r} is not a valid host name") from exc
    host = host.rstrip(".")
    if not _is_host_name(host):
        raise errors.InvalidInput(f"camera host {host!r} is not a valid host name")
    return host


def _port(parts: SplitResult, scheme: str) -> int:
    try:
        port = parts.port
    except ValueError as exc:
        # The message leaves out the text: after an unencoded "/" or "#" in a password, the "port" is
        # a piece of that password.
        raise errors.InvalidInput(
            "camera URL has an invalid port (a password with / # ? must be %-encoded)"
        ) from exc
    if port == 0:
        raise errors.InvalidInput("camera URL has port 0")
    return port if port is not None else DEFAULT_PORTS.get(scheme, 80)


def _resolve(host: str, port: int) -> tuple[str, ...]:
    """All addresses of ``host``, in resolver order, without duplicates.

    The system resolver also turns legacy numeric forms (``2130706433``, ``0x7f.1``, ``0177.1``)
    into the dotted address they really mean, so those are checked, not slipped past.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise errors.CameraUnreachable(f"camera host {host} does not resolve: {exc}") from exc
    addresses: dict[str, None] = {}
    for family, _type, _proto, _name, sockaddr in infos:
        if family in (socket.AF_INET, socket.AF_INET6):
            addresses[str(sockaddr[0])] = None
    return tuple(addresses)


def _is_host_name(host: str) -> bool:
    labels = host.split(".")
    return 0 < len(host) <= 253 and all(_HOST_LABEL.match(label) for label in labels)


def _is_canonical_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
        return True
    except ValueError:
        return False


def _is_ip_literal(host: str) -> bool:
    """An address in any form the resolver reads as one, including ``127.1`` and ``0x7f000001``."""
    if _is_canonical_address(host):
        return True
    try:
        socket.inet_aton(host)
        return True
    except (OSError, ValueError):  # ValueError: a NUL in the text, which no address has
        return False


def _effective_address(address: IPAddress) -> IPAddress:
    """The IPv4 address an IPv6 address carries (mapped, compatible, 6to4, NAT64), else itself."""
    if isinstance(address, ipaddress.IPv4Address):
        return address
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64_WELL_KNOWN:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    value = int(address)
    if 1 < value < 2**32:  # IPv4-compatible ::a.b.c.d (deprecated); :: and ::1 stay IPv6
        return ipaddress.IPv4Address(value)
    return address


def _forbidden_reason(address: IPAddress) -> str | None:
    if isinstance(address, ipaddress.IPv6Address) and address in _OPAQUE_NAT64:
        return "local-use NAT64"
    for network, why in _FORBIDDEN_NETWORKS:
        if address.version == network.version and address in network:
            return why
    return None
