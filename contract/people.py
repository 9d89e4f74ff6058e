"""People and their enrolled faces as JSON: in job results (``contract.jobs``) and API answers alike.

One pydantic model per record, read from the record's attributes (a ``facebank.records`` dataclass);
the API documents the same models in its OpenAPI document. Times are ISO 8601 with the UTC offset,
as ``datetime.isoformat`` writes them (pydantic's own JSON would write ``Z``).
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
