"""Where presence changes go over MQTT: ``ROLLCALL_MQTT_URL`` parsed once, named without its password.

``mqtt://[user:pass@]host[:port]`` (1883 by default) or ``mqtts://`` (TLS, 8883 by default; the system's
trust store, or ``ROLLCALL_MQTT_CA_FILE``). User and password are percent-decoded, so a password with
``@`` or ``/`` is written ``%40``, ``%2F``. This module imports no MQTT client, so ``settings`` can check
the URL at start without loading one.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class MqttTarget:
    """A broker and the credentials to connect to it with (the password never in ``repr`` or logs)."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = dataclasses.field(default=None, repr=False)

    @classmethod
    def parse(cls, url: str) -> MqttTarget:
        """``ValueError`` saying what is wrong with ``url``; its message never quotes the URL (it may hold a
        password)."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError:  # urllib's message may quote the netloc, password included
            raise ValueError("is not an MQTT URL, or its port is not a number from 1 to 65535") from None
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS:
            raise ValueError("must start with mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError("names no broker host (mqtt://host[:port])")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError("must be mqtt[s]://[user:password@]host[:port], with no path or query")
        if parts.password is not None and not parts.username:
            raise ValueError("has a password but no user name")
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_PORTS[scheme],
            tls=scheme == "mqtts",
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
        )

    def __str__(self) -> str:
        """``mqtt[s]://user@host:port``: what logs and messages show (never the password)."""
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{user}{host}:{self.port}"
