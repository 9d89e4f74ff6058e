"""Admission: whether a caller may queue more work now, and the release of that work when it ends.

One module for both sides. The API admits each submission (``admit_submission``: submissions per
minute; ``admit_job``: jobs queued or running) and releases a job that will never run (revoked, never
queued). Workers admit the frames a session tick queues on its owner's behalf (``admit_frames``) and
release every job and frame when it ends or is skipped (through ``contract.records.JobRecords.ended``).
So one key's queued work is bounded however it is sent: ``ROLLCALL_MAX_JOBS_IN_FLIGHT`` over
everything, ``ROLLCALL_SESSION_MAX_QUEUED_FRAMES`` over session frames,
``ROLLCALL_RATE_LIMIT_PER_MINUTE`` over submissions. Admin keys and operators are not limited.

The counts live in the result backend's Redis, which every API process and worker shares: two sorted
sets per key (member: the job's id, score: when admitted) and one counter per key and minute.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import redis

from contract.callers import Caller
from errors import RateLimited, TooManyJobsInFlight
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
RATE_WINDOW_S = 60


def in_flight_key(owner: str) -> str:
    """The sorted set of one API key's jobs and session frames that are queued or running."""
    return f"rollcall:inflight:{owner}"


def frames_in_flight_key(owner: str) -> str:
    """The sorted set of one API key's session frames that are queued or running."""
    return f"rollcall:inflight-frames:{owner}"


def rate_key(fingerprint: str, window: int) -> str:
    """One caller's submissions in one minute (``window``: minutes since the epoch)."""
    return f"rollcall:rate:{fingerprint}:{window}"


@dataclass(frozen=True)
class Limits:
    """The limits admission applies (0: none), and when an entry surely outlived its work."""

    per_minute: int
    jobs_in_flight: int
    frames_in_flight: int
    stale_s: int

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        """Entries go stale after a lost job's redelivery (the visibility timeout) and one hard limit."""
        return cls(
            per_minute=settings.rate_limit_per_minute,
            jobs_in_flight=settings.max_jobs_in_flight,
            frames_in_flight=settings.session_max_queued_frames,
            stale_s=settings.visibility_timeout_s() + int(settings.job_time_limit_s),
        )


def rate_refusal(limit: int, count: int, now: float) -> RateLimited | None:
    """The error for the ``count``-th submission of a minute over ``limit`` (None: admitted), with when
    the next minute starts."""
    if limit == 0 or count <= limit:
        return None
    refused = RateLimited(f"more than {limit} job submissions in a minute from this API key")
    refused.retry_after_s = int((int(now // RATE_WINDOW_S) + 1) * RATE_WINDOW_S - now) + 1
    return refused


class Admission:
    """Every key's admitted work, through one Redis connection (the API's, or a worker's).

    Redis errors are the caller's to map: the API answers 503, a worker's connection retries.
    """

    def __init__(self, client: redis.Redis, limits: Limits) -> None:
        self.client = client
        self.limits = limits

    @classmethod
    def of(cls, client: redis.Redis, settings: Settings) -> Admission:
        return cls(client, Limits.of(settings))

    def admit_submission(self, caller: Caller) -> None:
        """Count one submission against the caller's rate; ``RateLimited`` (429) over the limit.

        Fixed one-minute windows per caller, kept in Redis (shared by every API process).
        """
        if not caller.limited or self.limits.per_minute == 0:
            return
        now = time.time()
        key = rate_key(caller.fingerprint, int(now // RATE_WINDOW_S))
        with self.client.pipeline() as pipe:
            pipe.incr(key)
            pipe.expire(key, 2 * RATE_WINDOW_S)
            count, _ = pipe.execute()
        refused = rate_refusal(self.limits.per_minute, int(count), now)
        if refused is not None:
            raise refused

    def admit_job(self, caller: Caller, job_id: str) -> None:
        """Count ``job_id`` as the caller's work in flight; ``TooManyJobsInFlight`` (429) over the limit."""
        limit = self.limits.jobs_in_flight
        if not caller.limited or limit == 0:
            return
        if not self._admit([in_flight_key(caller.fingerprint)], [job_id], [limit, 0]):
            refused = TooManyJobsInFlight(
                f"this API key has {limit} jobs queued or running; submit more when one has ended"
            )
            refused.retry_after_s = 2
            raise refused

    def admit_frames(self, owner: str | None, frame_ids: Sequence[str]) -> bool:
        """Count a tick's frames as ``owner``'s work and frames, unless either count would pass its limit
        (a session without an owner, an admin's, is not limited)."""
        if owner is None:
            return True
        keys = [in_flight_key(owner), frames_in_flight_key(owner)]
        return self._admit(keys, frame_ids, [self.limits.jobs_in_flight, self.limits.frames_in_flight])

    def release(self, owner: str | None, job_id: str) -> None:
        """The work ended, or will never run: it counts no more (a frame leaves both sets)."""
        if not owner:
            return
        with self.client.pipeline(transaction=False) as pipe:
            pipe.zrem(in_flight_key(owner), job_id)
            pipe.zrem(frames_in_flight_key(owner), job_id)
            pipe.execute()

    def _admit(self, keys: list[str], ids: Sequence[str], limits: list[int]) -> bool:
        if not ids:
            return True
        admitted = self.client.eval(_ADMIT, len(keys), *keys, time.time(), self.limits.stale_s, *limits, *ids)
        return bool(admitted)
