"""Attendance sessions on Celery: a self-scheduling tick task, one frame task per camera, one aggregate.

Each tick runs ``chord(group(session_frame per camera), record)``: the cameras of a tick are fetched
and recognised in parallel (on as many workers as there are), then ``record`` adds the tick's frames
to the per-person aggregates in the database (``facebank.sessions``, which also holds the rules).

Why self-scheduling ticks rather than Celery beat: beat is one more process that must run exactly
once (two beats tick twice, none never ticks), keeps its schedule in a local file, and knows nothing
of sessions created at run time without a database-backed scheduler. Here the schedule is data: the
session row holds a tick cursor (``next_tick``), and ``rollcall.sessions.tick(session, n)`` re-reads
the session, claims tick n only while it is the cursor (a conditional update under the row lock), and
only then queues tick n + 1 with an eta. Redis keeps eta messages in the worker's memory until they
are due; a worker stopped with SIGTERM puts them back on the queue at once, one killed outright has
them redelivered after the visibility timeout. Either way the redelivered message re-reads the
database, so a tick runs once, a stale or duplicated message skips, and a session survives any worker
or API restart. Etas are never set further ahead than half the visibility timeout (Redis would
redeliver a message held longer, to a second worker): a far tick takes a few hops of "not due yet".

Burst mode (K frames over T seconds, best score per person) is the same machinery: a short session of
K ticks at interval T/K with ``min_ticks`` 1, so a blink or a turned head in one frame is forgiven.

Safety nets: a tick whose task died between claiming it and queuing its work is claimed again by the
redelivered message after ``RECOVER_AFTER``; when the last tick starts, ``rollcall.sessions.expire``
is queued for well after every frame could have come back, and gives up on ticks still capturing.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from celery import chord, group
from celery.canvas import Signature
from celery.exceptions import SoftTimeLimitExceeded

from contract.jobs import (
    SESSION_CLOSE,
    SESSION_CLOSE_AFTER_S,
    SESSION_EXPIRE,
    SESSION_RECORD,
    SESSION_TICK,
    AttendanceArgs,
    SessionFrameArgs,
    SessionFrameResult,
    read_result,
)
from contract.records import JobRecord
from errors import DatabaseUnavailable, JobRevoked, JobTimeout, RollcallError, TooManyJobsInFlight
from facebank.records import CameraFrame, PersonEvidence, SessionUnknownTrack, camera_source
from facebank.sessions import AttendanceSessions
from ml.timing import StageTimer
from recognition.unknowns import group_tracks
from tasks import app, runtime, session_evidence
from tasks.jobs import run_attendance
from tasks.registry import register
from tasks.runtime import Runtime

log = logging.getLogger("rollcall.sessions")
# A claimed tick whose frames were not queued this long after is taken to have lost its task.
RECOVER_AFTER = timedelta(seconds=60)
CLOSE_AFTER = timedelta(seconds=SESSION_CLOSE_AFTER_S)
# A close that finds a reader still holding a camera nobody watches asks again this often, this long at most
# (a reader lets go within a round and its processor's close; then the tracks are all written).
CLOSE_RETRY = timedelta(seconds=1)
CLOSE_WAIT_MAX = timedelta(seconds=30)
_RETRY = {
    "autoretry_for": (DatabaseUnavailable,),
    "retry_backoff": True,
    "retry_backoff_max": 30,
    "max_retries": 10,
    "throws": (RollcallError,),
    "ignore_result": True,
}


def _now() -> datetime:
    return datetime.now(UTC)


def _store() -> AttendanceSessions:
    return AttendanceSessions(runtime.current().facebank.engine)


def _visibility_timeout_s() -> float:
    return float(app.conf.broker_transport_options.get("visibility_timeout", 3600))


def _expire_after() -> timedelta:
    """When every frame of the last tick has surely come back: redelivery plus two hard job limits."""
    return timedelta(seconds=_visibility_timeout_s() + 2 * runtime.current().settings.job_time_limit_s)


def _send_at(signature: Signature, when: datetime) -> None:
    """Queue ``signature`` to run at ``when``, or sooner: never beyond half the visibility timeout."""
    now = _now()
    eta = min(when, now + timedelta(seconds=_visibility_timeout_s() / 2))
    signature.apply_async(eta=eta if eta > now else None)


@app.task(name=SESSION_TICK, **_RETRY)
def tick(session_id: int, number: int) -> None:
    """Run tick ``number`` of a session if it is due and still the session's cursor; queue the next."""
    now = _now()
    decision = _store().begin_tick(session_id, number, now, RECOVER_AFTER)
    log.info("session %s tick %s: %s (%s)", session_id, number, decision.action, decision.reason)
    if decision.action == "wait":
        _send_at(tick.si(session_id, number), decision.due_at)
        return
    if decision.action != "capture":
        return
    streams = session_evidence.streaming_cameras(decision.cameras)
    if decision.next_due_at is not None:
        _send_at(tick.si(session_id, number + 1), decision.next_due_at)
        live_until = decision.next_due_at + timedelta(seconds=session_evidence.DEMAND_SLACK_S)
    else:
        give_up_at = now + _expire_after()
        _send_at(expire.si(session_id, give_up_at.isoformat()), give_up_at)
        assert decision.end_at is not None
        live_until = decision.end_at  # then let go: its tracks end, and close() reads the last window
        if streams:
            close_at = decision.end_at + CLOSE_AFTER
            _send_at(close.si(session_id, close_at.isoformat()), close_at)
    live_frames: list[CameraFrame] = []
    evidence: list[PersonEvidence] = []
    if streams:
        session_evidence.keep_live(session_id, streams, live_until, now)
        window_start = decision.due_at - timedelta(seconds=decision.interval_s if number > 0 else 0)
        window = session_evidence.read_window(streams, window_start, decision.due_at)
        live_frames, evidence = window.frames, window.evidence
        _keep_unknown_tracks(session_id, window.unknown)
    aggregate = record.s(
        session_id,
        number,
        live_frames=[frame.to_json() for frame in live_frames],
        evidence=[session_evidence.evidence_json(entry) for entry in evidence],
    )
    snapshots = [(index, camera) for index, camera in enumerate(decision.cameras) if index not in streams]
    frame_ids = [str(uuid.uuid4()) for _ in snapshots]
    if not snapshots:  # every camera streams: nothing to fetch, the tick is recorded now
        _store().record_tick(session_id, number, live_frames, now, evidence)
    elif _admit_frames(session_id, frame_ids, decision.owner):
        frames = group(
            session_frame.s(
                camera=index,
                source=camera_source(camera),
                roster=list(decision.roster),
                small_faces=decision.small_faces,
            ).set(task_id=frame_id)
            for (index, camera), frame_id in zip(snapshots, frame_ids, strict=True)
        )
        chord(frames)(aggregate)
    else:
        refused = TooManyJobsInFlight(
            "the session's API key had the most frames (ROLLCALL_SESSION_MAX_QUEUED_FRAMES) or jobs "
            "(ROLLCALL_MAX_JOBS_IN_FLIGHT) queued or running that it may, so this tick was not taken"
        )
        log.warning("session %s tick %s: not taken (%s)", session_id, number, refused.code)
        failed = [CameraFrame(index, now, error=refused.to_dict()) for index, _ in snapshots]
        _store().record_tick(session_id, number, [*failed, *live_frames], now, evidence)
    _store().mark_dispatched(session_id, number)


def _admit_frames(session_id: int, frame_ids: list[str], owner: str | None) -> bool:
    """Count a tick's frames as their key's work in flight and record them; False over its limits.

    A non-admin key's frames count against ``ROLLCALL_MAX_JOBS_IN_FLIGHT`` and
    ``ROLLCALL_SESSION_MAX_QUEUED_FRAMES``: the queue holds at most that many frames of one key, so
    another key's frame waits behind a bounded number of them. Each frame gets a job record, which
    its worker checks before it runs, so stopping the session drops those still queued.
    """
    records = runtime.current().records
    if records is None:  # no Redis result store: no records and no limits (Celery's chords need one)
        return True
    if not records.admission.admit_frames(owner, frame_ids):
        return False
    frame = JobRecord(type="session_frame", submitted_at=time.time(), owner=owner, session_id=session_id)
    records.add_session_frames(session_id, frame_ids, frame)
    return True


def dropped_frame(args: SessionFrameArgs) -> SessionFrameResult:
    """The answer of a frame whose session stopped while it was queued: taken by nobody."""
    error = JobRevoked("the session was stopped before this frame was taken").to_dict()
    return SessionFrameResult(
        camera=args.camera, captured_at=_now().isoformat(), present=[], unknown_faces=[], error=error
    )


def run_session_frame(args: SessionFrameArgs, res: Runtime, timer: StageTimer) -> SessionFrameResult:
    """One camera's frame of one tick: who of the roster it shows (the attendance job's own steps,
    ``tasks.jobs.run_attendance``).

    A camera that fails (unreachable, not an image, too slow) is part of the answer, not a failure of
    the task: the tick is still recorded, and the session's camera statistics show the error.
    """
    captured_at = _now().isoformat()
    job = AttendanceArgs(source=args.source, roster=args.roster, small_faces=args.small_faces)
    try:
        result = run_attendance(job, res, timer)
    except SoftTimeLimitExceeded:
        limit = res.settings.job_soft_time_limit_s
        error = JobTimeout(f"the frame took longer than {limit} s").to_dict()
    except RollcallError as exc:
        error = exc.to_dict()
    else:
        return SessionFrameResult(
            camera=args.camera,
            captured_at=captured_at,
            present=[(entry.person.id, entry.score) for entry in result.present],
            unknown_faces=result.unknown_faces,
            error=None,
        )
    log.warning("session frame from camera %s failed: %s", args.camera, error["code"])
    return SessionFrameResult(
        camera=args.camera, captured_at=captured_at, present=[], unknown_faces=[], error=error
    )


session_frame = register(SessionFrameArgs, run_session_frame, when_revoked=dropped_frame)


def camera_frame(result: dict[str, Any]) -> CameraFrame:
    """A ``session_frame`` result as the store's value."""
    frame = read_result(SessionFrameResult, result)
    return CameraFrame(
        camera=frame.camera,
        captured_at=datetime.fromisoformat(frame.captured_at),
        present=tuple(frame.present),
        faces=len(frame.present) + len(frame.unknown_faces),
        unknown_faces=len(frame.unknown_faces),
        error=frame.error,
    )


@app.task(name=SESSION_RECORD, **_RETRY)
def record(
    results: list[dict[str, Any]],
    session_id: int,
    number: int,
    live_frames: list[dict[str, Any]] | None = None,
    evidence: list[dict[str, Any]] | None = None,
) -> None:
    """Add one tick's frames to the session's aggregates (once, however often this message comes):
    the snapshot cameras' ``results``, the streaming cameras' ``live_frames`` and their ``evidence``."""
    frames = [camera_frame(r) for r in results] + [session_evidence.frame_of(f) for f in live_frames or ()]
    seen = [session_evidence.evidence_of(entry) for entry in evidence or ()]
    recorded = _store().record_tick(session_id, number, frames, _now(), seen)
    log.info("session %s tick %s: %s", session_id, number, "recorded" if recorded else "already recorded")


@app.task(name=SESSION_CLOSE, **_RETRY)
def close(session_id: int, not_before: str) -> None:
    """After a session over streaming cameras has ended (or was stopped) and its cameras were let go: add
    the evidence of its last window (from its last tick to its end, or to when it was stopped) and group
    its unknown faces, once."""
    when = datetime.fromisoformat(not_before)
    if _now() < when:
        _send_at(close.si(session_id, not_before), when)
        return
    state = _store().get(session_id)
    streams = session_evidence.streaming_cameras(state.cameras)
    session_evidence.leave(session_id, streams)
    if not streams or state.evidence_closed_at is not None:
        return  # only snapshot cameras (a stopped session's close is sent whatever its cameras), or done
    held = session_evidence.still_read(streams)
    if held and _now() < when + CLOSE_WAIT_MAX:
        log.info("session %s: close waits for the readers to let go of %s", session_id, ", ".join(held))
        _send_at(close.si(session_id, not_before), _now() + CLOSE_RETRY)
        return
    if state.status == "stopped":
        # The last tick that started read up to its own due time; the rest runs to the stop.
        last_due = state.start_at + timedelta(seconds=max(0, state.ticks_started - 1) * state.interval_s)
        window_end = state.ended_at or _now()
    else:
        last_due = state.start_at + timedelta(seconds=(state.ticks_planned - 1) * state.interval_s)
        window_end = state.end_at
    window = session_evidence.read_window(streams, last_due, window_end, unknown_until=_now())
    _keep_unknown_tracks(session_id, window.unknown)
    _group_unknown_tracks(session_id)
    added = _store().close_evidence(session_id, window.evidence, _now())
    log.info("session %s: last window %s", session_id, "added" if added else "already added")


def _keep_unknown_tracks(session_id: int, tracks: list[SessionUnknownTrack]) -> None:
    kept = _store().add_unknown_tracks(
        session_id, tracks, runtime.current().settings.session_max_unknown_tracks
    )
    if kept < len(tracks):
        log.info(
            "session %s: %d unknown tracks not kept (kept already, or the session's most)",
            session_id,
            len(tracks) - kept,
        )


def _group_unknown_tracks(session_id: int) -> None:
    """Number the session's unknown people: its unknown tracks grouped at the facebank's match threshold."""
    tracks = _store().unknown_track_embeddings(session_id)
    if not tracks:
        return
    threshold = runtime.current().snapshot().threshold
    numbers = group_tracks([vectors for _, vectors in tracks], threshold)
    _store().set_unknown_groups(
        session_id, {row_id: number for (row_id, _), number in zip(tracks, numbers, strict=True)}
    )


@app.task(name=SESSION_EXPIRE, **_RETRY)
def expire(session_id: int, not_before: str) -> None:
    """Give up on ticks still capturing long after the last one started, so the session finishes."""
    when = datetime.fromisoformat(not_before)
    if _now() < when:
        _send_at(expire.si(session_id, not_before), when)
        return
    state = _store().expire_ticks(session_id, _now())
    log.info("session %s expired: status %s, %s ticks failed", session_id, state.status, state.ticks_failed)
