"""``/v1/cameras/<name>/watch``: keeping a camera live, and what its stream reader reports.

A camera is *live* (read continuously by one stream reader, its newest frame shared through Redis)
while someone watches it (``live.demand``). A client that shows a camera declares it here and repeats
the call while it stays (``ttl_s``, default ``ROLLCALL_LIVE_WATCH_TTL_S``); ``DELETE`` ends its watch
at once, and a watch not repeated ends by itself. Watcher ids are the caller's own: one API key can
neither renew nor end another's watch. The page's frame endpoint counts as a watcher by itself.
"""

from __future__ import annotations

import re
import secrets
from typing import Any

import redis
from flask import Blueprint, Response, jsonify
from pydantic import BaseModel, ConfigDict, Field

from errors import BrokerUnavailable, InvalidInput
from facebank.limits import CAMERA_NAME
from settings import MAX_WATCH_TTL_S
from webapi.auth import current_caller
from webapi.services import cameras, current_settings, live_cameras
from webapi.validation import documented, parse_body

bp = Blueprint("live", __name__, url_prefix="/v1/cameras")
WATCHER_ID = r"^[A-Za-z0-9._-]{1,64}$"
NAME_PARAMETER = {"name": {"type": "string", "pattern": CAMERA_NAME}}
WATCH_PARAMETERS = {**NAME_PARAMETER, "watcher_id": {"type": "string", "pattern": WATCHER_ID}}


class WatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    watcher_id: str | None = Field(
        None,
        pattern=WATCHER_ID,
        description="Your name for this watch, to renew or end it; left out: a new one is made and returned.",
    )
    ttl_s: float | None = Field(
        None,
        ge=1,
        le=MAX_WATCH_TTL_S,
        description="Seconds the camera stays live unless you watch again; default "
        "ROLLCALL_LIVE_WATCH_TTL_S.",
    )


class LiveFrameOut(BaseModel):
    """The newest frame the camera's reader shared (fresh or not)."""

    frame_no: int
    ts: float = Field(description="When the reader decoded it (seconds since the epoch).")
    age_ms: int = Field(description="Since the reader wrote it, by Redis' clock.")
    width: int
    height: int


class ReaderStatusOut(BaseModel):
    """What the camera's stream reader last reported."""

    reader: str = Field(description="The reader's Celery node name.")
    state: str = Field(description="`connecting`, `reading` or `retrying` (after `error_code`).")
    since: float
    frames: int
    error_code: str | None
    error_message: str | None
    retry_at: float | None


class WatchOut(BaseModel):
    camera: str
    watcher_id: str
    ttl_s: float
    reader: ReaderStatusOut | None = Field(description="Null until a reader has taken the camera.")
    frame: LiveFrameOut | None = Field(description="Null until the reader has shared a frame.")


@bp.post("/<name>/watch")
@documented(
    "Keep the camera live (read continuously, its newest frame shared) for `ttl_s` seconds; repeat to stay. "
    "Answers what its reader reports and its newest shared frame.",
    body=WatchRequest,
    responses={200: WatchOut},
    tag="cameras",
    path=NAME_PARAMETER,
)
def watch_camera(name: str) -> Any:
    body = parse_body(WatchRequest)
    cameras().get(name)  # camera_not_found for a name nobody knows
    watcher_id = body.watcher_id or secrets.token_urlsafe(12)
    ttl_s = body.ttl_s or current_settings().live_watch_ttl_s
    live = live_cameras()
    try:
        live.demand.watch(name, _scoped(watcher_id), ttl_s)
        status = live.status.read(name)
        shared = live.frames.latest(name, max_age_s=float("inf"))
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"Redis, where live cameras are kept, does not answer ({exc})") from exc
    frame = None
    if shared is not None:
        frame = LiveFrameOut(
            frame_no=shared.frame_no,
            ts=shared.ts,
            age_ms=round(shared.age_s * 1000),
            width=shared.width,
            height=shared.height,
        )
    reader = ReaderStatusOut.model_validate(status.to_dict()) if status is not None else None
    answer = WatchOut(camera=name, watcher_id=watcher_id, ttl_s=ttl_s, reader=reader, frame=frame)
    return jsonify(answer.model_dump(mode="json"))


@bp.delete("/<name>/watch/<watcher_id>")
@documented(
    "End your watch on the camera now; it stops being read within seconds unless someone else watches it.",
    responses={204: None},
    tag="cameras",
    path=WATCH_PARAMETERS,
)
def leave_camera(name: str, watcher_id: str) -> Any:
    cameras().get(name)  # camera_not_found for a name nobody knows
    if re.match(WATCHER_ID, watcher_id) is None:
        raise InvalidInput("watcher_id: letters, digits, '.', '_' or '-', 1 to 64 of them")
    try:
        live_cameras().demand.leave(name, _scoped(watcher_id))
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"Redis, where live cameras are kept, does not answer ({exc})") from exc
    return Response(status=204)


def _scoped(watcher_id: str) -> str:
    """The watcher id as stored: the caller's identity (a key's hash) before it."""
    caller = current_caller()
    return f"{caller.fingerprint if caller is not None else 'cli'}/{watcher_id}"
