"""Fetching one frame from an IP camera, whatever it speaks: the one entry point for every protocol.

``http``/``https`` snapshots and MJPEG streams go to ``sources.http_camera``; ``rtsp``/``rtsps``
streams to ``sources.rtsp_camera``. Both check the allowlist first, connect only to the checked
addresses, answer the camera's authentication challenge and keep to the same limits.
"""

from __future__ import annotations

import errors
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchedFrame, FetchLimits, FetchTrace
from sources.http_camera import fetch_http
from sources.netguard import CameraAllowlist

__all__ = ["FetchLimits", "FetchTrace", "FetchedFrame", "fetch_frame"]


def fetch_frame(
    endpoint: CameraEndpoint,
    allowlist: CameraAllowlist,
    limits: FetchLimits,
    trace: FetchTrace | None = None,
) -> FetchedFrame:
    """One frame from the camera at ``endpoint``, or a ``RollcallError`` with a stable code.

    ``camera_not_allowed`` (outside the allowlist), ``camera_unreachable`` (DNS, refused, reset),
    ``camera_timeout`` (connect or read timeout, budget spent), ``camera_tls_failed`` (certificate
    not trusted, fingerprint mismatch), ``camera_auth_failed`` (credentials refused or missing),
    ``camera_protocol_error`` (answered, but not with a frame), ``frame_too_large``.
    ``trace`` (optional) is filled in as the fetch goes, also when it fails.
    """
    trace = trace if trace is not None else FetchTrace()
    trace.tls = endpoint.tls
    scheme = endpoint.scheme
    if scheme in ("http", "https"):
        return fetch_http(endpoint, allowlist, limits, trace)
    if scheme in ("rtsp", "rtsps"):
        # Imported on first use: PyAV and OpenCV add ~50 MiB to a process, and an API process needs them
        # only if the page shows an RTSP camera (measured: importing webapi.cameras, 105 → 155 MiB).
        from sources.rtsp_camera import fetch_rtsp

        return fetch_rtsp(endpoint, allowlist, limits, trace)
    raise errors.CameraNotAllowed(
        f"camera URLs must be http, https, rtsp or rtsps, not {scheme or 'empty'!r}"
    )
