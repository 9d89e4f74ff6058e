"""Track evidence: which known people the live cameras' tracks named, and over which seconds.

Attendance sessions over streaming cameras count a person present from how long identified tracks
of theirs were in view, not from isolated snapshots. ``EvidenceSink`` (a ``LiveSink`` of every stream
reader) keeps, per camera, one entry per identified track in a Redis sorted set: member
``{"track", "person_id", "first_seen", "last_seen", "confidence"}`` (JSON), score ``last_seen``. The entry
is replaced on every processed frame that shows the track (so a tick sees tracks still open up to the
frame before it) and written a last time when the track ends or its camera stops being read here. The
set is bounded: entries whose ``last_seen`` is older than ``ROLLCALL_LIVE_EVIDENCE_KEEP_S`` and all but
the newest ``ROLLCALL_LIVE_EVIDENCE_MAX_TRACKS`` are trimmed on every write, and the key expires that
long after its last write.

Beside them the sink keeps when the camera has been tracked (``live.keys.tracked``: since its processor's
first frame, until its latest), so a session can tell a window in which nobody was seen from one in
which nobody looked (no reader with a processor, or the camera down).

``TrackEvidence.window`` reads the entries that overlap a time window and ``coverage`` turns them into
seconds per person: the union of their tracks' ``[first_seen, last_seen]`` clipped to the window, so two
tracks of one person at once (a track lost and found, two cameras) count those seconds once.

A track's ``first_seen`` is when it was first tracked, not when its vote named the person: the person
was in view from then on, whoever the tracker thought they were. Times are the readers' frame times
(seconds since the epoch).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import redis

from live import keys
from live.processing import EndedTrack, ProcessedFrame

# URL schemes of cameras a session reads through stream readers and counts by track evidence. An
# http(s) camera may be a snapshot or an MJPEG stream, which only connecting tells: it is asked once
# per tick, as before.
STREAM_SCHEMES = ("rtsp", "rtsps")


def is_stream_url(url: str) -> bool:
    """Whether a camera at ``url`` is a stream a session counts by track evidence (``STREAM_SCHEMES``)."""
    return url.partition(":")[0].lower() in STREAM_SCHEMES


def session_watcher(session_id: int) -> str:
    """The demand watcher id (``live.demand``) by which an attendance session keeps its cameras live."""
    return f"session:{session_id}"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One identified track of one camera, as far as it has been seen."""

    track: str  # unique per camera: the processor's token and its track id
    person_id: int
    first_seen: float
    last_seen: float
    confidence: float | None  # the vote's mean similarity, when the event gave one

    def to_json(self) -> str:
        return json.dumps(
            {
                "track": self.track,
                "person_id": self.person_id,
                "first_seen": self.first_seen,
                "last_seen": self.last_seen,
                "confidence": self.confidence,
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: bytes | str) -> Evidence:
        data = json.loads(raw)
        return cls(
            track=str(data["track"]),
            person_id=int(data["person_id"]),
            first_seen=float(data["first_seen"]),
            last_seen=float(data["last_seen"]),
            confidence=None if data.get("confidence") is None else float(data["confidence"]),
        )


@dataclass(frozen=True, slots=True)
class Coverage:
    """One person over one window of one or more cameras."""

    seconds: float  # the union of their identified tracks' time, clipped to the window
    first_seen: float
    last_seen: float
    best_confidence: float | None
    best_camera: int  # the camera index of the best confidence (of the longest track without any)


class TrackEvidence:
    """The evidence entries of the live cameras, in Redis (``live.keys.evidence``)."""

    def __init__(self, client: redis.Redis, keep_s: float, max_tracks: int) -> None:
        self._client = client
        self.keep_s = keep_s
        self.max_tracks = max_tracks

    def write(
        self,
        camera: str,
        entries: Sequence[Evidence],
        replacing: Sequence[Evidence] = (),
        tracked: tuple[float, float] | None = None,
    ) -> None:
        """Store ``entries`` in place of ``replacing`` (the same tracks' earlier entries) and trim the set;
        ``tracked``: (since, until) its processor has tracked the camera without a restart."""
        key = keys.evidence(camera)
        with self._client.pipeline(transaction=False) as pipe:
            if tracked is not None:
                pipe.hset(keys.tracked(camera), mapping={"since": tracked[0], "until": tracked[1]})
                pipe.expire(keys.tracked(camera), max(1, int(self.keep_s)))
            if entries:
                newest = max(entry.last_seen for entry in entries)
                if replacing:
                    pipe.zrem(key, *(entry.to_json() for entry in replacing))
                pipe.zadd(key, {entry.to_json(): entry.last_seen for entry in entries})
                pipe.zremrangebyscore(key, "-inf", f"({newest - self.keep_s}")
                pipe.zremrangebyrank(key, 0, -self.max_tracks - 1)
                pipe.expire(key, max(1, int(self.keep_s)))
            pipe.execute()

    def tracked_within(self, camera: str, start: float, end: float) -> bool:
        """Whether a reader's processor tracked ``camera``'s frames at some time within ``[start, end)`` (its
        latest run: since its processor started, up to its last frame)."""
        span: dict[bytes, bytes] = self._client.hgetall(keys.tracked(camera))  # type: ignore[assignment]
        if not span:
            return False
        return float(span[b"since"]) < end and float(span[b"until"]) >= start

    def window(self, camera: str, start: float, end: float) -> list[Evidence]:
        """The entries of ``camera`` whose track overlaps ``[start, end)``."""
        raw: list[bytes] = self._client.zrangebyscore(keys.evidence(camera), start, "+inf")  # type: ignore[assignment]
        found = (Evidence.from_json(member) for member in raw)
        return [entry for entry in found if entry.first_seen < end]


def coverage(by_camera: Mapping[int, Iterable[Evidence]], start: float, end: float) -> dict[int, Coverage]:
    """Seconds per person within ``[start, end)``: the union of their tracks' spans over every camera."""
    spans: dict[int, list[tuple[float, float, int, float | None]]] = {}
    for camera, entries in by_camera.items():
        for entry in entries:
            first, last = max(entry.first_seen, start), min(entry.last_seen, end)
            if last < first:
                continue
            spans.setdefault(entry.person_id, []).append((first, last, camera, entry.confidence))
    out: dict[int, Coverage] = {}
    for person_id, person_spans in spans.items():
        person_spans.sort()
        seconds, open_first, open_last = 0.0, person_spans[0][0], person_spans[0][1]
        for first, last, _, _ in person_spans[1:]:
            if first > open_last:
                seconds += open_last - open_first
                open_first, open_last = first, last
            else:
                open_last = max(open_last, last)
        seconds += open_last - open_first
        rated = [span for span in person_spans if span[3] is not None]
        if rated:
            best = max(rated, key=lambda span: span[3] or 0.0)
        else:
            best = max(person_spans, key=lambda span: span[1] - span[0])
        out[person_id] = Coverage(
            seconds=seconds,
            first_seen=person_spans[0][0],
            last_seen=max(span[1] for span in person_spans),
            best_confidence=best[3],
            best_camera=best[2],
        )
    return out


@dataclass
class _CameraTracks:
    token: str  # new each time the camera's processor starts: track ids start again with it
    since: float  # its first frame
    first_seen: dict[int, float] = field(default_factory=dict)  # every open track, named or not
    stored: dict[int, Evidence] = field(default_factory=dict)  # track id → its entry in Redis


class EvidenceSink:
    """Records the identified tracks of a reader's cameras as evidence (a ``LiveSink``)."""

    def __init__(self, evidence: TrackEvidence) -> None:
        self._evidence = evidence
        self._cameras: dict[str, _CameraTracks] = {}

    def publish(self, camera: str, processed: ProcessedFrame) -> None:
        ts = float(processed.event["ts"])
        state = self._cameras.get(camera)
        if state is None:
            state = self._cameras[camera] = _CameraTracks(secrets.token_hex(4), ts)
        entries: dict[int, Evidence] = {}
        for track in processed.event.get("tracks", []):
            track_id = int(track["track_id"])
            first = state.first_seen.setdefault(track_id, ts)
            if track.get("person_id") is not None:
                confidence = track.get("confidence")
                entries[track_id] = Evidence(
                    f"{state.token}:{track_id}",
                    int(track["person_id"]),
                    first,
                    ts,
                    None if confidence is None else float(confidence),
                )
        entries.update(self._ended(state, processed.ended))  # an ended track's last word wins
        self._store(camera, state, entries, tracked=(state.since, ts))
        for track in processed.ended:
            state.first_seen.pop(track.track_id, None)
            state.stored.pop(track.track_id, None)

    def closed(self, camera: str, ended: list[EndedTrack]) -> None:
        state = self._cameras.pop(camera, None)
        if state is not None:
            self._store(camera, state, self._ended(state, ended))

    @staticmethod
    def _ended(state: _CameraTracks, ended: Iterable[EndedTrack]) -> dict[int, Evidence]:
        """The last word on tracks that ended named (an unnamed one leaves an earlier entry as it was)."""
        out: dict[int, Evidence] = {}
        for track in ended:
            if track.person_id is None:
                continue
            before = state.stored.get(track.track_id)
            confidence = (
                before.confidence if before is not None and before.person_id == track.person_id else None
            )
            out[track.track_id] = Evidence(
                f"{state.token}:{track.track_id}",
                track.person_id,
                track.first_seen,
                track.last_seen,
                confidence,
            )
        return out

    def _store(
        self,
        camera: str,
        state: _CameraTracks,
        entries: dict[int, Evidence],
        tracked: tuple[float, float] | None = None,
    ) -> None:
        if not entries and tracked is None:
            return
        replacing = [state.stored[track_id] for track_id in entries if track_id in state.stored]
        self._evidence.write(camera, list(entries.values()), replacing, tracked)
        state.stored.update(entries)
