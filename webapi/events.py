"""``GET /v1/cameras/<name>/events``: a camera's live events, as Server-Sent Events, while the client stays.

One ``data:`` line per processed frame (``live.events.StreamEvent``: camera, ts, frame_size, tracks),
at most ``fps`` a second (query; default and upper bound ``ROLLCALL_LIVE_EVENTS_MAX_FPS``), newest kept.
The stream is a watcher of the camera (``live.eventstream``): opening it makes the camera live, leaving
lets it go. The key goes in the ``X-API-Key`` header like every other call (the page reads the stream
with ``fetch``, never ``EventSource``, which cannot send headers and would need the key in the URL).

Each open stream holds one thread of its API process for as long as the client stays (gunicorn's
``gthread`` workers: ``--threads``), so an API process serves at most ``ROLLCALL_LIVE_EVENTS_MAX_STREAMS``
at once and answers one more with ``503 too_many_event_streams`` and ``Retry-After``; the other threads
stay free for the rest of the API.
"""

from __future__ import annotations

import secrets
from typing import Any

import redis
from flask import Blueprint, Response
from pydantic import BaseModel, ConfigDict, Field

from errors import BrokerUnavailable, InvalidInput
from facebank.limits import CAMERA_NAME
from live.eventstream import EventStream, StreamConfig
from webapi.auth import current_caller
from webapi.services import cameras, current_settings, live_cameras
from webapi.validation import documented, parse_query

bp = Blueprint("events", __name__, url_prefix="/v1/cameras")
NAME_PARAMETER = {"name": {"type": "string", "pattern": CAMERA_NAME}}


class EventsQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fps: float | None = Field(
        None,
        gt=0,
        description="Most events a second; default and upper bound ROLLCALL_LIVE_EVENTS_MAX_FPS. Events "
        "coming faster are dropped, the newest kept.",
    )


@bp.get("/<name>/events")
@documented(
    "The camera's live events as Server-Sent Events (`text/event-stream`) while you stay: one `data:` line "
    "per processed frame, the JSON `{camera, ts, frame_size, tracks: [{track_id, box, landmarks, person_id, "
    "name, confidence, embedded}]}` (`live/events.py` StreamEvent), at most `fps` a second, newest kept; "
    "`: keepalive` comments when idle. The stream keeps the camera live; it stops being read within seconds "
    "of its last watcher leaving. Each stream holds a thread of the API process: over "
    "ROLLCALL_LIVE_EVENTS_MAX_STREAMS, 503 `too_many_event_streams` with `Retry-After`.",
    query=EventsQuery,
    responses={200: None},
    tag="cameras",
    path=NAME_PARAMETER,
)
def camera_events(name: str) -> Any:
    settings = current_settings()
    query = parse_query(EventsQuery)
    if query.fps is not None and query.fps > settings.live_events_max_fps:
        raise InvalidInput(
            f"fps: at most {settings.live_events_max_fps:g} (ROLLCALL_LIVE_EVENTS_MAX_FPS), got {query.fps:g}"
        )
    cameras().get(name)  # camera_not_found for a name nobody knows
    caller = current_caller()
    watcher = f"{caller.fingerprint}/events-{secrets.token_urlsafe(9)}"
    config = StreamConfig(
        fps=query.fps or settings.live_events_max_fps, watch_ttl_s=settings.live_watch_ttl_s
    )
    live = live_cameras()
    live.streams.take()
    try:  # a stream that fails to open gives its slot back itself (on_close)
        stream = EventStream(live.client, name, watcher, config, on_close=live.streams.give_back)
    except redis.RedisError as exc:
        raise BrokerUnavailable(f"Redis, where live events pass, does not answer ({exc})") from exc
    response = Response(stream, mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once, never buffer the stream
    response.call_on_close(stream.close)  # the client left, or the server ends the response: stop watching
    return response
