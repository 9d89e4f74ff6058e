"""How each live camera's reading goes, in Redis: so the API can say why a live camera shows no frame.

The reader holding a camera writes it (``report``): ``connecting``, ``reading`` (with the frames
handed on), or ``retrying`` with the camera error that broke the stream (``camera_auth_failed``,
``camera_timeout``…: the codes of ``errors``) and when it tries again. Each write lives a little
longer than the state it describes, so a reader that died leaves no stale "reading" behind.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Literal

import redis

from live import keys

State = Literal["connecting", "reading", "retrying"]


@dataclass(frozen=True)
class CameraStatus:
    """One camera's reading, as its reader last reported it."""

    camera: str
    reader: str
    state: State
    since: float  # when this state began, seconds since the epoch
    frames: int = 0  # frames handed on since the reader took the camera
    error_code: str | None = None
    error_message: str | None = None
    retry_at: float | None = None  # seconds since the epoch

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


class StatusBoard:
    """Write and read live cameras' reading status."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client

    def report(self, status: CameraStatus, ttl_s: float) -> None:
        """Publish ``status`` for ``ttl_s`` seconds (the reader writes again before then while it holds
        the camera)."""
        self._client.set(
            keys.status(status.camera), json.dumps(status.to_dict()), px=max(1, int(ttl_s * 1000))
        )

    def read(self, camera: str) -> CameraStatus | None:
        """``camera``'s status, or None when no reader reports on it."""
        raw = self._client.get(keys.status(camera))
        return CameraStatus(**json.loads(raw)) if raw is not None else None

    def clear(self, camera: str) -> None:
        """The reader stopped reading ``camera`` (it is no longer live)."""
        self._client.delete(keys.status(camera))
