"""Leases: which reader reads which camera, and which readers are alive to share the cameras.

A camera is read by the one reader holding its lease: a Redis key set with ``NX`` and a TTL, its
value the reader's id and a random token only that reader knows. The holder renews it well inside
the TTL (compare the token, then extend) and deletes it when it stops (compare, then delete); a
reader that dies (SIGKILL, power, a network cut) stops renewing, and once the TTL has run out another
reader takes the camera. Every change is appended to a capped log (``live.keys.LEASE_LOG``).

Never two at once: a holder trusts its lease only until ``valid_until`` (its own monotonic clock, from
*before* it sent the command that set the TTL), and stops reading a camera whose renewal it could
not confirm before then (``Lease.expiring``), while Redis gives the key to nobody else until the TTL
has run out on Redis' clock.

Readers also beat a heartbeat with the same TTL (``heartbeat``): the number of readers alive is what
each one divides the live cameras by to take no more than its share.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import redis

from live import keys

_LOG_LENGTH = 1000  # lease log entries kept (approximately: Redis trims whole nodes)

# KEYS: lease, holder, log. ARGV: value, ttl ms, reader, camera, log length.
# A lease taken while a holder is still named was never released: its reader died or lost Redis.
_ACQUIRE = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return false end
local previous = redis.call('SET', KEYS[2], ARGV[3], 'GET', 'EX', 86400)
local event = 'acquired'
if previous and previous ~= ARGV[3] then event = 'took-over' end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
           'camera', ARGV[4], 'reader', ARGV[3], 'event', event, 'from', previous or '')
return {event, previous or ''}
"""
# KEYS: lease. ARGV: value, ttl ms.
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# KEYS: lease, holder, log. ARGV: value, reader, camera, event, log length.
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*',
           'camera', ARGV[3], 'reader', ARGV[2], 'event', ARGV[4], 'from', '')
return 1
"""
# KEYS: readers. ARGV: reader, ttl ms. Returns how many readers are alive (this one included).
_HEARTBEAT = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZCARD', KEYS[1])
"""


@dataclass
class Lease:
    """One camera held by this reader, trusted until ``valid_until`` (``time.monotonic()``)."""

    camera: str
    value: str  # "<reader id> <token>": what Redis holds while it is ours
    valid_until: float
    took_over_from: str | None  # the reader that held it before and never released it

    def expiring(self, margin_s: float) -> bool:
        """Whether less than ``margin_s`` is left of the time this lease is known to be ours."""
        return time.monotonic() + margin_s >= self.valid_until


class Leases:
    """Take, renew and give back camera leases for one reader, and beat its heartbeat."""

    def __init__(self, client: redis.Redis, reader_id: str, ttl_s: float) -> None:
        self.reader_id = reader_id
        self.ttl_ms = int(ttl_s * 1000)
        self._client = client
        self._acquire = client.register_script(_ACQUIRE)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._heartbeat = client.register_script(_HEARTBEAT)

    def acquire(self, camera: str) -> Lease | None:
        """The lease on ``camera`` if nobody holds it, else None."""
        value = f"{self.reader_id} {secrets.token_hex(8)}"
        sent = time.monotonic()
        taken = self._acquire(
            keys=[keys.lease(camera), keys.holder(camera), keys.LEASE_LOG],
            args=[value, self.ttl_ms, self.reader_id, camera, _LOG_LENGTH],
        )
        if not taken:
            return None
        event, previous = (_text(part) for part in taken)
        return Lease(camera, value, sent + self.ttl_ms / 1000, previous if event == "took-over" else None)

    def renew(self, lease: Lease) -> bool:
        """Extend ``lease`` by the TTL; False when it is no longer ours (it ran out and was taken)."""
        sent = time.monotonic()
        if not self._renew(keys=[keys.lease(lease.camera)], args=[lease.value, self.ttl_ms]):
            return False
        lease.valid_until = sent + self.ttl_ms / 1000
        return True

    def release(self, lease: Lease, event: str = "released") -> bool:
        """Give ``lease`` back (logged as ``event``); False when it was no longer ours."""
        camera = lease.camera
        released = self._release(
            keys=[keys.lease(camera), keys.holder(camera), keys.LEASE_LOG],
            args=[lease.value, self.reader_id, camera, event, _LOG_LENGTH],
        )
        return bool(released)

    def lost(self, lease: Lease) -> None:
        """Record that ``lease`` ran out before this reader could renew it (another may hold it now)."""
        self._client.xadd(
            keys.LEASE_LOG,
            {"camera": lease.camera, "reader": self.reader_id, "event": "lost", "from": ""},
            maxlen=_LOG_LENGTH,
            approximate=True,
        )

    def holder(self, camera: str) -> str | None:
        """The id of the reader holding ``camera`` now, or None."""
        value = self._client.get(keys.lease(camera))
        return _text(value).split(" ", 1)[0] if value is not None else None

    def heartbeat(self) -> int:
        """Say this reader is alive for another TTL; how many readers are alive now (at least 1)."""
        return int(self._heartbeat(keys=[keys.READERS], args=[self.reader_id, self.ttl_ms]))

    def leave(self) -> None:
        """This reader stops: the others share the cameras among themselves at once."""
        self._client.zrem(keys.READERS, self.reader_id)


def lease_log(client: redis.Redis, count: int = 100) -> list[dict[str, str]]:
    """The newest ``count`` lease log entries, oldest first: ``{"camera", "reader", "event", "from"}``."""
    entries = client.xrevrange(keys.LEASE_LOG, count=count) or []
    return [{_text(k): _text(v) for k, v in (fields or {}).items()} for _, fields in reversed(entries)]


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
