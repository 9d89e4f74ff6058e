"""Attendance in one frame: assign faces to people one-to-one.

Naming each face by its own best match can name one person twice (two look-alikes, or
one person and a photo of them). Attendance solves the assignment between faces and
people as a bipartite matching that maximises the total similarity over pairs above the
threshold (the Hungarian method, ``scipy.optimize.linear_sum_assignment``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from facebank.gallery import Gallery, person_scores


@dataclass(frozen=True, slots=True)
class Present:
    face_index: int
    person_id: int
    score: float


@dataclass(frozen=True, slots=True)
class Assignment:
    """People present (each once, best-first), and faces that name nobody."""

    present: tuple[Present, ...]
    unknown_face_indices: tuple[int, ...]


def assign_faces(
    embeddings: np.ndarray | torch.Tensor,
    gallery: Gallery,
    threshold: float,
    restrict_to: set[int] | None = None,
) -> Assignment:
    """One-to-one assignment of faces [N,D] to the gallery's people, only over scores ≥ threshold."""
    all_scores = person_scores(embeddings, gallery, restrict_to)  # [N, P], -inf where excluded
    count = int(all_scores.shape[0])
    # Only people some face clears the threshold for can be named: the assignment (and the copy to
    # the host) covers those columns alone, a handful out of a gallery of 100,000.
    columns = (
        torch.nonzero((all_scores >= threshold).any(dim=0)).flatten() if count else all_scores.new_zeros(0)
    )
    if count == 0 or columns.numel() == 0:
        return Assignment((), tuple(range(count)))
    scores = all_scores[:, columns].cpu().numpy()
    person_ids = gallery.person_ids[columns].cpu().numpy()
    eligible = scores >= threshold
    # Pairs below the threshold cost more than any eligible pair could gain, so they are chosen only
    # when nothing eligible is left; they are dropped afterwards.
    cost = np.where(eligible, -scores, 1e6)
    rows, cols = linear_sum_assignment(cost)
    present = [
        Present(int(face), int(person_ids[col]), float(scores[face, col]))
        for face, col in zip(rows, cols, strict=True)
        if eligible[face, col]
    ]
    present.sort(key=lambda p: -p.score)
    named = {p.face_index for p in present}
    return Assignment(tuple(present), tuple(i for i in range(count) if i not in named))
