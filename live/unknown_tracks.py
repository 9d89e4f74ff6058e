"""Unknown tracks: the tracks a live camera never identified, kept a while for attendance sessions.

A session over streaming cameras shows the faces nobody enrolled as "unknown person N" (tracks grouped
by their embeddings, ``recognition.unknowns``) with their best face. ``UnknownTrackSink`` (a
``LiveSink`` of every stream reader) writes each track that ended unidentified with at least one
embedding into a per-camera Redis sorted set scored by its ``last_seen``: its span, its last embeddings
(float32, L2-normalised) and its best face as JPEG. It is bounded three ways: a face JPEG over
``MAX_FACE_BYTES`` is dropped (the track is kept without a face), the set keeps the newest
``ROLLCALL_LIVE_UNKNOWN_MAX_TRACKS`` tracks, and entries (and the key) expire after
``ROLLCALL_LIVE_EVIDENCE_KEEP_S``. Sessions copy the tracks of their windows into their own rows.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass

import numpy as np
import redis

from live import keys
from live.processing import EndedTrack, ProcessedFrame

MAX_FACE_BYTES = 64 * 1024  # a face crop at the live sizes is 5–20 KB; more is no face worth showing


@dataclass(frozen=True, eq=False)
class UnknownTrack:
    """A track that ended without anyone enrolled named (``EndedTrack`` as stored)."""

    track: str  # unique per camera: the sink's token for the processor and the track id
    first_seen: float
    last_seen: float
    embeddings: np.ndarray  # (k, d) float32, L2-normalised, k ≥ 1
    face_jpeg: bytes | None

    def to_json(self) -> str:
        return json.dumps(
            {
                "track": self.track,
                "first_seen": self.first_seen,
                "last_seen": self.last_seen,
                "dim": int(self.embeddings.shape[1]),
                "embeddings": base64.b64encode(self.embeddings.astype("<f4").tobytes()).decode(),
                "face_jpeg": base64.b64encode(self.face_jpeg).decode()
                if self.face_jpeg is not None
                else None,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> UnknownTrack:
        data = json.loads(raw)
        vectors = np.frombuffer(base64.b64decode(data["embeddings"]), dtype="<f4").reshape(
            -1, int(data["dim"])
        )
        face = data.get("face_jpeg")
        return cls(
            track=str(data["track"]),
            first_seen=float(data["first_seen"]),
            last_seen=float(data["last_seen"]),
            embeddings=vectors.astype(np.float32),
            face_jpeg=base64.b64decode(face) if face is not None else None,
        )


class UnknownTracks:
    """The unknown tracks of the live cameras, in Redis (``live.keys.unknown_tracks``)."""

    def __init__(self, client: redis.Redis, keep_s: float, max_tracks: int) -> None:
        self._client = client
        self.keep_s = keep_s
        self.max_tracks = max_tracks

    def add(self, camera: str, tracks: list[UnknownTrack]) -> None:
        key = keys.unknown_tracks(camera)
        newest = max(track.last_seen for track in tracks)
        with self._client.pipeline(transaction=False) as pipe:
            pipe.zadd(key, {track.to_json(): track.last_seen for track in tracks})
            pipe.zremrangebyscore(key, "-inf", f"({newest - self.keep_s}")
            pipe.zremrangebyrank(key, 0, -self.max_tracks - 1)
            pipe.expire(key, max(1, int(self.keep_s)))
            pipe.execute()

    def ended_within(self, camera: str, start: float, end: float) -> list[UnknownTrack]:
        """The unknown tracks of ``camera`` that ended within ``[start, end)``."""
        raw: list[bytes] = self._client.zrangebyscore(keys.unknown_tracks(camera), start, f"({end}")  # type: ignore[assignment]
        return [UnknownTrack.from_json(member) for member in raw]


class UnknownTrackSink:
    """Writes the tracks of a reader's cameras that ended unidentified (a ``LiveSink``)."""

    def __init__(self, store: UnknownTracks) -> None:
        self._store = store
        self._tokens: dict[str, str] = {}  # camera → token of its current processor (track ids restart)

    def publish(self, camera: str, processed: ProcessedFrame) -> None:
        self._write(camera, processed.ended)

    def closed(self, camera: str, ended: list[EndedTrack]) -> None:
        self._write(camera, ended)
        self._tokens.pop(camera, None)

    def _write(self, camera: str, ended: list[EndedTrack]) -> None:
        token = self._tokens.setdefault(camera, secrets.token_hex(4))
        unknown = [
            UnknownTrack(
                track=f"{token}:{track.track_id}",
                first_seen=track.first_seen,
                last_seen=track.last_seen,
                embeddings=track.embeddings,
                face_jpeg=track.best_face_jpeg
                if track.best_face_jpeg is not None and len(track.best_face_jpeg) <= MAX_FACE_BYTES
                else None,
            )
            for track in ended
            if track.person_id is None and len(track.embeddings)
        ]
        if unknown:
            self._store.add(camera, unknown)
