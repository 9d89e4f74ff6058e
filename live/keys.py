"""Where live cameras' state lives in Redis: the connection, and every key and channel name.

All of it is in the result backend's Redis (``ROLLCALL_RESULT_BACKEND``), beside the job records:
readers, the API and model workers all reach it, and every key expires by itself (a lease, a
heartbeat, a watcher, a shared frame) except the lease log, which is capped. Camera names are the
registry's (letters, digits, ``.``, ``_``, ``-``), so they are safe inside a key.
"""

from __future__ import annotations

import redis

from settings import Settings

PREFIX = "rollcall:live"
# Sorted set: reader id → when its heartbeat runs out (ms, Redis' clock). Readers alive share cameras.
READERS = f"{PREFIX}:readers"
# Sorted set: camera → when its last watcher's watch runs out (ms, Redis' clock). Live cameras.
DEMANDED = f"{PREFIX}:demanded"
# Stream: one entry per lease taken, taken over from a reader that died, released or lost (capped).
LEASE_LOG = f"{PREFIX}:lease-log"


def connect(settings: Settings) -> redis.Redis:
    """A client of the Redis live state is kept in; it gives up after ``ROLLCALL_BROKER_TIMEOUT_S``, so a
    Redis that does not answer delays a reader's round, a job or a request by that much at most."""
    return redis.Redis.from_url(
        settings.result_backend,
        socket_timeout=settings.broker_timeout_s,
        socket_connect_timeout=settings.broker_timeout_s,
    )


def lease(camera: str) -> str:
    """String ``<reader id> <token>``, with a TTL: who reads ``camera`` now."""
    return f"{PREFIX}:lease:{camera}"


def holder(camera: str) -> str:
    """String: the reader that last took ``camera``'s lease, deleted when it releases it (so a lease
    taken while it is still set was taken over from a reader that died or lost Redis)."""
    return f"{PREFIX}:holder:{camera}"


def watchers(camera: str) -> str:
    """Sorted set: watcher id → when its watch runs out (ms, Redis' clock)."""
    return f"{PREFIX}:watchers:{camera}"


def frame(camera: str) -> str:
    """Hash: the newest shared frame of ``camera`` (JPEG bytes, its time, number and size), with a TTL."""
    return f"{PREFIX}:frame:{camera}"


def status(camera: str) -> str:
    """Hash: how its reader is doing (reading, or the camera error it is retrying after), with a TTL."""
    return f"{PREFIX}:status:{camera}"


def events_channel(camera: str) -> str:
    """Pub/sub channel: one JSON live event per processed frame (``live.processing.ProcessedFrame``)."""
    return f"{PREFIX}:events:{camera}"


def presence_channel(camera: str) -> str:
    """Pub/sub channel: one JSON presence change (arrived/left) as ``live.processing.PresenceChange``."""
    return f"{PREFIX}:presence:{camera}"


def evidence(camera: str) -> str:
    """Sorted set: one JSON entry per identified track of ``camera`` (``live.evidence``), scored by when it
    was last seen; trimmed by age and count, with a TTL."""
    return f"{PREFIX}:evidence:{camera}"


def unknown_tracks(camera: str) -> str:
    """Sorted set: one JSON entry per track of ``camera`` that ended unidentified (``live.unknown_tracks``),
    scored by when it was last seen; trimmed by age and count, with a TTL."""
    return f"{PREFIX}:unknown-tracks:{camera}"


def tracked(camera: str) -> str:
    """Hash ``since``/``until``: since when a reader's processor has tracked ``camera`` and its latest frame
    (``live.evidence``), with a TTL."""
    return f"{PREFIX}:tracked:{camera}"
