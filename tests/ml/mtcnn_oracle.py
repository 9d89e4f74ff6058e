"""The detection-level MTCNN oracle: what facenet-pytorch 2.6.0's MTCNN finds in the 13 oracle photos at
640×480, 1280×720 and native size, and the tolerances rollcall's detector holds against it.

- Native size: ``shared/oracles/mtcnn_facenet_pytorch/reference.json`` (facenet-pytorch under torch 2.2.2).
- 640×480 and 1280×720: the shared oracle has no reference at these sizes, so facenet-pytorch 2.6.0's own
  detector, imported from its wheel (``benchmarks.peers``), runs on the same stretched frames
  (``benchmarks.frames.resize``) in the test session; ``test_mtcnn`` checks that it reproduces the
  reference file where both exist.

Tolerances (README, "Models"): every face either side finds with probability ≥ 0.9 has a twin on the
other side (one-to-one, by IoU), at IoU ≥ 0.95, with each landmark within 1.5 px or 1.5 % of the box
side, whichever is larger, and the probability within 0.02. Faces below 0.9 on both sides (MTCNN's
low-probability false positives on clothing and background) are not compared.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou

from benchmarks.frames import resize
from benchmarks.peers import facenet_pytorch_mtcnn
from ml.mtcnn import Detections
from tests.shared_data import shared_dir

SIZES = ("640x480", "1280x720", "native")
SURE = 0.9
MIN_IOU = 0.95
MAX_LANDMARK_PX = 1.5
MAX_LANDMARK_SIDE = 0.015
MAX_PROB_DIFF = 0.02

Face = dict[str, Any]  # {"box": [x1, y1, x2, y2], "prob": p, "landmarks": [[x, y] × 5]}, as reference.json


def oracle_dir() -> Path:
    path = shared_dir() / "oracles" / "mtcnn_facenet_pytorch"
    if not (path / "reference.json").is_file():
        raise FileNotFoundError(f"MTCNN oracle missing: {path / 'reference.json'}")
    return path


def reference() -> dict[str, Any]:
    return json.loads((oracle_dir() / "reference.json").read_text())


def image(name: str) -> np.ndarray:
    path = oracle_dir() / "images" / name
    found = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if found is None:
        raise FileNotFoundError(f"cannot read oracle image {path}")
    return found


def frame(name: str, size: str) -> np.ndarray:
    """The oracle photo as a camera of ``size`` would send it (``native``: as it is)."""
    return resize(image(name), size)


def facenet_pytorch_faces(frames: dict[str, np.ndarray], model_dir: Path) -> dict[str, list[Face]]:
    """facenet-pytorch 2.6.0's own MTCNN (its defaults are the oracle's parameters) on each BGR frame,
    one frame per call, given RGB as the reference file's generator gave it."""
    faces: dict[str, list[Face]] = {}
    with facenet_pytorch_mtcnn(model_dir) as peer, torch.inference_mode():
        for name, bgr in frames.items():
            boxes, probs, points = peer.detect(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), landmarks=True)
            if boxes is None:
                faces[name] = []
                continue
            faces[name] = [
                {"box": b.tolist(), "prob": float(p), "landmarks": lm.tolist()}
                for b, p, lm in zip(boxes, probs, points, strict=True)
            ]
    return faces


@dataclass
class Agreement:
    """The worst agreement seen over the compared faces (printed by the tests, quoted in the README)."""

    faces: int = 0
    min_iou: float = 1.0
    max_landmark_px: float = 0.0
    max_prob_diff: float = 0.0
    failures: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.faces} faces: min IoU {self.min_iou:.4f}, max landmark error "
            f"{self.max_landmark_px:.3f} px, max probability difference {self.max_prob_diff:.4f}"
        )


def twins(ours: Detections, faces: list[Face]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one pairing of the oracle's faces with ours, by IoU: (oracle index, our index, IoU)."""
    if not faces or len(ours) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    theirs = torch.tensor([f["box"] for f in faces], dtype=torch.float64)
    iou = box_iou(theirs, torch.from_numpy(ours.boxes).double()).numpy()
    their_idx, our_idx = linear_sum_assignment(-iou)
    return their_idx, our_idx, iou[their_idx, our_idx]


def compare(name: str, ours: Detections, faces: list[Face], agreement: Agreement) -> None:
    """Record in ``agreement`` where ``ours`` falls outside the oracle's tolerances for one frame."""
    their_idx, our_idx, ious = twins(ours, faces)
    paired = {int(t): (int(o), float(v)) for t, o, v in zip(their_idx, our_idx, ious, strict=True)}
    paired_ours = {o: t for t, (o, _) in paired.items()}
    for t, face in enumerate(faces):
        o, iou = paired.get(t, (-1, 0.0))
        sure = face["prob"] >= SURE or (o >= 0 and ours.probs[o] >= SURE)
        if not sure:
            continue
        if o < 0 or iou < MIN_IOU:
            lonely = f"{name}: oracle face {t} (p={face['prob']:.3f}) has no twin (IoU {iou:.3f})"
            agreement.failures.append(lonely)
            continue
        box = np.asarray(face["box"])
        side = float(max(box[2] - box[0], box[3] - box[1]))
        allowed = max(MAX_LANDMARK_PX, MAX_LANDMARK_SIDE * side)
        error = float(np.abs(ours.landmarks[o] - np.asarray(face["landmarks"])).max())
        prob_diff = abs(float(ours.probs[o]) - face["prob"])
        agreement.faces += 1
        agreement.min_iou = min(agreement.min_iou, iou)
        agreement.max_landmark_px = max(agreement.max_landmark_px, error)
        agreement.max_prob_diff = max(agreement.max_prob_diff, prob_diff)
        if error > allowed:
            agreement.failures.append(f"{name}: face {t} landmarks off by {error:.2f} px (> {allowed:.2f})")
        if prob_diff > MAX_PROB_DIFF:
            agreement.failures.append(f"{name}: face {t} p={ours.probs[o]:.4f}, not {face['prob']:.4f}")
    for o in np.flatnonzero(ours.probs >= SURE):
        if int(o) not in paired_ours or paired[paired_ours[int(o)]][1] < MIN_IOU:
            agreement.failures.append(f"{name}: our face {o} (p={ours.probs[o]:.3f}) is not in the oracle")
