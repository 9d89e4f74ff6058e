"""Sessions over streaming cameras: keeping them live, and reading their track evidence per window.

A session's registered camera whose URL is a stream (``live.evidence.STREAM_SCHEMES``) is not asked
for a snapshot at each tick. Instead every tick keeps it live (``Demand.watch(camera, "session:<id>",
ttl)``, renewed by the next tick) so a stream reader reads it for the session's whole length, and reads
the evidence the readers' ``EvidenceSink`` recorded for the window before the tick: tick n covers
``[due(n - 1), due(n))`` (tick 0 covers nothing: the camera only starts being read then). The last
window, from the last tick to the session's end, is read by ``rollcall.sessions.close`` once the camera
has been let go (its tracks then ended and written). Stopping a session leaves its cameras at once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import redis

import errors
from facebank.records import CameraFrame, PersonEvidence, SessionCamera, SessionUnknownTrack
from live import keys
from live.demand import Demand
from live.evidence import Evidence, TrackEvidence, coverage, is_stream_url, session_watcher
from live.status import CameraStatus, StatusBoard
from live.unknown_tracks import UnknownTracks
from tasks import runtime

log = logging.getLogger("rollcall.sessions")
# A tick keeps its streaming cameras live until the next tick is due and this long after, so a next
# tick a little late (a busy queue) finds the camera still read.
DEMAND_SLACK_S = 30.0


def streaming_cameras(cameras: Sequence[SessionCamera]) -> dict[int, str]:
    """The session's cameras read through stream readers, by index: registered cameras with a stream URL.

    A camera that is no longer registered is left to the snapshot path, which reports it as not found.
    """
    found: dict[int, str] = {}
    directory = runtime.current().cameras
    for index, camera in enumerate(cameras):
        if isinstance(camera, str):
            continue
        try:
            url = directory.get(camera["camera"]).url
        except errors.CameraNotFound:
            continue
        if is_stream_url(url):
            found[index] = camera["camera"]
    return found


def keep_live(session_id: int, cameras: dict[int, str], until: datetime, now: datetime) -> None:
    """Keep ``cameras`` live on behalf of the session until ``until`` (at least a second)."""
    ttl_s = max(1.0, (until - now).total_seconds())
    demand = Demand(runtime.current().live_redis)
    for name in cameras.values():
        try:
            demand.watch(name, session_watcher(session_id), ttl_s)
        except redis.RedisError as exc:  # the camera stays dark this tick: its window reads no evidence
            log.warning("session %s: camera %s not kept live (Redis: %s)", session_id, name, exc)


def still_read(cameras: dict[int, str]) -> list[str]:
    """The cameras a reader still holds although nobody keeps them live any more: letting them go (and
    writing their tracks, which a reader does before it releases the lease) is under way. A camera someone
    else watches stays held: its open tracks are not waited for."""
    client = runtime.current().live_redis
    try:
        watched = set(Demand(client).live_cameras())
        return [name for name in cameras.values() if name not in watched and client.exists(keys.lease(name))]
    except redis.RedisError as exc:  # read what is there: nothing better comes from waiting on Redis
        log.warning("session cameras' leases not read (Redis: %s)", exc)
        return []


def leave(session_id: int, cameras: dict[int, str]) -> None:
    """The session no longer needs ``cameras`` live (its end, or stopped)."""
    demand = Demand(runtime.current().live_redis)
    for name in cameras.values():
        try:
            demand.leave(name, session_watcher(session_id))
        except redis.RedisError as exc:  # the watch runs out by itself
            log.warning("session %s: camera %s not left (Redis: %s)", session_id, name, exc)


@dataclass(frozen=True)
class Window:
    """What a session's streaming cameras showed over one window."""

    frames: list[CameraFrame]  # one per camera: who its identified tracks were
    evidence: list[PersonEvidence]  # seconds per person, over every camera
    unknown: list[SessionUnknownTrack]  # tracks that ended unidentified within it


def read_window(
    cameras: dict[int, str], start: datetime, end: datetime, unknown_until: datetime | None = None
) -> Window:
    """Each streaming camera's frame over ``[start, end)``, the seconds per person over all of them, and the
    tracks that ended unidentified within ``[start, unknown_until or end)``."""
    settings = runtime.current().settings
    client = runtime.current().live_redis
    store = TrackEvidence(client, settings.live_evidence_keep_s, settings.live_evidence_max_tracks)
    strangers = UnknownTracks(client, settings.live_evidence_keep_s, settings.live_unknown_max_tracks)
    first, last = start.timestamp(), end.timestamp()
    frames: list[CameraFrame] = []
    found: dict[int, list[Evidence]] = {}
    unknown: list[SessionUnknownTrack] = []
    for index, name in cameras.items():
        if last <= first:
            frames.append(CameraFrame(index, end, live=True))
            continue
        try:
            entries = store.window(name, first, last)
            ended = strangers.ended_within(name, first, (unknown_until or end).timestamp())
            tracked = store.tracked_within(name, first, last)
            status = None if tracked else StatusBoard(client).read(name)
        except redis.RedisError as exc:
            error = errors.BrokerUnavailable(f"the track evidence of camera {name} could not be read ({exc})")
            frames.append(CameraFrame(index, end, error=error.to_dict(), live=True))
            continue
        if not tracked and not entries and not ended:
            frames.append(CameraFrame(index, end, error=_not_tracked(name, status), live=True))
            continue
        found[index] = entries
        unknown.extend(
            SessionUnknownTrack(
                camera=index,
                track=track.track,
                first_at=datetime.fromtimestamp(track.first_seen, UTC),
                last_at=datetime.fromtimestamp(track.last_seen, UTC),
                embeddings=track.embeddings,
                face_jpeg=track.face_jpeg,
            )
            for track in ended
        )
        seen = coverage({index: entries}, first, last)
        present = tuple(sorted((pid, round(c.best_confidence or 0.0, 5)) for pid, c in seen.items()))
        frames.append(
            CameraFrame(index, end, present=present, faces=len(entries), unknown_faces=len(ended), live=True)
        )
    evidence = [
        PersonEvidence(
            person_id=pid,
            seconds=seen.seconds,
            first_at=datetime.fromtimestamp(seen.first_seen, UTC),
            last_at=datetime.fromtimestamp(seen.last_seen, UTC),
            best_score=seen.best_confidence,
            best_camera=seen.best_camera,
        )
        for pid, seen in coverage(found, first, last).items()
    ]
    return Window(frames, evidence, unknown)


def _not_tracked(camera: str, status: CameraStatus | None) -> dict[str, str]:
    """Why nobody looked at ``camera`` during a window: its reader's camera error, or no tracking at all."""
    if status is not None and status.error_code is not None:
        return {"code": status.error_code, "message": status.error_message or status.error_code}
    return errors.CameraNotTracked(
        f"no stream reader tracked faces on camera {camera} during this window: readers need "
        "ROLLCALL_LIVE_PROCESSOR=live.processor:for_reader"
        + (f" (its reader {status.reader} is {status.state})" if status is not None else "")
    ).to_dict()


# --- the JSON form they travel in (the chord's aggregate task takes them beside the snapshot frames) ---


def frame_of(data: dict[str, Any]) -> CameraFrame:
    return CameraFrame(
        camera=int(data["camera"]),
        captured_at=datetime.fromisoformat(data["captured_at"]),
        present=tuple((int(p["person_id"]), float(p["score"])) for p in data["present"]),
        faces=int(data["faces"]),
        unknown_faces=int(data["unknown_faces"]),
        error=data["error"],
        live=bool(data.get("live", False)),
    )


def evidence_json(entry: PersonEvidence) -> dict[str, Any]:
    return {
        "person_id": entry.person_id,
        "seconds": entry.seconds,
        "first_at": entry.first_at.isoformat(),
        "last_at": entry.last_at.isoformat(),
        "best_score": entry.best_score,
        "best_camera": entry.best_camera,
    }


def evidence_of(data: dict[str, Any]) -> PersonEvidence:
    return PersonEvidence(
        person_id=int(data["person_id"]),
        seconds=float(data["seconds"]),
        first_at=datetime.fromisoformat(data["first_at"]),
        last_at=datetime.fromisoformat(data["last_at"]),
        best_score=None if data["best_score"] is None else float(data["best_score"]),
        best_camera=int(data["best_camera"]),
    )
