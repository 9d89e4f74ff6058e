"""Attendance sessions in the database: the plan, the tick cursor, each tick's frames, per-person aggregates.

All of a session's state lives here, none in a worker's memory, so a session outlives any worker or
API restart. Every write locks the session's row first (``SELECT … FOR UPDATE`` on PostgreSQL, the
IMMEDIATE transaction on SQLite): a tick task, the aggregates of overlapping ticks and a stop request
of one session take turns, and each sees what the previous one committed.

Aggregation rules, per roster member over every frame (one camera at one tick):

- ``frames_seen``: frames in which the person was recognised (two cameras at one tick count twice);
- ``ticks_seen``: ticks in which at least one camera recognised the person;
- ``first_seen_at`` / ``last_seen_at``: capture time of the first and the last of those frames;
- ``best_score`` / ``best_camera``: the highest similarity of any of those frames, and its camera;
- ``present``: ``ticks_seen >= min_ticks``; the others on the roster are absent.

A streaming camera's frame of a tick is its track evidence over the window before the tick
(``tasks.sessions``, ``live.evidence``): per person, the seconds their identified tracks covered,
summed over the windows into ``seconds_seen`` (first/last seen and the best score and camera as
above). It never counts in ``ticks_seen``: a person is also present when ``seconds_seen`` reaches
``required_seconds`` (``min_ticks`` × ``interval_s``, at most the session's length).

Each tick is recorded once (its state moves from ``capturing`` to ``done`` in the same transaction
that adds its frames), so a redelivered aggregate message changes nothing. A tick whose every camera
failed is ``failed``, not ``done``: it saw nobody, and the session's tick counts say so beside each
camera's failures.

A session's cameras are URLs or registered cameras (``SessionCamera``), the latter looked up by the
worker at every tick, so a camera's new password or address applies to sessions already running.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, func, select, text
from sqlalchemy.orm import Session

import errors
from facebank import models, transactions
from facebank.limits import MAX_SESSION_NAME
from facebank.models import as_utc
from facebank.records import (
    CameraFrame,
    CameraStats,
    PersonEvidence,
    SessionCamera,
    SessionPerson,
    SessionState,
    SessionTick,
    SessionUnknownTrack,
    TickDecision,
    UnknownPerson,
    required_seconds,
)

SCHEDULED, RUNNING, FINISHED, STOPPED = "scheduled", "running", "finished", "stopped"
ENDED = (FINISHED, STOPPED)
CAPTURING, DONE, FAILED, MISSED = "capturing", "done", "failed", "missed"
TICK_ENDED = (DONE, FAILED, MISSED)
KINDS = ("session", "burst")

MAX_CAMERAS = 16
MAX_TICKS = 10_000
# A tick that cannot start until this long after the session's end is recorded as missed: a frame
# taken long after the class is over says nothing about who attended it.
LATE_GRACE = timedelta(seconds=60)
# A tick message may arrive a little before its eta (clocks of API and workers differ slightly).
EARLY_TOLERANCE = timedelta(milliseconds=50)


@dataclass(frozen=True, slots=True)
class Sighting:
    """One person over the frames of one tick."""

    frames: int
    best_score: float
    best_camera: int
    first_at: datetime
    last_at: datetime


def merge_frames(frames: Sequence[CameraFrame]) -> dict[int, Sighting]:
    """Who the frames of one tick recognised, with how many frames, the best score and when."""
    seen: dict[int, Sighting] = {}
    for frame in frames:
        if frame.live:  # track evidence counts in seconds (PersonEvidence), not in ticks
            continue
        for person_id, score in frame.present:
            before = seen.get(person_id)
            if before is None:
                seen[person_id] = Sighting(1, score, frame.camera, frame.captured_at, frame.captured_at)
                continue
            better = score > before.best_score
            seen[person_id] = Sighting(
                frames=before.frames + 1,
                best_score=score if better else before.best_score,
                best_camera=frame.camera if better else before.best_camera,
                first_at=min(before.first_at, frame.captured_at),
                last_at=max(before.last_at, frame.captured_at),
            )
    return seen


def planned_ticks(start_at: datetime, end_at: datetime, interval_s: float) -> int:
    """Ticks at start, start + interval, … strictly before the end (at least one)."""
    duration = (end_at - start_at).total_seconds()
    return max(1, math.ceil(duration / interval_s - 1e-9))


class AttendanceSessions:
    """Attendance sessions stored in the facebank's database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @staticmethod
    def _locked(session: Session, session_id: int) -> models.AttendanceSession:
        row = session.scalars(
            select(models.AttendanceSession)
            .where(models.AttendanceSession.id == session_id)
            .with_for_update()
        ).one_or_none()
        if row is None:
            raise errors.SessionNotFound(f"no attendance session with id {session_id}")
        return row

    # --- the API's side ---

    def create(
        self,
        *,
        roster_id: int,
        cameras: Sequence[SessionCamera],
        start_at: datetime,
        end_at: datetime,
        interval_s: float,
        min_ticks: int,
        kind: str = "session",
        name: str | None = None,
        small_faces: dict[str, Any] | None = None,
        owner: str | None = None,
        max_live: int = 0,
    ) -> SessionState:
        """Plan a session over the roster's current members (kept as they are now for the whole session).

        ``max_live`` (0: no limit) bounds the sessions ``owner`` has scheduled or running, this one included.
        """
        _check_plan(cameras, start_at, end_at, interval_s, kind, name)
        ticks = planned_ticks(start_at, end_at, interval_s)
        if ticks > MAX_TICKS:
            raise errors.InvalidInput(f"{ticks} ticks planned; a session has at most {MAX_TICKS}")
        if not 1 <= min_ticks <= ticks:
            raise errors.InvalidInput(f"min_ticks must be within 1..{ticks} (the ticks planned)")
        with transactions.write(self.engine, bump_revision=False) as session:
            if owner is not None and max_live:
                _check_live_sessions(session, owner, max_live, datetime.now(UTC))
            roster = session.get(models.Roster, roster_id)
            if roster is None:
                raise errors.RosterNotFound(f"no roster with id {roster_id}")
            members = session.scalars(
                select(models.RosterMember.person_id).where(models.RosterMember.roster_id == roster_id)
            ).all()
            if not members:
                raise errors.InvalidInput(f"roster {roster_id} has no members")
            row = models.AttendanceSession(
                name=name,
                kind=kind,
                roster_id=roster_id,
                roster_name=roster.name,
                cameras=list(cameras),
                small_faces=small_faces,
                start_at=start_at,
                end_at=end_at,
                interval_s=interval_s,
                min_ticks=min_ticks,
                ticks_planned=ticks,
                next_tick=0,
                status=SCHEDULED,
                camera_stats=[_camera_stats_json(CameraStats(0, 0, 0, None)) for _ in cameras],
                owner=owner,
            )
            session.add(row)
            session.flush()
            session.add_all(
                models.AttendanceSessionPerson(session_id=row.id, person_id=pid, ticks_seen=0, frames_seen=0)
                for pid in sorted(members)
            )
            session_id = row.id
        return self.get(session_id)

    def get(self, session_id: int) -> SessionState:
        with transactions.read(self.engine) as session:
            row = session.get(models.AttendanceSession, session_id)
            if row is None:
                raise errors.SessionNotFound(f"no attendance session with id {session_id}")
            counts = dict(
                session.execute(
                    select(models.AttendanceTick.state, func.count())
                    .where(models.AttendanceTick.session_id == session_id)
                    .group_by(models.AttendanceTick.state)
                ).all()
            )
            people = session.execute(
                select(models.AttendanceSessionPerson, models.Person.display_name, models.Person.external_id)
                .join(models.Person, models.Person.id == models.AttendanceSessionPerson.person_id)
                .where(models.AttendanceSessionPerson.session_id == session_id)
                .order_by(models.Person.display_name, models.Person.id)
            ).all()
            required = required_seconds(
                row.min_ticks, row.interval_s, as_utc(row.start_at), as_utc(row.end_at)
            )
            return _state(
                row, counts, [_person(p, name, ext, row.min_ticks, required) for p, name, ext in people]
            )

    def ticks(self, session_id: int) -> list[SessionTick]:
        """Every tick started (or missed) so far, in order, with its frames' summary."""
        with transactions.read(self.engine) as session:
            if session.get(models.AttendanceSession, session_id) is None:
                raise errors.SessionNotFound(f"no attendance session with id {session_id}")
            rows = session.scalars(
                select(models.AttendanceTick)
                .where(models.AttendanceTick.session_id == session_id)
                .order_by(models.AttendanceTick.tick)
            ).all()
            return [_tick(row) for row in rows]

    def stop(self, session_id: int, now: datetime) -> SessionState:
        """No tick starts after this; frames of a tick already started are still recorded."""
        with transactions.write(self.engine, bump_revision=False) as session:
            row = self._locked(session, session_id)
            if row.status not in ENDED:
                row.status, row.ended_at = STOPPED, now
        return self.get(session_id)

    def delete(self, session_id: int) -> None:
        with transactions.write(self.engine, bump_revision=False) as session:
            self._locked(session, session_id)
            session.execute(delete(models.AttendanceSession).where(models.AttendanceSession.id == session_id))

    # --- the workers' side ---

    def begin_tick(self, session_id: int, tick: int, now: datetime, recover_after: timedelta) -> TickDecision:
        """Decide what a message for ``tick`` does, and claim the tick when it is to be captured.

        A tick is captured only while it is the cursor (``next_tick``), so duplicate messages skip.
        The one exception is recovery: the newest tick, claimed more than ``recover_after`` ago by a
        task that died before it queued the frames and the next tick (``dispatched`` still false).
        """
        with transactions.write(self.engine, bump_revision=False) as session:
            row = self._locked(session, session_id)
            due = _due(row, tick)
            if row.status in ENDED:
                return TickDecision("skip", f"session {row.status}", tick, due)
            if not 0 <= tick < row.ticks_planned:
                return TickDecision("skip", "not a planned tick", tick, due)
            if tick > row.next_tick:
                return TickDecision("skip", "ahead of the cursor", tick, due)
            if tick < row.next_tick:
                claimed = session.get(models.AttendanceTick, (session_id, tick))
                recoverable = (
                    tick == row.next_tick - 1
                    and claimed is not None
                    and claimed.state == CAPTURING
                    and not claimed.dispatched
                    and claimed.started_at is not None
                    and as_utc(claimed.started_at) <= now - recover_after
                )
                if not recoverable:
                    return TickDecision("skip", "already started", tick, due)
                return self._capture(session, row, tick, due, "recovered")
            if now < due - EARLY_TOLERANCE:
                return TickDecision("wait", "not due yet", tick, due)
            if now > as_utc(row.end_at) + LATE_GRACE:
                session.add_all(
                    models.AttendanceTick(
                        session_id=session_id,
                        tick=late,
                        state=MISSED,
                        due_at=_due(row, late),
                        dispatched=True,
                        finished_at=now,
                    )
                    for late in range(tick, row.ticks_planned)
                )
                row.next_tick = row.ticks_planned
                session.flush()
                _finish_if_complete(session, row, now)
                return TickDecision("skip", "too late: the session ended", tick, due)
            session.add(
                models.AttendanceTick(
                    session_id=session_id,
                    tick=tick,
                    state=CAPTURING,
                    due_at=due,
                    started_at=now,
                    dispatched=False,
                )
            )
            row.next_tick = tick + 1
            if row.status == SCHEDULED:
                row.status = RUNNING
            return self._capture(session, row, tick, due, "started")

    @staticmethod
    def _capture(
        session: Session, row: models.AttendanceSession, tick: int, due: datetime, reason: str
    ) -> TickDecision:
        roster = session.scalars(
            select(models.AttendanceSessionPerson.person_id)
            .where(models.AttendanceSessionPerson.session_id == row.id)
            .order_by(models.AttendanceSessionPerson.person_id)
        ).all()
        last = tick + 1 >= row.ticks_planned
        return TickDecision(
            "capture",
            reason,
            tick,
            due,
            cameras=tuple(row.cameras),
            roster=tuple(roster),
            small_faces=row.small_faces,
            next_due_at=None if last else _due(row, tick + 1),
            owner=row.owner,
            interval_s=row.interval_s,
            end_at=as_utc(row.end_at),
        )

    def mark_dispatched(self, session_id: int, tick: int) -> None:
        """The tick's frames and its successor are on the queue: no recovery needed for it."""
        with transactions.write(self.engine, bump_revision=False) as session:
            self._locked(session, session_id)
            claimed = session.get(models.AttendanceTick, (session_id, tick))
            if claimed is not None:
                claimed.dispatched = True

    def record_tick(
        self,
        session_id: int,
        tick: int,
        frames: Sequence[CameraFrame],
        now: datetime,
        evidence: Sequence[PersonEvidence] = (),
    ) -> bool:
        """Add one tick's frames (and its streaming cameras' ``evidence``) to the aggregates, once; False
        when it was already recorded or failed."""
        with transactions.write(self.engine, bump_revision=False) as session:
            row = self._locked(session, session_id)
            claimed = session.get(models.AttendanceTick, (session_id, tick))
            if claimed is None or claimed.state != CAPTURING:
                return False
            frames = _one_per_camera(frames, len(row.cameras), now)
            stats = [CameraStats(**entry) for entry in row.camera_stats]
            for frame in frames:
                before = stats[frame.camera]
                stats[frame.camera] = (
                    CameraStats(before.frames, before.failures + 1, before.unknown_faces, frame.error)
                    if frame.error is not None
                    else CameraStats(
                        before.frames + 1,
                        before.failures,
                        before.unknown_faces + frame.unknown_faces,
                        before.last_error,
                    )
                )
            row.camera_stats = [_camera_stats_json(entry) for entry in stats]
            sightings = merge_frames(frames)
            if sightings:
                people = session.scalars(
                    select(models.AttendanceSessionPerson).where(
                        models.AttendanceSessionPerson.session_id == session_id,
                        models.AttendanceSessionPerson.person_id.in_(sightings),
                    )
                ).all()
                for person in people:
                    _add_sighting(person, sightings[person.person_id])
            _add_evidence(session, session_id, evidence)
            every_camera_failed = all(frame.error is not None for frame in frames)
            claimed.state, claimed.finished_at = (FAILED if every_camera_failed else DONE), now
            claimed.frames = [frame.to_json() for frame in frames]
            session.flush()
            _finish_if_complete(session, row, now)
            return True

    def close_evidence(self, session_id: int, evidence: Sequence[PersonEvidence], now: datetime) -> bool:
        """Add the streaming cameras' last window (after the last tick) to the aggregates, once; False
        when it was already added."""
        with transactions.write(self.engine, bump_revision=False) as session:
            row = self._locked(session, session_id)
            if row.evidence_closed_at is not None:
                return False
            _add_evidence(session, session_id, evidence)
            row.evidence_closed_at = now
            return True

    # --- unknown people (tracks of streaming cameras that nobody enrolled was named on) ---

    def add_unknown_tracks(
        self, session_id: int, tracks: Sequence[SessionUnknownTrack], max_tracks: int
    ) -> int:
        """Keep ``tracks`` not kept yet, while the session holds fewer than ``max_tracks``; how many were
        added (a redelivered message adds none twice)."""
        if not tracks:
            return 0
        with transactions.write(self.engine, bump_revision=False) as session:
            self._locked(session, session_id)
            rows = models.AttendanceSessionUnknown
            kept: set[tuple[int, str]] = {
                (camera, track)
                for camera, track in session.execute(
                    select(rows.camera, rows.track).where(rows.session_id == session_id)
                )
            }
            added = 0
            for track in tracks:
                if len(kept) >= max_tracks:
                    break
                if (track.camera, track.track) in kept:
                    continue
                vectors = np.ascontiguousarray(track.embeddings, dtype="<f4")
                session.add(
                    rows(
                        session_id=session_id,
                        camera=track.camera,
                        track=track.track,
                        first_seen_at=track.first_at,
                        last_seen_at=track.last_at,
                        dim=int(vectors.shape[1]),
                        embeddings=vectors.tobytes(),
                        face_jpeg=track.face_jpeg,
                    )
                )
                kept.add((track.camera, track.track))
                added += 1
            return added

    def unknown_track_embeddings(self, session_id: int) -> list[tuple[int, np.ndarray]]:
        """Every kept unknown track's row id and embeddings, in order of first appearance."""
        with transactions.read(self.engine) as session:
            rows = session.execute(
                select(
                    models.AttendanceSessionUnknown.id,
                    models.AttendanceSessionUnknown.dim,
                    models.AttendanceSessionUnknown.embeddings,
                )
                .where(models.AttendanceSessionUnknown.session_id == session_id)
                .order_by(models.AttendanceSessionUnknown.first_seen_at, models.AttendanceSessionUnknown.id)
            ).all()
            return [(row_id, np.frombuffer(data, dtype="<f4").reshape(-1, dim)) for row_id, dim, data in rows]

    def set_unknown_groups(self, session_id: int, groups: dict[int, int]) -> None:
        """Number the unknown tracks' groups (row id → unknown person number)."""
        with transactions.write(self.engine, bump_revision=False) as session:
            self._locked(session, session_id)
            for row in session.scalars(
                select(models.AttendanceSessionUnknown).where(
                    models.AttendanceSessionUnknown.session_id == session_id
                )
            ):
                row.group_no = groups.get(row.id)

    def unknown_people(self, session_id: int) -> list[UnknownPerson]:
        """The session's unknown people (grouped tracks), by number; none before the tracks are grouped."""
        with transactions.read(self.engine) as session:
            rows = session.execute(
                select(
                    models.AttendanceSessionUnknown.group_no,
                    models.AttendanceSessionUnknown.camera,
                    models.AttendanceSessionUnknown.first_seen_at,
                    models.AttendanceSessionUnknown.last_seen_at,
                    models.AttendanceSessionUnknown.face_jpeg.is_not(None),
                )
                .where(
                    models.AttendanceSessionUnknown.session_id == session_id,
                    models.AttendanceSessionUnknown.group_no.is_not(None),
                )
                .order_by(models.AttendanceSessionUnknown.group_no)
            ).all()
        grouped: dict[int, list[tuple[int, datetime, datetime, bool]]] = {}
        for number, camera, first, last, has_face in rows:
            assert number is not None  # selected so
            grouped.setdefault(number, []).append((camera, as_utc(first), as_utc(last), bool(has_face)))
        people = []
        for number, tracks in sorted(grouped.items()):
            best = _best_face_track(tracks)
            people.append(
                UnknownPerson(
                    number=number,
                    tracks=len(tracks),
                    seconds=sum((last - first).total_seconds() for _, first, last, _ in tracks),
                    first_seen_at=min(first for _, first, _, _ in tracks),
                    last_seen_at=max(last for _, _, last, _ in tracks),
                    camera=best[0],
                    has_face=best[3],
                )
            )
        return people

    def unknown_face(self, session_id: int, number: int) -> bytes:
        """The best face (JPEG) of unknown person ``number``: their longest track's that has one."""
        with transactions.read(self.engine) as session:
            rows = session.execute(
                select(
                    models.AttendanceSessionUnknown.camera,
                    models.AttendanceSessionUnknown.first_seen_at,
                    models.AttendanceSessionUnknown.last_seen_at,
                    models.AttendanceSessionUnknown.face_jpeg,
                ).where(
                    models.AttendanceSessionUnknown.session_id == session_id,
                    models.AttendanceSessionUnknown.group_no == number,
                    models.AttendanceSessionUnknown.face_jpeg.is_not(None),
                )
            ).all()
        if not rows:
            raise errors.UnknownPersonNotFound(
                f"attendance session {session_id} has no unknown person {number} with a face"
            )
        _, _, _, face = max(rows, key=lambda row: (as_utc(row[2]) - as_utc(row[1])).total_seconds())
        assert face is not None  # selected so
        return bytes(face)

    def expire_ticks(self, session_id: int, now: datetime) -> SessionState:
        """Give up on ticks whose frames never came back (the session's safety net), and finish it."""
        with transactions.write(self.engine, bump_revision=False) as session:
            row = self._locked(session, session_id)
            for claimed in session.scalars(
                select(models.AttendanceTick).where(
                    models.AttendanceTick.session_id == session_id, models.AttendanceTick.state == CAPTURING
                )
            ):
                claimed.state, claimed.finished_at = FAILED, now
            session.flush()
            _finish_if_complete(session, row, now)
        return self.get(session_id)


def _check_live_sessions(session: Session, owner: str, max_live: int, now: datetime) -> None:
    """Refuse a new session of ``owner`` while it has ``max_live`` sessions scheduled or running.

    Counted inside the write transaction: SQLite's IMMEDIATE transaction serialises writers, and on
    PostgreSQL a lock per owner does, so concurrent requests cannot all pass one count.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:owner))"), {"owner": owner})
    live, first_end = session.execute(
        select(func.count(), func.min(models.AttendanceSession.end_at)).where(
            models.AttendanceSession.owner == owner,
            models.AttendanceSession.status.in_((SCHEDULED, RUNNING)),
        )
    ).one()
    if live >= max_live:
        refused = errors.TooManySessions(
            f"this API key has {live} attendance sessions scheduled or running, the most allowed "
            "(ROLLCALL_MAX_LIVE_SESSIONS); stop one, or wait until its first one ends"
        )
        refused.retry_after_s = max(1, math.ceil((as_utc(first_end) - now).total_seconds()))
        raise refused


def _check_plan(
    cameras: Sequence[SessionCamera],
    start_at: datetime,
    end_at: datetime,
    interval_s: float,
    kind: str,
    name: str | None,
) -> None:
    if not 1 <= len(cameras) <= MAX_CAMERAS:
        raise errors.InvalidInput(f"a session needs 1..{MAX_CAMERAS} cameras")
    if start_at.tzinfo is None or end_at.tzinfo is None:
        raise errors.InvalidInput("start and end times need a time zone")
    if end_at <= start_at:
        raise errors.InvalidInput("a session must end after it starts")
    if not (math.isfinite(interval_s) and interval_s > 0):
        raise errors.InvalidInput("interval_s must be a positive number of seconds")
    if kind not in KINDS:
        raise errors.InvalidInput(f"kind must be one of {KINDS}")
    if name is not None and len(name) > MAX_SESSION_NAME:
        raise errors.InvalidInput(f"a session name is longer than {MAX_SESSION_NAME} characters")


def _due(row: models.AttendanceSession, tick: int) -> datetime:
    return as_utc(row.start_at) + timedelta(seconds=tick * row.interval_s)


def _one_per_camera(frames: Sequence[CameraFrame], cameras: int, now: datetime) -> list[CameraFrame]:
    """One frame per camera index: the first of duplicates, and a failure for a camera that sent none."""
    by_camera: dict[int, CameraFrame] = {}
    for frame in frames:
        if 0 <= frame.camera < cameras:
            by_camera.setdefault(frame.camera, frame)
    missing = {"code": errors.RollcallError.code, "message": "no frame came back from this camera"}
    return [by_camera.get(index) or CameraFrame(index, now, error=missing) for index in range(cameras)]


def _add_sighting(person: models.AttendanceSessionPerson, seen: Sighting) -> None:
    person.ticks_seen += 1
    person.frames_seen += seen.frames
    first, last = person.first_seen_at, person.last_seen_at
    person.first_seen_at = seen.first_at if first is None else min(as_utc(first), seen.first_at)
    person.last_seen_at = seen.last_at if last is None else max(as_utc(last), seen.last_at)
    if person.best_score is None or seen.best_score > person.best_score:
        person.best_score, person.best_camera = seen.best_score, seen.best_camera


def _best_face_track(
    tracks: list[tuple[int, datetime, datetime, bool]],
) -> tuple[int, datetime, datetime, bool]:
    """The track whose face stands for an unknown person: the longest with a face (else the longest)."""
    return max(tracks, key=lambda t: (t[3], (t[2] - t[1]).total_seconds()))


def _add_evidence(session: Session, session_id: int, evidence: Sequence[PersonEvidence]) -> None:
    """Add one window's seconds per person (roster members only) to their aggregates."""
    by_person = {entry.person_id: entry for entry in evidence}
    if not by_person:
        return
    people = session.scalars(
        select(models.AttendanceSessionPerson).where(
            models.AttendanceSessionPerson.session_id == session_id,
            models.AttendanceSessionPerson.person_id.in_(by_person),
        )
    ).all()
    for person in people:
        seen = by_person[person.person_id]
        person.seconds_seen = (person.seconds_seen or 0.0) + seen.seconds
        first, last = person.first_seen_at, person.last_seen_at
        person.first_seen_at = seen.first_at if first is None else min(as_utc(first), seen.first_at)
        person.last_seen_at = seen.last_at if last is None else max(as_utc(last), seen.last_at)
        if seen.best_score is not None and (person.best_score is None or seen.best_score > person.best_score):
            person.best_score, person.best_camera = seen.best_score, seen.best_camera
        elif person.best_camera is None:
            person.best_camera = seen.best_camera


def _finish_if_complete(session: Session, row: models.AttendanceSession, now: datetime) -> None:
    """A running session whose planned ticks have all ended is finished."""
    if row.status in ENDED:
        return
    ended = session.execute(
        select(func.count()).where(
            models.AttendanceTick.session_id == row.id, models.AttendanceTick.state.in_(TICK_ENDED)
        )
    ).scalar_one()
    if ended >= row.ticks_planned:
        row.status, row.ended_at = FINISHED, now


def _camera_stats_json(stats: CameraStats) -> dict[str, Any]:
    return {
        "frames": stats.frames,
        "failures": stats.failures,
        "unknown_faces": stats.unknown_faces,
        "last_error": stats.last_error,
    }


def _optional_utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else as_utc(moment)


def _person(
    row: models.AttendanceSessionPerson,
    display_name: str,
    external_id: str | None,
    min_ticks: int,
    required_s: float,
) -> SessionPerson:
    by_evidence = row.seconds_seen is not None and row.seconds_seen >= required_s
    return SessionPerson(
        person_id=row.person_id,
        display_name=display_name,
        external_id=external_id,
        present=row.ticks_seen >= min_ticks or by_evidence,
        ticks_seen=row.ticks_seen,
        frames_seen=row.frames_seen,
        first_seen_at=_optional_utc(row.first_seen_at),
        last_seen_at=_optional_utc(row.last_seen_at),
        best_score=row.best_score,
        best_camera=row.best_camera,
        seconds_seen=row.seconds_seen,
    )


def _tick(row: models.AttendanceTick) -> SessionTick:
    return SessionTick(
        tick=row.tick,
        state=row.state,
        due_at=as_utc(row.due_at),
        started_at=_optional_utc(row.started_at),
        finished_at=_optional_utc(row.finished_at),
        frames=tuple(row.frames or ()),
    )


def _state(
    row: models.AttendanceSession, counts: dict[str, int], people: list[SessionPerson]
) -> SessionState:
    return SessionState(
        id=row.id,
        name=row.name,
        kind=row.kind,
        status=row.status,
        roster_id=row.roster_id,
        roster_name=row.roster_name,
        cameras=tuple(row.cameras),
        small_faces=row.small_faces,
        start_at=as_utc(row.start_at),
        end_at=as_utc(row.end_at),
        interval_s=row.interval_s,
        min_ticks=row.min_ticks,
        ticks_planned=row.ticks_planned,
        ticks_started=row.next_tick,
        ticks_done=counts.get(DONE, 0),
        ticks_missed=counts.get(MISSED, 0),
        ticks_failed=counts.get(FAILED, 0),
        camera_stats=tuple(CameraStats(**entry) for entry in row.camera_stats),
        people=tuple(people),
        created_at=as_utc(row.created_at),
        ended_at=_optional_utc(row.ended_at),
        owner=row.owner,
        evidence_closed_at=_optional_utc(row.evidence_closed_at),
    )
