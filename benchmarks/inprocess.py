"""rollcall's attendance on one frame, in process, timed stage by stage.

It makes the calls the attendance job makes (``tasks.jobs.attendance``) minus fetch, decode and
the facebank's names: ``FacePipeline.detect``, then ``align_faces`` + ``Embedder.embed`` (what
``FacePipeline.embed`` does, split so alignment and the network are timed apart), then
``assign_faces`` against each gallery in turn, reusing the one frame's embeddings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from facebank.assignment import Assignment, assign_faces
from facebank.gallery import Gallery
from ml.align import align_faces
from ml.pipeline import FacePipeline
from ml.timing import StageTimer


@dataclass(frozen=True)
class FrameTiming:
    """Milliseconds per stage for one frame; ``match`` per gallery size (identities)."""

    faces: int
    detect: float
    align: float
    embed: float
    match: dict[int, float]
    # The detection's own stages (ml.mtcnn: pyramid, pnet, rnet, onet), milliseconds.
    cascade: dict[str, float]

    @property
    def align_embed(self) -> float:
        return self.align + self.embed

    def attendance(self, identities: int) -> float:
        """Detect + align + embed + match against the gallery of ``identities``."""
        return self.detect + self.align_embed + self.match[identities]


def timed_frame(
    pipe: FacePipeline, image: np.ndarray, galleries: Mapping[int, Gallery], threshold: float
) -> tuple[FrameTiming, dict[int, Assignment]]:
    """Run attendance on ``image`` once per gallery (detection and embedding shared); time each stage."""
    clock = StageTimer()
    cascade = StageTimer()
    with clock.stage("detect"):
        detections = pipe.detect([image], cascade)[0]
    embedder = pipe.embedder
    with clock.stage("align"):
        chips = align_faces(image, detections.landmarks, embedder.chip_size, embedder.template)
    with clock.stage("embed"):
        vectors = embedder.embed(chips)
    match_ms: dict[int, float] = {}
    answers: dict[int, Assignment] = {}
    for identities, gallery in galleries.items():
        one = StageTimer()
        with one.stage("match"):
            answers[identities] = assign_faces(vectors, gallery, threshold)
        match_ms[identities] = one.ms["match"]
    timing = FrameTiming(
        len(detections), clock.ms["detect"], clock.ms["align"], clock.ms["embed"], match_ms, cascade.ms
    )
    return timing, answers
