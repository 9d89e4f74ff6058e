"""Request and response shapes of the public API, with the limits a client can rely on."""

from __future__ import annotations

import json
import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator

from contract.people import RecordOut, Timestamp
from contract.tilecost import tile_cost
from errors import InvalidInput
from facebank.limits import CAMERA_NAME, MAX_CAMERA_NAME
from sources.urls import is_camera_url

MAX_URL_LENGTH = 2048
# What a camera URL starts with, for the OpenAPI document (the models check it with a clearer message).
CAMERA_URL_PATTERN = "^([hH][tT][tT][pP][sS]?|[rR][tT][sS][pP][sS]?)://"
CAMERA_URL_RULE = "must start with http://, https://, rtsp:// or rtsps://"
# Facebank ids are INTEGER columns, 32-bit on PostgreSQL: a larger number names nobody.
MAX_ID = 2**31 - 1
# Pixel coordinates: finite, and far beyond any frame the pixel limit lets through.
MAX_COORDINATE = 1_000_000.0
Coordinate = Annotated[float, Field(allow_inf_nan=False, ge=-MAX_COORDINATE, le=MAX_COORDINATE)]


def _json_integer(value: Any) -> Any:
    """JSON has one number type: 3.0 is the integer 3, as JSON Schema says (strict models refuse "3")."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = BeforeValidator(_json_integer)
PersonId = Annotated[int, Field(ge=1, le=MAX_ID), JsonInt]  # the validator last: it runs first
RosterId = Annotated[int, Field(ge=1, le=MAX_ID), JsonInt]
Landmarks = list[Annotated[list[Coordinate], Field(min_length=2, max_length=2)]]
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


FRAME_SOURCES = ("url", "image_b64", "camera")
CameraName = Annotated[
    str,
    Field(
        max_length=MAX_CAMERA_NAME,
        pattern=CAMERA_NAME,
        description="A camera of the registry (`GET /v1/cameras`) by name; the worker looks up its URL "
        "and credentials, so none travel with the job.",
        examples=["room12"],
    ),
]


class FrameSource(BaseModel):
    """Where the frame comes from: a camera URL, a registered camera, or an image in base64 (one of them)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # JSON types as documented: no "3" for 3, no true for 1
        json_schema_extra={"oneOf": _one_of(*FRAME_SOURCES, kind="string")},
    )

    url: str | None = Field(
        None,
        max_length=MAX_URL_LENGTH,
        description="A camera's URL: an HTTP(S) snapshot or MJPEG stream, or an RTSP(S) stream "
        "(credentials as user:password@, percent-encoded).",
        examples=["http://192.168.1.20:8080/shot.jpg"],
        json_schema_extra={"pattern": CAMERA_URL_PATTERN},
    )
    image_b64: str | None = Field(None, description="A JPEG or PNG image, base64-encoded.")
    camera: CameraName | None = None
    callback_url: CallbackUrl | None = None

    @model_validator(mode="after")
    def _exactly_one_source(self) -> FrameSource:
        if sum(getattr(self, name) is not None for name in FRAME_SOURCES) != 1:
            raise ValueError("give exactly one of 'url', 'image_b64' or 'camera'")
        if self.url is not None and not is_camera_url(self.url):
            raise ValueError(f"url {CAMERA_URL_RULE}")
        return self

    def source(self) -> dict[str, str]:
        """The frame source of the job (``contract.jobs.FrameSource``'s fields)."""
        return {name: value for name in FRAME_SOURCES if (value := getattr(self, name)) is not None}


class SmallFaceOptions(BaseModel):
    """Small-face mode: the whole frame plus enlarged overlapping tiles (unset fields: defaults)."""

    model_config = ConfigDict(extra="forbid")

    mode: Literal["off", "auto", "on"] = "auto"
    rows: int | None = Field(None, ge=1, le=8)
    cols: int | None = Field(None, ge=1, le=8)
    overlap: float | None = Field(None, ge=0.0, lt=0.5)
    scale: float | None = Field(None, ge=1.0, le=4.0)
    min_face_size: int | None = Field(None, ge=8, le=200)

    def options(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


def check_tile_cost(options: dict[str, Any] | None, limit: float) -> None:
    """Refuse a tiling over ``ROLLCALL_SMALL_FACES_MAX_TILE_COST`` with a 400 that says how to fit."""
    cost = tile_cost(options) if options else 0.0
    if cost > limit:
        raise InvalidInput(
            f"small_faces costs {cost:.1f} (scale² × (1 + 2 × overlap)² × (20 / min_face_size)²), over this "
            f"server's limit of {limit:g} (ROLLCALL_SMALL_FACES_MAX_TILE_COST); use a smaller scale or "
            "overlap, or a larger min_face_size"
        )


class DetectRequest(FrameSource):
    small_faces: SmallFaceOptions | None = Field(
        None,
        description="Find faces down to ~8–10 px in wide shots (slower); default: camera or server setting.",
    )

    def small_face_options(self) -> dict[str, Any] | None:
        return self.small_faces.options() if self.small_faces is not None else None


class IdentifyRequest(FrameSource):
    """One face, by its 5 landmarks ([[x, y] × 5]: eyes, nose, mouth corners) or by a box [x1, y1, x2, y2]."""

    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": _one_of(*FRAME_SOURCES, kind="string"),
            "anyOf": _one_of("landmarks", "box", kind="array"),
        },
    )

    landmarks: Landmarks | None = Field(None, min_length=5, max_length=5)
    box: list[Coordinate] | None = Field(None, min_length=4, max_length=4)
    top_k: Annotated[int, JsonInt] = Field(3, ge=1, le=10, description="How many candidates to list.")

    @model_validator(mode="after")
    def _one_face(self) -> IdentifyRequest:
        if self.landmarks is None and self.box is None:
            raise ValueError("give the face's 'landmarks' or its 'box'")
        if self.box is not None and (self.box[2] <= self.box[0] or self.box[3] <= self.box[1]):
            raise ValueError("box must be [x1, y1, x2, y2] with x2 > x1 and y2 > y1")
        return self

    def face(self) -> dict[str, Any]:
        face: dict[str, Any] = {}
        if self.landmarks is not None:
            face["landmarks"] = self.landmarks
        if self.box is not None:
            face["box"] = self.box
        return face


class AttendanceRequest(DetectRequest):
    model_config = ConfigDict(
        json_schema_extra={
            "oneOf": _one_of(*FRAME_SOURCES, kind="string"),
            # Not both 'roster' and 'roster_id' (either may be given as null).
            "not": {
                "required": ["roster", "roster_id"],
                "properties": {"roster": {"not": {"type": "null"}}, "roster_id": {"not": {"type": "null"}}},
            },
        },
    )

    roster: list[PersonId] | None = Field(
        None, max_length=10_000, description="Restrict matching to these person ids; absentees are listed."
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


class JobState(BaseModel):
    job_id: str
    type: str
    state: Literal["queued", "running", "succeeded", "failed", "revoked"]
    submitted_at: float
    result: dict[str, Any] | None
    error: dict[str, str] | None


# --- the legacy v0 routes (the old system's, kept for existing frontends) ---
class LegacyFrameQuery(BaseModel):
    """The v0 ``ip`` (a camera URL), or the ``camera`` of the registry by name: one of the two."""

    ip: str | None = Field(
        None,
        max_length=MAX_URL_LENGTH,
        json_schema_extra={"pattern": CAMERA_URL_PATTERN},
        description="Camera URL: HTTP(S) snapshot or MJPEG, or RTSP(S) stream (the v0 parameter name).",
    )
    camera: CameraName | None = None

    @field_validator("ip")
    @classmethod
    def _camera_url(cls, value: str | None) -> str | None:
        if value is not None and not is_camera_url(value):
            raise ValueError(f"ip {CAMERA_URL_RULE}")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> LegacyFrameQuery:
        if (self.ip is None) == (self.camera is None):
            raise ValueError("give exactly one of 'ip' or 'camera'")
        return self

    def source(self) -> dict[str, str]:
        """The frame source of the job (``contract.jobs.FrameSource``'s fields)."""
        return {"url": self.ip} if self.ip is not None else {"camera": self.camera or ""}


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
