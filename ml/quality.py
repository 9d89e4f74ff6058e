"""How good a face is for enrolment: its size, sharpness and pose, measured from what detection gives.

Pure measurements; ``recognition.enrolment`` compares them with the configured limits. Sharpness is
measured on the aligned chip, so every face is judged at the resolution the embedder sees it.
Pose comes from the five MTCNN landmarks alone (no 3-D model): yaw from how far the nose sits
off the eyes' midpoint along the eye line, roll from the eye line's angle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class FaceQuality:
    """The measurements of one face; ``yaw`` is in eye distances (0 frontal, ± when turned)."""

    face_px: float  # shortest side of the detection box, in frame pixels
    eye_distance_px: float
    sharpness: float  # variance of the Laplacian of the grey aligned chip
    yaw: float
    roll_deg: float

    def to_json(self) -> dict[str, float]:
        return {
            "face_px": round(self.face_px, 1),
            "eye_distance_px": round(self.eye_distance_px, 1),
            "sharpness": round(self.sharpness, 1),
            "yaw": round(self.yaw, 3),
            "roll_deg": round(self.roll_deg, 1),
        }


def sharpness(chip_rgb: np.ndarray) -> float:
    """Variance of the Laplacian of a uint8 RGB chip in grey: low for blurred (or upscaled tiny) faces."""
    grey = cv2.cvtColor(chip_rgb, cv2.COLOR_RGB2GRAY)
    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


def pose(landmarks: np.ndarray) -> tuple[float, float, float]:
    """(yaw in eye distances, roll in degrees, eye distance in px) from 5 MTCNN landmarks [5,2].

    The nose's offset is measured along the eye line, so a tilted (rolled) frontal face still has
    yaw 0. A face turned by about 45° puts the nose roughly half an eye distance off the midpoint.
    """
    points = np.asarray(landmarks, dtype=np.float64).reshape(5, 2)
    left_eye, right_eye, nose = points[0], points[1], points[2]
    eye_line = right_eye - left_eye
    eye_distance = float(np.hypot(*eye_line))
    if eye_distance <= 1e-6:
        raise ValueError("both eyes are at one point: no face to judge")
    roll = math.degrees(math.atan2(eye_line[1], eye_line[0]))
    yaw = float(np.dot(nose - (left_eye + right_eye) / 2, eye_line / eye_distance) / eye_distance)
    return yaw, roll, eye_distance


def measure_face(box: np.ndarray, landmarks: np.ndarray, chip_rgb: np.ndarray) -> FaceQuality:
    """The quality of one detected face: its box [4], landmarks [5,2] and aligned chip [S,S,3]."""
    x1, y1, x2, y2 = (float(v) for v in np.asarray(box).reshape(4))
    yaw, roll, eye_distance = pose(landmarks)
    return FaceQuality(
        face_px=min(x2 - x1, y2 - y1),
        eye_distance_px=eye_distance,
        sharpness=sharpness(chip_rgb),
        yaw=yaw,
        roll_deg=roll,
    )
