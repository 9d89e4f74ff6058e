"""One camera as the workers reach it: its URL and what the camera registry keeps beside it.

A camera's credentials and trust settings travel inside the worker process only: a job names a
registered camera (``{"camera": "room12"}``) and the worker builds a ``CameraEndpoint`` from the
registry, so no password is ever in a job's arguments, Redis, Flower or a log. A plain URL job (or a
``ROLLCALL_UI_CAMERAS`` entry) becomes an endpoint whose credentials come from the URL's ``user:pass@``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import unquote, urlsplit

import errors
from sources.urls import without_credentials

TLS_SCHEMES = ("https", "rtsps")
# How a fetch proved whom it spoke to: the TLS certificate's check (``none``: not TLS at all).
TlsTrust = Literal["system", "ca", "fingerprint", "none"]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class CameraEndpoint:
    """Where a camera is and how to authenticate and trust it.

    ``url`` is ``http``, ``https``, ``rtsp`` or ``rtsps``; ``tls_fingerprint_sha256`` pins the
    camera's certificate (64 hex digits, colons and case ignored, stored normalised; the host name
    is then not checked, as cameras carry none), ``tls_ca_pem`` trusts a private CA (PEM) instead of
    the system store; neither: the system trust store. A ``user:pass@`` in ``url`` is moved into
    ``username``/``password`` (percent-decoded), so ``url`` never carries a credential.
    """

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_fingerprint_sha256: str | None = None
    tls_ca_pem: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        parts = urlsplit(self.url.strip())
        if parts.username is not None or parts.password is not None:
            if self.username is not None or self.password is not None:
                raise errors.InvalidInput("give a camera's credentials in its URL or beside it, not both")
            # urlsplit takes the userinfo up to the last "@", so an unencoded "@" stays in the password.
            object.__setattr__(self, "username", unquote(parts.username or ""))
            object.__setattr__(self, "password", unquote(parts.password or ""))
            object.__setattr__(self, "url", without_credentials(self.url.strip()))
        if self.tls_fingerprint_sha256 is not None:
            object.__setattr__(
                self, "tls_fingerprint_sha256", normalise_fingerprint(self.tls_fingerprint_sha256)
            )
        if self.tls_fingerprint_sha256 is not None and self.tls_ca_pem is not None:
            raise errors.InvalidInput("give a camera tls_fingerprint_sha256 or tls_ca_pem, not both")
        if self.tls != "none" and self.scheme not in TLS_SCHEMES:
            raise errors.InvalidInput(f"TLS trust is set for a {self.scheme or 'scheme-less'} camera URL")

    @property
    def scheme(self) -> str:
        """The URL's scheme, lower case."""
        return urlsplit(self.url).scheme.lower()

    @property
    def tls(self) -> TlsTrust:
        """How this camera's certificate is checked: ``fingerprint``, ``ca``, ``system``, or ``none``."""
        if self.tls_fingerprint_sha256 is not None:
            return "fingerprint"
        if self.tls_ca_pem is not None:
            return "ca"
        return "system" if self.scheme in TLS_SCHEMES else "none"

    @property
    def has_credentials(self) -> bool:
        return bool(self.username) or bool(self.password)


def normalise_fingerprint(text: str) -> str:
    """A SHA-256 certificate fingerprint as 64 lower-case hex digits (colons, spaces and case ignored)."""
    digits = re.sub(r"[\s:]", "", text).lower()
    if not _HEX64.match(digits):
        raise errors.InvalidInput(
            "tls_fingerprint_sha256 must be the certificate's SHA-256: 64 hex digits, colons allowed"
        )
    return digits
