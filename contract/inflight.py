"""Work in flight per API key: the jobs and attendance-session frames one key has queued or running.

Both the API (job submissions) and the workers (session ticks, which queue frames on a key's behalf)
admit work here, and whoever sees the work end releases it, so one key's queued work is bounded
however it is sent: ``ROLLCALL_MAX_JOBS_IN_FLIGHT`` over everything, ``ROLLCALL_SESSION_MAX_QUEUED_FRAMES``
over session frames. Two Redis sorted sets per key (member: the job's id, score: when admitted) in the
result backend's Redis, which every API process and worker shares.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from settings import Settings

# Admit ARGV[5..] into every set of KEYS (all work, then optionally frames) unless a set would pass its
# limit; a limit only refuses while that set holds something, so one tick with more cameras than the
# frame limit still runs alone. Entries older than `stale` seconds are dropped first (work whose end no
# one could report: a worker killed at its hard limit, a broker lost with its queue).
_ADMIT = """
local now, stale = tonumber(ARGV[1]), tonumber(ARGV[2])
local count = #ARGV - 4
local limits = {tonumber(ARGV[3]), tonumber(ARGV[4])}
for i = 1, #KEYS do
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now - stale)
  local held = redis.call('ZCARD', KEYS[i])
  if limits[i] > 0 and held > 0 and held + count > limits[i] then return 0 end
end
for i = 1, #KEYS do
  for j = 5, #ARGV do redis.call('ZADD', KEYS[i], now, ARGV[j]) end
  redis.call('EXPIRE', KEYS[i], stale)
end
return 1
"""


def in_flight_key(owner: str) -> str:
    """The sorted set of one API key's jobs and session frames that are queued or running."""
    return f"rollcall:inflight:{owner}"


def frames_in_flight_key(owner: str) -> str:
    """The sorted set of one API key's session frames that are queued or running."""
    return f"rollcall:inflight-frames:{owner}"


@dataclass(frozen=True)
class InFlight:
    """One Redis connection's view of every key's work in flight."""

    client: redis.Redis
    stale_s: int  # when an entry surely outlived its work

    @classmethod
    def of(cls, client: redis.Redis, settings: Settings) -> InFlight:
        """Entries go stale after a lost job's redelivery (the visibility timeout) and one hard limit."""
        return cls(client, settings.visibility_timeout_s() + int(settings.job_time_limit_s))

    def admit_jobs(self, owner: str, job_ids: Sequence[str], limit: int) -> bool:
        """Count ``job_ids`` as ``owner``'s unless its work in flight would pass ``limit`` (0: none)."""
        return self._admit([in_flight_key(owner)], job_ids, [limit, 0])

    def admit_frames(self, owner: str, frame_ids: Sequence[str], limit: int, frames_limit: int) -> bool:
        """Count a tick's frames as ``owner``'s work and frames, unless either count would pass its limit."""
        keys = [in_flight_key(owner), frames_in_flight_key(owner)]
        return self._admit(keys, frame_ids, [limit, frames_limit])

    def release(self, owner: str, job_id: str) -> None:
        """The work ended, or will never run: it counts no more (a frame leaves both sets)."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zrem(in_flight_key(owner), job_id)
            pipe.zrem(frames_in_flight_key(owner), job_id)
            pipe.execute()

    def _admit(self, keys: list[str], ids: Sequence[str], limits: list[int]) -> bool:
        if not ids:
            return True
        admitted = self.client.eval(_ADMIT, len(keys), *keys, time.time(), self.stale_s, *limits, *ids)
        return bool(admitted)
