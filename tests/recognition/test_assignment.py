"""One-to-one assignment of faces to people (attendance), on synthetic embeddings."""

from __future__ import annotations

import numpy as np

from facebank.records import GalleryRows
from recognition.gallery import Gallery, assign_faces


def gallery_of(vectors: dict[int, list[np.ndarray]]) -> Gallery:
    person_ids = [pid for pid, faces in vectors.items() for _ in faces]
    stacked = np.stack([v for faces in vectors.values() for v in faces]).astype(np.float32)
    rows = GalleryRows(
        np.asarray(person_ids, dtype=np.int64), np.arange(len(person_ids), dtype=np.int64), stacked
    )
    return Gallery.from_rows(rows, "test", "1", revision=1, device="cpu")


def unit(*values: float) -> np.ndarray:
    vector = np.asarray(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_two_faces_resembling_one_person_name_that_person_once() -> None:
    gallery = gallery_of({7: [unit(1, 0, 0)], 8: [unit(0, 1, 0)]})
    faces = np.stack([unit(1, 0.05, 0), unit(1, 0.2, 0)])
    result = assign_faces(faces, gallery, threshold=0.9)
    assert [(p.face_index, p.person_id) for p in result.present] == [(0, 7)]
    assert result.unknown_face_indices == (1,)


def angle(degrees: float) -> np.ndarray:
    return unit(np.cos(np.radians(degrees)), np.sin(np.radians(degrees)), 0)


def test_assignment_names_everyone_it_can_where_greedy_choice_would_not() -> None:
    # Face 0 is closest to person 1 (0.99) but also clears the threshold for person 2 (0.97); face 1
    # clears it only for person 1 (0.985). Naming face 0 first by its best match would leave face 1
    # unknown; the assignment names both.
    gallery = gallery_of({1: [angle(0)], 2: [angle(22.2)]})
    faces = np.stack([angle(8.1), angle(-9.9)])
    result = assign_faces(faces, gallery, threshold=0.95)
    assert {(p.face_index, p.person_id) for p in result.present} == {(0, 2), (1, 1)}
    assert result.unknown_face_indices == ()


def test_threshold_roster_and_empty_inputs() -> None:
    gallery = gallery_of({1: [unit(1, 0, 0)], 2: [unit(0, 1, 0)]})
    faces = np.stack([unit(1, 0, 0), unit(0, 1, 0), unit(0, 0, 1)])
    everyone = assign_faces(faces, gallery, threshold=0.9)
    assert {(p.face_index, p.person_id) for p in everyone.present} == {(0, 1), (1, 2)}
    assert everyone.unknown_face_indices == (2,)
    roster_only = assign_faces(faces, gallery, threshold=0.9, restrict_to={2})
    assert [(p.face_index, p.person_id) for p in roster_only.present] == [(1, 2)]
    assert assign_faces(np.zeros((0, 3), dtype=np.float32), gallery, threshold=0.9).present == ()
    nobody = assign_faces(faces, gallery, threshold=1.01)
    assert nobody.present == () and nobody.unknown_face_indices == (0, 1, 2)
