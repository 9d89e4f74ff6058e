"""Enrolment quality measurements: pose from five landmarks, sharpness of a chip."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from ml.align import DLIB_CHIP_TEMPLATE
from ml.quality import measure_face, pose, sharpness

FRONTAL = np.array([[40, 50], [80, 50], [60, 75], [45, 95], [75, 95]], dtype=np.float32)


def rotated(points: np.ndarray, degrees: float) -> np.ndarray:
    angle = math.radians(degrees)
    matrix = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    centre = points.mean(0)
    return ((points - centre) @ matrix.T + centre).astype(np.float32)


def test_a_frontal_face_has_no_yaw_and_no_roll() -> None:
    yaw, roll, eyes = pose(FRONTAL)
    assert (yaw, roll, eyes) == pytest.approx((0.0, 0.0, 40.0))


@pytest.mark.parametrize("degrees", [-35.0, 20.0])
def test_roll_is_the_eye_line_angle_and_leaves_yaw_alone(degrees: float) -> None:
    yaw, roll, _ = pose(rotated(FRONTAL, degrees))
    assert roll == pytest.approx(degrees, abs=1e-3)
    assert yaw == pytest.approx(0.0, abs=1e-5)


def test_yaw_is_the_nose_offset_along_the_eye_line_in_eye_distances() -> None:
    turned = FRONTAL.copy()
    turned[2, 0] += 20  # nose half an eye distance to the right
    yaw, _, _ = pose(rotated(turned, 30.0))
    assert yaw == pytest.approx(0.5, abs=1e-5)


def test_blurring_a_chip_lowers_its_sharpness() -> None:
    rng = np.random.default_rng(0)
    chip = rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)
    blurred = cv2.GaussianBlur(chip, (0, 0), 3)
    assert sharpness(blurred) < sharpness(chip) / 10


def test_measure_face_reports_the_box_shortest_side() -> None:
    chip = np.zeros((150, 150, 3), dtype=np.uint8)
    quality = measure_face(np.array([10, 20, 110, 90]), DLIB_CHIP_TEMPLATE, chip)
    assert quality.face_px == 70
    assert quality.sharpness == 0.0
    assert set(quality.to_json()) == {"face_px", "eye_distance_px", "sharpness", "yaw", "roll_deg"}
