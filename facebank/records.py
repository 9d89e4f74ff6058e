"""The values the facebank store hands out: plain frozen data, never live ORM objects.

Callers (API, tasks) can keep these after the transaction that read them has ended, and
convert them to JSON at the edge.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import numpy as np


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    display_name: str
    external_id: str | None
    metadata: dict[str, Any]
    face_count: int
    created_at: datetime
    updated_at: datetime

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "display_name": self.display_name,
            "external_id": self.external_id,
            "metadata": self.metadata,
            "face_count": self.face_count,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


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

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "person_id": self.person_id,
            "sha256": self.sha256,
            "content_type": self.content_type,
            "width": self.width,
            "height": self.height,
            "box": list(self.box),
            "landmarks": list(self.landmarks),
            "created_at": self.created_at.isoformat(),
        }


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
