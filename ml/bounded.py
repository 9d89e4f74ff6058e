"""Bounded detection cost per frame, and the face-probability floor.

A frame whose long side exceeds ``max_side`` is detected on a copy downscaled to that long side (area
resampling), and the answer is mapped back to the original frame's coordinates: a 36-megapixel photo then
costs what a 2048-pixel frame costs. Faces too small for the copy are the small-face mode's job, whose tiles
are cut from the full-resolution frame (``ml.tiling``).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

import errors
from ml.mtcnn import MTCNN, Detections, MTCNNParams
from ml.timing import StageTimer


def detection_scale(shape: tuple[int, ...], max_side: int | None) -> float:
    """The factor (≤ 1) a frame of ``shape`` is shrunk by before detection."""
    if max_side is None:
        return 1.0
    if max_side < 64:
        raise errors.InvalidInput(f"the detection long side must be at least 64 pixels, got {max_side}")
    long_side = max(shape[0], shape[1])
    return 1.0 if long_side <= max_side else max_side / long_side


def downscaled(frame_bgr: np.ndarray, scale: float) -> np.ndarray:
    if scale >= 1.0:
        return frame_bgr
    height, width = frame_bgr.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(frame_bgr, size, interpolation=cv2.INTER_AREA)


def rescaled(
    detections: Detections, frame_shape: tuple[int, ...], small_shape: tuple[int, ...]
) -> Detections:
    """Detections on a resized copy of shape ``small_shape``, in the coordinates of ``frame_shape``."""
    if frame_shape[:2] == small_shape[:2]:
        return detections
    factors = np.array([frame_shape[1] / small_shape[1], frame_shape[0] / small_shape[0]], dtype=np.float32)
    return Detections(
        (detections.boxes * np.tile(factors, 2)).astype(np.float32),
        detections.probs,
        (detections.landmarks * factors).astype(np.float32),
    )


def at_least(detections: Detections, min_prob: float) -> Detections:
    """Only the detections with probability ``min_prob`` or more."""
    if min_prob <= 0.0:
        return detections
    keep = detections.probs >= min_prob
    return Detections(detections.boxes[keep], detections.probs[keep], detections.landmarks[keep])


def detect_bounded(
    detector: MTCNN,
    frames_bgr: Sequence[np.ndarray],
    params: MTCNNParams,
    max_side: int | None,
    timer: StageTimer | None = None,
) -> list[Detections]:
    """``detector.detect`` with each frame's long side bounded by ``max_side``; original coordinates."""
    small = [downscaled(f, detection_scale(f.shape, max_side)) for f in frames_bgr]
    found = detector.detect(small, params, timer)
    return [rescaled(d, f.shape, s.shape) for d, f, s in zip(found, frames_bgr, small, strict=True)]
