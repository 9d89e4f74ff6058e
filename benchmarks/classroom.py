"""A synthetic "classroom" frame with known small faces, for the small-face tests and benchmarks.

Real faces are cut from the shared scene photos (boxes from the MTCNN oracle, only faces the
reference is sure of), shrunk so the face box is 8–20 px wide and pasted at known positions
into a 1920×1080 frame on a textured background: back rows smallest, front rows largest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

FRAME_SIZE = (1920, 1080)
_CONTEXT = 0.5  # margin around the face box kept from the source photo, as a fraction of the box size


@dataclass(frozen=True)
class Classroom:
    frame: np.ndarray  # BGR uint8 [1080, 1920, 3]
    boxes: np.ndarray  # float32 [N, 4]: where each pasted face's box is
    sources: tuple[str, ...]  # which photo each face came from


def source_faces(shared: Path, min_prob: float = 0.99) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(photo name, photo, face box) for every face the reference is sure of."""
    folder = shared / "oracles/mtcnn_facenet_pytorch"
    reference = json.loads((folder / "reference.json").read_text())
    faces = []
    for name, entry in sorted(reference["images"].items()):
        image = cv2.imread(str(folder / "images" / name), cv2.IMREAD_COLOR)
        for face in entry["faces"]:
            if face["prob"] >= min_prob:
                faces.append((name, image, np.asarray(face["box"], dtype=np.float32)))
    return faces


def build_classroom(
    shared: Path,
    seed: int = 7,
    rows: tuple[tuple[int, float], ...] = ((6, 9.0), (6, 12.0), (6, 15.0), (6, 19.0)),
) -> Classroom:
    """Rows of (faces, face width in px), back to front, each face from the shared photos in turn."""
    rng = np.random.default_rng(seed)
    width, height = FRAME_SIZE
    frame = _background(rng, width, height)
    faces = source_faces(shared)
    boxes, sources = [], []
    k = 0
    for row, (count, face_width) in enumerate(rows):
        y_centre = height * (0.2 + 0.6 * row / max(1, len(rows) - 1))
        for col in range(count):
            name, photo, box = faces[k % len(faces)]
            k += 1
            x_centre = width * (col + 0.5) / count + rng.uniform(-20, 20)
            pasted = _paste(frame, photo, box, face_width, x_centre, y_centre + rng.uniform(-15, 15))
            boxes.append(pasted)
            sources.append(name)
    return Classroom(frame, np.asarray(boxes, dtype=np.float32), tuple(sources))


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A wall-and-desks texture: smooth gradient, coarse blotches and fine noise, nothing face-like."""
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    base = 150 + 50 * y - 20 * x
    blotches = cv2.resize(
        rng.uniform(-25, 25, (height // 60, width // 60)).astype(np.float32),
        (width, height),
        interpolation=cv2.INTER_CUBIC,
    )
    noise = rng.normal(0, 4, (height, width)).astype(np.float32)
    gray = np.clip(base + blotches + noise, 0, 255)
    tint = np.array([0.95, 1.0, 1.05], dtype=np.float32)
    return np.clip(gray[..., None] * tint, 0, 255).astype(np.uint8)


def _paste(
    frame: np.ndarray, photo: np.ndarray, box: np.ndarray, face_width: float, cx: float, cy: float
) -> list[float]:
    """Shrink the face (with context) so its box is ``face_width`` wide, paste it centred at (cx, cy)."""
    x1, y1, x2, y2 = box
    bw, bh = x2 - x1, y2 - y1
    cx0, cy0 = max(0, int(x1 - _CONTEXT * bw)), max(0, int(y1 - _CONTEXT * bh))
    cx1, cy1 = min(photo.shape[1], int(x2 + _CONTEXT * bw)), min(photo.shape[0], int(y2 + _CONTEXT * bh))
    crop = photo[cy0:cy1, cx0:cx1]
    scale = face_width / bw
    small = cv2.resize(
        crop,
        (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
        interpolation=cv2.INTER_AREA,
    )
    # Place so the face box centre lands on (cx, cy).
    face_cx, face_cy = ((x1 + x2) / 2 - cx0) * scale, ((y1 + y2) / 2 - cy0) * scale
    ox, oy = int(round(cx - face_cx)), int(round(cy - face_cy))
    h, w = small.shape[:2]
    fx0, fy0 = max(0, ox), max(0, oy)
    fx1, fy1 = min(frame.shape[1], ox + w), min(frame.shape[0], oy + h)
    frame[fy0:fy1, fx0:fx1] = small[fy0 - oy : fy1 - oy, fx0 - ox : fx1 - ox]
    return [
        ox + (x1 - cx0) * scale,
        oy + (y1 - cy0) * scale,
        ox + (x2 - cx0) * scale,
        oy + (y2 - cy0) * scale,
    ]


def score_detections(
    truth: np.ndarray, found: np.ndarray, probs: np.ndarray, min_prob: float, min_iou: float = 0.3
) -> dict[str, int]:
    """Faces found (a detection ≥ ``min_prob`` with IoU ≥ ``min_iou``) and false boxes (matching no face)."""
    keep = probs >= min_prob
    found = found[keep]
    matched_truth: set[int] = set()
    false_boxes = 0
    for box in found:
        ious = _iou(box, truth)
        best = int(np.argmax(ious)) if len(ious) else -1
        if best >= 0 and ious[best] >= min_iou:
            matched_truth.add(best)
        else:
            false_boxes += 1
    return {"faces": len(truth), "found": len(matched_truth), "false_boxes": false_boxes}


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    x1 = np.maximum(box[0], boxes[:, 0])
    y1 = np.maximum(box[1], boxes[:, 1])
    x2 = np.minimum(box[2], boxes[:, 2])
    y2 = np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    result: np.ndarray = inter / (area + areas - inter + 1e-9)
    return result
