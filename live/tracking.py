"""Faces followed from frame to frame on one camera: a track id per face, kept while the face is in view.

The tracking itself is norfair's (PyPI ``norfair-enough``, the maintained fork of tryolabs' norfair):
a Kalman filter per face box, detections joined to tracks by box overlap. docs/live.md has the
measurements that chose it over ByteTrack and why. This module is the only one that knows the library:
it takes the detector's ``Detections`` and answers ``TrackedFace`` values.

Between two frames with detections (``ROLLCALL_LIVE_DETECT_EVERY`` > 1) the tracker predicts where each
face went; its landmarks move with its box. A face that goes undetected coasts unreported for
``keep_frames`` frames and comes back under the same id if a detection joins it in time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from norfair import Detection, Tracker

from ml.mtcnn import Detections

# A detection joins a track whose predicted box it overlaps at least this much (intersection over
# union): ByteTrack's default, at which both trackers kept every identity on the live scenes.
JOIN_IOU = 0.1


@dataclass(frozen=True, slots=True)
class TrackedFace:
    """One face on this frame: ``detected`` when a detection of this frame joined its track, else its
    box and landmarks are the tracker's prediction (a frame without detection)."""

    track_id: int
    box: np.ndarray  # float32 [4]: x1, y1, x2, y2
    landmarks: np.ndarray  # float32 [5, 2]
    prob: float  # the probability of the face's last detection
    detected: bool


@dataclass(frozen=True, slots=True)
class _Seen:
    """What a norfair detection carries: the frame it was made on and the face's detection."""

    frame: int
    box: np.ndarray
    landmarks: np.ndarray
    prob: float


class FaceTracker:
    """One camera's tracks; ``update`` once per frame, in order."""

    def __init__(self, keep_frames: int) -> None:
        if keep_frames < 1:
            raise ValueError(f"keep_frames must be at least 1, got {keep_frames}")
        self._tracker = Tracker(
            distance_function="iou",
            distance_threshold=1.0 - JOIN_IOU,
            hit_counter_max=keep_frames,
            initialization_delay=0,
        )
        self._frame = 0
        self._detected_on = 0  # the last frame that had detections

    def update(self, detections: Detections | None, period: int = 1) -> list[TrackedFace]:
        """The faces of this frame: ``detections`` joined to tracks, or (None) every track predicted.

        ``period``: frames since the last frame with detections, so a face detected every other frame
        keeps its track as long as one detected on every frame.
        """
        self._frame += 1
        if detections is None:
            objects = self._tracker.update()
        else:
            self._detected_on = self._frame
            found = [
                Detection(
                    points=box.astype(np.float64).reshape(2, 2),
                    scores=np.array([prob, prob]),
                    data=_Seen(self._frame, box, marks, float(prob)),
                )
                for box, prob, marks in zip(
                    detections.boxes, detections.probs, detections.landmarks, strict=True
                )
            ]
            objects = self._tracker.update(found, period=period)
        faces = []
        for tracked in objects:
            seen: _Seen = tracked.last_detection.data
            # Only faces the last detection saw: a track coasting unseen is kept, not reported.
            if tracked.id is None or seen.frame != self._detected_on:
                continue
            if seen.frame == self._frame:
                faces.append(TrackedFace(int(tracked.id), seen.box, seen.landmarks, seen.prob, True))
            else:
                box = tracked.estimate.reshape(4).astype(np.float32)
                faces.append(
                    TrackedFace(int(tracked.id), box, _moved(seen.landmarks, seen.box, box), seen.prob, False)
                )
        return faces

    def live_ids(self) -> set[int]:
        """Ids of every track still kept, reported or coasting (a track missing here has ended)."""
        return {int(t.id) for t in self._tracker.tracked_objects if t.id is not None}


def _moved(landmarks: np.ndarray, old_box: np.ndarray, new_box: np.ndarray) -> np.ndarray:
    """Landmarks carried from ``old_box`` into ``new_box`` (shifted and scaled with it)."""
    old_size = np.maximum(old_box[2:] - old_box[:2], 1e-3)
    scale = (new_box[2:] - new_box[:2]) / old_size
    return ((landmarks - old_box[:2]) * scale + new_box[:2]).astype(np.float32)
