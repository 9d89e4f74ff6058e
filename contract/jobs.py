"""The typed job contract: each job's options, arguments, task name, queue and result.

What a client chooses for a job is its ``*Options`` model; the job's ``*Args`` add where the frame comes
from. The API's requests extend the options (``webapi.schemas``), so a field added here is accepted,
validated and documented by the API as it is, and the workers register each job's Celery task from its
``*Args`` model (``tasks.registry``). The API sends ``to_kwargs(args)`` (plain JSON, Celery's json
serializer); each task's keyword parameters are that model's fields, and the task validates them into
the model before it does anything (``parse_args``: a bad message is ``invalid_input``). A result is
the job's answer (``DetectResult`` …) with the worker's envelope (``JobEnvelope``: worker, models,
timings, batch) beside it in one JSON object; whoever reads a result (the legacy routes, attendance
sessions, the job log) validates it into the answer model.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from contract.fields import CameraName, CameraUrl, Coordinate, JsonInt, Landmarks, PersonId
from contract.people import FaceRecordOut, PersonOut
from errors import InvalidInput

SESSION_TICK = "rollcall.sessions.tick"
SESSION_RECORD = "rollcall.sessions.record"
SESSION_EXPIRE = "rollcall.sessions.expire"
SESSION_CLOSE = "rollcall.sessions.close"
# A session's streaming cameras are let go at its end (or stop); its close runs this long after, when their
# readers have closed their tracks and written them (a reader round, about a second, and the processor's
# close).
SESSION_CLOSE_AFTER_S = 5.0
CALLBACK = "rollcall.io.callback"
# Which configured queue a job goes to (contract.routing): ROLLCALL_MODEL_QUEUE, _BULK_QUEUE, _FRAME_QUEUE.
QueueKind = Literal["model", "bulk", "frame"]
TilingMode = Literal["off", "auto", "on"]

ArgsT = TypeVar("ArgsT", bound="JobArgs")
AnswerT = TypeVar("AnswerT", bound="JobAnswer")


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobArgs(_Args):
    """A job's arguments: what its message carries, and so its task's keyword parameters.

    ``job_type`` names the task (``task_name``), ``queue`` the configured queue it goes to. The workers
    register one Celery task per model (``tasks.registry``); the API sends the model (``to_kwargs``).
    """

    job_type: ClassVar[str]
    queue: ClassVar[QueueKind] = "model"

    @classmethod
    def task_name(cls) -> str:
        """The task that runs this job: ``rollcall.models.<job_type>``."""
        return f"rollcall.models.{cls.job_type}"


# --- the parts of a job's arguments ---

_SOURCES = ("url", "image_b64", "camera", "upload")
# The face size a tiling's cost is measured against: ROLLCALL_MIN_FACE_SIZE's default, the whole frame's.
COST_FACE_SIZE = 20


class FrameChoice(_Args):
    """Where a job's frame comes from, as a client names it: a camera URL, a registered camera's name, or
    an image in base64; exactly one. A camera travels by name only: the worker looks up its URL and
    credentials. The API's requests extend this (``webapi.schemas.FrameRequest``)."""

    url: CameraUrl | None = None
    image_b64: str | None = Field(None, description="A JPEG or PNG image, base64-encoded.")
    camera: CameraName | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> Self:
        if sum(getattr(self, name, None) is not None for name in _SOURCES) != 1:
            raise ValueError("give exactly one of 'url', 'image_b64' or 'camera'")
        return self


class FrameSource(FrameChoice):
    """A job's frame source as its message carries it: the client's choice, or an upload by reference.

    The API sends an upload by reference: ``upload`` is the id of the job whose bytes it stored
    (``contract.uploads``). ``image_b64`` (the image itself) is still read, for messages sent without
    the API and those queued before uploads went by reference.
    """

    upload: str | None = None


class SmallFaces(_Args):
    """Small-face mode: the whole frame plus enlarged overlapping tiles (the seed's 3 × 4 tiles at ×2).

    The one definition: requests are validated with it (bounds and defaults), sessions store it, and the
    worker hands it to the detector as it is (``ml.tiling.TilingParams`` is the protocol it meets; ``ml``
    sits below the contract and imports nothing from it). A job without it uses its camera's mode, else
    ``ROLLCALL_SMALL_FACES``.
    """

    mode: TilingMode = "auto"
    rows: int = Field(3, ge=1, le=8)
    cols: int = Field(4, ge=1, le=8)
    overlap: float = Field(0.15, ge=0.0, lt=0.5, description="Of a tile's size, on every side.")
    scale: float = Field(2.0, ge=1.0, le=4.0, description="How much each tile is enlarged.")
    min_face_size: int = Field(
        20, ge=8, le=200, description="In enlarged-tile pixels: 20 at ×2 finds faces of 10 px in the frame."
    )

    def cost(self) -> float:
        """Pixels the enlarged tiles hold per frame pixel, scaled to the default face size (0 when off).

        The tiles together cover the frame once, each widened by ``overlap`` on every side and enlarged
        ``scale`` times; the detector's first pyramid level grows as (12 / min_face_size)². The grid's
        rows and columns change how the work is cut, not how much of it there is.
        """
        return 0.0 if self.mode == "off" else self._tiles_cost(self.scale)

    def _tiles_cost(self, scale: float) -> float:
        return float(scale**2 * (1 + 2 * self.overlap) ** 2 * (COST_FACE_SIZE / self.min_face_size) ** 2)

    def check_cost(self, limit: float) -> None:
        """Refuse a tiling over ``ROLLCALL_SMALL_FACES_MAX_TILE_COST`` with a message that says how to fit."""
        cost = self.cost()
        if cost > limit:
            raise InvalidInput(
                f"small_faces costs {cost:.1f} (scale² × (1 + 2 × overlap)² × (20 / min_face_size)²), over "
                f"this server's limit of {limit:g} (ROLLCALL_SMALL_FACES_MAX_TILE_COST); use a smaller "
                "scale or overlap, or a larger min_face_size"
            )

    def fitted_scale(self, frame_pixels: int, max_tile_pixels: int) -> float:
        """The largest scale (at most this one) whose tiles hold at most ``max_tile_pixels`` (<1: none)."""
        pixels = frame_pixels * self._tiles_cost(self.scale)
        if pixels <= max_tile_pixels:
            return self.scale
        return self.scale * math.sqrt(max_tile_pixels / pixels)


class FaceHint(_Args):
    """Which face to identify: its 5 landmarks ([[x, y] × 5]: eyes, nose, mouth corners), or a box
    [x1, y1, x2, y2] around it."""

    landmarks: Landmarks | None = Field(None, min_length=5, max_length=5)
    box: list[Coordinate] | None = Field(None, min_length=4, max_length=4)

    @model_validator(mode="after")
    def _one_face(self) -> Self:
        if self.landmarks is None and self.box is None:
            raise ValueError("give the face's 'landmarks' or its 'box'")
        if self.box is not None and (self.box[2] <= self.box[0] or self.box[3] <= self.box[1]):
            raise ValueError("box must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1")
        return self


# --- what a client chooses for each job (the API's requests extend these), and each job's arguments ---


class DetectOptions(_Args):
    small_faces: SmallFaces | None = Field(
        None,
        description="Find faces down to ~8–10 px in wide shots (slower); default: camera or server setting.",
    )


class DetectArgs(DetectOptions, JobArgs):
    job_type = "detect"
    source: FrameSource


class IdentifyOptions(_Args):
    top_k: Annotated[int, JsonInt] = Field(3, ge=1, le=10, description="How many candidates to list.")


class IdentifyArgs(IdentifyOptions, JobArgs):
    job_type = "identify"
    source: FrameSource
    face: FaceHint


class AttendanceOptions(DetectOptions):
    roster: list[PersonId] | None = Field(
        None, max_length=10_000, description="Restrict matching to these person ids; absentees are listed."
    )


class AttendanceArgs(AttendanceOptions, JobArgs):
    job_type = "attendance"
    source: FrameSource


class EnrolFaceArgs(JobArgs):
    job_type = "enrol_face"
    queue = "bulk"
    person_id: PersonId
    source: FrameSource


class RebuildArgs(JobArgs):
    job_type = "rebuild_facebank"
    queue = "bulk"


class CalibrateOptions(_Args):
    target_far: float = Field(
        0.001, gt=0, lt=1, description="False-accept rate to aim for: the share of two-person pairs matched."
    )


class CalibrateArgs(CalibrateOptions, JobArgs):
    job_type = "calibrate"
    queue = "bulk"


class SessionFrameArgs(JobArgs):
    """One camera's frame of one attendance-session tick (``tasks.sessions``)."""

    job_type = "session_frame"
    queue = "frame"
    camera: int  # the camera's index in its session
    source: FrameSource
    roster: list[int]
    small_faces: SmallFaces | None = None


# Every job the workers run; the API submits all but session frames (the workers' ticks queue those).
JOBS: tuple[type[JobArgs], ...] = (
    DetectArgs,
    IdentifyArgs,
    AttendanceArgs,
    EnrolFaceArgs,
    RebuildArgs,
    CalibrateArgs,
    SessionFrameArgs,
)


def to_kwargs(args: JobArgs) -> dict[str, Any]:
    """A job's arguments as the task's keyword arguments on the wire: plain JSON, only what was set."""
    return args.model_dump(mode="json", exclude_unset=True, exclude_none=True)


def parse_args(model: type[ArgsT], **kwargs: Any) -> ArgsT:
    """A task's keyword arguments validated into its model; a malformed message is ``invalid_input``."""
    try:
        return model.model_validate({k: v for k, v in kwargs.items() if v is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"invalid job arguments: {problems}") from exc


# --- results ---


class _Json(BaseModel):
    model_config = ConfigDict(frozen=True)


class FrameInfo(_Json):
    width: int
    height: int
    source: str  # "upload" or "camera:<host>": never a URL, which may carry credentials


class FaceBox(_Json):
    box: list[float]
    prob: float
    landmarks: list[list[float]]


class JobAnswer(_Json):
    """What one job found, without the worker's envelope; every result has its ``type``."""

    type: str

    def reported_faces(self) -> int | None:
        """How many faces the answer reports (the job log's count); None for a job without faces."""
        return None


class DetectResult(JobAnswer):
    type: Literal["detect"] = "detect"
    frame: FrameInfo
    faces: list[FaceBox]
    small_faces: dict[str, Any]  # the mode that ran: mode, tiled, tiles, timings_ms, scale_lowered_to

    def reported_faces(self) -> int | None:
        return len(self.faces)


class IdentifiedFace(_Json):
    box: list[float] | None
    landmarks: list[list[float]]


class Candidate(_Json):
    person: PersonOut
    score: float


class IdentifyResult(JobAnswer):
    type: Literal["identify"] = "identify"
    frame: FrameInfo
    face: IdentifiedFace
    person: PersonOut | None  # None: unknown (best score below the threshold)
    score: float
    threshold: float
    candidates: list[Candidate]

    def reported_faces(self) -> int | None:
        return 1


class Presence(_Json):
    person: PersonOut
    score: float
    face: FaceBox


class AttendanceResult(JobAnswer):
    type: Literal["attendance"] = "attendance"
    frame: FrameInfo
    present: list[Presence]
    absent: list[PersonOut] | None  # None without a roster
    unknown_faces: list[FaceBox]
    threshold: float
    small_faces: dict[str, Any]

    def reported_faces(self) -> int | None:
        return len(self.present) + len(self.unknown_faces)


class EnrolFaceResult(JobAnswer):
    type: Literal["enrol_face"] = "enrol_face"
    face_id: int
    face: FaceRecordOut
    quality: dict[str, Any]  # what the quality gate measured (recognition.enrolment)
    flip: bool

    def reported_faces(self) -> int | None:
        return 1


class RebuildResult(JobAnswer):
    type: Literal["rebuild_facebank"] = "rebuild_facebank"
    embedded: int
    failed: int


class CalibrateResult(JobAnswer):
    """The proposal's own fields (``recognition.calibration.Calibration.to_json``) travel as extra keys."""

    model_config = ConfigDict(extra="allow", frozen=True, protected_namespaces=())

    type: Literal["calibrate"] = "calibrate"
    model_name: str
    model_version: str
    current_threshold: float
    default_threshold: float
    enrol_flip: bool


class SessionFrameResult(JobAnswer):
    """One camera's frame of one session tick: who of the roster it showed, or why it showed nothing."""

    type: Literal["session_frame"] = "session_frame"
    camera: int
    captured_at: str  # ISO 8601
    present: list[tuple[int, float]]  # (person id, score)
    unknown_faces: list[FaceBox]
    error: dict[str, str] | None

    def reported_faces(self) -> int | None:
        return len(self.present) + len(self.unknown_faces)


class JobEnvelope(_Json):
    """What the worker adds to every model job's answer."""

    worker: str  # the Celery node name
    models: dict[str, Any]  # ml.pipeline.FacePipeline.describe
    timings_ms: dict[str, float]
    batch: dict[str, int] | None = None  # jobs that shared each batched stage (recognition.batching)


def result_json(answer: JobAnswer, envelope: JobEnvelope) -> dict[str, Any]:
    """The JSON a job's result is stored as: the answer's keys and the envelope's, in one object."""
    return {**answer.model_dump(mode="json"), **envelope.model_dump(mode="json", exclude_none=True)}


# Envelope keys that name the deployment's insides (the worker's Celery node name and host): a job's
# result shows them to admin keys only, since a host name is what Flower's control API takes.
INTERNAL_RESULT_KEYS = frozenset({"worker"})


def result_for(result: dict[str, Any] | None, admin: bool) -> dict[str, Any] | None:
    """A stored result as its reader may see it: without ``INTERNAL_RESULT_KEYS`` unless ``admin``."""
    if result is None or admin:
        return result
    return {key: value for key, value in result.items() if key not in INTERNAL_RESULT_KEYS}


def read_result(model: type[AnswerT], result: dict[str, Any]) -> AnswerT:
    """A stored result as its answer model (the envelope's keys are ignored)."""
    return model.model_validate(result)
