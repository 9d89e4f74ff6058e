"""Matching faces against the gallery (kept in step with the store: tests/recognition/test_snapshot.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facebank.records import GalleryRows
from recognition.gallery import (
    NO_CANDIDATE_SCORE,
    ONE_FACE_DOUBLED_FROM_ROWS,
    Gallery,
    match_faces,
    person_scores,
)
from tests.facebank.factories import DIM, MODEL, unit_vectors

DEVICE = torch.device("cpu")


def gallery_of(people: dict[int, np.ndarray]) -> Gallery:
    """A gallery from {person_id: their face vectors [K,D]}, as the store would hand it over."""
    person_ids = np.concatenate([np.full(len(v), pid, dtype=np.int64) for pid, v in people.items()])
    vectors = np.concatenate(list(people.values())).astype(np.float32)
    rows = GalleryRows(person_ids, np.arange(1, len(person_ids) + 1, dtype=np.int64), vectors)
    return Gallery.from_rows(rows, *MODEL, revision=1, device=DEVICE)


def blend(a: np.ndarray, b: np.ndarray, similarity: float) -> np.ndarray:
    """A unit vector at cosine ``similarity`` from unit ``a``, made from ``b`` orthogonalised to ``a``."""
    b = b - (b @ a) * a
    b = b / np.linalg.norm(b)
    return (similarity * a + np.sqrt(1 - similarity**2) * b).astype(np.float32)


def test_each_face_is_named_as_the_person_it_was_taken_from() -> None:
    enrolled = unit_vectors(60, seed=1).reshape(20, 3, DIM)
    gallery = gallery_of({100 + i: faces for i, faces in enumerate(enrolled)})
    noise = unit_vectors(20, seed=2)
    queries = np.stack([blend(enrolled[i, 1], noise[i], 0.9) for i in range(20)])

    matches = match_faces(queries, gallery, threshold=0.5)

    assert [m.person_id for m in matches] == [100 + i for i in range(20)]
    assert all(m.score == pytest.approx(0.9, abs=1e-4) for m in matches)


def test_a_person_scores_their_best_face_not_their_average() -> None:
    query, other, third = unit_vectors(3, seed=3)
    # Ada: one photo identical to the query, one unrelated (max 1.0, mean ~0.5).
    # Grace: two photos both at 0.8 (max 0.8, mean 0.8). A mean would pick Grace.
    gallery = gallery_of(
        {
            1: np.stack([query, blend(query, other, 0.0)]),
            2: np.stack([blend(query, other, 0.8), blend(query, third, 0.8)]),
        }
    )

    (match,) = match_faces(query[None], gallery, threshold=0.5)

    assert match.person_id == 1
    assert match.candidates[0] == (1, pytest.approx(1.0, abs=1e-5))
    assert match.candidates[1] == (2, pytest.approx(0.8, abs=1e-5))


def test_below_threshold_is_unknown_but_candidates_remain() -> None:
    query, other = unit_vectors(2, seed=4)
    gallery = gallery_of({7: blend(query, other, 0.4)[None]})

    (match,) = match_faces(query[None], gallery, threshold=0.5)

    assert match.person_id is None
    assert match.score == pytest.approx(0.4, abs=1e-5)
    assert [pid for pid, _ in match.candidates] == [7]


def test_restrict_to_names_only_people_on_the_roster() -> None:
    query, *others = unit_vectors(4, seed=5)
    gallery = gallery_of(
        {
            1: blend(query, others[0], 0.95)[None],
            2: blend(query, others[1], 0.85)[None],
            3: blend(query, others[2], 0.75)[None],
        }
    )

    (roster_match,) = match_faces(query[None], gallery, threshold=0.5, restrict_to={2, 3, 99})
    (empty_roster,) = match_faces(query[None], gallery, threshold=0.5, restrict_to=set())

    assert roster_match.person_id == 2
    assert [pid for pid, _ in roster_match.candidates] == [2, 3]
    assert (empty_roster.person_id, empty_roster.score, empty_roster.candidates) == (
        None,
        NO_CANDIDATE_SCORE,
        (),
    )


def test_top_k_candidates_are_distinct_people_best_first() -> None:
    query, *others = unit_vectors(6, seed=6)
    similarities = {10: 0.3, 11: 0.9, 12: 0.6, 13: 0.75, 14: 0.1}
    gallery = gallery_of(
        {
            pid: np.stack([blend(query, o, s), blend(query, o, s - 0.05)])
            for (pid, s), o in zip(similarities.items(), others, strict=True)
        }
    )

    (top3,) = match_faces(query[None], gallery, threshold=0.5, top_k=3)
    (all_of_them,) = match_faces(query[None], gallery, threshold=0.5, top_k=50)

    assert [pid for pid, _ in top3.candidates] == [11, 13, 12]
    assert [score for _, score in top3.candidates] == pytest.approx([0.9, 0.75, 0.6], abs=1e-5)
    assert [pid for pid, _ in all_of_them.candidates] == [11, 13, 12, 10, 14]


def test_empty_gallery_or_no_faces() -> None:
    empty = Gallery.from_rows(
        GalleryRows(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 0), np.float32)),
        *MODEL,
        revision=0,
        device=DEVICE,
    )
    matches = match_faces(unit_vectors(2), empty, threshold=0.5)

    assert [(m.person_id, m.candidates) for m in matches] == [(None, ()), (None, ())]
    assert match_faces(np.zeros((0, DIM), np.float32), gallery_of({1: unit_vectors(1)}), threshold=0.5) == []


def test_accepts_torch_tensors_and_refuses_the_wrong_dimension() -> None:
    faces = unit_vectors(2, seed=8)
    gallery = gallery_of({1: faces[:1], 2: faces[1:]})

    matches = match_faces(torch.from_numpy(faces), gallery, threshold=0.5)

    assert [m.person_id for m in matches] == [1, 2]
    with pytest.raises(ValueError, match="dimensions"):
        match_faces(unit_vectors(1, dim=DIM + 1), gallery, threshold=0.5)


@pytest.mark.parametrize("faces", [1, 3])
def test_a_large_gallery_scores_one_face_or_several_exactly_as_a_direct_product(faces: int) -> None:
    # Above ONE_FACE_DOUBLED_FROM_ROWS a lone face is scored as two columns; scores must not depend
    # on it, and each person must keep the best of their faces.
    rows = ONE_FACE_DOUBLED_FROM_ROWS + 1000
    vectors = unit_vectors(rows, seed=7)
    person_of_row = np.arange(rows) // 2  # two faces a person
    queries = np.stack([blend(vectors[10 * i + 1], vectors[10 * i + 2], 0.9) for i in range(faces)])
    gallery = gallery_of({int(p): vectors[person_of_row == p] for p in np.unique(person_of_row)})

    scores = person_scores(queries, gallery).numpy()

    direct = (queries @ vectors.T).reshape(faces, -1, 2).max(axis=2)  # [faces, people], people in id order
    np.testing.assert_allclose(scores, direct, atol=1e-5)
    matches = match_faces(queries, gallery, threshold=0.5)
    assert [m.person_id for m in matches] == [int(person_of_row[10 * i + 1]) for i in range(faces)]
