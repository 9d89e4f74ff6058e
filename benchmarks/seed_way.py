"""THE SEED'S WAY: a reproduction, for benchmarks only, of how the seed served one attendance request.

Never use this to serve anything: it exists so ``benchmarks.versus_seed`` can measure what rollcall's
way of working gains. It runs on rollcall's own modules and the same weight files, so the comparison
measures the way of working, not the models. Per request the seed

1. built the three MTCNN networks and ``torch.load``-ed their weight files (here: the model store's
   ``mtcnn_pnet``/``rnet``/``onet`` files), every time;
2. detected the faces. Here that is rollcall's own MTCNN cascade on the freshly loaded networks: the
   seed's own cascade is NOT reproduced, so detection costs the same on both sides and the comparison
   isolates the way of working (see BENCHMARKS.md for how rollcall's detector compares with
   facenet-pytorch's reference timings);
3. aligned and embedded each face on its own, one forward pass per face (the embedding network itself
   stayed loaded between requests; only MTCNN was reloaded);
4. named each face with a Python loop over the facebank: for every person, for every one of their
   embeddings, a Euclidean distance computed with torch ops, keeping the smallest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from facebank.records import GalleryRows
from ml.align import align_faces
from ml.embedder import Embedder
from ml.mtcnn import MTCNN, MTCNNParams
from ml.timing import StageTimer
from ml.weights import ModelStore

MTCNN_FILES = (("pnet", "mtcnn_pnet"), ("rnet", "mtcnn_rnet"), ("onet", "mtcnn_onet"))


@dataclass(frozen=True)
class SeedWeights:
    """Where the three MTCNN weight files are (verified once at set-up, as an installed seed had them)."""

    files: tuple[tuple[str, Path], ...]

    @classmethod
    def from_store(cls, store: ModelStore) -> SeedWeights:
        return cls(tuple((attribute, store.path(name)) for attribute, name in MTCNN_FILES))


@dataclass(frozen=True)
class SeedFacebank:
    """The seed's facebank in memory: per person, a list of separate embedding tensors."""

    people: Mapping[int, list[torch.Tensor]]

    @classmethod
    def from_rows(cls, rows: GalleryRows) -> SeedFacebank:
        people: dict[int, list[torch.Tensor]] = {}
        for person, vector in zip(rows.person_ids.tolist(), rows.vectors, strict=True):
            people.setdefault(person, []).append(torch.from_numpy(np.array(vector, dtype=np.float32)))
        return cls(people)


@dataclass(frozen=True)
class SeedAnswer:
    """The people the seed named (person ids, at most once each) and its stage times in milliseconds."""

    present: list[int]
    faces: int
    ms: dict[str, float]

    @property
    def total(self) -> float:
        return sum(self.ms.values())


def load_detector_per_request(weights: SeedWeights, device: torch.device) -> MTCNN:
    """Build the three networks and read their weight files, as the seed did on every request."""
    detector = MTCNN("cpu")
    for attribute, path in weights.files:
        state = torch.load(path, map_location="cpu", weights_only=True)
        getattr(detector, attribute).load_state_dict(state)
    detector.device = device
    return detector.to(device)


def nearest_person(face: torch.Tensor, facebank: SeedFacebank) -> tuple[int | None, float]:
    """The seed's matching: a Python loop over every person and every embedding, one distance at a time."""
    best_person: int | None = None
    best_distance: torch.Tensor | float = float("inf")
    for person, embeddings in facebank.people.items():
        for known in embeddings:
            distance = torch.sum((face - known) ** 2).sqrt()
            if distance < best_distance:
                best_distance, best_person = distance, person
    return best_person, float(best_distance)


def seed_attendance(
    image_bgr: np.ndarray,
    weights: SeedWeights,
    embedder: Embedder,
    facebank: SeedFacebank,
    params: MTCNNParams,
    cosine_threshold: float,
    device: torch.device,
) -> SeedAnswer:
    """One ``/modelat`` request the seed's way, timed by stage (load, detect, align_embed, match)."""
    clock = StageTimer()
    # Unit vectors: cosine c is Euclidean distance sqrt(2 - 2c), so both ways accept the same faces.
    max_distance = float(np.sqrt(max(0.0, 2.0 - 2.0 * cosine_threshold)))
    with clock.stage("load"):
        detector = load_detector_per_request(weights, device)
    with clock.stage("detect"):
        detections = detector.detect([image_bgr], params)[0]
    embeddings = []
    with clock.stage("align_embed"):
        for landmarks in detections.landmarks:
            chip = align_faces(image_bgr, landmarks[None], embedder.chip_size, embedder.template)
            embeddings.append(torch.from_numpy(embedder.embed(chip)[0]))
    present: list[int] = []
    with clock.stage("match"):
        for face in embeddings:
            person, distance = nearest_person(face, facebank)
            if person is not None and distance < max_distance and person not in present:
                present.append(person)
    return SeedAnswer(present, len(detections), clock.ms)
