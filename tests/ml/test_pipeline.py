"""The face pipeline (``ml.pipeline``): loaded once per process and configuration, built with its engine's
sessions, and answering in the frame's coordinates with the limits of its configuration.

Fast layer: the real weights and photos, no other process.
"""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from errors import InvalidInput
from ml.engines.sessions import TorchSession
from ml.pipeline import FacePipeline, PipelineConfig, load_pipeline, resolve_device
from settings import get_settings
from tests.shared_data import shared_dir

CONFIG = PipelineConfig(model_dir=get_settings().model_dir, device="cpu")


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    return load_pipeline(CONFIG)


def photo(name: str) -> np.ndarray:
    image = cv2.imread(str(shared_dir() / "datasets" / "facebank_probe" / name), cv2.IMREAD_COLOR)
    assert image is not None, name
    return image


def _with(pipe: FacePipeline, **changes: object) -> FacePipeline:
    """The same loaded models under another configuration (what ``load_pipeline`` would build)."""
    return FacePipeline(
        pipe.detector, pipe.embedder, dataclasses.replace(pipe.config, **changes), pipe.device, 0
    )


def test_one_configuration_loads_once_per_process(pipe: FacePipeline) -> None:
    assert load_pipeline(dataclasses.replace(CONFIG)) is pipe
    assert pipe.config == CONFIG and pipe.load_seconds > 0


def test_an_unknown_embedder_is_refused_with_the_choices() -> None:
    with pytest.raises(InvalidInput, match="dlib_resnet_v1"):
        load_pipeline(dataclasses.replace(CONFIG, embedder="arcface"))


def test_the_torch_engine_runs_the_modules_themselves_and_says_so(pipe: FacePipeline) -> None:
    described = pipe.describe()
    assert described["engine"] == pipe.engine and str(described["engine"]).startswith("torch-")
    assert (described["embedder"], described["embedder_precision"], described["device"]) == (
        "dlib_resnet_v1",
        "float32",
        "cpu",
    )
    assert (
        isinstance(pipe.embedder.session, TorchSession)
        and pipe.embedder.session.module is pipe.embedder.network
    )
    assert isinstance(pipe.detector.sessions["rnet"], TorchSession)


def test_detection_and_embedding_of_two_people(pipe: FacePipeline) -> None:
    image = photo("two_people.jpg")
    (found,) = pipe.detect([image])
    assert len(found) == 2 and found.boxes.shape == (2, 4) and found.landmarks.shape == (2, 5, 2)
    vectors = pipe.embed(image, found.landmarks)
    assert vectors.shape == (2, pipe.embedder.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert float(vectors[0] @ vectors[1]) < pipe.embedder.default_threshold  # two different people


def test_a_frame_without_faces_gives_empty_arrays_not_none(pipe: FacePipeline) -> None:
    (found,) = pipe.detect([np.full((240, 320, 3), 127, np.uint8)])
    assert len(found) == 0 and found.boxes.shape == (0, 4) and found.landmarks.shape == (0, 5, 2)
    assert pipe.embed(np.zeros((240, 320, 3), np.uint8), found.landmarks).shape == (0, pipe.embedder.dim)


def test_min_face_prob_leaves_out_the_less_sure_faces(pipe: FacePipeline) -> None:
    image = photo("obama_and_biden.jpg")
    (everything,) = pipe.detect([image])
    (sure,) = _with(pipe, min_face_prob=0.99).detect([image])
    assert len(everything) > len(sure) >= 2  # this photo has less sure detections beside the two faces
    assert sure.probs.min() >= 0.99
    np.testing.assert_allclose(sure.boxes, everything.boxes[everything.probs >= 0.99])


def test_a_frame_over_the_detection_side_is_answered_in_its_own_coordinates(pipe: FacePipeline) -> None:
    image = photo("obama1.jpg")
    (full,) = pipe.detect([image])
    (bounded,) = _with(pipe, max_detect_side=max(image.shape[:2]) // 2).detect([image])
    assert len(full) == len(bounded) == 1
    np.testing.assert_allclose(
        bounded.boxes, full.boxes, atol=0.05 * float(full.boxes[0, 2] - full.boxes[0, 0])
    )


def test_flip_averages_each_face_with_its_mirror_image(pipe: FacePipeline) -> None:
    image = photo("obama1.jpg")
    (found,) = pipe.detect([image])
    chips = pipe.align(image, found.landmarks)
    plain, flipped = pipe.embed_chips(chips), pipe.embed_chips(chips, flip=True)
    mirror = pipe.embed_chips(np.ascontiguousarray(chips[:, :, ::-1]))
    expected = (plain + mirror) / np.linalg.norm(plain + mirror, axis=1, keepdims=True)
    np.testing.assert_allclose(flipped, expected, atol=1e-5)
    assert not np.allclose(flipped, plain, atol=1e-4)


def test_auto_device_is_the_cpu_without_a_gpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")
