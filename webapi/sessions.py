"""``/v1/attendance-sessions``: watch a roster with cameras over time, and report who attended.

The API stores the plan (``facebank.sessions``) and queues the first tick; workers do the rest
(``tasks.sessions``), so every answer here is read from the database and a session outlives any
restart. A burst (``burst: {frames, over_s}``) is a short session: K frames over T seconds,
present when seen in any one of them unless ``min_ticks`` says otherwise.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import redis
from flask import Blueprint, Response, jsonify, request, url_for
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from contract.fields import MAX_URL_LENGTH, CameraName
from contract.jobs import SmallFaces
from contract.people import RecordOut, Timestamp
from errors import BrokerUnavailable, CameraNotAllowed, CameraUnreachable, InvalidInput, SessionNotFound
from facebank.limits import MAX_SESSION_NAME
from facebank.records import (
    CameraStats,
    SessionCamera,
    SessionPerson,
    SessionState,
    SessionTick,
    UnknownPerson,
)
from facebank.sessions import MAX_CAMERAS, planned_ticks
from live.evidence import session_watcher
from sources.urls import CAMERA_SCHEMES, is_camera_url, without_credentials
from webapi.auth import current_caller
from webapi.names import normalised_name
from webapi.schemas import RosterId
from webapi.services import attendance_sessions, current_settings, job_client, live_cameras
from webapi.services import cameras as registered_cameras
from webapi.validation import VISIBLE_TEXT, documented, parse_body, parse_query, storable_text

bp = Blueprint("sessions", __name__, url_prefix="/v1/attendance-sessions")
MAX_DURATION_S = 7 * 24 * 3600.0
MAX_START_AHEAD = timedelta(days=30)
# A start this far in the past is a client's clock or a typo, not a wish to catch up on ticks.
MAX_START_BEHIND = timedelta(seconds=60)
CameraUrl = Annotated[str, Field(max_length=MAX_URL_LENGTH, examples=["http://192.168.1.20:8080/shot.jpg"])]
TimeGiven = Annotated[AwareDatetime, Field(strict=False, description="ISO 8601 with a time zone.")]
CSV_COLUMNS = (
    "person_id",
    "external_id",
    "display_name",
    "present",
    "ticks_seen",
    "frames_seen",
    "first_seen_at",
    "last_seen_at",
    "best_score",
    "best_camera",
    "camera",
    "seconds_seen",
)


class Burst(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    frames: int = Field(..., ge=2, le=30, description="How many frames per camera (K).")
    over_s: float = Field(..., gt=0, le=60, allow_inf_nan=False, description="Over how many seconds (T).")


class CameraRef(BaseModel):
    """A registered camera (``GET /v1/cameras``), looked up by the worker at every tick."""

    model_config = ConfigDict(extra="forbid", strict=True)

    camera: CameraName


class SessionCreate(BaseModel):
    """A session: ``duration_s`` or ``end_at``, and ``interval_s``; or a ``burst`` instead of all three."""

    model_config = ConfigDict(extra="forbid", strict=True)

    roster_id: RosterId
    cameras: list[CameraUrl | CameraRef] = Field(
        ...,
        min_length=1,
        max_length=MAX_CAMERAS,
        description="Camera URLs (HTTP(S) snapshots or MJPEG, RTSP(S) streams), or registered cameras as "
        '`{"camera": name}`, one frame each at every tick (inside the allowlist).',
    )
    name: str | None = Field(None, min_length=1, max_length=MAX_SESSION_NAME, json_schema_extra=VISIBLE_TEXT)
    start_at: TimeGiven | None = Field(None, description="When the first tick is taken; default now.")
    duration_s: float | None = Field(None, gt=0, le=MAX_DURATION_S, allow_inf_nan=False)
    end_at: TimeGiven | None = None
    interval_s: float | None = Field(
        None, ge=1, le=3600, allow_inf_nan=False, description="Seconds between ticks (at least 1)."
    )
    min_ticks: int = Field(1, ge=1, description="Present when seen in at least this many ticks.")
    small_faces: SmallFaces | None = None
    burst: Burst | None = Field(
        None, description="K frames over T seconds, instead of duration and interval."
    )

    _name = field_validator("name", mode="before")(normalised_name)
    _text = field_validator("name")(storable_text)

    @field_validator("cameras")
    @classmethod
    def _camera_urls(cls, cameras: list[str | CameraRef]) -> list[str | CameraRef]:
        if not all(is_camera_url(url) for url in cameras if isinstance(url, str)):
            raise ValueError(
                'every camera must be an http://, https://, rtsp:// or rtsps:// URL, or {"camera": name}'
            )
        return cameras

    def stored_cameras(self) -> list[SessionCamera]:
        """The cameras as the session stores them: URLs, and registered cameras by name."""
        return [camera if isinstance(camera, str) else {"camera": camera.camera} for camera in self.cameras]

    @model_validator(mode="after")
    def _one_plan(self) -> SessionCreate:
        if self.burst is not None:
            if (self.duration_s, self.end_at, self.interval_s) != (None, None, None):
                raise ValueError("a burst has no duration_s, end_at or interval_s")
            return self
        if (self.duration_s is None) == (self.end_at is None):
            raise ValueError("give exactly one of 'duration_s' or 'end_at'")
        if self.interval_s is None:
            raise ValueError("give 'interval_s' (or a 'burst')")
        return self


class ReportQuery(BaseModel):
    format: Literal["json", "csv"] | None = Field(
        None, description="Default: JSON, or CSV if Accept asks for it."
    )


class PersonRef(BaseModel):
    id: int
    display_name: str
    external_id: str | None


class SessionPersonOut(BaseModel):
    """One roster member over a session; ``present`` when seen in at least ``min_ticks`` ticks, or (streaming
    cameras) when their identified tracks covered ``seconds_seen`` ≥ the session's ``required_seconds``."""

    person: PersonRef
    present: bool
    ticks_seen: int
    frames_seen: int
    first_seen_at: Timestamp | None
    last_seen_at: Timestamp | None
    best_score: float | None
    best_camera: int | None
    camera: str | None = Field(
        description="The camera of the best sighting: its registered name, or its URL without credentials."
    )
    seconds_seen: float | None = Field(
        description="Seconds their identified tracks covered on the session's streaming cameras (null: none "
        "of them identified the person, or the session has none)."
    )

    @classmethod
    def of(cls, person: SessionPerson, cameras: tuple[SessionCamera, ...]) -> SessionPersonOut:
        return cls(
            person=PersonRef(
                id=person.person_id, display_name=person.display_name, external_id=person.external_id
            ),
            present=person.present,
            ticks_seen=person.ticks_seen,
            frames_seen=person.frames_seen,
            first_seen_at=person.first_seen_at,
            last_seen_at=person.last_seen_at,
            best_score=round(person.best_score, 5) if person.best_score is not None else None,
            best_camera=person.best_camera,
            camera=camera_label(cameras[person.best_camera]) if person.best_camera is not None else None,
            seconds_seen=round(person.seconds_seen, 3) if person.seconds_seen is not None else None,
        )


class SessionCameraOut(BaseModel):
    """One camera over a session: a registered camera by ``name``, else its ``url`` (no credentials)."""

    camera: int
    name: str | None
    url: str | None
    frames: int
    failed_ticks: int
    failures: int
    unknown_faces: int
    last_error: dict[str, str] | None

    @classmethod
    def of(cls, index: int, camera: SessionCamera, stats: CameraStats) -> SessionCameraOut:
        return cls(
            camera=index,
            name=None if isinstance(camera, str) else camera["camera"],
            url=without_credentials(camera, keep_query=False) if isinstance(camera, str) else None,
            frames=stats.frames,
            failed_ticks=stats.failures,
            failures=stats.failures,
            unknown_faces=stats.unknown_faces,
            last_error=stats.last_error,
        )


class RosterRef(BaseModel):
    id: int | None
    name: str


class TickCounts(BaseModel):
    planned: int
    started: int
    done: int
    missed: int
    failed: int


class SessionSummary(BaseModel):
    """A session without its people: its plan, progress and cameras."""

    id: int
    name: str | None
    kind: Literal["session", "burst"]
    status: Literal["scheduled", "running", "finished", "stopped"]
    roster: RosterRef
    cameras: list[SessionCameraOut]
    start_at: Timestamp
    end_at: Timestamp
    interval_s: float
    min_ticks: int
    required_seconds: float = Field(
        description="Seconds of identified tracks on its streaming cameras that make a person present "
        "(`min_ticks` × `interval_s`, at most the session's length)."
    )
    ticks: TickCounts
    created_at: Timestamp
    ended_at: Timestamp | None
    evidence_closed_at: Timestamp | None = Field(
        description="When the evidence of its streaming cameras' last window (after the last tick) was "
        "added: until then a session over streaming cameras may still gain seconds; null without them."
    )
    report_url: str

    @classmethod
    def fields_of(cls, state: SessionState) -> dict[str, Any]:
        return {
            "id": state.id,
            "name": state.name,
            "kind": state.kind,
            "status": state.status,
            "roster": RosterRef(id=state.roster_id, name=state.roster_name),
            "cameras": [
                SessionCameraOut.of(index, camera, stats)
                for index, (camera, stats) in enumerate(zip(state.cameras, state.camera_stats, strict=True))
            ],
            "start_at": state.start_at,
            "end_at": state.end_at,
            "interval_s": state.interval_s,
            "min_ticks": state.min_ticks,
            "required_seconds": state.required_seconds,
            "ticks": TickCounts(
                planned=state.ticks_planned,
                started=state.ticks_started,
                done=state.ticks_done,
                missed=state.ticks_missed,
                failed=state.ticks_failed,
            ),
            "created_at": state.created_at,
            "ended_at": state.ended_at,
            "evidence_closed_at": state.evidence_closed_at,
            "report_url": url_for("sessions.report", session_id=state.id),
        }


class SessionOut(SessionSummary):
    """A session's live state: the summary and every roster member's aggregate."""

    people: list[SessionPersonOut]

    @classmethod
    def of(cls, state: SessionState) -> SessionOut:
        people = [SessionPersonOut.of(person, state.cameras) for person in state.people]
        return cls(**SessionSummary.fields_of(state), people=people)


class TickOut(RecordOut):
    """One tick of a session, read from its record (``facebank.records.SessionTick``) by attribute."""

    tick: int
    state: str
    due_at: Timestamp
    started_at: Timestamp | None
    finished_at: Timestamp | None
    frames: list[dict[str, Any]]

    @classmethod
    def of(cls, tick: SessionTick) -> TickOut:
        return cls.model_validate(tick)


class UnknownPersonOut(BaseModel):
    """Tracks of the session's streaming cameras that nobody enrolled was named on, grouped as one face."""

    number: int = Field(description='"unknown person N": numbered from 1 in order of first appearance.')
    label: str = Field(examples=["unknown person 1"])
    seen: int = Field(description="How many tracks showed them (a track: one stay in a camera's view).")
    seconds: float = Field(description="Their tracks' time in view, in all.")
    first_seen_at: Timestamp
    last_seen_at: Timestamp
    camera: str = Field(description="The camera of their best face.")
    face_url: str | None = Field(description="Their best face (JPEG); null when none was kept.")

    @classmethod
    def of(cls, state: SessionState, person: UnknownPerson) -> UnknownPersonOut:
        face = url_for("sessions.unknown_face", session_id=state.id, number=person.number)
        return cls(
            number=person.number,
            label=f"unknown person {person.number}",
            seen=person.tracks,
            seconds=round(person.seconds, 3),
            first_seen_at=person.first_seen_at,
            last_seen_at=person.last_seen_at,
            camera=camera_label(state.cameras[person.camera]),
            face_url=face if person.has_face else None,
        )


class SessionReport(BaseModel):
    session: SessionSummary
    present: list[SessionPersonOut]
    absent: list[SessionPersonOut]
    unknown_people: list[UnknownPersonOut] = Field(
        description="Faces on its streaming cameras that nobody enrolled was named on, grouped; listed once "
        "the session's last window is read (`evidence_closed_at`)."
    )
    ticks: list[TickOut]

    @classmethod
    def of(cls, state: SessionState, ticks: list[SessionTick], unknown: list[UnknownPerson]) -> SessionReport:
        people = [SessionPersonOut.of(person, state.cameras) for person in state.people]
        return cls(
            session=SessionSummary(**SessionSummary.fields_of(state)),
            present=[entry for entry in people if entry.present],
            absent=[entry for entry in people if not entry.present],
            unknown_people=[UnknownPersonOut.of(state, person) for person in unknown],
            ticks=[TickOut.of(tick) for tick in ticks],
        )


def visible_session(session_id: int) -> SessionState:
    """The session, if this caller may see it: its creator's key or an admin key; else 404 as if unknown."""
    state = attendance_sessions().get(session_id)
    if not current_caller().may_see(state.owner):
        raise SessionNotFound(f"no attendance session with id {session_id}")
    return state


def check_cameras_allowed(cameras: list[SessionCamera]) -> None:
    """Every camera known and inside ``ROLLCALL_CAMERA_ALLOW`` now, not a failed frame at every tick."""
    directory = registered_cameras()
    for index, camera in enumerate(cameras):
        url = camera if isinstance(camera, str) else directory.get(camera["camera"]).url
        try:
            current_settings().camera_allow.check_url(url, CAMERA_SCHEMES)
        except CameraNotAllowed as exc:
            raise CameraNotAllowed(f"cameras[{index}]: {exc.message}") from exc
        except CameraUnreachable as exc:  # its name does not resolve: nothing to check it against
            raise InvalidInput(f"cameras[{index}]: {exc.message}") from exc


def check_session_cost(start: datetime, end: datetime, interval: float, kind: str, cameras: int) -> None:
    """Refuse a plan over the server's bounds: ticks × cameras frames, and the shortest interval."""
    settings = current_settings()
    if kind == "session" and interval < settings.session_min_interval_s:
        raise InvalidInput(
            f"interval_s is {interval:g}; sessions tick at most every {settings.session_min_interval_s:g} s "
            "(ROLLCALL_SESSION_MIN_INTERVAL_S; a burst takes frames closer together)"
        )
    frames = planned_ticks(start, end, interval) * cameras
    if frames > settings.session_max_frames:
        raise InvalidInput(
            f"the session would fetch {frames} frames (ticks × cameras); at most "
            f"{settings.session_max_frames} (ROLLCALL_SESSION_MAX_FRAMES)"
        )


def _now() -> datetime:
    return datetime.now(UTC)


def _plan(body: SessionCreate, now: datetime) -> tuple[datetime, datetime, float, str]:
    """Start, end, interval and kind of the requested session."""
    start = body.start_at.astimezone(UTC) if body.start_at is not None else now
    if start < now - MAX_START_BEHIND:
        raise InvalidInput("start_at is in the past")
    if start > now + MAX_START_AHEAD:
        raise InvalidInput(f"start_at is more than {MAX_START_AHEAD.days} days ahead")
    if body.burst is not None:
        over = timedelta(seconds=body.burst.over_s)
        return start, start + over, body.burst.over_s / body.burst.frames, "burst"
    assert body.interval_s is not None
    if body.end_at is not None:
        end = body.end_at.astimezone(UTC)
        if (end - start).total_seconds() > MAX_DURATION_S:
            raise InvalidInput(f"a session lasts at most {MAX_DURATION_S:g} s")
    else:
        assert body.duration_s is not None
        end = start + timedelta(seconds=body.duration_s)
    return start, end, body.interval_s, "session"


@bp.post("")
@documented(
    "Start (or schedule) an attendance session over a roster and cameras.",
    body=SessionCreate,
    responses={201: SessionOut},
    tag="attendance sessions",
    errors=(429,),
)
def create_session() -> Any:
    body = parse_body(SessionCreate)
    job_client().admit_submission(current_caller())
    start, end, interval, kind = _plan(body, _now())
    check_session_cost(start, end, interval, kind, len(body.cameras))
    check_cameras_allowed(body.stored_cameras())
    if body.small_faces is not None:
        body.small_faces.check_cost(current_settings().small_faces_max_tile_cost)
    store = attendance_sessions()
    state = store.create(
        roster_id=body.roster_id,
        cameras=body.stored_cameras(),
        start_at=start,
        end_at=end,
        interval_s=interval,
        min_ticks=body.min_ticks,
        kind=kind,
        name=body.name,
        small_faces=body.small_faces.model_dump(exclude_unset=True) if body.small_faces is not None else None,
        owner=current_caller().owner,
        max_live=current_settings().max_live_sessions,
    )
    try:
        job_client().start_session(state.id)
    except BrokerUnavailable:
        store.delete(state.id)  # nothing will ever tick it: the client gets the error and no session
        raise
    location = url_for("sessions.get_session", session_id=state.id)
    return jsonify(SessionOut.of(state).model_dump(mode="json")), 201, {"Location": location}


@bp.get("/<int:session_id>")
@documented(
    "A session's live state: status, ticks, cameras and per-person aggregates.",
    responses={200: SessionOut},
    tag="attendance sessions",
)
def get_session(session_id: int) -> Any:
    return jsonify(SessionOut.of(visible_session(session_id)).model_dump(mode="json"))


@bp.post("/<int:session_id>/stop")
@documented(
    "Stop a session: no tick starts after this, and its frames still queued are dropped (their cameras "
    "show `job_revoked`); frames a worker is running are still recorded.",
    responses={200: SessionOut},
    tag="attendance sessions",
)
def stop_session(session_id: int) -> Any:
    state = visible_session(session_id)
    store = attendance_sessions()
    store.stop(session_id, _now())
    job_client().drop_session_frames(session_id)  # after the stop: no tick queues frames any more
    if leave_streaming_cameras(state):
        stopped = store.get(session_id)
        # Its last window (from its last tick to the stop) and its unknown faces, once its readers let go.
        job_client().close_session(session_id, stopped.ended_at or _now())
        return jsonify(SessionOut.of(stopped).model_dump(mode="json"))
    return jsonify(SessionOut.of(store.get(session_id)).model_dump(mode="json"))


@bp.get("/<int:session_id>/report")
@documented(
    "Who attended: JSON, or CSV with ?format=csv or Accept: text/csv.",
    query=ReportQuery,
    responses={200: SessionReport},
    tag="attendance sessions",
)
def report(session_id: int) -> Any:
    query = parse_query(ReportQuery)
    wanted = query.format or (
        "csv"
        if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv"
        else "json"
    )
    store = attendance_sessions()
    state = visible_session(session_id)
    if wanted == "csv":
        return Response(
            report_csv(state),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="attendance-session-{state.id}.csv"'},
        )
    report = SessionReport.of(state, list(store.ticks(session_id)), store.unknown_people(session_id))
    return jsonify(report.model_dump(mode="json"))


@bp.get("/<int:session_id>/unknown-people/<int:number>/face")
@documented(
    "The best face (JPEG) of the session's unknown person `number`, as its camera saw it: enrol it with "
    "`POST /v1/people/<id>/faces` to make them known.",
    responses={200: None},
    tag="attendance sessions",
)
def unknown_face(session_id: int, number: int) -> Any:
    visible_session(session_id)
    face = attendance_sessions().unknown_face(session_id, number)
    return Response(face, mimetype="image/jpeg", headers={"Cache-Control": "private, no-store"})


def leave_streaming_cameras(state: SessionState) -> bool:
    """A stopped session no longer keeps its streaming cameras live (``tasks.session_evidence``); leaving a
    registered camera it never watched (a snapshot camera) changes nothing. Whether it had registered
    cameras (then its close reads what their readers saw last)."""
    demand = live_cameras().demand
    registered = False
    for camera in state.cameras:
        if isinstance(camera, str):
            continue
        registered = True
        try:
            demand.leave(camera["camera"], session_watcher(state.id))
        except redis.RedisError as exc:
            raise BrokerUnavailable(f"Redis, where live cameras are kept, does not answer ({exc})") from exc
    return registered


def camera_label(camera: SessionCamera) -> str:
    """How a report names a session's camera: its registered name, or its URL without credentials or query."""
    return without_credentials(camera, keep_query=False) if isinstance(camera, str) else camera["camera"]


def _cell(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula (=, +, -, @ …) is kept as text."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value


def report_csv(state: SessionState) -> str:
    """One row per roster member, present first; ``camera`` names the camera of the best sighting."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for person in sorted(state.people, key=lambda p: not p.present):
        row = SessionPersonOut.of(person, state.cameras).model_dump(mode="json")
        writer.writerow(
            _cell(value)
            for value in (
                person.person_id,
                person.external_id,
                person.display_name,
                "yes" if person.present else "no",
                person.ticks_seen,
                person.frames_seen,
                row["first_seen_at"],
                row["last_seen_at"],
                row["best_score"],
                person.best_camera,
                row["camera"],
                row["seconds_seen"],
            )
        )
    return out.getvalue()
