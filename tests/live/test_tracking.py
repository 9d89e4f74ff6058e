"""Face tracks from detections: ids kept while faces move, predictions between detections, tracks that end."""

from __future__ import annotations

import numpy as np
import pytest

from live.tracking import FaceTracker
from ml.mtcnn import Detections

# A face's 5 landmarks inside a 100x100 box at the origin.
MARKS = np.array([[30, 40], [70, 40], [50, 60], [35, 80], [65, 80]], dtype=np.float32)


def faces_at(*corners: tuple[float, float], size: float = 100.0) -> Detections:
    boxes = np.array([[x, y, x + size, y + size] for x, y in corners], dtype=np.float32).reshape(-1, 4)
    marks = [MARKS * size / 100 + np.array([x, y], dtype=np.float32) for x, y in corners]
    landmarks = np.stack(marks) if marks else np.zeros((0, 5, 2), dtype=np.float32)
    return Detections(boxes, np.full(len(corners), 0.99, dtype=np.float32), landmarks)


def test_faces_moving_across_frames_keep_their_ids() -> None:
    tracker = FaceTracker(keep_frames=10)
    upper, lower = set(), set()
    for step in range(30):
        faces = tracker.update(faces_at((10 + 8 * step, 50), (400 - 8 * step, 250)))
        assert len(faces) == 2 and all(f.detected for f in faces)
        upper |= {f.track_id for f in faces if f.box[1] == 50}
        lower |= {f.track_id for f in faces if f.box[1] == 250}
    assert len(upper) == len(lower) == 1 and upper != lower


def test_between_detections_faces_are_predicted_with_their_landmarks() -> None:
    tracker = FaceTracker(keep_frames=10)
    for step in range(10):
        (face,) = tracker.update(faces_at((100 + 10 * step, 100)))
    (predicted,) = tracker.update(None)
    assert not predicted.detected and predicted.track_id == face.track_id
    assert predicted.box[0] > face.box[0]  # carried on in the direction it moved
    offset = predicted.landmarks - predicted.box[:2]
    expected = (face.landmarks - face.box[:2]) * (predicted.box[2] - predicted.box[0]) / 100
    assert offset == pytest.approx(expected, abs=0.5)


def test_a_face_undetected_for_a_moment_comes_back_under_its_id() -> None:
    tracker = FaceTracker(keep_frames=10)
    for _ in range(10):
        (face,) = tracker.update(faces_at((100, 100)))
    for _ in range(4):
        assert tracker.update(faces_at()) == []  # coasting tracks are kept, not reported
    assert face.track_id in tracker.live_ids()
    (back,) = tracker.update(faces_at((102, 101)))
    assert back.track_id == face.track_id and back.detected


def test_a_face_gone_longer_than_keep_frames_ends_and_a_new_face_gets_a_new_id() -> None:
    tracker = FaceTracker(keep_frames=5)
    for _ in range(10):
        (face,) = tracker.update(faces_at((100, 100)))
    for _ in range(8):
        tracker.update(faces_at())
    assert face.track_id not in tracker.live_ids()
    (new,) = tracker.update(faces_at((100, 100)))
    assert new.track_id != face.track_id


def test_keep_frames_must_be_positive() -> None:
    with pytest.raises(ValueError):
        FaceTracker(keep_frames=0)
