"""Calibrating the match threshold on the enrolled faces themselves, and the cache workers read it through.

Every pair of enrolled faces of one model is scored by cosine similarity: pairs of one person are
*genuine*, pairs of two people are *impostors*. The proposed threshold is the lowest that lets at
most ``target_far`` of the impostor pairs through; the genuine pairs say how many true matches that
threshold would refuse (FRR). A facebank is small next to LFW, so the result carries the counts it
rests on and says when the target cannot be measured with so few impostor pairs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

import errors
from facebank.records import GalleryRows

ROWS_PER_BLOCK = 1024  # faces scored against the whole gallery at a time: bounds memory to block × M
THRESHOLD_STEP = 1e-4  # proposals are rounded up to this grid, so they read well and stay above the cut


@dataclass(frozen=True, slots=True)
class ScoreSummary:
    """Spread of one set of pair scores (None everywhere for an empty set)."""

    count: int
    minimum: float | None
    mean: float | None
    maximum: float | None

    @classmethod
    def of(cls, scores: np.ndarray) -> ScoreSummary:
        if scores.size == 0:
            return cls(0, None, None, None)
        return cls(int(scores.size), float(scores.min()), float(scores.mean()), float(scores.max()))

    def to_json(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 5)

        return {
            "count": self.count,
            "min": rounded(self.minimum),
            "mean": rounded(self.mean),
            "max": rounded(self.maximum),
        }


@dataclass(frozen=True, slots=True)
class Calibration:
    """A proposed threshold and what it rests on."""

    target_far: float
    threshold: float
    people: int
    faces: int
    genuine_pairs: int
    impostor_pairs: int
    false_accepts: int  # impostor pairs at or above the threshold
    false_rejects: int  # genuine pairs below it
    genuine: ScoreSummary
    impostor: ScoreSummary
    warnings: tuple[str, ...]

    @property
    def false_accept_rate(self) -> float:
        return self.false_accepts / self.impostor_pairs

    @property
    def false_reject_rate(self) -> float | None:
        return self.false_rejects / self.genuine_pairs if self.genuine_pairs else None

    @property
    def far_resolution(self) -> float:
        """The smallest false-accept rate these impostor pairs can show: one pair in all of them."""
        return 1.0 / self.impostor_pairs

    def to_json(self) -> dict[str, Any]:
        frr = self.false_reject_rate
        return {
            "target_far": self.target_far,
            "threshold": self.threshold,
            "enrolled": {"people": self.people, "faces": self.faces},
            "genuine_pairs": self.genuine_pairs,
            "impostor_pairs": self.impostor_pairs,
            "false_accepts": self.false_accepts,
            "false_accept_rate": round(self.false_accept_rate, 6),
            "far_resolution": round(self.far_resolution, 6),
            "false_rejects": self.false_rejects,
            "false_reject_rate": None if frr is None else round(frr, 6),
            "genuine_scores": self.genuine.to_json(),
            "impostor_scores": self.impostor.to_json(),
            "warnings": list(self.warnings),
        }


def calibrate(rows: GalleryRows, target_far: float, reference: float | None = None) -> Calibration:
    """Propose the lowest threshold with at most ``target_far`` of the impostor pairs at or above it.

    ``reference`` is the threshold in force from a larger evaluation (the embedder's default): a
    proposal under it that the impostor pairs are too few to support comes with a warning.
    """
    if not 0.0 < target_far < 1.0:
        raise errors.InvalidInput(f"target_far must lie strictly between 0 and 1, got {target_far}")
    people = int(np.unique(rows.person_ids).size)
    if people < 2:
        raise errors.InvalidInput(
            f"calibration needs faces of two people or more embedded by this model; found {people}"
        )
    faces = int(rows.person_ids.size)
    impostor_total = faces * (faces - 1) // 2 - _genuine_pair_count(rows.person_ids)
    allowed = math.floor(target_far * impostor_total)  # impostor pairs the target lets through
    pairs = score_pairs(rows, keep_top=allowed + 1)
    cut = float(np.sort(pairs.impostor_top)[::-1][allowed])  # the highest impostor score to refuse
    threshold = round(min(1.0, (math.floor(cut / THRESHOLD_STEP) + 1) * THRESHOLD_STEP), 6)
    warnings = []
    too_few = impostor_total * target_far < 1.0
    if too_few:
        warnings.append(
            f"only {impostor_total} impostor pairs: a false-accept rate of {target_far:g} cannot be measured "
            f"below 1/{impostor_total}; the threshold sits just above the highest impostor score"
        )
    if too_few and reference is not None and threshold < reference:
        warnings.append(
            f"the proposal is below the embedder's default {reference:.4f} (from a larger evaluation): so "
            "few enrolled faces may not show how close a stranger can come; enrol more people first"
        )
    if pairs.genuine.size == 0:
        warnings.append("nobody has two enrolled faces: the false-reject rate cannot be measured")
    return Calibration(
        target_far=target_far,
        threshold=threshold,
        people=people,
        faces=faces,
        genuine_pairs=int(pairs.genuine.size),
        impostor_pairs=impostor_total,
        false_accepts=int(np.sum(pairs.impostor_top >= threshold)),
        false_rejects=int(np.sum(pairs.genuine < threshold)),
        genuine=ScoreSummary.of(pairs.genuine),
        impostor=pairs.impostor,
        warnings=tuple(warnings),
    )


@dataclass(frozen=True)
class PairScores:
    """Every genuine pair's score, and the impostor pairs' spread and highest ``keep_top`` scores."""

    genuine: np.ndarray
    impostor: ScoreSummary
    impostor_top: np.ndarray


def score_pairs(rows: GalleryRows, keep_top: int) -> PairScores:
    """Score each pair of enrolled faces once, ``ROWS_PER_BLOCK`` faces against all at a time.

    Genuine pairs grow with faces per person and are all kept; impostor pairs grow with the square
    of the facebank, so only their count, sum, extremes and highest ``keep_top`` scores are kept.
    """
    vectors = np.asarray(rows.vectors, dtype=np.float32)
    vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    people = rows.person_ids
    count = len(vectors)
    genuine: list[np.ndarray] = []
    top = np.empty(0, dtype=np.float32)
    impostors, total, low, high = 0, 0.0, math.inf, -math.inf
    for start in range(0, count, ROWS_PER_BLOCK):
        stop = min(start + ROWS_PER_BLOCK, count)
        scores = vectors[start:stop] @ vectors.T
        later = np.arange(count)[None, :] > np.arange(start, stop)[:, None]  # each pair once
        same = people[start:stop, None] == people[None, :]
        genuine.append(scores[later & same])
        block = scores[later & ~same]
        if block.size == 0:
            continue
        impostors += block.size
        total += float(block.sum(dtype=np.float64))
        low, high = min(low, float(block.min())), max(high, float(block.max()))
        merged = np.concatenate([top, block])
        keep = min(keep_top, merged.size)
        top = np.partition(merged, merged.size - keep)[merged.size - keep :]
    summary = ScoreSummary(impostors, low, total / impostors, high) if impostors else ScoreSummary.of(top)
    all_genuine = np.concatenate(genuine) if genuine else np.empty(0, dtype=np.float32)
    return PairScores(all_genuine, summary, top)


def _genuine_pair_count(person_ids: np.ndarray) -> int:
    _, counts = np.unique(person_ids, return_counts=True)
    return int(np.sum(counts * (counts - 1) // 2))
