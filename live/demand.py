"""Demand: which cameras are live, because someone watches them or a session uses them.

A watcher (the page's frame endpoint, ``POST /v1/cameras/<name>/watch``, an event stream, a live
session) calls ``watch(camera, watcher_id, ttl_s)`` and repeats it while it stays; each watch runs
out by itself after its TTL, so a watcher that vanishes (a closed tab, a killed process) needs no
goodbye. ``leave`` ends a watch at once. A camera is live while at least one watch on it has not run
out; readers ask ``live_cameras`` about once a second and stop reading a camera within that second
of its last watch ending.

Times are Redis' own (``TIME`` inside the scripts), so watchers and readers on machines whose clocks
disagree still agree on when a watch runs out.
"""

from __future__ import annotations

import redis

from live import keys

_NOW_MS = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
"""
# KEYS: watchers(camera), demanded. ARGV: watcher, ttl ms, camera.
_WATCH = (
    _NOW_MS
    + """
local expiry = ms + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIREAT', KEYS[1], last[2])
redis.call('ZADD', KEYS[2], last[2], ARGV[3])
return 1
"""
)
# KEYS: watchers(camera), demanded. ARGV: watcher, camera.
_LEAVE = (
    _NOW_MS
    + """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
if #last == 0 then
  redis.call('ZREM', KEYS[2], ARGV[2])
  return 0
end
redis.call('ZADD', KEYS[2], last[2], ARGV[2])
return 1
"""
)
# KEYS: demanded. Returns the cameras with a watch that has not run out.
_LIVE = (
    _NOW_MS
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
return redis.call('ZRANGE', KEYS[1], 0, -1)
"""
)


class Demand:
    """Watches on cameras, in Redis: who keeps which camera live, and until when."""

    def __init__(self, client: redis.Redis) -> None:
        self._watch = client.register_script(_WATCH)
        self._leave = client.register_script(_LEAVE)
        self._live = client.register_script(_LIVE)

    def watch(self, camera: str, watcher_id: str, ttl_s: float) -> None:
        """Keep ``camera`` live for ``ttl_s`` more seconds on behalf of ``watcher_id`` (repeat to stay)."""
        self._watch(
            keys=[keys.watchers(camera), keys.DEMANDED], args=[watcher_id, max(1, int(ttl_s * 1000)), camera]
        )

    def leave(self, camera: str, watcher_id: str) -> bool:
        """End ``watcher_id``'s watch on ``camera`` now; whether the camera is still live (others watch)."""
        return bool(self._leave(keys=[keys.watchers(camera), keys.DEMANDED], args=[watcher_id, camera]))

    def live_cameras(self) -> list[str]:
        """The cameras someone watches now, by name."""
        names = self._live(keys=[keys.DEMANDED])
        return sorted(name.decode() if isinstance(name, bytes) else name for name in names)
