"""One camera as the workers reach it: its URL and what the camera registry keeps beside it.

A camera's credentials and trust settings travel inside the worker process only: a job names a
registered camera (``{"camera": "room12"}``) and the worker builds a ``CameraEndpoint`` from the
registry, so no password is ever in a job's arguments, Redis, Flower or a log. A plain URL job (or a
``ROLLCALL_UI_CAMERAS`` entry) becomes an endpoint whose credentials come from the URL's ``user:pass@``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CameraEndpoint:
    """Where a camera is and how to authenticate and trust it.

    ``url`` is ``http``, ``https``, ``rtsp`` or ``rtsps``; ``tls_fingerprint_sha256`` pins the
    camera's certificate (64 lower-case hex digits, no colons; the host name is then not checked, as
    cameras carry none), ``tls_ca_pem`` trusts a private CA; neither: the system trust store.
    """

    url: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls_fingerprint_sha256: str | None = None
    tls_ca_pem: str | None = field(default=None, repr=False)
