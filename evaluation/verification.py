"""Face verification metrics on pair scores: accuracy at a threshold, the best threshold, LFW's
cross-validated accuracy and ROC AUC.

A pair is accepted as "same person" when its score (cosine similarity) is ≥ the threshold, as in
``facebank`` matching. ``scores`` are float [P]; ``same`` bool [P] is the ground truth.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

import errors


@dataclass(frozen=True)
class ThresholdFit:
    """The threshold that maximises accuracy on some pairs, and that accuracy."""

    threshold: float
    accuracy: float


@dataclass(frozen=True)
class CrossValidation:
    """LFW's protocol: per fold, the threshold fitted on the other folds and its accuracy on this fold."""

    thresholds: tuple[float, ...]
    accuracies: tuple[float, ...]

    @property
    def mean(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def std(self) -> float:
        return float(np.std(self.accuracies))


def accuracy(scores: np.ndarray, same: np.ndarray, threshold: float) -> float:
    """Fraction of pairs decided right when scores ≥ ``threshold`` are accepted."""
    scores, same = _checked(scores, same)
    return float(np.mean((scores >= threshold) == same))


def best_threshold(scores: np.ndarray, same: np.ndarray) -> ThresholdFit:
    """The accuracy-maximising threshold, chosen among midpoints between consecutive distinct scores
    (and one value below and one above them all). Of tied candidates the middle one is returned, so a
    threshold from well-separated scores sits in the gap rather than at its edge."""
    scores, same = _checked(scores, same)
    distinct = np.unique(scores)
    candidates = np.concatenate(
        [[distinct[0] - 1.0], (distinct[:-1] + distinct[1:]) / 2, [distinct[-1] + 1.0]]
    )
    same_sorted = np.sort(scores[same])
    different_sorted = np.sort(scores[~same])
    # Right answers at threshold t: same-person pairs scoring ≥ t plus different-person pairs scoring < t.
    correct = (len(same_sorted) - np.searchsorted(same_sorted, candidates, side="left")) + np.searchsorted(
        different_sorted, candidates, side="left"
    )
    ties = np.flatnonzero(correct == correct.max())
    best = ties[len(ties) // 2]
    return ThresholdFit(float(candidates[best]), float(correct[best] / len(scores)))


def cross_validated_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> CrossValidation:
    """For each fold: fit the threshold on all other folds, measure accuracy on this one (needs ≥ 2 folds)."""
    scores, same = _checked(scores, same)
    folds = np.asarray(folds)
    labels = np.unique(folds)
    if len(labels) < 2:
        raise errors.InvalidInput("cross-validation needs at least two folds")
    thresholds, accuracies = [], []
    for label in labels:
        held_out = folds == label
        fit = best_threshold(scores[~held_out], same[~held_out])
        thresholds.append(fit.threshold)
        accuracies.append(accuracy(scores[held_out], same[held_out], fit.threshold))
    return CrossValidation(tuple(thresholds), tuple(accuracies))


def roc_auc(scores: np.ndarray, same: np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random same-person pair outscores a random
    different-person pair (ties count half), from the Mann-Whitney rank sum."""
    scores, same = _checked(scores, same)
    n_same, n_different = int(same.sum()), int((~same).sum())
    if n_same == 0 or n_different == 0:
        raise errors.InvalidInput("ROC AUC needs both same-person and different-person pairs")
    ranks = rankdata(scores)  # ties get their average rank
    return float((ranks[same].sum() - n_same * (n_same + 1) / 2) / (n_same * n_different))


def _checked(scores: np.ndarray, same: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64)
    same = np.asarray(same, dtype=bool)
    if scores.ndim != 1 or scores.shape != same.shape:
        raise errors.InvalidInput(
            f"scores {scores.shape} and labels {same.shape} must be matching 1-D arrays"
        )
    if len(scores) == 0:
        raise errors.InvalidInput("no pairs to score")
    if not np.all(np.isfinite(scores)):
        raise errors.InvalidInput("pair scores must be finite numbers")
    return scores, same
