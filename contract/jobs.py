"""The typed job contract: task names, each job's arguments and each job's result.

The API builds a job's arguments as one of the ``*Args`` models and sends ``to_kwargs(args)`` (plain
JSON, Celery's json serializer); each task's keyword parameters are that model's fields, and the task
validates them into the model before it does anything (``parse_args``: a bad message is
``invalid_input``). A result is the job's answer (``DetectResult`` …) with the worker's envelope
(``JobEnvelope``: worker, models, timings, batch) beside it in one JSON object; whoever reads a result
(the legacy routes, attendance sessions, the job log) validates it into the answer model.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from contract.people import FaceRecordOut, PersonOut
from errors import InvalidInput

DETECT = "rollcall.models.detect"
IDENTIFY = "rollcall.models.identify"
ATTENDANCE = "rollcall.models.attendance"
ENROL_FACE = "rollcall.models.enrol_face"
REBUILD_FACEBANK = "rollcall.models.rebuild_facebank"
CALIBRATE = "rollcall.models.calibrate"
SESSION_FRAME = "rollcall.models.session_frame"
SESSION_TICK = "rollcall.sessions.tick"
SESSION_RECORD = "rollcall.sessions.record"
SESSION_EXPIRE = "rollcall.sessions.expire"
CALLBACK = "rollcall.io.callback"
# What the API submits by type (``/v1/jobs``, enrolment, rebuild, calibration): rollcall.models.<type>.
JOB_TYPES = ("detect", "identify", "attendance", "enrol_face", "rebuild_facebank", "calibrate")

ArgsT = TypeVar("ArgsT", bound="JobArgs")
AnswerT = TypeVar("AnswerT", bound="JobAnswer")


def task_name(job_type: str) -> str:
    """The task that runs a job of ``job_type`` (one of ``JOB_TYPES``)."""
    return f"rollcall.models.{job_type}"


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JobArgs(_Args):
    """A job's arguments; ``job_type`` names its task (``task_name``)."""

    job_type: ClassVar[str]


# --- arguments ---


class FrameSource(_Args):
    """A camera URL, a registered camera's name, or an uploaded image (the API checks that exactly one
    is given). A camera travels by name only: the worker looks up its URL and credentials.

    The API sends an upload by reference: ``upload`` is the id of the job whose bytes it stored
    (``contract.uploads``). ``image_b64`` (the image itself) is still read, for messages sent without
    the API and those queued before uploads went by reference.
    """

    url: str | None = None
    image_b64: str | None = None
    camera: str | None = None
    upload: str | None = None


class SmallFaces(_Args):
    """The small-face mode a job asks for (``ml.tiling.TilingParams``; unset fields: its defaults)."""

    mode: Literal["off", "auto", "on"] | None = None
    rows: int | None = None
    cols: int | None = None
    overlap: float | None = None
    scale: float | None = None
    min_face_size: int | None = None

    def options(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class FaceHint(_Args):
    """Which face to identify: its 5 landmarks [[x, y] × 5], or a box [x1, y1, x2, y2] around it."""

    landmarks: list[list[float]] | None = None
    box: list[float] | None = None


class DetectArgs(JobArgs):
    job_type = "detect"
    source: FrameSource
    small_faces: SmallFaces | None = None


class IdentifyArgs(JobArgs):
    job_type = "identify"
    source: FrameSource
    face: FaceHint
    top_k: int = 3


class AttendanceArgs(JobArgs):
    job_type = "attendance"
    source: FrameSource
    roster: list[int] | None = None  # None: everyone enrolled; else only these people, absentees listed
    small_faces: SmallFaces | None = None


class EnrolFaceArgs(JobArgs):
    job_type = "enrol_face"
    person_id: int
    source: FrameSource


class RebuildArgs(JobArgs):
    job_type = "rebuild_facebank"


class CalibrateArgs(JobArgs):
    job_type = "calibrate"
    target_far: float = 0.001


class SessionFrameArgs(JobArgs):
    job_type = "session_frame"
    camera: int  # the camera's index in its session
    source: FrameSource
    roster: list[int]
    small_faces: SmallFaces | None = None


def to_kwargs(args: JobArgs) -> dict[str, Any]:
    """A job's arguments as the task's keyword arguments on the wire (unset optional fields left out)."""
    return args.model_dump(mode="json", exclude_none=True)


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
    quality: dict[str, Any]  # what the quality gate measured (tasks.enrolment)
    flip: bool

    def reported_faces(self) -> int | None:
        return 1


class RebuildResult(JobAnswer):
    type: Literal["rebuild_facebank"] = "rebuild_facebank"
    embedded: int
    failed: int


class CalibrateResult(JobAnswer):
    """The proposal's own fields (``facebank.calibration.Calibration.to_json``) travel as extra keys."""

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
