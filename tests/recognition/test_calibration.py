"""Calibrating the threshold from enrolled pairs and storing the applied value per model version."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import errors
from facebank.records import GalleryRows
from facebank.store import Facebank
from recognition import calibration
from recognition.calibration import calibrate
from tests.facebank.factories import MODEL, enrol, unit_vectors


def clustered_rows(people: int, faces_each: int, spread: float, seed: int = 1) -> GalleryRows:
    """Faces scattered around one random centre per person: genuine pairs score higher than impostors."""
    rng = np.random.default_rng(seed)
    centres = unit_vectors(people, seed=seed)
    vectors = np.repeat(centres, faces_each, axis=0) + spread * rng.standard_normal((people * faces_each, 64))
    person_ids = np.repeat(np.arange(1, people + 1), faces_each).astype(np.int64)
    return GalleryRows(person_ids, np.arange(len(vectors), dtype=np.int64), vectors.astype(np.float32))


def brute_force(rows: GalleryRows) -> tuple[np.ndarray, np.ndarray]:
    vectors = rows.vectors / np.linalg.norm(rows.vectors, axis=1, keepdims=True)
    genuine, impostor = [], []
    for i, j in itertools.combinations(range(len(vectors)), 2):
        score = float(vectors[i] @ vectors[j])
        (genuine if rows.person_ids[i] == rows.person_ids[j] else impostor).append(score)
    return np.array(genuine), np.array(impostor)


@pytest.mark.parametrize("block", [3, 1024])
def test_calibration_counts_every_pair_once_and_meets_the_target(
    block: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(calibration, "ROWS_PER_BLOCK", block)
    rows = clustered_rows(people=12, faces_each=4, spread=0.12)
    genuine, impostor = brute_force(rows)

    result = calibrate(rows, target_far=0.01)

    assert (result.genuine_pairs, result.impostor_pairs) == (len(genuine), len(impostor)) == (72, 1056)
    allowed = int(0.01 * len(impostor))
    assert result.false_accepts == int(np.sum(impostor >= result.threshold)) <= allowed
    # The lowest such threshold on the 1e-4 grid: one step lower lets more impostors through than allowed.
    assert int(np.sum(impostor >= result.threshold - 1e-4)) > allowed
    assert result.false_rejects == int(np.sum(genuine < result.threshold))
    assert result.impostor.count == len(impostor)
    assert result.impostor.maximum == pytest.approx(impostor.max(), abs=1e-6)
    assert result.warnings == ()


def test_few_impostor_pairs_put_the_threshold_above_the_highest_and_say_so() -> None:
    rows = clustered_rows(people=3, faces_each=2, spread=0.3)
    _, impostor = brute_force(rows)

    result = calibrate(rows, target_far=0.001, reference=1.0)

    assert result.false_accepts == 0
    assert impostor.max() < result.threshold <= impostor.max() + 1e-4
    assert "12 impostor pairs" in result.warnings[0]
    assert "below the embedder's default 1.0000" in result.warnings[1]
    assert result.to_json()["far_resolution"] == pytest.approx(1 / 12, abs=1e-6)
    assert len(calibrate(rows, target_far=0.001, reference=-1.0).warnings) == 1


def test_calibration_needs_two_people() -> None:
    rows = clustered_rows(people=1, faces_each=3, spread=0.1)
    with pytest.raises(errors.InvalidInput, match="two people"):
        calibrate(rows, target_far=0.001)


def test_without_genuine_pairs_the_false_reject_rate_is_unknown() -> None:
    result = calibrate(clustered_rows(people=4, faces_each=1, spread=0.1), target_far=0.1)
    assert result.genuine_pairs == 0
    assert result.false_reject_rate is None
    assert any("false-reject rate cannot be measured" in warning for warning in result.warnings)


def test_an_applied_threshold_is_stored_per_model(facebank: Facebank) -> None:
    person = facebank.people.create("Ada")
    enrol(facebank, person.id, "ada")
    assert facebank.thresholds.get(*MODEL) is None

    applied = facebank.thresholds.apply(
        *MODEL,
        0.42,
        target_far=0.001,
        genuine_pairs=4,
        impostor_pairs=32,
        false_reject_rate=0.25,
        calibration_job_id="job-1",
    )

    assert facebank.thresholds.get(MODEL[0], "another-version") is None
    assert facebank.thresholds.get(*MODEL) == applied
    assert [a.threshold for a in facebank.thresholds.all()] == [0.42]
    facebank.thresholds.apply(*MODEL, 0.5)  # replaces: one value per model version
    assert facebank.thresholds.get(*MODEL).threshold == 0.5  # type: ignore[union-attr]
    assert facebank.thresholds.get(*MODEL).calibration_job_id is None  # type: ignore[union-attr]

    facebank.thresholds.clear(*MODEL)

    assert facebank.thresholds.get(*MODEL) is None


@pytest.mark.parametrize("value", [1.5, -1.01, float("nan")])
def test_a_threshold_outside_the_cosine_range_is_refused(facebank: Facebank, value: float) -> None:
    with pytest.raises(errors.InvalidInput):
        facebank.thresholds.apply(*MODEL, value)
