"""MTCNN finds the faces facenet-pytorch's MTCNN finds, where it finds them, in batches of any frame sizes.

The oracle is detection-level (``tests/ml/mtcnn_oracle.py``): facenet-pytorch 2.6.0's own detector on the
13 oracle photos at 640×480, 1280×720 and native size (shared/oracles/mtcnn_facenet_pytorch/reference.json
at native size, the detector itself from its wheel at the other two), compared face by face within the
tolerances the README states.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch

import errors
import ml.mtcnn as mtcnn_module
from ml.mtcnn import MTCNN, Detections, MTCNNParams
from ml.weights import ModelStore
from settings import get_settings
from tests.ml import mtcnn_oracle as oracle
from tests.ml.mtcnn_oracle import image as _image

TRUE_FACE_PROB = 0.99  # every real face has prob >= 0.99 in the reference (MANIFEST.md)
# Small photos on which the live facenet-pytorch is checked against the reference file (a few seconds).
LIVE_CHECK_PHOTOS = (
    "obama_small.jpg",
    "kit_with_rose.jpg",
    "lin-manuel-miranda.png",
    "no_face_synthetic.png",
)


def _true_face_counts() -> dict[str, int]:
    """The MANIFEST's table: image name -> number of real faces counted by eye."""
    rows = re.findall(
        r"^\| (\S+\.(?:jpg|png)) \| \d+×\d+ \| (\d+) \|",
        (oracle.oracle_dir() / "MANIFEST.md").read_text(),
        re.M,
    )
    return {name: int(count) for name, count in rows}


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return oracle.reference()


@pytest.fixture(scope="module")
def params(reference: dict[str, Any]) -> MTCNNParams:
    p = reference["parameters"]
    return MTCNNParams(p["min_face_size"], tuple(p["thresholds"]), p["factor"])


@pytest.fixture(scope="module")
def mtcnn() -> MTCNN:
    """The detector on the CPU, weights fetched into the configured model store (a no-op when present)."""
    store = ModelStore(get_settings().model_dir)
    for name in ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet"):
        store.fetch(name)
    return MTCNN.from_store(store, torch.device("cpu"))


@pytest.fixture(scope="module")
def detections(mtcnn: MTCNN, params: MTCNNParams, reference: dict[str, Any]) -> dict[str, Detections]:
    """Every oracle image, detected one frame per call."""
    return {name: mtcnn.detect([_image(name)], params)[0] for name in reference["images"]}


@pytest.fixture(scope="module")
def oracle_faces(reference: dict[str, Any]) -> dict[str, dict[str, list[oracle.Face]]]:
    """The oracle's faces per frame size, then per photo."""
    faces = {"native": {name: entry["faces"] for name, entry in reference["images"].items()}}
    for size in oracle.SIZES:
        if size != "native":
            frames = {name: oracle.frame(name, size) for name in reference["images"]}
            faces[size] = oracle.facenet_pytorch_faces(frames, get_settings().model_dir)
    return faces


def test_every_oracle_image_is_covered(reference: dict[str, Any]) -> None:
    assert set(reference["images"]) == set(_true_face_counts())
    assert len(reference["images"]) == 13


def test_live_facenet_pytorch_reproduces_the_reference_file(reference: dict[str, Any]) -> None:
    """The 640×480 and 1280×720 oracle is facenet-pytorch run here, under today's torch: on photos the
    reference file holds, it must give the file's faces (same count, boxes, landmarks, probabilities)."""
    live = oracle.facenet_pytorch_faces(
        {name: _image(name) for name in LIVE_CHECK_PHOTOS}, get_settings().model_dir
    )
    for name in LIVE_CHECK_PHOTOS:
        expected = reference["images"][name]["faces"]
        assert len(live[name]) == len(expected), name
        for got, want in zip(live[name], expected, strict=True):
            np.testing.assert_allclose(got["box"], want["box"], atol=0.01, err_msg=name)
            np.testing.assert_allclose(got["landmarks"], want["landmarks"], atol=0.01, err_msg=name)
            assert abs(got["prob"] - want["prob"]) <= 1e-4, name


@pytest.mark.parametrize("size", oracle.SIZES)
def test_detections_match_facenet_pytorch_at_the_detection_level(
    size: str,
    mtcnn: MTCNN,
    params: MTCNNParams,
    detections: dict[str, Detections],
    oracle_faces: dict[str, dict[str, list[oracle.Face]]],
) -> None:
    """Every face either side finds with probability >= 0.9 has its twin on the other side: IoU >= 0.95,
    each landmark within 1.5 px or 1.5 % of the box side, probability within 0.02 (``mtcnn_oracle``)."""
    names = sorted(oracle_faces[size])
    if size == "native":
        ours = [detections[name] for name in names]
    else:  # frames of one size: one batched call, as a camera's frames go
        ours = mtcnn.detect([oracle.frame(name, size) for name in names], params)
    agreement = oracle.Agreement()
    for name, found in zip(names, ours, strict=True):
        oracle.compare(name, found, oracle_faces[size][name], agreement)
    print(f"{size}: {agreement}")
    assert not agreement.failures, agreement.failures
    assert agreement.faces >= 18  # the oracle holds 18 to 21 faces of p >= 0.9 at each size


def test_true_face_counts_match_manifest(detections: dict[str, Detections]) -> None:
    counts = {name: int((d.probs >= TRUE_FACE_PROB).sum()) for name, d in detections.items()}
    assert counts == _true_face_counts()


def test_no_face_image_gives_empty_arrays_of_fixed_shape(detections: dict[str, Detections]) -> None:
    none = detections["no_face_synthetic.png"]
    assert len(none) == 0
    assert none.boxes.shape == (0, 4) and none.boxes.dtype == np.float32
    assert none.probs.shape == (0,) and none.probs.dtype == np.float32
    assert none.landmarks.shape == (0, 5, 2) and none.landmarks.dtype == np.float32


def test_outputs_are_float32_sorted_by_probability(detections: dict[str, Detections]) -> None:
    for name, d in detections.items():
        assert d.boxes.dtype == d.probs.dtype == d.landmarks.dtype == np.float32, name
        assert d.boxes.shape == (len(d), 4) and d.landmarks.shape == (len(d), 5, 2), name
        assert (np.diff(d.probs) <= 0).all(), name


def test_landmarks_are_left_eye_right_eye_nose_left_mouth_right_mouth(
    detections: dict[str, Detections],
) -> None:
    for name in ("angelina_jolie.jpg", "obama_small.jpg", "two_people.jpg", "kit_with_rose.jpg"):
        d = detections[name]
        for points in d.landmarks[d.probs >= TRUE_FACE_PROB]:
            left_eye, right_eye, nose, left_mouth, right_mouth = points
            assert left_eye[0] < right_eye[0] and left_mouth[0] < right_mouth[0], name
            assert max(left_eye[1], right_eye[1]) < nose[1] < min(left_mouth[1], right_mouth[1]), name


def test_batch_of_mixed_sizes_equals_each_frame_alone(
    mtcnn: MTCNN, params: MTCNNParams, detections: dict[str, Detections]
) -> None:
    names = [
        "two_people.jpg",
        "obama_small.jpg",
        "kit_with_rose.jpg",
        "obama_small.jpg",
        "no_face_synthetic.png",
    ]
    batch = mtcnn.detect([_image(n) for n in names], params)
    assert len(batch) == len(names)
    for name, got in zip(names, batch, strict=True):
        alone = detections[name]
        assert len(got) == len(alone), name
        np.testing.assert_allclose(got.boxes, alone.boxes, atol=1e-2, err_msg=name)
        np.testing.assert_allclose(got.probs, alone.probs, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(got.landmarks, alone.landmarks, atol=1e-2, err_msg=name)


def test_many_frames_of_one_size_go_through_pnet_in_bounded_calls(
    mtcnn: MTCNN, params: MTCNNParams, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The small-face mode sends dozens of same-size tiles at once: P-Net must see them a few at a time
    (its memory grows with the pixels of one call, and OpenVINO keeps buffers for the largest call), and
    each frame's faces must be what that frame alone gives."""
    names = ["two_people.jpg", "kit_with_rose.jpg", "multiface.jpg", "two_people.jpg", "obama_small.jpg"]
    frames = [cv2.resize(_image(n), (640, 480), interpolation=cv2.INTER_AREA) for n in names]
    alone = [mtcnn.detect([f], params)[0] for f in frames]
    canvas = mtcnn_module._PyramidCanvas(480, 640, params.scales(480, 640), torch.device("cpu"))
    monkeypatch.setattr(mtcnn_module, "_PNET_PIXELS", 2 * canvas.height * canvas.width + 1)
    calls: list[int] = []
    pnet = mtcnn.sessions["pnet"]

    class Counted:
        def run(self, images: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
            calls.append(images.shape[0])
            return pnet.run(images, mask)

    monkeypatch.setitem(mtcnn.sessions, "pnet", Counted())
    batch = mtcnn.detect(frames, params)
    assert calls == [2, 2, 1]
    assert sum(len(d) for d in alone) >= 8  # the frames have faces to compare
    for name, got, want in zip(names, batch, alone, strict=True):
        assert len(got) == len(want), name
        np.testing.assert_allclose(got.boxes, want.boxes, atol=1e-2, err_msg=name)
        np.testing.assert_allclose(got.probs, want.probs, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(got.landmarks, want.landmarks, atol=1e-2, err_msg=name)


def test_higher_threshold_drops_low_probability_faces(mtcnn: MTCNN) -> None:
    strict = MTCNNParams(thresholds=(0.6, 0.7, 0.99))
    (d,) = mtcnn.detect([_image("obama-720p.jpg")], strict)
    assert len(d) == 1 and d.probs[0] >= 0.99


def test_larger_min_face_size_skips_small_faces(mtcnn: MTCNN, detections: dict[str, Detections]) -> None:
    (d,) = mtcnn.detect([_image("multiface.jpg")], MTCNNParams(min_face_size=400))
    assert len(d) == 0
    assert len(detections["multiface.jpg"]) == 6


def test_frame_smaller_than_a_face_and_empty_batch(mtcnn: MTCNN, params: MTCNNParams) -> None:
    (tiny,) = mtcnn.detect([np.zeros((10, 15, 3), np.uint8)], params)
    assert tiny.boxes.shape == (0, 4) and tiny.landmarks.shape == (0, 5, 2)
    assert mtcnn.detect([], params) == []


@pytest.mark.parametrize(
    "frame",
    [np.zeros((40, 40), np.uint8), np.zeros((40, 40, 3), np.float32), np.zeros((40, 40, 4), np.uint8)],
    ids=["grey", "float", "bgra"],
)
def test_frames_that_are_not_bgr_uint8_are_invalid_input(mtcnn: MTCNN, frame: np.ndarray) -> None:
    with pytest.raises(errors.InvalidInput):
        mtcnn.detect([frame], MTCNNParams())


def test_params_are_validated() -> None:
    with pytest.raises(errors.InvalidInput):
        MTCNNParams(factor=1.2)
    with pytest.raises(errors.InvalidInput):
        MTCNNParams(min_face_size=0)
    with pytest.raises(errors.InvalidInput):
        MTCNNParams(thresholds=(0.6, 0.7, 1.5))


def test_from_store_without_weights_says_how_to_fetch(tmp_path: Path) -> None:
    with pytest.raises(errors.WeightsMissing, match="python -m ml.weights fetch mtcnn_pnet"):
        MTCNN.from_store(ModelStore(tmp_path), "cpu")


def _greedy_nms_min(
    boxes: torch.Tensor, scores: torch.Tensor, frame: torch.Tensor, threshold: float
) -> list[int]:
    """The paper's last step written as the plain greedy loop: best box first, drop what it covers."""
    order = sorted(range(len(scores)), key=lambda i: -float(scores[i]))
    keep: list[int] = []
    for i in order:
        covered = False
        for k in keep:
            if frame[k] != frame[i]:
                continue
            w = min(boxes[k, 2], boxes[i, 2]) - max(boxes[k, 0], boxes[i, 0]) + 1
            h = min(boxes[k, 3], boxes[i, 3]) - max(boxes[k, 1], boxes[i, 1]) + 1
            areas = [(b[2] - b[0] + 1) * (b[3] - b[1] + 1) for b in (boxes[k], boxes[i])]
            covered |= bool(max(w, 0) * max(h, 0) / min(areas) > threshold)
        if not covered:
            keep.append(i)
    return keep


def test_final_nms_equals_greedy_suppression_by_the_smaller_box() -> None:
    from ml.mtcnn import nms_min as _nms_min

    generator = torch.Generator().manual_seed(14)
    for _ in range(200):
        n = int(torch.randint(1, 25, (1,), generator=generator))
        corner = torch.rand(n, 2, generator=generator) * 100
        boxes = torch.cat([corner, corner + torch.rand(n, 2, generator=generator) * 60 + 5], dim=1)
        scores = torch.rand(n, generator=generator)
        frame = torch.randint(0, 2, (n,), generator=generator)
        assert _nms_min(boxes, scores, frame, 0.7).tolist() == _greedy_nms_min(boxes, scores, frame, 0.7)
