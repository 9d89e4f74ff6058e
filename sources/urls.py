"""Camera and callback URLs, checked and named without what they may carry in secret.

A URL may hold a user and password, and its path or query a token: what leaves the process (logs,
Flower's task list, error messages, session summaries) names a URL through one of these helpers.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

# Every scheme a camera URL may have, with the port each means when the URL names none.
DEFAULT_PORTS = {"http": 80, "https": 443, "rtsp": 554, "rtsps": 322}
CAMERA_SCHEMES = tuple(DEFAULT_PORTS)


def is_camera_url(text: str) -> bool:
    """Whether ``text`` starts with ``http://``, ``https://``, ``rtsp://`` or ``rtsps://`` (any case)."""
    return text[:8].lower().startswith(tuple(f"{scheme}://" for scheme in CAMERA_SCHEMES))


def url_origin(url: str) -> str | None:
    """``host:port`` of a URL, without credentials, path or query; None when it cannot be parsed."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower(), 80)
    except ValueError:
        return None
    host = parts.hostname
    if not host:
        return None
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def without_credentials(url: str, *, keep_query: bool = True) -> str:
    """``url`` without user and password (and without query and fragment unless ``keep_query``)."""
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query, fragment = (parts.query, parts.fragment) if keep_query else ("", "")
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))
