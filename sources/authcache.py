"""The Digest challenges cameras sent, remembered per worker process so the next fetch answers at once.

A Digest camera's first fetch costs two requests (the 401 challenge, then the answer); with the
camera's nonce kept here (and its counter ``nc`` raised at each use, RFC 7616 3.4.5) every later
fetch sends its answer with the first request, one round trip like a snapshot without a password.
A Digest answer is a hash bound to the camera's nonce, so sending it first reveals nothing. Basic
is never remembered: it is the password itself, so it goes only in answer to a Basic challenge of
that very request (never to a camera, or a path of one, that asked for Digest).

This is a cache, not state: it holds what cameras published (realm, nonce, opaque), never a
password; it is bounded; a lost or stale entry costs one extra round trip and nothing else. Entries
are keyed by the addresses actually connected to, as well as the URL's origin and the user, so a
name that resolves elsewhere later is challenged afresh.
"""

from __future__ import annotations

import secrets
import threading
from collections import OrderedDict
from dataclasses import dataclass

from sources.challenge import Challenge, basic_authorization, digest_authorization

CacheKey = tuple[str, str, int, tuple[str, ...], str]  # scheme, host, port, checked addresses, user


@dataclass
class _Entry:
    challenge: Challenge
    uses: int = 0  # requests answered with this challenge's nonce so far (``nc`` of the last one)


class ChallengeCache:
    """Bounded, thread-safe map from a camera and user to the last challenge it sent (LRU)."""

    def __init__(self, size: int = 256) -> None:
        self._size = size
        self._entries: OrderedDict[CacheKey, _Entry] = OrderedDict()
        self._lock = threading.Lock()

    def answer(
        self, key: CacheKey, challenge: Challenge, method: str, uri: str, username: str, password: str
    ) -> str:
        """The ``Authorization`` answering ``challenge`` now; a Digest challenge is kept for next time."""
        if challenge.scheme != "digest":
            return basic_authorization(username, password)
        self._remember(key, challenge)
        cached = self.authorization(key, method, uri, username, password)
        return (
            cached[0]
            if cached is not None
            else digest_authorization(challenge, method, uri, username, password, 1, secrets.token_hex(16))
        )

    def _remember(self, key: CacheKey, challenge: Challenge) -> None:
        with self._lock:
            self._entries[key] = _Entry(challenge)
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def forget(self, key: CacheKey) -> None:
        with self._lock:
            self._entries.pop(key, None)

    def authorization(
        self, key: CacheKey, method: str, uri: str, username: str, password: str
    ) -> tuple[str, Challenge] | None:
        """The ``Authorization`` for a request to the camera under ``key``, if it challenged before."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            entry.uses += 1
            self._entries.move_to_end(key)
            challenge, nc = entry.challenge, entry.uses
        return digest_authorization(
            challenge, method, uri, username, password, nc, secrets.token_hex(16)
        ), challenge


# The one instance per process (see the module's docstring for why a cache is allowed here).
CHALLENGES = ChallengeCache()
