"""Synthetic enrolment data: random unit embeddings and unique fake photos (the store never decodes them)."""

from __future__ import annotations

import zlib

import numpy as np

from facebank.records import Face
from facebank.store import Facebank

MODEL = ("test_model", "1")
DIM = 64
BOX = (10.0, 20.0, 110.0, 140.0)
LANDMARKS = np.array([[40, 60], [80, 60], [60, 85], [45, 110], [75, 110]], dtype=np.float32)


def unit_vectors(count: int, dim: int = DIM, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def fake_photo(tag: str) -> bytes:
    """Distinct bytes per tag, so distinct SHA-256 digests."""
    return b"\xff\xd8\xff\xe0fake-jpeg:" + tag.encode()


def enrol(
    facebank: Facebank,
    person_id: int,
    tag: str,
    vector: np.ndarray | None = None,
    model: tuple[str, str] = MODEL,
) -> Face:
    if vector is None:
        vector = unit_vectors(1, seed=zlib.crc32(tag.encode()))[0]
    return facebank.faces.add(
        person_id, fake_photo(tag), "image/jpeg", 640, 480, BOX, LANDMARKS, vector, model[0], model[1]
    )
