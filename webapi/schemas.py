"""Request and response shapes of the public API, with the limits a client can rely on.

A job's request *is* its arguments: each extends the contract's frame choice and the job's options
(``contract.jobs``), so a field added to a job's options is accepted, validated and documented here
without a line in this module; ``job_args`` turns a request into the job's arguments.
"""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator

from contract.fields import (
    MAX_COORDINATE,
    MAX_ID,
    MAX_URL_LENGTH,
    CameraName,
    CameraUrl,
    JsonInt,
    Landmarks,
)
from contract.jobs import (
    AttendanceOptions,
    DetectOptions,
    FaceHint,
    FrameChoice,
    FrameSource,
    IdentifyOptions,
    JobArgs,
)
from contract.people import RecordOut, Timestamp

ArgsT = TypeVar("ArgsT", bound=JobArgs)
RosterId = Annotated[int, Field(ge=1, le=MAX_ID), JsonInt]
CallbackUrl = Annotated[
    str,
    Field(
        max_length=MAX_URL_LENGTH,
        pattern="^[hH][tT][tT][pP][sS]?://",
        description="POST the job's final JSON (as GET /v1/jobs/<id> shows it) here when it ends, signed "
        "with HMAC-SHA256 (docs/callbacks.md); must pass the camera allowlist.",
        examples=["http://192.168.1.5:9000/rollcall-hook"],
    ),
]


def _one_of(*names: str, kind: str) -> list[dict[str, Any]]:
    """JSON Schema for "one of ``names`` must be given": the OpenAPI document states the rule too."""
    return [{"required": [name], "properties": {name: {"type": kind}}} for name in names]


FRAME_SOURCES = tuple(FrameChoice.model_fields)
# Requests take JSON types as documented: no "3" for 3, no true for 1.
STRICT = ConfigDict(strict=True)


class FrameRequest(FrameChoice):
    """Where the frame comes from (a camera URL, a registered camera, or an image in base64: one of them),
    and where to call back when the job ends."""

    model_config = ConfigDict(**STRICT, json_schema_extra={"oneOf": _one_of(*FRAME_SOURCES, kind="string")})

    callback_url: CallbackUrl | None = None

    def frame_source(self) -> FrameSource:
        """The job's frame source: the one the request names."""
        return FrameSource(url=self.url, image_b64=self.image_b64, camera=self.camera)


def job_args(model: type[ArgsT], body: BaseModel, **resolved: Any) -> ArgsT:
    """The job's arguments from its request: the frame source, every other field of ``model`` that the
    request carries (it extends the job's options), and what the route ``resolved`` (a roster's members)."""
    carried = {name: getattr(body, name) for name in model.model_fields if name in type(body).model_fields}
    if isinstance(body, FrameRequest) and "source" in model.model_fields:
        carried["source"] = body.frame_source()
    return model(**{**carried, **resolved})


class DetectRequest(FrameRequest, DetectOptions):
    model_config = STRICT


class IdentifyRequest(FrameRequest, FaceHint, IdentifyOptions):
    """One face, by its 5 landmarks ([[x, y] × 5]: eyes, nose, mouth corners) or by a box [x1, y1, x2, y2]."""

    model_config = ConfigDict(
        **STRICT,
        json_schema_extra={
            "oneOf": _one_of(*FRAME_SOURCES, kind="string"),
            "anyOf": _one_of("landmarks", "box", kind="array"),
        },
    )

    def face(self) -> FaceHint:
        return FaceHint(landmarks=self.landmarks, box=self.box)


class AttendanceRequest(FrameRequest, AttendanceOptions):
    model_config = ConfigDict(
        **STRICT,
        json_schema_extra={
            "oneOf": _one_of(*FRAME_SOURCES, kind="string"),
            # Not both 'roster' and 'roster_id' (either may be given as null).
            "not": {
                "required": ["roster", "roster_id"],
                "properties": {"roster": {"not": {"type": "null"}}, "roster_id": {"not": {"type": "null"}}},
            },
        },
    )

    roster_id: RosterId | None = Field(
        None, description="Restrict matching to this roster's members (instead of listing them in `roster`)."
    )

    @model_validator(mode="after")
    def _one_roster(self) -> AttendanceRequest:
        if self.roster is not None and self.roster_id is not None:
            raise ValueError("give 'roster' or 'roster_id', not both")
        return self


class JobAccepted(BaseModel):
    job_id: str
    state: Literal["queued"]
    status_url: str


# --- the legacy v0 routes (the old system's, kept for existing frontends) ---
class LegacyFrameQuery(BaseModel):
    """The v0 ``ip`` (a camera URL), or the ``camera`` of the registry by name: one of the two."""

    ip: CameraUrl | None = Field(
        None, description="Camera URL: HTTP(S) snapshot or MJPEG, or RTSP(S) stream (the v0 parameter name)."
    )
    camera: CameraName | None = None

    @model_validator(mode="after")
    def _one_source(self) -> LegacyFrameQuery:
        if (self.ip is None) == (self.camera is None):
            raise ValueError("give exactly one of 'ip' or 'camera'")
        return self

    def frame_source(self) -> FrameSource:
        """The job's frame source: the camera URL or the registered camera."""
        return FrameSource(url=self.ip, camera=self.camera)


class LegacyIdentifyQuery(LegacyFrameQuery):
    landmark: str = Field(
        ..., max_length=1000, description="JSON list of 10 numbers: x1..x5 then y1..y5 (the v0 format)."
    )

    def landmarks(self) -> Landmarks:
        """The v0 flat [x1..x5, y1..y5] as five [x, y] points."""
        try:
            values = json.loads(self.landmark)
        except json.JSONDecodeError as exc:
            raise ValueError(f"landmark is not JSON: {exc.msg}") from exc
        except RecursionError as exc:
            raise ValueError("landmark is nested too deeply") from exc
        if (
            not isinstance(values, list)
            or len(values) != 10
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
            or not all(_is_coordinate(v) for v in values)
        ):
            raise ValueError("landmark must be a JSON list of 10 finite numbers [x1..x5, y1..y5]")
        return [[float(values[i]), float(values[i + 5])] for i in range(5)]


def _is_coordinate(value: float) -> bool:
    """Finite and within ±MAX_COORDINATE (JSON allows NaN, Infinity and integers too large for a float)."""
    try:
        return math.isfinite(value) and abs(value) <= MAX_COORDINATE
    except OverflowError:
        return False


class LegacyBox(BaseModel):
    x1: float
    y1: float
    x2: float
    y2: float
    landmarks: list[float]


class LegacyDetectResponse(BaseModel):
    box: list[LegacyBox]


class LegacyIdResponse(BaseModel):
    id: list[str]


class RosterOut(RecordOut):
    id: int
    name: str
    person_ids: list[int]
    member_count: int
    created_at: Timestamp


class ModelCountOut(RecordOut):
    model_name: str
    model_version: str
    dim: int
    embeddings: int


class FacebankStatsOut(RecordOut):
    revision: int
    people: int
    faces: int
    models: list[ModelCountOut]


class Health(BaseModel):
    status: str
    checks: dict[str, Any] = {}
