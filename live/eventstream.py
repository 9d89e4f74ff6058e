"""A camera's live events as Server-Sent Events, for one client, at the rate it asked for.

``GET /v1/cameras/<name>/events`` (``webapi.events``) hands its response one ``EventStream``. The stream
subscribes to the camera's events channel (``live.keys``: the reader's ``EventPublisher`` publishes one
event per processed frame there) and *is* a watcher of the camera (``live.demand``): it watches on
opening, renews the watch while the client stays, and leaves on closing, so the camera is read while
someone follows its events and let go within a second or two of the last one leaving (a watch whose API
process died runs out by itself after its TTL).

Rate: at most one event per ``1 / fps`` seconds; an event that comes sooner waits, and a newer one
replaces it (the older is dropped): the client always gets the camera's newest state, never a backlog.
A comment line (``: keepalive``) goes out when nothing was sent for ``keepalive_s``, so proxies keep
the connection open and a client that left is noticed (a write to its closed connection fails, and
the server closes the stream) even while the camera sends no events.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis

from live import keys
from live.demand import Demand
from live.events import StreamEvent

log = logging.getLogger("rollcall.live")

KEEPALIVE_S = 2.0  # proxies close idle streams after tens of seconds; a client that left is noticed by this
STREAMED_FIELDS = tuple(StreamEvent.model_fields)  # the event as the issue defines it: no processor timings


@dataclass(frozen=True)
class StreamConfig:
    """How one stream runs: its rate, and how its watch is kept."""

    fps: float
    watch_ttl_s: float  # each watch's TTL (ROLLCALL_LIVE_WATCH_TTL_S); renewed well before it runs out
    keepalive_s: float = KEEPALIVE_S

    @property
    def renew_every_s(self) -> float:
        return min(1.0, self.watch_ttl_s / 3)


class EventStream:
    """One client's stream of ``camera``'s events; iterate for the SSE bytes, ``close`` when it ends.

    Opening subscribes and watches at once (the camera goes live before the first byte is sent);
    ``close`` unsubscribes, ends the watch and runs ``on_close`` (the API gives its stream slot back).
    It is safe to ``close`` a stream that was never iterated, and to close it twice.
    """

    def __init__(
        self,
        client: redis.Redis,
        camera: str,
        watcher_id: str,
        config: StreamConfig,
        on_close: Callable[[], None] = lambda: None,
    ) -> None:
        self.camera = camera
        self._watcher_id = watcher_id
        self._config = config
        self._on_close = on_close
        self._closed = False
        self._demand = Demand(client)
        self._pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            self._pubsub.subscribe(keys.events_channel(camera))  # before watching: no event is missed
            self._demand.watch(camera, watcher_id, config.watch_ttl_s)
        except BaseException:
            self.close()  # on_close runs: a stream that failed to open holds nothing
            raise

    def __iter__(self) -> Iterator[bytes]:
        return self._events()

    def _events(self) -> Iterator[bytes]:
        config = self._config
        interval = 1.0 / config.fps
        yield b"retry: 2000\n: stream of " + self.camera.encode() + b"\n\n"
        now = time.monotonic()
        renew_at, last_write, sent_at = now + config.renew_every_s, now, -interval
        pending: bytes | None = None
        try:
            while not self._closed:
                now = time.monotonic()
                if pending is not None and now >= sent_at + interval:
                    yield _data(pending)
                    pending, sent_at, last_write = None, now, now
                elif now >= last_write + config.keepalive_s:
                    yield b": keepalive\n\n"
                    last_write = now
                if now >= renew_at:
                    self._demand.watch(self.camera, self._watcher_id, config.watch_ttl_s)
                    renew_at = now + config.renew_every_s
                due = [renew_at, last_write + config.keepalive_s]
                if pending is not None:
                    due.append(sent_at + interval)
                message = self._pubsub.get_message(timeout=max(0.0, min(due) - time.monotonic()))
                if message is not None and message["type"] == "message":
                    pending = message["data"]  # a newer event replaces one still waiting for its turn
        except redis.RedisError as exc:
            # Mid-stream the status is sent already: the client learns it from a named event, and reconnects.
            log.warning("live events of %s: Redis does not answer (%s); the stream ends", self.camera, exc)
            error = {
                "code": "broker_unavailable",
                "message": "Redis, where live events pass, does not answer",
            }
            yield b"event: error\ndata: " + json.dumps({"error": error}).encode() + b"\n\n"

    def close(self) -> None:
        """The client left (or the stream ended): stop following the camera."""
        if self._closed:
            return
        self._closed = True
        try:
            self._demand.leave(self.camera, self._watcher_id)
        except redis.RedisError as exc:  # the watch runs out by itself within its TTL
            log.warning("live events of %s: watch not ended (Redis: %s)", self.camera, exc)
        try:
            self._pubsub.close()
        finally:
            self._on_close()


def _data(raw: bytes) -> bytes:
    """One SSE event: the processor's event as the stream defines it (``StreamEvent``), on one line."""
    event = json.loads(raw)
    streamed = {field: event[field] for field in STREAMED_FIELDS}
    return b"data: " + json.dumps(streamed, separators=(",", ":")).encode() + b"\n\n"
