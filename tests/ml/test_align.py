"""Alignment puts faces where each embedder expects them; dlib's template is re-derived from dlib's chips."""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from ml.align import DLIB_CHIP_TEMPLATE, align_faces, flip_chips, similarity_transform
from ml.dlib_resnet import DlibResNetEmbedder
from ml.mtcnn import MTCNN, MTCNNParams
from ml.weights import ModelStore
from settings import get_settings
from tests.shared_data import shared_dir

# How DLIB_CHIP_TEMPLATE was measured (see its comment in ml/align.py).
CHIP_BORDER = 75
CHIP_PARAMS = MTCNNParams(min_face_size=20)


@pytest.fixture(scope="module")
def store() -> ModelStore:
    store = ModelStore(get_settings().model_dir)
    for name in ("mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "dlib_resnet_v1"):
        if not store.file_for(name).is_file():
            store.fetch(name)
    return store


@pytest.fixture(scope="module")
def mtcnn(store: ModelStore) -> MTCNN:
    return MTCNN.from_store(store, torch.device("cpu"))


@pytest.fixture(scope="module")
def dlib_oracle() -> Path:
    return shared_dir() / "oracles" / "dlib_resnet_v1"


@pytest.fixture(scope="module")
def dlib_chips_bgr(dlib_oracle: Path) -> list[np.ndarray]:
    paths = sorted((dlib_oracle / "chips").glob("*.png"))
    assert len(paths) == 42, f"expected dlib's 42 oracle chips in {dlib_oracle / 'chips'}"
    return [cv2.imread(str(path)) for path in paths]


@pytest.fixture(scope="module")
def chip_landmarks(mtcnn: MTCNN, dlib_chips_bgr: list[np.ndarray]) -> np.ndarray:
    """[42,5,2] MTCNN landmarks of each dlib chip, in chip pixels (the face nearest the chip centre)."""
    border = CHIP_BORDER
    padded = [
        cv2.copyMakeBorder(chip, border, border, border, border, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        for chip in dlib_chips_bgr
    ]
    points = []
    for i, found in enumerate(mtcnn.detect(padded, CHIP_PARAMS)):
        assert len(found) >= 1, f"MTCNN found no face in dlib chip {i:03d}"
        nearest = np.argmin(np.linalg.norm(found.landmarks.mean(1) - (75 + border), axis=1))
        points.append(found.landmarks[nearest] - border)
    return np.stack(points)


def _frame_with_dots(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A black BGR frame with a distinct pure colour disc at each point."""
    frame = np.zeros((*size, 3), np.uint8)
    for (x, y), colour in zip(points, _DOT_COLOURS_BGR, strict=True):
        cv2.circle(frame, (round(x), round(y)), 8, colour, thickness=-1)
    return frame


_DOT_COLOURS_BGR = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255), (255, 0, 255)]


def test_similarity_transform_recovers_rotation_scale_and_shift():
    points = np.array([[30.0, 40], [90, 42], [60, 80], [35, 110], [88, 108]])
    angle, scale, shift = np.radians(25), 0.37, np.array([12.0, -7.5])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    matrix = similarity_transform(points, points @ rotation.T + shift)
    np.testing.assert_allclose(matrix, np.hstack([rotation, shift[:, None]]), atol=1e-9)


def test_landmarks_land_on_the_template_in_rgb_order():
    """A rotated, shrunk face: each landmark's colour ends up at its template point, channels as RGB."""
    angle, scale = np.radians(-30), 1.8
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    landmarks = (DLIB_CHIP_TEMPLATE - 75) @ rotation.T + [300, 260]
    chips = align_faces(_frame_with_dots(landmarks, (520, 640)), landmarks[None], 150, DLIB_CHIP_TEMPLATE)
    assert chips.shape == (1, 150, 150, 3) and chips.dtype == np.uint8
    for (x, y), (b, g, r) in zip(DLIB_CHIP_TEMPLATE, _DOT_COLOURS_BGR, strict=True):
        assert tuple(chips[0, round(y), round(x)]) == (r, g, b)


def test_no_faces_give_an_empty_chip_batch():
    chips = align_faces(
        np.zeros((48, 64, 3), np.uint8), np.zeros((0, 5, 2), np.float32), 160, DLIB_CHIP_TEMPLATE
    )
    assert chips.shape == (0, 160, 160, 3) and chips.dtype == np.uint8


def test_a_face_cut_by_the_frame_edge_is_padded_with_black():
    frame = np.full((200, 200, 3), 200, np.uint8)
    landmarks = DLIB_CHIP_TEMPLATE - [60, 0]  # the left of the chip lies left of the frame
    chip = align_faces(frame, landmarks[None], 150, DLIB_CHIP_TEMPLATE)[0]
    assert (chip[:, :55] == 0).all() and (chip[:, 65:] == 200).all()


def test_a_large_face_is_shrunk_without_aliasing():
    """A 1-px checkerboard shrunk 8x must come out as even grey, not as moire of black and white."""
    checker = ((np.indices((1400, 1400)).sum(0) % 2) * 255).astype(np.uint8)
    frame = np.dstack([checker] * 3)
    landmarks = (DLIB_CHIP_TEMPLATE - 75) * 8 + 700
    chip = align_faces(frame, landmarks[None], 150, DLIB_CHIP_TEMPLATE)[0]
    assert np.abs(chip.astype(float) - 127.5).max() < 10


def test_flip_mirrors_chips_left_right():
    chips = np.random.default_rng(0).integers(0, 256, (2, 8, 8, 3), dtype=np.uint8)
    flipped = flip_chips(chips)
    assert flipped.flags.c_contiguous
    np.testing.assert_array_equal(flipped[:, :, 0], chips[:, :, -1])
    np.testing.assert_array_equal(flip_chips(flipped), chips)


def test_dlib_template_is_the_mean_mtcnn_landmarks_of_dlibs_own_chips(chip_landmarks):
    derived = chip_landmarks.mean(0)
    print(f"re-derived dlib template: {np.round(derived.astype(float), 2).tolist()}")
    assert np.abs(derived - DLIB_CHIP_TEMPLATE).max() <= 1.0


def test_realigning_a_dlib_chip_by_its_landmarks_reproduces_it(dlib_chips_bgr, chip_landmarks):
    """Each face's landmarks sit within a few pixels of the mean template, so re-cutting barely moves it."""
    shifts, differences = [], []
    for chip, points in zip(dlib_chips_bgr, chip_landmarks, strict=True):
        matrix = similarity_transform(points, DLIB_CHIP_TEMPLATE)
        shifts.append(np.linalg.norm(matrix[:, :2] @ [74.5, 74.5] + matrix[:, 2] - 74.5))
        recut = align_faces(chip, points[None], 150, DLIB_CHIP_TEMPLATE)[0]
        differences.append(np.abs(recut.astype(float) - cv2.cvtColor(chip, cv2.COLOR_BGR2RGB)).mean())
    print(f"chip centre moves {np.mean(shifts):.2f} px on average; mean abs diff {np.mean(differences):.1f}")
    assert np.mean(shifts) < 3.0
    # Measured 19.3 of 255: a 2 px shift of a textured face with a black corner where the chip was rotated.
    assert np.mean(differences) < 25.0


def test_photo_aligned_with_mtcnn_gives_dlibs_own_descriptor(store, mtcnn, dlib_oracle):
    """The full pipeline (MTCNN → align → our dlib port) on obama.jpg ≈ dlib's pipeline on the same photo."""
    rows = list(csv.DictReader((dlib_oracle / "index.csv").open()))
    row = next(r for r in rows if r["source"] == "datasets/facebank/obama/obama.jpg")
    frame = cv2.imread(str(shared_dir() / row["source"]))
    (found,) = mtcnn.detect([frame], MTCNNParams())
    face = int(np.argmax(found.probs))  # MTCNN also reports a low-probability false positive here
    embedder = DlibResNetEmbedder.from_store(store, torch.device("cpu"))
    ours = embedder.embed(
        align_faces(frame, found.landmarks[face : face + 1], embedder.chip_size, embedder.template)
    )[0]
    theirs = np.load(dlib_oracle / "descriptors.npy")[int(row["chip"])]
    cosine = float(ours @ theirs / np.linalg.norm(theirs))
    print(f"cosine to dlib's descriptor of obama.jpg: {cosine:.4f}")
    assert cosine > 0.98
