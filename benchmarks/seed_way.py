"""THE SEED'S WAY: a reproduction, for benchmarks only, of how the seed served one attendance request.

Never use this to serve anything: it exists so ``benchmarks.versus_seed`` can measure what rollcall's
way of working gains. Its MTCNN runs on rollcall's weight files and network modules (the seed's own
MTCNN weights are these); it embeds two ways:

- **faithfully** (``SeedMobileFaceNet``): the seed's own embedder, MobileFaceNet on 112×112 chips, 512-D,
  one face per forward with autograd on (``benchmarks.seed_mobilefacenet``: randomly initialised, since
  its trained weights are not available and a forward pass costs the same whatever they are; its
  answers are therefore not names, and the seed's facebank is random 512-D rows);
- **with rollcall's embedder** (``SeedSameEmbedder``), one face per forward as the seed did: the
  comparison of the way of working alone, and the one that names people (tests check those names).

Per request the seed

1. built the three MTCNN networks and read their weight files from disk (here: the model store's
   ``mtcnn_pnet``/``rnet``/``onet`` files), every time;
2. halved the frame (``scale 0.5``) and detected on the half-size frame with its own cascade, the
   classic one (``seed_detect`` below): minimum face 20 pixels of the halved frame, thresholds
   0.7 / 0.8 / 0.98, pyramid factor 0.707; P-Net once per pyramid scale on a resized copy with each
   scale's NMS in numpy; then NMS across scales, and R-Net and O-Net on crops cut and resized one box
   at a time, their NMS in numpy too;
3. aligned and embedded each face on its own, one forward pass per face (the embedding network itself
   stayed loaded between requests; only MTCNN was rebuilt), autograd on;
4. named the faces with one broadcast distance computation against the whole facebank (vectorised),
   each face taking its nearest embedding's person when close enough, each person named once.

Equal work: the seed's minimum face is 20 pixels of the halved frame, 40 pixels of the frame, so
rollcall with a 40-pixel minimum face does the same detection work (``EQUAL_WORK_MIN_FACE``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np
import torch

from benchmarks.seed_mobilefacenet import (
    ARCFACE_TEMPLATE,
    CHIP_SIZE,
    EMBEDDING_DIM,
    MobileFaceNet,
    embed_one_face,
)
from facebank.records import GalleryRows
from ml.align import align_faces
from ml.embedder import Embedder
from ml.mtcnn import ONet, PNet, RNet
from ml.timing import StageTimer
from ml.weights import ModelStore

MTCNN_FILES = (("pnet", "mtcnn_pnet"), ("rnet", "mtcnn_rnet"), ("onet", "mtcnn_onet"))
SEED_SCALE = 0.5
SEED_MIN_FACE = 20
SEED_THRESHOLDS = (0.7, 0.8, 0.98)
SEED_FACTOR = 0.707
EQUAL_WORK_MIN_FACE = round(SEED_MIN_FACE / SEED_SCALE)  # 40 px of the full frame
# The seed's acceptance: squared Euclidean distance between unit vectors below 1.5 (its config's
# ``threshold``), i.e. distance below sqrt(1.5).
SEED_MAX_DISTANCE = float(np.sqrt(1.5))


@dataclass(frozen=True)
class SeedWeights:
    """Where the three MTCNN weight files are (verified once at set-up, as an installed seed had them)."""

    files: tuple[tuple[str, Path], ...]

    @classmethod
    def from_store(cls, store: ModelStore) -> SeedWeights:
        return cls(tuple((attribute, store.path(name)) for attribute, name in MTCNN_FILES))


@dataclass(frozen=True)
class SeedFacebank:
    """The seed's facebank in memory: one embedding matrix and the person of each row."""

    person_ids: np.ndarray  # int64 [M]
    vectors: torch.Tensor  # float32 [M, D]

    @classmethod
    def from_rows(cls, rows: GalleryRows) -> SeedFacebank:
        return cls(np.asarray(rows.person_ids), torch.from_numpy(np.array(rows.vectors, dtype=np.float32)))


@dataclass(frozen=True)
class SeedAnswer:
    """The people the seed named (person ids, at most once each) and its stage times in milliseconds."""

    present: list[int]
    faces: int
    ms: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.ms.values())


@dataclass
class SeedNets:
    pnet: PNet
    rnet: RNet
    onet: ONet


def load_nets_per_request(weights: SeedWeights) -> SeedNets:
    """Build the three networks and read their weight files, as the seed did on every request."""
    nets = SeedNets(PNet(), RNet(), ONet())
    for attribute, path in weights.files:
        net = getattr(nets, attribute)
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        net.eval()
    return nets


def _nms(boxes: np.ndarray, threshold: float, mode: str = "union") -> list[int]:
    """The classic greedy NMS in numpy over ``[x1, y1, x2, y2, score]`` rows (inclusive pixel boxes)."""
    if len(boxes) == 0:
        return []
    x1, y1, x2, y2, score = (boxes[:, i] for i in range(5))
    area = (x2 - x1 + 1.0) * (y2 - y1 + 1.0)
    order = np.argsort(score)
    pick: list[int] = []
    while len(order) > 0:
        last = len(order) - 1
        i = int(order[last])
        pick.append(i)
        ix1 = np.maximum(x1[i], x1[order[:last]])
        iy1 = np.maximum(y1[i], y1[order[:last]])
        ix2 = np.minimum(x2[i], x2[order[:last]])
        iy2 = np.minimum(y2[i], y2[order[:last]])
        inter = np.maximum(0.0, ix2 - ix1 + 1.0) * np.maximum(0.0, iy2 - iy1 + 1.0)
        if mode == "min":
            overlap = inter / np.minimum(area[i], area[order[:last]])
        else:
            overlap = inter / (area[i] + area[order[:last]] - inter)
        order = np.delete(order, np.concatenate([[last], np.where(overlap > threshold)[0]]))
    return pick


def _preprocess(rgb: np.ndarray) -> torch.Tensor:
    """HWC uint8 RGB (or NHWC) → NCHW float32 in [-1, 1], as the nets were trained."""
    array = (rgb.astype(np.float32) - 127.5) * 0.0078125
    array = array[None] if array.ndim == 3 else array
    return torch.from_numpy(np.ascontiguousarray(array.transpose(0, 3, 1, 2)))


def _calibrate(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    width = (boxes[:, 2] - boxes[:, 0] + 1.0)[:, None]
    height = (boxes[:, 3] - boxes[:, 1] + 1.0)[:, None]
    shifted = boxes.copy()
    shifted[:, 0:4] = boxes[:, 0:4] + np.hstack([width, height, width, height]) * offsets
    return shifted


def _square(boxes: np.ndarray) -> np.ndarray:
    squared = boxes.copy()
    h = boxes[:, 3] - boxes[:, 1] + 1.0
    w = boxes[:, 2] - boxes[:, 0] + 1.0
    side = np.maximum(h, w)
    squared[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    squared[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    squared[:, 2] = squared[:, 0] + side - 1.0
    squared[:, 3] = squared[:, 1] + side - 1.0
    return squared


def _first_stage(rgb: np.ndarray, pnet: PNet, scale: float, threshold: float) -> np.ndarray:
    """P-Net on one pyramid level; that level's boxes after their own NMS (0.5), ``[K, 9]``."""
    height, width = rgb.shape[:2]
    resized = cv2.resize(rgb, (int(np.ceil(width * scale)), int(np.ceil(height * scale))), cv2.INTER_LINEAR)
    with torch.inference_mode():
        offsets, probs = pnet(_preprocess(resized))
    prob = probs[0, 1].numpy()
    rows, cols = np.where(prob > threshold)
    if len(rows) == 0:
        return np.zeros((0, 9), dtype=np.float32)
    reg = offsets[0].numpy()[:, rows, cols].T
    stride, cell = 2, 12
    boxes = np.vstack(
        [
            np.round((stride * cols + 1.0) / scale),
            np.round((stride * rows + 1.0) / scale),
            np.round((stride * cols + 1.0 + cell) / scale),
            np.round((stride * rows + 1.0 + cell) / scale),
            prob[rows, cols],
        ]
    ).T
    found = np.hstack([boxes, reg]).astype(np.float32)
    return found[_nms(found[:, :5], 0.5)]


def _crops_one_by_one(boxes: np.ndarray, rgb: np.ndarray, size: int) -> np.ndarray:
    """Each box cut out (zero-padded past the edges) and resized on its own: ``[K, size, size, 3]``."""
    height, width = rgb.shape[:2]
    crops = np.zeros((len(boxes), size, size, 3), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes[:, :4].astype(np.int64)):
        w, h = x2 - x1 + 1, y2 - y1 + 1
        if w <= 0 or h <= 0:
            continue
        patch = np.zeros((h, w, 3), dtype=np.uint8)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width - 1), min(y2, height - 1)
        if sx2 >= sx1 and sy2 >= sy1:
            patch[sy1 - y1 : sy2 - y1 + 1, sx1 - x1 : sx2 - x1 + 1] = rgb[sy1 : sy2 + 1, sx1 : sx2 + 1]
        crops[i] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_LINEAR)
    return crops


def seed_detect(rgb: np.ndarray, nets: SeedNets) -> tuple[np.ndarray, np.ndarray]:
    """The seed's cascade on an RGB frame: boxes [N, 5] (x1, y1, x2, y2, prob), landmarks [N, 5, 2]."""
    none = np.zeros((0, 5), np.float32), np.zeros((0, 5, 2), np.float32)
    height, width = rgb.shape[:2]
    m = 12.0 / SEED_MIN_FACE
    min_length = min(height, width) * m
    scales = []
    while min_length > 12:
        scales.append(m * SEED_FACTOR ** len(scales))
        min_length *= SEED_FACTOR
    levels = [_first_stage(rgb, nets.pnet, s, SEED_THRESHOLDS[0]) for s in scales]
    boxes = np.vstack([np.zeros((0, 9), np.float32), *levels])
    if len(boxes) == 0:
        return none
    boxes = boxes[_nms(boxes[:, :5], 0.7)]
    boxes = _square(_calibrate(boxes[:, :5], boxes[:, 5:]))
    boxes[:, :4] = np.round(boxes[:, :4])

    with torch.inference_mode():
        offsets, probs = (t.numpy() for t in nets.rnet(_preprocess(_crops_one_by_one(boxes, rgb, 24))))
    keep = probs[:, 1] > SEED_THRESHOLDS[1]
    boxes, offsets = boxes[keep], offsets[keep]
    boxes[:, 4] = probs[keep, 1]
    pick = _nms(boxes, 0.7)
    boxes = _square(_calibrate(boxes[pick], offsets[pick]))
    boxes[:, :4] = np.round(boxes[:, :4])
    if len(boxes) == 0:
        return none

    with torch.inference_mode():
        offsets, points, probs = (
            t.numpy() for t in nets.onet(_preprocess(_crops_one_by_one(boxes, rgb, 48)))
        )
    keep = probs[:, 1] > SEED_THRESHOLDS[2]
    boxes, offsets, points = boxes[keep], offsets[keep], points[keep]
    boxes[:, 4] = probs[keep, 1]
    w = (boxes[:, 2] - boxes[:, 0] + 1.0)[:, None]
    h = (boxes[:, 3] - boxes[:, 1] + 1.0)[:, None]
    xs = boxes[:, 0:1] + w * points[:, 0:5] - 1
    ys = boxes[:, 1:2] + h * points[:, 5:10] - 1
    boxes = _calibrate(boxes, offsets)
    pick = _nms(boxes, 0.7, mode="min")
    return boxes[pick].astype(np.float32), np.stack([xs, ys], axis=2)[pick].astype(np.float32)


class SeedEmbedding(Protocol):
    """How the seed's way embeds the faces of a frame: one forward pass per face."""

    dim: int

    def embed_each(self, image_bgr: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        """``[N, dim]`` unit vectors of the faces whose five landmarks are given, one forward each."""
        ...

    def max_distance(self, cosine_threshold: float) -> float:
        """The Euclidean distance below which a face takes its nearest facebank row's person."""
        ...


@dataclass(frozen=True)
class SeedMobileFaceNet:
    """The seed's own embedder (randomly initialised; its cost is what is measured)."""

    network: MobileFaceNet
    dim: int = EMBEDDING_DIM

    def embed_each(self, image_bgr: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        embeddings = []
        for points in landmarks:
            chip = align_faces(image_bgr, points[None], CHIP_SIZE, ARCFACE_TEMPLATE)[0]
            embeddings.append(embed_one_face(self.network, chip).detach())
        return torch.cat(embeddings) if embeddings else torch.zeros(0, self.dim)

    def max_distance(self, cosine_threshold: float) -> float:
        return SEED_MAX_DISTANCE


@dataclass(frozen=True)
class SeedSameEmbedder:
    """rollcall's embedder, one face per forward as the seed embedded."""

    embedder: Embedder

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def embed_each(self, image_bgr: np.ndarray, landmarks: np.ndarray) -> torch.Tensor:
        embeddings = []
        for points in landmarks:
            chip = align_faces(image_bgr, points[None], self.embedder.chip_size, self.embedder.template)
            embeddings.append(torch.from_numpy(self.embedder.embed(chip)[0]))
        return torch.stack(embeddings) if embeddings else torch.zeros(0, self.dim)

    def max_distance(self, cosine_threshold: float) -> float:
        # Unit vectors: cosine c is Euclidean distance sqrt(2 - 2c), so both ways accept the same faces.
        return float(np.sqrt(max(0.0, 2.0 - 2.0 * cosine_threshold)))


def seed_match(embeddings: torch.Tensor, facebank: SeedFacebank, max_distance: float) -> list[int]:
    """One broadcast distance computation against the whole facebank; each person named at most once."""
    if len(embeddings) == 0 or len(facebank.person_ids) == 0:
        return []
    distances = torch.sum((embeddings[:, None, :] - facebank.vectors[None, :, :]) ** 2, dim=2)
    best, index = torch.min(distances, dim=1)
    present: list[int] = []
    for distance, row in zip(best.sqrt().tolist(), index.tolist(), strict=True):
        person = int(facebank.person_ids[row])
        if distance < max_distance and person not in present:
            present.append(person)
    return present


def seed_attendance(
    image_bgr: np.ndarray,
    weights: SeedWeights,
    embedding: SeedEmbedding,
    facebank: SeedFacebank,
    cosine_threshold: float,
) -> SeedAnswer:
    """One ``/modelat`` request the seed's way, timed by stage (load, detect, align_embed, match)."""
    clock = StageTimer()
    with clock.stage("load"):
        nets = load_nets_per_request(weights)
    with clock.stage("detect"):
        half = cv2.resize(image_bgr, None, fx=SEED_SCALE, fy=SEED_SCALE, interpolation=cv2.INTER_LINEAR)
        _, landmarks = seed_detect(cv2.cvtColor(half, cv2.COLOR_BGR2RGB), nets)
        landmarks = landmarks / SEED_SCALE  # back to the frame the faces are aligned in
    with clock.stage("align_embed"):
        embeddings = embedding.embed_each(image_bgr, landmarks)
    with clock.stage("match"):
        present = seed_match(embeddings, facebank, embedding.max_distance(cosine_threshold))
    return SeedAnswer(present, len(landmarks), clock.ms)
