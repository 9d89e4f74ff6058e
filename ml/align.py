"""Face alignment: cut each face out of a frame so its five landmarks land on an embedder's template.

Every embedder was trained on crops of a fixed geometry; a similarity transform (rotation, uniform
scale, translation: no shear, no stretch) maps the face's five MTCNN points onto the embedder's
template, so chips look like the training crops whatever the face's size and roll in the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

# Where dlib_face_recognition_resnet_model_v1 expects the five MTCNN points (left eye, right eye,
# nose, left and right mouth corner) in its 150x150 chips, which dlib cuts with
# get_face_chip(size=150, padding=0.25) from its own 5-point shape predictor (eye corners, nose base).
# Measured, not guessed: our MTCNN (min_face_size 20) run on the 42 dlib-made chips of
# oracles/dlib_resnet_v1/chips/, each padded with a 75 px black border (a face filling the whole
# frame throws MTCNN's landmarks off by ~10 px; a replicated border paints face-like streaks), mean
# of the 42 faces' landmarks, rounded to 0.01. Per-point spread across faces is 2-5 px (pose).
# tests/ml/test_align.py re-derives it. Cross-check: facenet-pytorch's MTCNN landmarks on the full
# photos of chips 021-041, mapped into the chip by dlib's own 5-point chip transform, average within
# 1.7 px of it (leaving out obama_partial_face, where the two landmarkers disagree on a cut face).
DLIB_CHIP_TEMPLATE = np.array(
    [[47.54, 45.35], [101.99, 45.73], [74.96, 78.87], [50.12, 102.71], [100.02, 103.12]], dtype=np.float32
)


def similarity_transform(points: np.ndarray, template: np.ndarray) -> np.ndarray:
    """[2,3] least-squares similarity mapping ``points`` [K,2] onto ``template`` [K,2] (Umeyama, 1991).

    Closed-form least squares on all five points rather than cv2.estimateAffinePartial2D, whose only
    methods are robust ones (RANSAC, LMEDS): they sample point pairs and may drop a real but off-mean
    landmark (a turned face's nose) as an outlier. Five points need no sampling, and this is the fit
    dlib's get_face_chip uses (find_similarity_transform); on clean points the two agree to 1e-6.
    """
    src = np.asarray(points, dtype=np.float64)
    dst = np.asarray(template, dtype=np.float64)
    src_mean, dst_mean = src.mean(0), dst.mean(0)
    src_c, dst_c = src - src_mean, dst - dst_mean
    # In complex numbers a similarity is z -> a z + b; the least-squares a is <src, dst> / |src|^2.
    zs = src_c[:, 0] + 1j * src_c[:, 1]
    zd = dst_c[:, 0] + 1j * dst_c[:, 1]
    denom = float(np.vdot(zs, zs).real)
    if denom <= 1e-12:
        raise ValueError("landmarks are all at one point: no face to align")
    a = np.vdot(zs, zd) / denom
    rotation_scale = np.array([[a.real, -a.imag], [a.imag, a.real]])
    translation = dst_mean - rotation_scale @ src_mean
    return np.hstack([rotation_scale, translation[:, None]])


def align_faces(
    frame_bgr: np.ndarray, landmarks: np.ndarray, chip_size: int, template: np.ndarray
) -> np.ndarray:
    """[N,5,2] landmarks in a BGR uint8 frame → [N,S,S,3] uint8 RGB chips aligned to ``template``.

    No faces → a [0,S,S,3] array. Pixels outside the frame are black (BORDER_CONSTANT), as in dlib's
    chips, so a face cut by the frame edge is not smeared by repeated edge pixels.
    """
    landmarks = np.asarray(landmarks, dtype=np.float32).reshape(-1, 5, 2)
    chips = np.empty((len(landmarks), chip_size, chip_size, 3), dtype=np.uint8)
    for i, points in enumerate(landmarks):
        chip = warp_chip(frame_bgr, similarity_transform(points, template), chip_size)
        cv2.cvtColor(chip, cv2.COLOR_BGR2RGB, dst=chips[i])
    return chips


def warp_chip(frame: np.ndarray, matrix: np.ndarray, chip_size: int) -> np.ndarray:
    """Sample the [S,S] chip that ``matrix`` (frame → chip) defines, without aliasing.

    Bilinear sampling alone turns into nearest-neighbour once a face shrinks more than 2x (a 400 px
    face into a 150 px chip), so, as dlib's extract_image_chips does, the region under the chip is
    first halved with a Gaussian pyramid (cv2.pyrDown) until the remaining shrink is under 2x.
    """
    scale = float(np.sqrt(abs(np.linalg.det(matrix[:, :2]))))
    levels = 0
    while scale * 2**levels < 0.5:
        levels += 1
    if levels == 0:
        return _warp(frame, matrix, chip_size)
    # Only the frame region under the chip (plus the pyramid filters' reach) is downsampled.
    inverse = cv2.invertAffineTransform(matrix)
    corners = np.array(
        [[0, 0, 1], [chip_size, 0, 1], [0, chip_size, 1], [chip_size, chip_size, 1]], np.float64
    )
    under = corners @ inverse.T
    reach = 4 * 2**levels
    height, width = frame.shape[:2]
    x0, y0 = (int(max(np.floor(under[:, k].min()) - reach, 0)) for k in (0, 1))
    x1 = int(min(np.ceil(under[:, 0].max()) + reach, width))
    y1 = int(min(np.ceil(under[:, 1].max()) + reach, height))
    if x1 <= x0 or y1 <= y0:  # the chip lies wholly outside the frame
        return np.zeros((chip_size, chip_size, 3), dtype=frame.dtype)
    region = frame[y0:y1, x0:x1]
    for _ in range(levels):
        region = cv2.pyrDown(region)
    # pyrDown puts pyramid pixel j at region pixel 2j: frame point = 2^levels * pyramid point + (x0, y0).
    pyramid_to_frame = np.array([[2**levels, 0, x0], [0, 2**levels, y0], [0, 0, 1]], np.float64)
    return _warp(region, matrix @ pyramid_to_frame, chip_size)


def _warp(image: np.ndarray, matrix: np.ndarray, chip_size: int) -> np.ndarray:
    return cv2.warpAffine(
        image,
        matrix,
        (chip_size, chip_size),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def flip_chips(chips_rgb: np.ndarray) -> np.ndarray:
    """Mirror chips left-right (test-time augmentation: embed both and average); returns a new array."""
    return np.ascontiguousarray(chips_rgb[:, :, ::-1])
