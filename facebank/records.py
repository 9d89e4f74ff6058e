"""The values the facebank store hands out: plain frozen data, never live ORM objects.

Callers (API, tasks) can keep these after the transaction that read them has ended, and
convert them to JSON at the edge (``contract.people`` and ``webapi.schemas`` have the JSON form of
each; ``AppliedThreshold`` is its own).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np
from pydantic import BaseModel, ConfigDict, field_serializer


class Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = Unset.UNSET
"""Marks an ``update`` field left as it is (``None`` is a value: it clears ``external_id``)."""


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    display_name: str
    external_id: str | None
    metadata: dict[str, Any]
    face_count: int
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Face:
    """One enrolled photo: ``box`` is (x1, y1, x2, y2), ``landmarks`` 5 MTCNN points (x0, y0 ... x4, y4)."""

    id: int
    person_id: int
    sha256: str
    content_type: str
    width: int
    height: int
    box: tuple[float, ...]
    landmarks: tuple[float, ...]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class FaceImageData:
    """The original bytes of an enrolled photo, as uploaded."""

    face_id: int
    person_id: int
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing; ``total`` counts every match, not just this page."""

    items: tuple[Person, ...]
    total: int
    offset: int
    limit: int


@dataclass(frozen=True, slots=True)
class ModelCount:
    model_name: str
    model_version: str
    dim: int
    embeddings: int


@dataclass(frozen=True, slots=True)
class FacebankStats:
    revision: int
    people: int
    faces: int
    models: tuple[ModelCount, ...]


class PendingFace(NamedTuple):
    """A face still to be embedded by some model: its photo and landmarks [5,2] float32 in photo pixels."""

    face_id: int
    image_bytes: bytes
    landmarks: np.ndarray


class GalleryRows(NamedTuple):
    """Every embedding of one model: person_ids int64 [M], face_ids int64 [M], vectors float32 [M,D]."""

    person_ids: np.ndarray
    face_ids: np.ndarray
    vectors: np.ndarray


@dataclass(frozen=True, slots=True)
class Roster:
    """A named group of people (a class, a shift); ``person_ids`` in ascending order."""

    id: int
    name: str
    person_ids: tuple[int, ...]
    created_at: datetime

    @property
    def member_count(self) -> int:
        return len(self.person_ids)


# --- attendance sessions (facebank.sessions) ---

SessionCamera = str | dict[str, str]
"""One camera of a session as stored: its URL, or ``{"camera": name}`` for a registered camera."""


def camera_source(camera: SessionCamera) -> dict[str, str]:
    """The frame source (``contract.jobs.FrameSource``'s fields) a session's camera stands for."""
    return {"url": camera} if isinstance(camera, str) else {"camera": camera["camera"]}


@dataclass(frozen=True, slots=True)
class CameraFrame:
    """What one camera's frame of one tick showed: ``present`` is (person id, score) per recognised face.

    A frame that could not be had (camera down, not an image) has ``error`` {code, message} and no faces.
    A ``live`` frame is a streaming camera's track evidence over the tick's window (``captured_at`` its
    end): ``present`` names who its identified tracks were, ``faces`` counts those tracks; it counts in
    the people's seconds (``PersonEvidence``), never in their ticks.
    """

    camera: int
    captured_at: datetime
    present: tuple[tuple[int, float], ...] = ()
    faces: int = 0
    unknown_faces: int = 0
    error: dict[str, str] | None = None
    live: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "camera": self.camera,
            "captured_at": self.captured_at.isoformat(),
            "present": [{"person_id": pid, "score": score} for pid, score in self.present],
            "faces": self.faces,
            "unknown_faces": self.unknown_faces,
            "error": self.error,
            "live": self.live,
        }


@dataclass(frozen=True, slots=True)
class PersonEvidence:
    """One person over one window of a session's streaming cameras (``live.evidence.coverage``)."""

    person_id: int
    seconds: float  # the union of their identified tracks' time in the window, over every camera
    first_at: datetime
    last_at: datetime
    best_score: float | None  # the best track vote's mean similarity
    best_camera: int  # its camera's index in the session


@dataclass(frozen=True, slots=True, eq=False)
class SessionUnknownTrack:
    """A track one of a session's streaming cameras never identified: kept to group unknown people."""

    camera: int
    track: str  # the reader's id of it, unique per camera
    first_at: datetime
    last_at: datetime
    embeddings: np.ndarray  # (k, d) float32, L2-normalised, k ≥ 1
    face_jpeg: bytes | None


@dataclass(frozen=True, slots=True)
class UnknownPerson:
    """Tracks of a session that nobody enrolled was named on, grouped as one face (``number`` from 1, in
    order of first appearance): seen in ``tracks`` tracks over ``seconds`` in all."""

    number: int
    tracks: int
    seconds: float
    first_seen_at: datetime
    last_seen_at: datetime
    camera: int  # the camera of its best face (or of its longest track)
    has_face: bool


@dataclass(frozen=True, slots=True)
class TickDecision:
    """What a tick task should do with tick ``tick`` of a session.

    ``capture``: fetch ``cameras`` now (restricting matching to ``roster``), then schedule the next
    tick at ``next_due_at`` (None: this was the last one). ``wait``: not due yet, come back at
    ``due_at``. ``skip``: nothing to do (``reason`` says why, for the log).
    """

    action: str
    reason: str
    tick: int
    due_at: datetime
    cameras: tuple[SessionCamera, ...] = ()
    roster: tuple[int, ...] = ()
    small_faces: dict[str, Any] | None = None
    next_due_at: datetime | None = None
    owner: str | None = None  # whose work the frames are (a non-admin key's limits apply to them)
    interval_s: float = 0.0
    end_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class CameraStats:
    """One camera over a session: frames had, frames failed, faces that named nobody, the last failure."""

    frames: int
    failures: int
    unknown_faces: int
    last_error: dict[str, str] | None


@dataclass(frozen=True, slots=True)
class SessionPerson:
    """A roster member over a session; ``present`` when seen in at least ``min_ticks`` ticks, or when their
    identified tracks on its streaming cameras covered ``seconds_seen`` ≥ the session's required seconds."""

    person_id: int
    display_name: str
    external_id: str | None
    present: bool
    ticks_seen: int
    frames_seen: int
    first_seen_at: datetime | None
    last_seen_at: datetime | None
    best_score: float | None
    best_camera: int | None
    seconds_seen: float | None = None  # None: no streaming camera of the session identified them


@dataclass(frozen=True, slots=True)
class SessionTick:
    tick: int
    state: str
    due_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    frames: tuple[dict[str, Any], ...]


@dataclass(frozen=True, slots=True)
class SessionState:
    """An attendance session as stored: its plan, progress, cameras and per-person aggregates."""

    id: int
    name: str | None
    kind: str
    status: str
    roster_id: int | None
    roster_name: str
    cameras: tuple[SessionCamera, ...]
    small_faces: dict[str, Any] | None
    start_at: datetime
    end_at: datetime
    interval_s: float
    min_ticks: int
    ticks_planned: int
    ticks_started: int
    ticks_done: int
    ticks_missed: int
    ticks_failed: int
    camera_stats: tuple[CameraStats, ...]
    people: tuple[SessionPerson, ...]
    created_at: datetime
    ended_at: datetime | None
    owner: str | None = None  # hash of the non-admin API key that created it (None: shared)
    evidence_closed_at: datetime | None = None  # when the streaming cameras' last window was added

    @property
    def required_seconds(self) -> float:
        return required_seconds(self.min_ticks, self.interval_s, self.start_at, self.end_at)


def required_seconds(min_ticks: int, interval_s: float, start_at: datetime, end_at: datetime) -> float:
    """Seconds of identified tracks that make a person present on a session's streaming cameras:
    ``min_ticks`` intervals, at most the session's length (docs/live.md, "Attendance over live cameras")."""
    return min(min_ticks * interval_s, (end_at - start_at).total_seconds())


# --- applied match thresholds (recognition.calibration) ---


class AppliedThreshold(BaseModel):
    """The threshold workers use for one model version and the calibration it rests on (None: by hand).

    A pydantic model, unlike the records around it: the API answers with it as it is (``model_dump``)
    and documents it in its OpenAPI document, so its JSON form has no second definition.
    """

    model_config = ConfigDict(frozen=True, protected_namespaces=())

    model_name: str
    model_version: str
    threshold: float
    target_far: float | None
    genuine_pairs: int | None
    impostor_pairs: int | None
    false_reject_rate: float | None
    calibration_job_id: str | None
    applied_at: datetime

    @field_serializer("applied_at", when_used="json")
    def _iso(self, applied_at: datetime) -> str:
        return applied_at.isoformat()  # with the UTC offset, as every other time in the API


# --- the camera registry (facebank.cameras) ---


@dataclass(frozen=True, slots=True)
class Camera:
    """A camera as the API shows it: never its password (``has_password`` says whether there is one).

    ``source`` is ``registry`` (managed through the API) or ``settings`` (``ROLLCALL_UI_CAMERAS``, read
    only, no timestamps). ``url`` holds no credentials.
    """

    name: str
    url: str
    username: str | None
    has_password: bool
    tls_fingerprint_sha256: str | None
    tls_ca_pem: str | None
    small_faces: str | None
    label: str | None
    source: str
    created_at: datetime | None
    updated_at: datetime | None
