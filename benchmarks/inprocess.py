"""rollcall's attendance on one frame, in process, timed stage by stage.

It runs the recognition core's attendance steps (``recognition.core``: ``find_faces``, then the
embedding, then ``assign`` against each gallery in turn, reusing the one frame's embeddings), minus
fetch, decode and the facebank's names. Alignment and the network are timed apart, and the
detector's own stages (pyramid, pnet, rnet, onet) too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from ml.pipeline import FacePipeline
from ml.timing import StageTimer
from recognition.batching import BatchedPipeline
from recognition.core import WHOLE_FRAME, Tiling, assign, find_faces
from recognition.gallery import Assignment, Gallery
from recognition.snapshot import FacebankSnapshot


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
    detections, _ = find_faces(BatchedPipeline(pipe), image, Tiling(WHOLE_FRAME), clock, cascade)
    with clock.stage("align"):
        chips = pipe.align(image, detections.landmarks)
    with clock.stage("embed"):
        vectors = pipe.embed_chips(chips)
    match_ms: dict[int, float] = {}
    answers: dict[int, Assignment] = {}
    for identities, gallery in galleries.items():
        one = StageTimer()
        with one.stage("match"):
            answers[identities] = assign(vectors, FacebankSnapshot.of(gallery, threshold), None)
        match_ms[identities] = one.ms["match"]
    timing = FrameTiming(
        len(detections), clock.ms["detect"], clock.ms["align"], clock.ms["embed"], match_ms, cascade.ms
    )
    return timing, answers
