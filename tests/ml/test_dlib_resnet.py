"""dlib's ResNet in PyTorch reads dlib's own .dat file and reproduces dlib's descriptors."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import errors
from ml.dlib_format import Affine, Con, DlibNetwork, parse_dlib_network, read_dlib_network
from ml.dlib_resnet import (
    DEFAULT_THRESHOLD,
    WEIGHTS_NAME,
    DlibResNet,
    DlibResNetEmbedder,
    load_dlib_network,
)
from ml.weights import REGISTRY, ModelStore
from settings import get_settings
from tests.shared_data import shared_dir

# dlib's own descriptors vs ours, float32 on the CPU.
TOLERANCE = 1e-4

# People in the single-face photos among the oracle's sources (facebank/<person>/ photos name themselves).
# The oracle folder's copy of lin-manuel-miranda.png is the probe's photo again, so it is left out.
PERSON_OF_PHOTO = {
    "datasets/facebank_probe/alex_lacamoire1.jpg": "alex_lacamoire",
    "datasets/facebank_probe/johnsnow_test1.jpg": "kit_harington",
    "datasets/facebank_probe/obama1.jpg": "obama",
    "datasets/facebank_probe/obama3.jpg": "obama",
    "datasets/facebank_probe/lin-manuel-miranda.png": "lin_manuel_miranda",
    "oracles/mtcnn_facenet_pytorch/images/angelina_jolie.jpg": "angelina_jolie",
    "oracles/mtcnn_facenet_pytorch/images/kate_siegel.jpg": "kate_siegel",
    "oracles/mtcnn_facenet_pytorch/images/obama-720p.jpg": "obama",
    "oracles/mtcnn_facenet_pytorch/images/obama_partial_face.jpg": "obama",
    "oracles/mtcnn_facenet_pytorch/images/obama_small.jpg": "obama",
    "oracles/mtcnn_facenet_pytorch/images/paul_rudd.jpg": "paul_rudd",
    "oracles/mtcnn_facenet_pytorch/images/shea_whigham.jpg": "shea_whigham",
}


@pytest.fixture(scope="session")
def dlib_weights() -> Path:
    store = ModelStore(get_settings().model_dir)
    if not store.file_for(WEIGHTS_NAME).is_file():
        store.fetch(WEIGHTS_NAME)
    return store.path(WEIGHTS_NAME)


@pytest.fixture(scope="module")
def parsed(dlib_weights: Path) -> DlibNetwork:
    return read_dlib_network(dlib_weights)


@pytest.fixture(scope="module")
def embedder(dlib_weights: Path) -> DlibResNetEmbedder:
    return DlibResNetEmbedder.from_store(ModelStore(get_settings().model_dir), torch.device("cpu"))


@pytest.fixture(scope="module")
def oracle() -> Path:
    return shared_dir() / "oracles" / "dlib_resnet_v1"


@pytest.fixture(scope="module")
def index(oracle: Path) -> list[dict[str, str]]:
    with open(oracle / "index.csv", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def chips(oracle: Path, index: list[dict[str, str]]) -> np.ndarray:
    paths = [oracle / "chips" / f"{row['chip']}.png" for row in index]
    return np.stack([cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in paths])


def resnet_parameter_count() -> int:
    """Learned values of dnn_face_recognition_ex's anet_type, counted from its definition."""
    count = 7 * 7 * 3 * 32 + 32 + 2 * 32  # con 7x7 (with bias), affine
    channels = 32
    for filters, blocks in ((32, 3), (64, 4), (128, 3), (256, 3), (256, 1)):
        for _ in range(blocks):  # two 3x3 con (with bias), two affine
            count += 9 * channels * filters + filters + 9 * filters * filters + filters + 4 * filters
            channels = filters
    return count + 256 * 128  # fc_no_bias


def test_parser_reads_loss_input_and_every_layer_to_the_end_of_the_file(parsed):
    assert parsed.loss.margin == pytest.approx(0.04, abs=1e-7)
    assert parsed.loss.distance_threshold == pytest.approx(0.6, abs=1e-7)
    assert parsed.input.mean_rgb == pytest.approx((122.782, 117.001, 104.298), abs=1e-4)
    assert (parsed.input.rows, parsed.input.cols) == (150, 150)
    assert sum(isinstance(layer, Con) for layer in parsed.layers) == 29
    assert sum(isinstance(layer, Affine) for layer in parsed.layers) == 29
    assert parsed.parameter_count == resnet_parameter_count()


def test_network_reproduces_dlib_descriptors(embedder, chips, oracle):
    expected = np.load(oracle / "descriptors.npy")
    ours = embedder.descriptors(chips)
    assert ours.shape == expected.shape == (42, 128)
    assert np.abs(ours - expected).max() <= TOLERANCE


def test_embed_returns_unit_vectors_pointing_like_dlib_descriptors(embedder, chips, oracle):
    expected = np.load(oracle / "descriptors.npy")
    embeddings = embedder.embed(chips)
    assert embeddings.dtype == np.float32 and embeddings.shape == (42, 128)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)
    cosine = np.sum(embeddings * expected, axis=1) / np.linalg.norm(expected, axis=1)
    np.testing.assert_allclose(cosine, 1.0, atol=1e-5)


def test_empty_batch_gives_zero_rows(embedder):
    out = embedder.embed(np.zeros((0, 150, 150, 3), dtype=np.uint8))
    assert out.shape == (0, 128) and out.dtype == np.float32


def test_batch_chunked_batch_and_one_at_a_time_agree(embedder, chips):
    batch = embedder.embed(chips)
    one_by_one = np.concatenate([embedder.embed(chips[i : i + 1]) for i in range(len(chips))])
    chunked = DlibResNetEmbedder(embedder.network, torch.device("cpu"), batch_size=5).embed(chips)
    np.testing.assert_allclose(one_by_one, batch, atol=1e-6)
    np.testing.assert_allclose(chunked, batch, atol=1e-6)


def test_same_person_is_closer_than_different_people(embedder, chips, index):
    people = {}
    for i, row in enumerate(index):
        source = row["source"]
        if source.startswith("datasets/facebank/"):
            people[i] = source.split("/")[2]
        elif source in PERSON_OF_PHOTO:
            people[i] = PERSON_OF_PHOTO[source]
    rows = sorted(people)
    embeddings = embedder.embed(chips[rows])
    similarity = embeddings @ embeddings.T
    same, different = [], []
    for a in range(len(rows)):
        for b in range(a + 1, len(rows)):
            (same if people[rows[a]] == people[rows[b]] else different).append(similarity[a, b])
    assert len(same) >= 20 and len(different) >= 150
    assert np.mean(same) > np.mean(different) + 0.1
    # The provisional threshold keeps every same-person pair and nearly no different-person pair.
    assert min(same) >= DEFAULT_THRESHOLD
    assert np.mean(np.array(different) >= DEFAULT_THRESHOLD) < 0.02


def test_embedder_describes_itself(embedder):
    assert (embedder.name, embedder.dim, embedder.chip_size) == ("dlib_resnet_v1", 128, 150)
    assert embedder.version == REGISTRY["dlib_resnet_v1"].sha256[:12]
    assert 0.0 < embedder.default_threshold < 1.0
    template = embedder.template
    assert template.shape == (5, 2) and template.dtype == np.float32
    assert ((template > 0) & (template < 150)).all()
    left_eye, right_eye, nose, mouth_left, mouth_right = template
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])


@pytest.mark.parametrize("keep", [0.5, 0.999, 20 / 22_466_066])
def test_truncated_file_raises_weights_corrupt(dlib_weights, tmp_path, keep):
    data = dlib_weights.read_bytes()
    cut = tmp_path / "cut.dat"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(
        errors.WeightsCorrupt, match=r"cut\.dat is not a valid dlib network file: .*truncated"
    ):
        read_dlib_network(cut)


def test_garbage_and_trailing_bytes_raise_weights_corrupt(dlib_weights):
    garbage = np.random.default_rng(7).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(errors.WeightsCorrupt, match="not a valid dlib network file"):
        parse_dlib_network(garbage, source="garbage.dat")
    with pytest.raises(errors.WeightsCorrupt, match="not a valid dlib network file"):
        parse_dlib_network(b"PK\x03\x04 this is a zip, not dlib", source="model.zip")
    with pytest.raises(errors.WeightsCorrupt, match="3 unexpected bytes after the network"):
        parse_dlib_network(dlib_weights.read_bytes() + b"\x01\x01\x00", source="padded.dat")


def test_a_different_dlib_network_is_refused(parsed):
    with pytest.raises(errors.WeightsCorrupt, match=r"layer 129 .* is missing, expected Fc"):
        load_dlib_network(DlibResNet(), dataclasses.replace(parsed, layers=parsed.layers[:-1]))
    first_block = list(parsed.layers)
    first_block[5], first_block[6] = first_block[6], first_block[5]  # con and affine swapped
    with pytest.raises(errors.WeightsCorrupt, match=r"layer 5 .* expected Con"):
        load_dlib_network(DlibResNet(), dataclasses.replace(parsed, layers=tuple(first_block)))


def test_from_store_without_weights_says_how_to_fetch_them(tmp_path):
    with pytest.raises(errors.WeightsMissing, match=r"python -m ml\.weights fetch dlib_resnet_v1"):
        DlibResNetEmbedder.from_store(ModelStore(tmp_path), torch.device("cpu"))
