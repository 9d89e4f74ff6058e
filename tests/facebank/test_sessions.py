"""Attendance sessions in the database (SQLite and PostgreSQL): the tick cursor, idempotent aggregates."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from sqlalchemy import text

import errors
from facebank.records import CameraFrame, Person, PersonEvidence, SessionUnknownTrack
from facebank.sessions import LATE_GRACE, AttendanceSessions, merge_frames, planned_ticks
from facebank.store import Facebank

T0 = datetime(2026, 11, 27, 8, 0, tzinfo=UTC)
CAMERAS = ("http://10.0.0.5/a.jpg", "http://10.0.0.6/b.jpg")
RECOVER = timedelta(seconds=30)


@pytest.fixture
def sessions(facebank: Facebank) -> AttendanceSessions:
    return AttendanceSessions(facebank.engine)


@pytest.fixture
def people(facebank: Facebank) -> dict[str, Person]:
    return {name: facebank.people.create(name) for name in ("ada", "grace", "alan")}


def plan(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person], **overrides: object
) -> int:
    roster = facebank.rosters.create(f"roster {len(facebank.rosters.all())}", [p.id for p in people.values()])
    fields: dict[str, object] = {
        "roster_id": roster.id,
        "cameras": CAMERAS,
        "start_at": T0,
        "end_at": T0 + timedelta(seconds=6),
        "interval_s": 2.0,
        "min_ticks": 2,
        **overrides,
    }
    return sessions.create(**fields).id  # type: ignore[arg-type]


def seconds(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def test_ticks_are_planned_from_start_to_end_at_the_interval() -> None:
    assert planned_ticks(T0, seconds(6), 2.0) == 3  # at 0, 2 and 4 s
    assert planned_ticks(T0, seconds(5), 2.0) == 3
    assert planned_ticks(T0, seconds(0.5), 2.0) == 1
    assert planned_ticks(T0, seconds(1.0), 0.25) == 4  # a burst: 4 frames over 1 s


def test_a_new_session_is_scheduled_with_the_roster_as_it_is_now(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person]
) -> None:
    session_id = plan(facebank, sessions, people)
    roster_id = sessions.get(session_id).roster_id
    assert roster_id is not None
    facebank.rosters.update(roster_id, remove=[people["ada"].id])

    state = sessions.get(session_id)

    assert (state.status, state.ticks_planned, state.ticks_started, state.ticks_done) == (
        "scheduled",
        3,
        0,
        0,
    )
    assert {p.display_name for p in state.people} == {"ada", "grace", "alan"}
    assert not any(p.present for p in state.people)
    assert [c.frames for c in state.camera_stats] == [0, 0]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"min_ticks": 4}, errors.InvalidInput),
        ({"min_ticks": 0}, errors.InvalidInput),
        ({"cameras": ()}, errors.InvalidInput),
        ({"end_at": T0}, errors.InvalidInput),
        ({"interval_s": 0.0}, errors.InvalidInput),
        ({"interval_s": 0.0001, "end_at": T0 + timedelta(hours=1)}, errors.InvalidInput),
        ({"roster_id": 12345}, errors.RosterNotFound),
    ],
)
def test_impossible_plans_are_refused(
    facebank: Facebank,
    sessions: AttendanceSessions,
    people: dict[str, Person],
    overrides: dict[str, object],
    error: type[Exception],
) -> None:
    with pytest.raises(error):
        plan(facebank, sessions, people, **overrides)


def test_a_tick_waits_until_due_then_is_captured_once(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person]
) -> None:
    session_id = plan(facebank, sessions, people)

    assert sessions.begin_tick(session_id, 0, seconds(-3), RECOVER).action == "wait"
    first = sessions.begin_tick(session_id, 0, seconds(0.1), RECOVER)
    duplicate = sessions.begin_tick(session_id, 0, seconds(0.2), RECOVER)

    assert first.action == "capture"
    assert first.cameras == CAMERAS
    assert set(first.roster) == {p.id for p in people.values()}
    assert first.next_due_at == seconds(2)
    assert (duplicate.action, duplicate.reason) == ("skip", "already started")
    assert sessions.begin_tick(session_id, 2, seconds(4), RECOVER).reason == "ahead of the cursor"
    assert sessions.get(session_id).status == "running"
    last = [sessions.begin_tick(session_id, tick, seconds(2 * tick), RECOVER) for tick in (1, 2)][-1]
    assert last.action == "capture" and last.next_due_at is None


def test_a_tick_whose_task_died_before_dispatching_is_recovered_only_after_a_while(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person]
) -> None:
    session_id = plan(facebank, sessions, people)
    sessions.begin_tick(session_id, 0, seconds(0), RECOVER)  # claimed; the task then "died"

    assert sessions.begin_tick(session_id, 0, seconds(1), RECOVER).action == "skip"
    recovered = sessions.begin_tick(session_id, 0, seconds(31), RECOVER)
    assert (recovered.action, recovered.reason) == ("capture", "recovered")

    sessions.mark_dispatched(session_id, 0)
    assert sessions.begin_tick(session_id, 0, seconds(62), RECOVER).action == "skip"


def test_only_one_of_two_concurrent_messages_captures_a_tick(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person]
) -> None:
    session_id = plan(facebank, sessions, people)
    actions: list[str] = []
    barrier = threading.Barrier(4)

    def run() -> None:
        barrier.wait()
        actions.append(sessions.begin_tick(session_id, 0, seconds(0), RECOVER).action)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(actions) == ["capture", "skip", "skip", "skip"]


def test_frames_aggregate_per_person_once_per_tick(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person]
) -> None:
    session_id = plan(facebank, sessions, people)
    ada, grace = people["ada"].id, people["grace"].id
    down = {"code": "camera_unreachable", "message": "no route"}
    ticks = [
        [
            CameraFrame(0, seconds(0.2), ((ada, 0.71), (grace, 0.66)), faces=3, unknown_faces=1),
            CameraFrame(1, seconds(0.3), ((ada, 0.80),), faces=1),
        ],
        [CameraFrame(0, seconds(2.2), ((ada, 0.75),), faces=1), CameraFrame(1, seconds(2.3), error=down)],
        [CameraFrame(1, seconds(4.3), ((grace, 0.9),), faces=1)],  # camera 0 sent nothing back
    ]
    for tick, frames in enumerate(ticks):
        sessions.begin_tick(session_id, tick, seconds(2 * tick), RECOVER)
        assert sessions.record_tick(session_id, tick, frames, seconds(2 * tick + 1))
    assert not sessions.record_tick(session_id, 1, ticks[1], seconds(9)), "a tick is recorded once"

    state = sessions.get(session_id)
    by_name = {p.display_name: p for p in state.people}
    assert (state.status, state.ticks_done, state.ended_at) == ("finished", 3, seconds(5))
    assert (by_name["ada"].ticks_seen, by_name["ada"].frames_seen) == (2, 3)
    assert (by_name["ada"].best_score, by_name["ada"].best_camera) == (0.80, 1)
    assert (by_name["ada"].first_seen_at, by_name["ada"].last_seen_at) == (seconds(0.2), seconds(2.2))
    assert (by_name["grace"].ticks_seen, by_name["grace"].best_camera) == (2, 1)
    assert by_name["ada"].present and by_name["grace"].present  # min_ticks 2
    assert (by_name["alan"].ticks_seen, by_name["alan"].present, by_name["alan"].best_score) == (
        0,
        False,
        None,
    )
    cam0, cam1 = state.camera_stats
    assert (cam0.frames, cam0.failures, cam0.unknown_faces) == (2, 1, 1)
    assert (cam1.frames, cam1.failures, cam1.last_error) == (2, 1, down)
    assert [len(t.frames) for t in sessions.ticks(session_id)] == [2, 2, 2]


def test_a_tick_whose_every_camera_failed_is_a_failed_tick(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person]
) -> None:
    session_id = plan(facebank, sessions, people, end_at=seconds(4))
    down = {"code": "camera_unreachable", "message": "no route"}
    sessions.begin_tick(session_id, 0, seconds(0), RECOVER)
    sessions.record_tick(
        session_id, 0, [CameraFrame(0, seconds(0.2), error=down)], seconds(1)
    )  # 1 sent nothing
    sessions.begin_tick(session_id, 1, seconds(2), RECOVER)
    sessions.record_tick(
        session_id, 1, [CameraFrame(0, seconds(2.2), error=down), CameraFrame(1, seconds(2.3))], seconds(3)
    )

    state = sessions.get(session_id)
    assert (state.status, state.ticks_done, state.ticks_failed) == ("finished", 1, 1)
    assert [(cam.frames, cam.failures) for cam in state.camera_stats] == [(0, 2), (1, 1)]
    assert [tick.state for tick in sessions.ticks(session_id)] == ["failed", "done"]


def test_merge_frames_counts_two_cameras_at_one_tick_as_two_frames() -> None:
    seen = merge_frames([CameraFrame(0, seconds(1), ((7, 0.6),)), CameraFrame(1, seconds(0.5), ((7, 0.9),))])

    assert seen[7].frames == 2
    assert (seen[7].best_score, seen[7].best_camera) == (0.9, 1)
    assert (seen[7].first_at, seen[7].last_at) == (seconds(0.5), seconds(1))


def test_a_stopped_session_starts_no_tick_but_records_the_one_in_flight(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person]
) -> None:
    session_id = plan(facebank, sessions, people)
    sessions.begin_tick(session_id, 0, seconds(0), RECOVER)

    stopped = sessions.stop(session_id, seconds(1))

    assert (stopped.status, stopped.ended_at) == ("stopped", seconds(1))
    assert sessions.begin_tick(session_id, 1, seconds(2), RECOVER).reason == "session stopped"
    assert sessions.record_tick(
        session_id, 0, [CameraFrame(0, seconds(0.1), ((people["ada"].id, 0.7),))], seconds(2)
    )
    again = sessions.stop(session_id, seconds(5))
    assert (again.status, again.ended_at, again.ticks_done) == ("stopped", seconds(1), 1)
    with pytest.raises(errors.SessionNotFound):
        sessions.stop(98765, seconds(5))


def test_ticks_that_cannot_start_until_long_after_the_end_are_missed(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person]
) -> None:
    session_id = plan(facebank, sessions, people)
    sessions.begin_tick(session_id, 0, seconds(0), RECOVER)
    sessions.record_tick(
        session_id, 0, [CameraFrame(0, seconds(0.5)), CameraFrame(1, seconds(0.5))], seconds(1)
    )

    late = sessions.begin_tick(session_id, 1, seconds(6) + LATE_GRACE + timedelta(seconds=1), RECOVER)

    state = sessions.get(session_id)
    assert late.action == "skip"
    assert (state.status, state.ticks_done, state.ticks_missed) == ("finished", 1, 2)


def test_expiring_gives_up_on_lost_ticks_and_finishes(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person]
) -> None:
    session_id = plan(facebank, sessions, people, end_at=seconds(2), min_ticks=1)
    sessions.begin_tick(session_id, 0, seconds(0), RECOVER)

    state = sessions.expire_ticks(session_id, seconds(300))

    assert (state.status, state.ticks_failed, state.ticks_done) == ("finished", 1, 0)
    assert not sessions.record_tick(session_id, 0, [], seconds(301)), "a tick given up on stays failed"


def test_deleting_a_person_removes_them_from_sessions_too(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person]
) -> None:
    session_id = plan(facebank, sessions, people)

    facebank.people.delete(people["ada"].id)

    assert {p.display_name for p in sessions.get(session_id).people} == {"grace", "alan"}


def evidence(
    person: Person, secs: float, first: float, last: float, score: float | None, camera: int
) -> PersonEvidence:
    return PersonEvidence(person.id, secs, seconds(first), seconds(last), score, camera)


def test_streaming_cameras_count_seconds_of_evidence_never_ticks(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person]
) -> None:
    """Over 6 s at a 2 s interval with min_ticks 2, a person is present from 4 s of identified tracks; the
    windows add up, glimpses in every window do not make a tick, and the last window comes after the ticks."""
    session_id = plan(facebank, sessions, people)
    ada, grace = people["ada"], people["grace"]
    glimpse = ((grace.id, 0.7),)
    windows = [
        [],  # tick 0 reads nothing: its cameras only start being read
        [evidence(ada, 2.0, 0.0, 2.0, 0.71, 0), evidence(grace, 0.4, 1.0, 1.4, 0.7, 1)],
        [evidence(ada, 1.5, 2.0, 3.5, 0.84, 1), evidence(grace, 0.4, 3.0, 3.4, None, 0)],
    ]
    for tick, seen in enumerate(windows):
        sessions.begin_tick(session_id, tick, seconds(2 * tick), RECOVER)
        frames = [
            CameraFrame(0, seconds(2 * tick), glimpse if tick else (), faces=len(seen), live=True),
            CameraFrame(1, seconds(2 * tick), glimpse if tick else (), faces=len(seen), live=True),
        ]
        assert sessions.record_tick(session_id, tick, frames, seconds(2 * tick + 0.1), seen)
    state = sessions.get(session_id)
    assert state.status == "finished" and state.required_seconds == 4.0
    by_name = {p.display_name: p for p in state.people}
    assert by_name["ada"].seconds_seen == 3.5 and not by_name["ada"].present, "3.5 s of the 4 s needed"
    assert (by_name["grace"].ticks_seen, by_name["grace"].frames_seen) == (0, 0), "evidence is no tick"

    assert sessions.close_evidence(session_id, [evidence(ada, 1.9, 4.0, 5.9, 0.8, 0)], seconds(7))
    assert not sessions.close_evidence(session_id, [evidence(ada, 1.9, 4.0, 5.9, 0.8, 0)], seconds(8)), "once"

    state = sessions.get(session_id)
    by_name = {p.display_name: p for p in state.people}
    assert state.evidence_closed_at == seconds(7)
    assert by_name["ada"].present and by_name["ada"].seconds_seen == pytest.approx(5.4)
    assert (by_name["ada"].first_seen_at, by_name["ada"].last_seen_at) == (seconds(0.0), seconds(5.9))
    assert (by_name["ada"].best_score, by_name["ada"].best_camera) == (0.84, 1)
    assert by_name["grace"].seconds_seen == pytest.approx(0.8) and not by_name["grace"].present
    assert (by_name["alan"].seconds_seen, by_name["alan"].present) == (None, False)
    assert all(frame["live"] for tick in sessions.ticks(session_id) for frame in tick.frames)


def unknown_track(
    camera: int, name: str, first: float, last: float, face: bytes | None
) -> SessionUnknownTrack:
    return SessionUnknownTrack(
        camera, name, seconds(first), seconds(last), np.eye(2, 128, dtype=np.float32), face
    )


def test_unknown_tracks_are_kept_once_bounded_grouped_and_deleted_with_their_session(
    facebank: Facebank, sessions: AttendanceSessions, people: dict[str, Person]
) -> None:
    session_id = plan(facebank, sessions, people)
    tracks = [
        unknown_track(0, "a:1", 0.0, 1.0, b"short"),
        unknown_track(1, "b:1", 1.0, 4.0, b"longest"),
        unknown_track(0, "a:2", 2.0, 5.5, None),  # the longest of all, without a face
        unknown_track(0, "a:3", 3.0, 3.5, b"another"),
    ]
    assert sessions.add_unknown_tracks(session_id, tracks[:2], max_tracks=3) == 2
    assert sessions.add_unknown_tracks(session_id, tracks, max_tracks=3) == 1, "kept once, then the bound"
    assert sessions.unknown_people(session_id) == [], "nobody before the tracks are grouped"
    kept = sessions.unknown_track_embeddings(session_id)
    assert [vectors.shape for _, vectors in kept] == [(2, 128)] * 3
    np.testing.assert_array_equal(kept[0][1], np.eye(2, 128, dtype=np.float32))
    sessions.set_unknown_groups(session_id, dict(zip([row_id for row_id, _ in kept], [1, 1, 2], strict=True)))

    first, second = sessions.unknown_people(session_id)
    assert (first.number, first.tracks, first.seconds, first.camera, first.has_face) == (1, 2, 4.0, 1, True)
    assert (first.first_seen_at, first.last_seen_at) == (seconds(0.0), seconds(4.0))
    assert (second.number, second.tracks, second.has_face) == (2, 1, False)
    assert sessions.unknown_face(session_id, 1) == b"longest"
    with pytest.raises(errors.UnknownPersonNotFound):
        sessions.unknown_face(session_id, 2)

    sessions.delete(session_id)
    with facebank.engine.connect() as connection:
        left = connection.execute(text("SELECT count(*) FROM attendance_session_unknowns")).scalar_one()
    assert left == 0, "no face outlives its session"
