"""MTCNN finds the faces facenet-pytorch's MTCNN finds, where it finds them, in batches of any frame sizes.

The oracle is shared/oracles/mtcnn_facenet_pytorch (reference.json and MANIFEST.md): facenet-pytorch 2.6.0's
own detector run on each image with the same weights and parameters.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou

import errors
import ml.mtcnn as mtcnn_module
from ml.mtcnn import MTCNN, Detections, MTCNNParams
from ml.weights import ModelStore
from settings import get_settings
from tests.shared_data import shared_dir

MIN_IOU = 0.9
MAX_LANDMARK_PX = 2.0
MAX_PROB_DIFF = 0.01
TRUE_FACE_PROB = 0.99  # every real face has prob >= 0.99 in the reference (MANIFEST.md)


def _oracle_dir() -> Path:
    path = shared_dir() / "oracles" / "mtcnn_facenet_pytorch"
    if not (path / "reference.json").is_file():
        raise FileNotFoundError(f"MTCNN oracle missing: {path / 'reference.json'}")
    return path


def _reference() -> dict[str, Any]:
    return json.loads((_oracle_dir() / "reference.json").read_text())


def _image(name: str) -> np.ndarray:
    path = _oracle_dir() / "images" / name
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise FileNotFoundError(f"cannot read oracle image {path}")
    return image


def _true_face_counts() -> dict[str, int]:
    """The MANIFEST's table: image name -> number of real faces counted by eye."""
    rows = re.findall(
        r"^\| (\S+\.(?:jpg|png)) \| \d+×\d+ \| (\d+) \|", (_oracle_dir() / "MANIFEST.md").read_text(), re.M
    )
    return {name: int(count) for name, count in rows}


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return _reference()


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


def _match(ours: Detections, faces: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One-to-one matching of reference faces to ours by IoU; returns (ref index, our index, IoU)."""
    if not faces or len(ours) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, np.zeros(0)
    ref_boxes = torch.tensor([f["box"] for f in faces], dtype=torch.float64)
    iou = box_iou(ref_boxes, torch.from_numpy(ours.boxes).double()).numpy()
    ref_idx, our_idx = linear_sum_assignment(-iou)
    return ref_idx, our_idx, iou[ref_idx, our_idx]


def test_every_oracle_image_is_covered(reference: dict[str, Any]) -> None:
    assert set(reference["images"]) == set(_true_face_counts())
    assert len(reference["images"]) == 13


def test_detections_match_facenet_pytorch_reference(
    detections: dict[str, Detections], reference: dict[str, Any]
) -> None:
    """Every reference face is found (IoU >= 0.9, each landmark within 2 px, prob within 0.01), and we add
    no face the reference lacks: every face we return (all have prob > 0.7, the O-Net threshold, which is
    below the reference's lowest 0.788) must be matched one-to-one to a reference face."""
    worst_iou, worst_landmark = 1.0, 0.0
    for name, expected in reference["images"].items():
        ours, faces = detections[name], expected["faces"]
        ref_idx, our_idx, ious = _match(ours, faces)
        assert len(ref_idx) == len(faces), f"{name}: found {len(ours)} faces, reference has {len(faces)}"
        assert len(ours) == len(faces), f"{name}: extra faces {ours.probs.tolist()} vs reference"
        assert (ious >= MIN_IOU).all(), f"{name}: IoU {ious.tolist()}"
        for r, o in zip(ref_idx, our_idx, strict=True):
            landmark_err = np.abs(ours.landmarks[o] - np.asarray(faces[r]["landmarks"])).max()
            assert landmark_err <= MAX_LANDMARK_PX, f"{name} face {r}: landmarks off by {landmark_err:.2f} px"
            assert abs(ours.probs[o] - faces[r]["prob"]) <= MAX_PROB_DIFF, name
            worst_landmark = max(worst_landmark, float(landmark_err))
        worst_iou = min(worst_iou, float(ious.min(initial=1.0)))
    print(f"min IoU {worst_iou:.6f}, max landmark error {worst_landmark:.4f} px")


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
    pnet = mtcnn._run["pnet"]

    def counted(images: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        calls.append(images.shape[0])
        return pnet(images, mask)

    monkeypatch.setitem(mtcnn._run, "pnet", counted)
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
