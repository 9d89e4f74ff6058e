"""``Idempotency-Key``: one job per caller, key and request within ``ROLLCALL_IDEMPOTENCY_WINDOW_S``.

A client that lost the answer to a submission (timeout, dropped connection) sends it again with the
same ``Idempotency-Key`` header: within the window it gets the same job back (``Idempotent-Replayed:
true``) instead of a second job. Keys are per caller (per API key), and a key sent again with a
different request answers 409 ``idempotency_conflict``. A key is held in Redis with one ``SET NX EX``,
so of two concurrent submissions exactly one queues a job (``webapi.jobclient.JobClient.submit_once``).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import redis

from contract.callers import Caller
from errors import IdempotencyConflict, InvalidInput

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class IdempotencyClaim:
    """Where one caller's ``Idempotency-Key`` is held in Redis, and a hash of the request it came with."""

    redis_key: str
    fingerprint: str
    window_s: int


def claim_for(key: str, caller: Caller, request: dict[str, Any], window_s: int) -> IdempotencyClaim:
    """The claim of ``caller``'s ``key`` for ``request`` (its JSON); a malformed key is ``invalid_input``."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise InvalidInput(f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")
    scope = hashlib.sha256(f"{caller.fingerprint}\0{key}".encode()).hexdigest()
    canonical = json.dumps(request, sort_keys=True, separators=(",", ":"))
    return IdempotencyClaim(
        redis_key=f"rollcall:idempotency:{scope}",
        fingerprint=hashlib.sha256(canonical.encode()).hexdigest(),
        window_s=window_s,
    )


def replayed_job(claim: IdempotencyClaim, held: bytes | str) -> str:
    """The job an earlier request holding the key created; ``IdempotencyConflict`` if it was another
    request (``held``: what the key holds)."""
    first = json.loads(held)
    if first["fingerprint"] != claim.fingerprint:
        raise IdempotencyConflict(
            "this Idempotency-Key was used for a different request; use a new key for a new request"
        )
    return str(first["job_id"])


class Idempotency:
    """The held keys, in the result backend's Redis (Redis errors are the caller's to map)."""

    def __init__(self, client: redis.Redis) -> None:
        self.client = client

    def hold(self, claim: IdempotencyClaim, job_id: str) -> tuple[bool, bytes | None]:
        """Take the key for ``job_id``: (True, None) when it holds it now; else (False, what the key
        holds), which is None when its holder gave it back or it expired meanwhile."""
        held = json.dumps({"job_id": job_id, "fingerprint": claim.fingerprint})
        if self.client.set(claim.redis_key, held, nx=True, ex=claim.window_s):
            return True, None
        holder: bytes | None = self.client.get(claim.redis_key)  # type: ignore[assignment]  # bytes client
        return False, holder

    def give_back(self, claim: IdempotencyClaim) -> None:
        """Release the key of a job that was never queued, so a retry with the key can queue it."""
        self.client.delete(claim.redis_key)
