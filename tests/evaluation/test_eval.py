"""The LFW-style accuracy evaluation: pairs files, verification metrics, the substitute set and the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import errors
from evaluation.accuracy import (
    UNDETECTED_DIFFERENT_SCORE,
    UNDETECTED_SAME_SCORE,
    choose_face,
    evaluate,
    pair_scores,
)
from evaluation.lfw import ImageRef, Pair, PairsFile, format_pairs, parse_pairs
from evaluation.lfw_substitute import build_substitute
from evaluation.verification import accuracy, best_threshold, cross_validated_accuracy, roc_auc
from ml.dlib_resnet import DlibResNetEmbedder
from ml.mtcnn import Detections
from ml.pipeline import PipelineConfig, load_pipeline
from settings import get_settings
from tests.shared_data import REPO_ROOT, shared_dir

# --- pairs files ---

VIEW2 = """2\t2
Aaron_Peirsol\t1\t2
Aaron_Peirsol\t3\t4
AJ_Cook\t1\tMarsha_Thomason\t1
Aaron_Sorkin\t2\tFrank_Zappa\t7
Abel_Pacheco\t1\t4
Akhmed_Zakayev\t1\t3
Abdel_Madi_Shabneh\t1\tDean_Barker\t1
Abdel_Madi_Shabneh\t1\tGiancarlo_Fisichella\t1
"""


def test_view2_header_splits_pairs_into_consecutive_folds() -> None:
    parsed = parse_pairs(VIEW2)
    assert parsed.folds == 2
    assert [pair.fold for pair in parsed.pairs] == [0, 0, 0, 0, 1, 1, 1, 1]
    assert [pair.same for pair in parsed.pairs] == [True, True, False, False] * 2
    assert parsed.pairs[0] == Pair(ImageRef("Aaron_Peirsol", 1), ImageRef("Aaron_Peirsol", 2), True, 0)
    assert parsed.pairs[3] == Pair(ImageRef("Aaron_Sorkin", 2), ImageRef("Frank_Zappa", 7), False, 0)


def test_view1_header_counts_pairs_per_class_in_one_fold() -> None:
    parsed = parse_pairs("2\nA 1 2\nB 1 3\nA 1 B 2\nC 4 D 1\n")
    assert parsed.folds == 1
    assert {pair.fold for pair in parsed.pairs} == {0}
    assert sum(pair.same for pair in parsed.pairs) == 2


def test_plain_list_with_unequal_classes_reads_back_what_format_pairs_wrote() -> None:
    pairs = [
        Pair(ImageRef("obama", 1), ImageRef("obama", 2), True),
        Pair(ImageRef("obama", 1), ImageRef("biden", 1), False),
        Pair(ImageRef("obama", 2), ImageRef("biden", 1), False),
    ]
    text = format_pairs(pairs)
    assert text.splitlines()[0] == "3"
    assert parse_pairs(text) == PairsFile(tuple(pairs), folds=1)


def test_blank_lines_spaces_and_windows_line_ends_are_accepted() -> None:
    parsed = parse_pairs("\r\n1 1\r\n\r\nA  1   2\r\nA 1\tB 2\r\n\r\n")
    assert [pair.same for pair in parsed.pairs] == [True, False]


def test_image_paths_follow_lfw_layout() -> None:
    assert ImageRef("George_W_Bush", 12).path(Path("lfw")) == Path("lfw/George_W_Bush/George_W_Bush_0012.jpg")
    refs = parse_pairs(VIEW2).images()
    assert refs[0] == ImageRef("AJ_Cook", 1)
    assert len(refs) == len(set(refs)) == 15  # Abdel_Madi_Shabneh 1 appears twice, listed once


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("2 1\nA 1 2\nA 1 B 2\n", "announces 2 folds of 2x1 pairs (4 lines), but 2 pair lines follow"),
        ("2\nA 1 2\nA 1 B 2\nC 1 2\n", "but 3 pair lines follow"),
        ("1\nA 1 2 3 4 5\n", "line 2: expected 'name idx1 idx2' or 'name1 idx1 name2 idx2'"),
        ("1\nA one 2\n", "line 2: expected a positive whole number, got 'one'"),
        ("1\nA 0 2\n", "got '0'"),
        ("1\nA 1 A 2\n", "a different-person pair names 'A' twice"),
        ("10 300 7\n", "expected a header 'N' or 'folds N'"),
    ],
)
def test_malformed_pairs_files_are_rejected_with_the_reason(text: str, message: str) -> None:
    with pytest.raises(errors.InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_pairs(text)


# --- metrics ---


def test_accuracy_accepts_scores_equal_to_the_threshold() -> None:
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    same = np.array([True, True, False, False])
    assert accuracy(scores, same, 0.5) == 0.75
    assert accuracy(scores, same, 0.6) == 0.75
    assert accuracy(scores, same, 0.95) == 0.5


def test_perfectly_separated_scores_have_auc_one_and_a_threshold_in_the_gap() -> None:
    scores = np.array([0.8, 0.9, 0.95, 0.1, 0.2, 0.3])
    same = np.array([True, True, True, False, False, False])
    assert roc_auc(scores, same) == 1.0
    fit = best_threshold(scores, same)
    assert fit.accuracy == 1.0
    assert fit.threshold == pytest.approx(0.55)
    assert roc_auc(-scores, same) == 0.0


def test_auc_counts_ordered_pairs_and_ties_as_half() -> None:
    same = np.array([True, True, False, False])
    # Same-person scores beat 3 of the 4 (same, different) combinations.
    assert roc_auc(np.array([0.5, 0.9, 0.1, 0.7]), same) == 0.75
    assert roc_auc(np.full(4, 0.5), same) == 0.5


def test_auc_needs_both_kinds_of_pair() -> None:
    with pytest.raises(errors.InvalidInput, match="both same-person and different-person"):
        roc_auc(np.array([0.9, 0.8]), np.array([True, True]))


def test_ten_fold_thresholds_come_from_the_other_nine_folds() -> None:
    # Ten folds, one same (0.9) and one different (0.1) pair each, except that fold 0's different
    # pair is a look-alike scoring 0.95. Every fit on nine folds puts the threshold at 0.5, so fold 0
    # gets 1/2 right and the others 2/2: mean 0.95.
    scores = np.tile([0.9, 0.1], 10)
    scores[1] = 0.95
    same = np.tile([True, False], 10)
    folds = np.repeat(np.arange(10), 2)
    cv = cross_validated_accuracy(scores, same, folds)
    assert cv.thresholds == pytest.approx((0.5,) * 10)
    assert cv.accuracies == (0.5,) + (1.0,) * 9
    assert cv.mean == pytest.approx(0.95)


def test_held_out_fold_does_not_choose_its_own_threshold() -> None:
    # Fold 1 alone would pick a threshold near 0.25; fitted on fold 0 it gets 0.7 and misses its same pair.
    scores = np.array([0.9, 0.5, 0.3, 0.2])
    same = np.array([True, False, True, False])
    cv = cross_validated_accuracy(scores, same, np.array([0, 0, 1, 1]))
    assert cv.thresholds[1] == pytest.approx(0.7)
    assert cv.accuracies[1] == 0.5
    assert best_threshold(scores[2:], same[2:]).threshold == pytest.approx(0.25)


def test_cross_validation_needs_two_folds() -> None:
    with pytest.raises(errors.InvalidInput, match="at least two folds"):
        cross_validated_accuracy(np.array([0.9, 0.1]), np.array([True, False]), np.array([0, 0]))


# --- pipeline conventions ---


def _detections(boxes: list[list[float]]) -> Detections:
    n = len(boxes)
    return Detections(np.array(boxes, np.float32), np.ones(n, np.float32), np.zeros((n, 5, 2), np.float32))


def test_the_largest_most_central_face_is_chosen() -> None:
    # 250x250 frame: a small face in a corner, the big central one, a mid-size one near the centre.
    faces = _detections([[0, 0, 30, 30], [70, 60, 180, 190], [100, 100, 150, 150]])
    assert choose_face(faces, 250, 250) == 1
    # A large face at the edge loses to a smaller centred one: the offset costs twice its square.
    faces = _detections([[0, 0, 110, 110], [75, 75, 175, 175]])
    assert choose_face(faces, 250, 250) == 1


def test_a_large_off_centre_face_on_a_large_photo_wins_over_a_tiny_central_box() -> None:
    # 1600x1067 photo: the person's face (260 px) left of centre, a 30 px box (a pattern) at the centre.
    faces = _detections([[380, 250, 640, 530], [790, 520, 820, 550]])
    assert choose_face(faces, 1067, 1600) == 0


def test_pairs_with_an_undetected_photo_are_wrong_at_every_threshold() -> None:
    a, b, c = ImageRef("a", 1), ImageRef("a", 2), ImageRef("c", 1)
    pairs = PairsFile((Pair(a, b, True), Pair(a, c, False), Pair(b, c, False)), folds=1)
    unit = np.array([1.0, 0.0], np.float32)
    scores = pair_scores(pairs, {a: unit, b: None, c: unit})
    assert scores.tolist() == [UNDETECTED_SAME_SCORE, 1.0, UNDETECTED_DIFFERENT_SCORE]
    same = np.array([True, False, False])
    for threshold in (-1.0, 0.0, 0.5, 1.0):
        assert accuracy(scores, same, threshold) <= 1 / 3


# --- the substitute set and the command line ---


@pytest.fixture(scope="module")
def substitute(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("lfw-substitute") / "set"
    build_substitute(shared_dir(), out)
    return out


def test_substitute_holds_every_pair_of_the_labelled_photos(substitute: Path) -> None:
    parsed = parse_pairs((substitute / "pairs.txt").read_text())
    refs = parsed.images()
    people = {ref.name for ref in refs}
    assert len(refs) == 21 and len(people) == 10
    n_same = sum(pair.same for pair in parsed.pairs)
    # 1 + 2 + 3 (alex, biden, kit) + 21 (7 of obama) + 1 (rose); the rest of C(21, 2) = 210 are different.
    assert (n_same, len(parsed.pairs) - n_same) == (27, 183)
    for ref in refs:
        path = ref.path(substitute / "images")
        assert path.is_symlink() and path.resolve().is_relative_to(shared_dir().resolve())
    assert "small substitute for LFW" in (substitute / "README.txt").read_text()


def test_substitute_is_never_built_inside_the_repository_or_over_files(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput, match="inside the repository"):
        build_substitute(shared_dir(), REPO_ROOT / "lfw-substitute")
    assert not (REPO_ROOT / "lfw-substitute").exists()
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(errors.InvalidInput, match="not an empty folder"):
        build_substitute(shared_dir(), tmp_path)


def test_a_photo_without_a_face_is_reported_and_its_pairs_count_as_wrong(tmp_path: Path) -> None:
    photos = {
        "obama/obama_0001.jpg": "oracles/mtcnn_facenet_pytorch/images/obama_small.jpg",
        "obama/obama_0002.jpg": "datasets/facebank_probe/obama1.jpg",
        "nobody/nobody_0001.jpg": "oracles/mtcnn_facenet_pytorch/images/no_face_synthetic.png",
    }
    for name, source in photos.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).symlink_to(shared_dir() / source)
    pairs = parse_pairs("1\nobama 1 2\nobama 1 nobody 1\n")
    pipeline = load_pipeline(PipelineConfig(get_settings().model_dir, device="cpu"))
    result = evaluate(pipeline, pairs, tmp_path, threshold=0.9, threshold_source="test")
    assert (result.undetected, result.undetected_pairs) == (1, 1)
    assert result.undetected_images == ("nobody/nobody_0001.jpg",)
    # The Obama pair is accepted; the pair with no face counts as a false accept at any threshold.
    assert (result.metrics.accuracy, result.metrics.false_accepts, result.metrics.false_rejects) == (
        0.5,
        1,
        0,
    )
    assert result.metrics.auc == 0.0


def _run_eval(*args: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key != "ROLLCALL_MATCH_THRESHOLD"}
    return subprocess.run(
        [sys.executable, "-m", "evaluation", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_dlib_pipeline_verifies_the_substitute_pairs(substitute: Path) -> None:
    done = _run_eval(
        "lfw",
        "--pairs",
        str(substitute / "pairs.txt"),
        "--images",
        str(substitute / "images"),
        "--flip",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    keys = {"accuracy", "best_threshold_accuracy", "best_threshold", "auc", "pairs", "undetected", "embedder"}
    assert keys | {"threshold"} <= result.keys()
    assert result["embedder"] == "dlib_resnet_v1"
    assert result["threshold"] == pytest.approx(DlibResNetEmbedder.default_threshold)
    assert (result["pairs"], result["images"], result["undetected"]) == (210, 21, 0)
    for figures in (result, result["without_flip"]):
        assert figures["accuracy"] >= 0.9
        assert figures["best_threshold_accuracy"] >= figures["accuracy"]
        assert figures["auc"] >= 0.97
        assert -1.0 < figures["best_threshold"] < 1.0
    assert "not an LFW score" in done.stdout


def test_facenet_without_weights_fails_naming_the_fetch_command(substitute: Path, tmp_path: Path) -> None:
    done = _run_eval(
        "lfw",
        "--pairs", str(substitute / "pairs.txt"),
        "--images", str(substitute / "images"),
        "--embedder", "facenet_vggface2",
        "--model-dir", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 1
    assert "error (weights_missing)" in done.stderr
    assert "python -m ml.weights fetch facenet_vggface2" in done.stderr
