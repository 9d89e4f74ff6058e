"""Synthetic facebanks: N identities with one random unit vector each, for matching at scale.

Random unit vectors in 128 dimensions are nearly orthogonal to any real face, so nobody is named:
the cost measured is the search itself, which does not depend on who matches.
"""

from __future__ import annotations

import numpy as np
import torch

from facebank.records import GalleryRows
from recognition.gallery import Gallery

SYNTHETIC_MODEL_VERSION = "synthetic"


def synthetic_rows(identities: int, dim: int, seed: int = 0) -> GalleryRows:
    """``identities`` people (ids 1..N), one L2-normalised random face vector each."""
    if identities < 1:
        raise ValueError(f"a gallery needs at least one identity, got {identities}")
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((identities, dim), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = np.arange(1, identities + 1, dtype=np.int64)
    return GalleryRows(person_ids=ids, face_ids=ids.copy(), vectors=vectors)


def synthetic_gallery(rows: GalleryRows, model_name: str, device: torch.device | str) -> Gallery:
    """The rows as rollcall's matching holds them (one tensor on the device), via ``Gallery.from_rows``."""
    return Gallery.from_rows(rows, model_name, SYNTHETIC_MODEL_VERSION, revision=0, device=device)
