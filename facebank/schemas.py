"""The JSON form of each facebank record, one pydantic model per record, read from its attributes.

The API answers with these (and documents them in its OpenAPI document); job results carry the
same JSON. Times are ISO 8601 with the UTC offset, as ``datetime.isoformat`` writes them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainSerializer

Timestamp = Annotated[datetime, PlainSerializer(datetime.isoformat, return_type=str, when_used="json")]


class RecordOut(BaseModel):
    """A record's JSON form, built from the record (a ``facebank.records`` dataclass) by attribute."""

    model_config = ConfigDict(from_attributes=True)

    @classmethod
    def json_of(cls, record: object) -> dict[str, Any]:
        """``record`` as JSON-ready data, fields in declaration order."""
        return cls.model_validate(record).model_dump(mode="json")


class PersonOut(RecordOut):
    id: int
    display_name: str
    external_id: str | None
    metadata: dict[str, Any]
    face_count: int
    created_at: Timestamp
    updated_at: Timestamp


class FaceRecordOut(RecordOut):
    """One enrolled photo: ``box`` is (x1, y1, x2, y2), ``landmarks`` 5 points (x0, y0 ... x4, y4)."""

    id: int
    person_id: int
    sha256: str
    content_type: str
    width: int
    height: int
    box: list[float]
    landmarks: list[float]
    created_at: Timestamp


class RosterOut(RecordOut):
    id: int
    name: str
    person_ids: list[int]
    member_count: int
    created_at: Timestamp


class AppliedThresholdOut(RecordOut):
    model_name: str
    model_version: str
    threshold: float
    target_far: float | None
    genuine_pairs: int | None
    impostor_pairs: int | None
    false_reject_rate: float | None
    calibration_job_id: str | None
    applied_at: Timestamp


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
