"""Matching faces against the facebank: one model's embeddings held as one tensor, compared in one product.

Identify names one face by its best match (``match_faces``); attendance assigns a frame's faces to people
one-to-one (``assign_faces``).

A worker keeps one per embedder in its facebank snapshot (``recognition.snapshot``), rebuilt only when
the store's revision moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment

from facebank.records import GalleryRows

# Reported as the score of a face that had no candidate at all: the lowest cosine similarity.
NO_CANDIDATE_SCORE = -1.0
# From this many gallery rows on, one face is scored as two (see ``person_scores``): the crossover
# measured on the development machine's CPU lies near 30,000 rows.
ONE_FACE_DOUBLED_FROM_ROWS = 32_768


@dataclass(frozen=True, eq=False)
class Gallery:
    """The L2-normalised embeddings [M,D] of one model version on one device, with whose face each row is.

    ``person_index[m]`` is the column of row m's person in ``person_ids`` [P], so per-person
    scores come from one scatter over the similarity matrix.
    """

    model_name: str
    model_version: str
    revision: int
    vectors: torch.Tensor
    person_index: torch.Tensor
    person_ids: torch.Tensor

    @classmethod
    def from_rows(
        cls,
        rows: GalleryRows,
        model_name: str,
        model_version: str,
        revision: int,
        device: torch.device | str,
    ) -> Gallery:
        unique_people, person_index = np.unique(rows.person_ids, return_inverse=True)
        with torch.inference_mode():
            vectors = F.normalize(torch.from_numpy(np.ascontiguousarray(rows.vectors)).to(device), dim=1)
        return cls(
            model_name=model_name,
            model_version=model_version,
            revision=revision,
            vectors=vectors,
            person_index=torch.from_numpy(person_index.astype(np.int64).reshape(-1)).to(device),
            person_ids=torch.from_numpy(unique_people.astype(np.int64)).to(device),
        )

    @property
    def device(self) -> torch.device:
        return self.vectors.device

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def face_count(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def person_count(self) -> int:
        return int(self.person_ids.numel())


@dataclass(frozen=True, slots=True)
class FaceMatch:
    """Who a face is: ``person_id`` None means unknown (best score below the threshold, or no candidate).

    ``score`` is the best candidate's cosine similarity (``NO_CANDIDATE_SCORE`` without one);
    ``candidates`` are the top-k (person_id, score), best first, whatever the threshold.
    """

    person_id: int | None
    score: float
    candidates: tuple[tuple[int, float], ...]


def person_scores(
    embeddings: np.ndarray | torch.Tensor, gallery: Gallery, restrict_to: set[int] | None = None
) -> torch.Tensor:
    """Similarity [N,P] of every face to every person in ``gallery.person_ids``, on the gallery's device.

    A person scores the best cosine similarity over all their enrolled faces (one matrix product,
    one scatter); people outside ``restrict_to`` score -inf.
    """
    with torch.inference_mode():
        queries = torch.as_tensor(embeddings, dtype=torch.float32).to(gallery.device)
        if queries.ndim != 2:
            raise ValueError(f"embeddings must be [N,D], got shape {tuple(queries.shape)}")
        count = int(queries.shape[0])
        scores = torch.full((count, gallery.person_count), float("-inf"), device=gallery.device)
        if count == 0 or gallery.person_count == 0:
            return scores
        if queries.shape[1] != gallery.dim:
            raise ValueError(
                f"embeddings have {queries.shape[1]} dimensions, "
                f"the {gallery.model_name} gallery has {gallery.dim}"
            )
        faces = F.normalize(queries, dim=1)
        # Computed as F.linear(rows, faces), the gallery's rows against the faces, rather than as
        # faces @ rows.T: on the CPU, MKL takes 5-8 times longer over the latter with a handful of faces
        # (3 faces against 100,000 rows: 20 ms against 2.6 ms on the AMD development VM). Against a
        # large gallery a lone face is doubled: a one-column product goes to a matrix-vector kernel three
        # times slower there (6.8 ms against 2.1 ms), while the two-column one costs 0.1 ms more on a
        # small gallery (scripts/matching_before_after.py measures both). On an Intel VM this way
        # measured 0.72-0.94x of faces @ rows.T instead: MKL's fastest orientation depends on the CPU.
        doubled = count == 1 and gallery.face_count >= ONE_FACE_DOUBLED_FROM_ROWS
        pair = torch.cat([faces, faces]) if doubled else faces
        similarity = F.linear(gallery.vectors, pair).T[:count]  # [N, M], a view
        scores = scores.scatter_reduce(
            1, gallery.person_index.expand(count, -1), similarity, reduce="amax", include_self=False
        )
        if restrict_to is not None:
            wanted = torch.tensor(sorted(restrict_to), dtype=torch.int64, device=gallery.device)
            scores = scores.masked_fill(~torch.isin(gallery.person_ids, wanted), float("-inf"))
        return scores


def match_faces(
    embeddings: np.ndarray | torch.Tensor,
    gallery: Gallery,
    threshold: float,
    top_k: int = 3,
    restrict_to: set[int] | None = None,
) -> list[FaceMatch]:
    """Name every face [N,D] at once, each by its best-scoring person (see ``person_scores``).

    ``restrict_to`` limits candidates to those person ids (a roster); people outside it are never named.
    """
    if top_k < 1:
        raise ValueError(f"top_k must be at least 1, got {top_k}")
    scores = person_scores(embeddings, gallery, restrict_to)
    count = int(scores.shape[0])
    if gallery.person_count == 0:
        return [FaceMatch(None, NO_CANDIDATE_SCORE, ()) for _ in range(count)]
    with torch.inference_mode():
        best, columns = scores.topk(min(top_k, gallery.person_count), dim=1)
        # One transfer to the host for the whole batch.
        best_host, people_host = best.cpu().numpy(), gallery.person_ids[columns].cpu().numpy()
    matches = []
    for row_scores, row_people in zip(best_host, people_host, strict=True):
        candidates = tuple(
            (int(person), float(score))
            for person, score in zip(row_people, row_scores, strict=True)
            if np.isfinite(score)
        )
        if not candidates:
            matches.append(FaceMatch(None, NO_CANDIDATE_SCORE, ()))
            continue
        best_person, best_score = candidates[0]
        matches.append(FaceMatch(best_person if best_score >= threshold else None, best_score, candidates))
    return matches


# --- attendance: faces assigned to people one-to-one ---

# Naming each face by its own best match can name one person twice (two look-alikes, or
# one person and a photo of them). Attendance solves the assignment between faces and
# people as a bipartite matching that maximises the total similarity over pairs above the
# threshold (the Hungarian method, ``scipy.optimize.linear_sum_assignment``).


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
