"""FaceNet is facenet-pytorch's network: same state-dict keys, same outputs on the architecture oracle."""

from __future__ import annotations

import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import errors
from ml.facenet import (
    DEFAULT_THRESHOLD,
    FACENET_CHIP_TEMPLATE,
    FaceNetEmbedder,
    InceptionResnetV1,
    load_facenet_state_dict,
    standardise,
)
from ml.weights import ModelStore
from tests.shared_data import shared_dir

# The oracle's outputs differ from one another by ~1e-3: only a tolerance near float32 noise proves anything.
TOLERANCE = 2e-5


@pytest.fixture(scope="module")
def oracle() -> Path:
    return shared_dir() / "oracles" / "facenet_inception_resnet_v1"


@pytest.fixture(scope="module")
def key_list(oracle: Path) -> list[tuple[str, list[int], str]]:
    return [tuple(entry) for entry in json.loads((oracle / "state_dict_keys.json").read_text())]


def oracle_weights(key_list: list[tuple[str, list[int], str]]) -> dict[str, torch.Tensor]:
    """The MANIFEST's deterministic weights: one generator, per-key rules, in state-dict order."""
    g = torch.Generator().manual_seed(20261125)
    state = {}
    for key, shape, dtype in key_list:
        if dtype.startswith("int"):
            state[key] = torch.zeros(shape, dtype=getattr(torch, dtype))
        elif key.endswith("running_var"):
            state[key] = torch.rand(shape, generator=g) + 0.5
        elif key.endswith("running_mean"):
            state[key] = torch.randn(shape, generator=g) * 0.1
        elif len(shape) >= 2:
            state[key] = torch.randn(shape, generator=g) / math.sqrt(math.prod(shape[1:]))
        elif key.endswith("bn.weight"):
            state[key] = 1 + 0.1 * torch.randn(shape, generator=g)
        else:
            state[key] = 0.1 * torch.randn(shape, generator=g)
    return state


def oracle_chips(oracle: Path) -> np.ndarray:
    chips = [
        cv2.cvtColor(cv2.imread(str(oracle / "chips" / f"{i:02d}.png")), cv2.COLOR_BGR2RGB) for i in range(4)
    ]
    return np.stack(chips)


def test_state_dict_has_facenet_pytorch_keys_shapes_and_order(key_list):
    ours = [
        (k, list(v.shape), str(v.dtype).removeprefix("torch."))
        for k, v in InceptionResnetV1().state_dict().items()
    ]
    assert ours == [(k, shape, dtype) for k, shape, dtype in key_list]


def test_network_reproduces_facenet_pytorch_outputs(oracle, key_list):
    network = InceptionResnetV1()
    load_facenet_state_dict(network, oracle_weights(key_list))
    embedder = FaceNetEmbedder(network, torch.device("cpu"))
    chips = oracle_chips(oracle)

    with torch.inference_mode():
        pre = embedder.network(standardise(torch.from_numpy(chips))).numpy()
    embeddings = embedder.embed(chips)

    pre_diff = np.abs(pre - np.load(oracle / "pre_normalisation.npy")).max()
    emb_diff = np.abs(embeddings - np.load(oracle / "embeddings.npy")).max()
    print(f"max abs diff: pre_normalisation {pre_diff:.2e}, embeddings {emb_diff:.2e}")
    assert pre_diff <= TOLERANCE
    assert emb_diff <= TOLERANCE
    assert embeddings.dtype == np.float32 and embeddings.shape == (4, 512)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_released_file_with_classifier_head_loads(key_list):
    """The vggface2 release also holds logits.* for its 8631 training identities: accepted and ignored."""
    state = oracle_weights(key_list)
    state["logits.weight"] = torch.zeros(8631, 512)
    state["logits.bias"] = torch.zeros(8631)
    load_facenet_state_dict(InceptionResnetV1(), state)


def test_a_missing_or_foreign_key_is_refused(key_list):
    state = oracle_weights(key_list)
    del state["last_bn.running_var"]
    with pytest.raises(RuntimeError, match="last_bn.running_var"):
        load_facenet_state_dict(InceptionResnetV1(), state)


def test_embed_of_no_chips_is_empty_and_wrong_chips_are_refused():
    embedder = FaceNetEmbedder(InceptionResnetV1(), torch.device("cpu"))
    empty = embedder.embed(np.zeros((0, 160, 160, 3), np.uint8))
    assert empty.shape == (0, 512) and empty.dtype == np.float32
    with pytest.raises(errors.InvalidInput, match=r"\[N,160,160,3\]"):
        embedder.embed(np.zeros((1, 150, 150, 3), np.uint8))


def test_from_store_without_weights_says_how_to_fetch_them(tmp_path):
    with pytest.raises(errors.WeightsMissing, match=r"python -m ml\.weights fetch facenet_vggface2"):
        FaceNetEmbedder.from_store(ModelStore(tmp_path), torch.device("cpu"))


def test_embedder_describes_itself_for_the_pipeline():
    assert (FaceNetEmbedder.name, FaceNetEmbedder.dim, FaceNetEmbedder.chip_size) == (
        "facenet_vggface2",
        512,
        160,
    )
    assert FaceNetEmbedder.template.shape == (5, 2) and FaceNetEmbedder.template.dtype == np.float32
    assert 0.39 < DEFAULT_THRESHOLD < 0.40


def test_template_is_facenet_pytorch_crop_frame_of_mtcnn_reference_faces():
    """Re-derives FACENET_CHIP_TEMPLATE (see its comment in ml/facenet.py) from the MTCNN oracle."""
    reference = json.loads(
        (shared_dir() / "oracles" / "mtcnn_facenet_pytorch" / "reference.json").read_text()
    )
    points = []
    for image in reference["images"].values():
        for face in image["faces"]:
            if face["prob"] < 0.99:  # the reference's false positives (0.79-0.85)
                continue
            x1, y1, x2, y2 = face["box"]
            crop_height = (y2 - y1) * 160 / (160 - 14)  # facenet-pytorch margin=14 at image_size=160
            scale = 160 / crop_height
            top = y1 - (crop_height - (y2 - y1)) / 2
            landmarks = np.asarray(face["landmarks"])
            points.append(
                np.stack([80 + (landmarks[:, 0] - (x1 + x2) / 2) * scale, (landmarks[:, 1] - top) * scale], 1)
            )
    assert len(points) == 21
    mean = np.mean(points, axis=0)
    mirrored = mean[[1, 0, 2, 4, 3]] * [-1, 1] + [160, 0]
    np.testing.assert_allclose(FACENET_CHIP_TEMPLATE, (mean + mirrored) / 2, atol=0.006)
