"""How a TLS camera is trusted: the system store, a private CA, or its certificate's SHA-256 pinned.

Cameras ship self-signed certificates naming no address, so a school can pin a camera's certificate
by fingerprint (then only the fingerprint is checked, not the host name) or trust the CA that issued
its cameras' certificates (checked as usual, host name included). There is no way to turn
verification off. HTTPS fetches (``sources.pinned``) and RTSPS relays (``sources.rtsp_relay``)
apply the same policy.
"""

from __future__ import annotations

import hashlib
import hmac
import ssl
from dataclasses import dataclass, field

import certifi

import errors
from sources.endpoint import CameraEndpoint, TlsTrust


@dataclass(frozen=True)
class TlsPolicy:
    """One camera's trust: ``fingerprint_sha256`` (64 lower-case hex), else ``ca_pem``, else the system."""

    ca_pem: str | None = field(default=None, repr=False)
    fingerprint_sha256: str | None = None

    @classmethod
    def of(cls, endpoint: CameraEndpoint) -> TlsPolicy:
        return cls(ca_pem=endpoint.tls_ca_pem, fingerprint_sha256=endpoint.tls_fingerprint_sha256)

    @property
    def mode(self) -> TlsTrust:
        if self.fingerprint_sha256 is not None:
            return "fingerprint"
        return "ca" if self.ca_pem is not None else "system"

    def context(self) -> ssl.SSLContext:
        """A client context for this policy (the fingerprint itself is checked by ``check_peer``)."""
        if self.fingerprint_sha256 is not None:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            return context
        if self.ca_pem is not None:
            try:
                return ssl.create_default_context(cadata=self.ca_pem)
            except ssl.SSLError as exc:
                raise errors.InvalidInput(
                    f"the camera's tls_ca_pem is not a PEM certificate ({exc.reason})"
                ) from exc
        # The same store the HTTPS fetches use by default (requests' certifi bundle).
        return ssl.create_default_context(cafile=certifi.where())

    def check_peer(self, der: bytes | None, origin: str) -> None:
        """Refuse a pinned camera whose certificate is not the pinned one (no-op for other modes)."""
        if self.fingerprint_sha256 is None:
            return
        if der is None:
            raise errors.CameraTLSFailed(f"camera {origin} presented no certificate")
        presented = hashlib.sha256(der).hexdigest()
        if not hmac.compare_digest(presented, self.fingerprint_sha256):
            raise errors.CameraTLSFailed(
                f"camera {origin} presented a certificate with SHA-256 fingerprint {_colons(presented)}, "
                f"not the pinned {_colons(self.fingerprint_sha256)}"
            )


def _colons(digits: str) -> str:
    """``AB:CD:…``, as ``openssl x509 -fingerprint -sha256`` prints it (docs/cameras.md)."""
    return ":".join(digits[i : i + 2] for i in range(0, len(digits), 2)).upper()
