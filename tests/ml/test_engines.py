"""OpenVINO and ONNX Runtime run rollcall's networks as torch does: converted once from the verified weights,
cached with their hash, and giving the oracle's detections and embeddings within 1e-4 of torch's."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import errors
from ml.dlib_resnet import DlibResNetEmbedder
from ml.engines import ENGINES, EngineLoader, available_engines, resolve_engine
from ml.engines.conversion import ConversionCache, NetSpec
from ml.engines.sessions import onnxruntime_options
from ml.mtcnn import MTCNN, MTCNNParams, PNet
from ml.weights import ModelStore
from settings import get_settings
from tests.ml import mtcnn_oracle as oracle
from tests.shared_data import shared_dir

CONVERTED = ("openvino", "onnxruntime")
MAX_EMBEDDING_DIFF = 1e-4


@pytest.fixture(scope="module")
def store() -> ModelStore:
    return ModelStore(get_settings().model_dir)


def _loader(engine: str, store: ModelStore) -> EngineLoader:
    return EngineLoader(resolve_engine(engine, torch.device("cpu")), store, threads=2)


def test_both_cpu_engines_are_installed_and_auto_picks_openvino_on_the_cpu() -> None:
    assert set(available_engines()) == set(ENGINES)
    assert resolve_engine("auto", torch.device("cpu")) == "openvino"
    assert resolve_engine("auto", torch.device("cuda")) == "torch"


def test_unknown_engine_or_cpu_engine_on_a_gpu_is_refused() -> None:
    with pytest.raises(errors.InvalidInput):
        resolve_engine("tensorrt", torch.device("cpu"))
    with pytest.raises(errors.InvalidInput):
        resolve_engine("openvino", torch.device("cuda"))


@pytest.mark.parametrize("engine", CONVERTED)
def test_detections_on_the_oracle_photos_equal_the_oracle(engine: str, store: ModelStore) -> None:
    reference = oracle.reference()
    p = reference["parameters"]
    params = MTCNNParams(p["min_face_size"], tuple(p["thresholds"]), p["factor"])
    torch_mtcnn = MTCNN.from_store(store, "cpu")
    mtcnn = MTCNN.from_store(store, "cpu", _loader(engine, store))
    assert mtcnn.engine == engine
    agreement = oracle.Agreement()
    for name, expected in reference["images"].items():
        image = oracle.image(name)
        ours, theirs = mtcnn.detect([image], params)[0], torch_mtcnn.detect([image], params)[0]
        oracle.compare(name, ours, expected["faces"], agreement)
        assert len(ours) == len(theirs), name
        np.testing.assert_allclose(ours.boxes, theirs.boxes, atol=1e-2, err_msg=name)
        np.testing.assert_allclose(ours.probs, theirs.probs, atol=1e-4, err_msg=name)
        np.testing.assert_allclose(ours.landmarks, theirs.landmarks, atol=1e-2, err_msg=name)
    assert not agreement.failures, agreement.failures


def _dlib_chips() -> np.ndarray:
    folder = shared_dir() / "oracles" / "dlib_resnet_v1" / "chips"
    paths = sorted(folder.glob("*.png"))[:16]
    return np.stack([cv2.cvtColor(cv2.imread(str(p), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB) for p in paths])


@pytest.mark.parametrize("engine", CONVERTED)
def test_dlib_embeddings_of_the_oracle_chips_are_within_1e4_of_torch(engine: str, store: ModelStore) -> None:
    """(FaceNet's released weights cannot be fetched on the test machines; it converts the same way.)"""
    batch = _dlib_chips()
    expected = DlibResNetEmbedder.from_store(store, "cpu").embed(batch)
    embedder = DlibResNetEmbedder.from_store(store, "cpu", _loader(engine, store))
    assert embedder.engine == engine
    ours = embedder.embed(batch)
    assert ours.shape == expected.shape
    assert np.abs(ours - expected).max() <= MAX_EMBEDDING_DIFF
    assert embedder.embed(batch[:1]).shape == (1, expected.shape[1])  # the batch axis is dynamic


def _pnet_spec() -> NetSpec:
    return NetSpec(
        "test_pnet",
        "mtcnn_pnet",
        (torch.zeros(1, 3, 24, 24), torch.zeros(1, 1, 22, 22)),
        ({0: "batch", 2: "height", 3: "width"}, {2: "height", 3: "width"}),
        ("reg", "prob"),
    )


def test_conversion_is_cached_with_its_hash_and_redone_when_damaged(
    tmp_path: Path, store: ModelStore
) -> None:
    local = ModelStore(tmp_path, store.registry)
    for name in ("mtcnn_pnet",):
        (tmp_path / store.file_for(name).name).symlink_to(store.path(name))
        (tmp_path / "weights.lock.json").write_text(
            json.dumps({name: {"sha256": store.expected_sha256(name), "source": "test"}})
        )
    loader = EngineLoader("onnxruntime", local, threads=1)
    spec = _pnet_spec()
    net = PNet()
    first = loader.session(net, spec)
    (onnx,) = loader.conversions.converted_paths(spec)
    recorded = json.loads(onnx.with_suffix(".sha256.json").read_text())
    assert set(recorded) == {onnx.name}
    made = onnx.stat().st_mtime_ns
    loader.session(net, spec)
    assert onnx.stat().st_mtime_ns == made  # verified and reused, not converted again
    onnx.write_bytes(onnx.read_bytes()[:-10] + b"0123456789")
    again = loader.session(net, spec)
    assert json.loads(onnx.with_suffix(".sha256.json").read_text()) == recorded  # converted again
    x = torch.rand(1, 3, 30, 40)
    mask = torch.zeros(1, 1, 28, 38)
    for a, b in zip(first.run(x, mask), again.run(x, mask), strict=True):
        assert torch.equal(a, b)


def test_conversion_key_changes_with_the_engine_version(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    loader = _loader("openvino", store)
    before = loader.conversions.conversion_key(_pnet_spec())
    monkeypatch.setattr(ConversionCache, "describe", lambda self: "openvino-0.0.0")
    assert loader.conversions.conversion_key(_pnet_spec()) != before


def test_openvino_takes_channels_last_inputs_as_they_are_and_answers_as_torch(store: ModelStore) -> None:
    """MTCNN hands its networks channels-last tensors; the OpenVINO runner declares such inputs NHWC
    (no copy into NCHW order) and must answer exactly as for the same values in NCHW order."""
    pnet = MTCNN.from_store(store, "cpu").pnet
    plain = _loader("openvino", store).session(pnet, _pnet_spec())
    nhwc = _loader("openvino", store).session(pnet, dataclasses.replace(_pnet_spec(), channels_last=(0,)))
    image = torch.rand(2, 50, 70, 3).permute(0, 3, 1, 2)  # NHWC in memory, as MTCNN's canvases
    mask = torch.zeros(1, 1, 48, 68)
    with torch.inference_mode():
        expected = pnet(image, mask)
    for given in (image, image.contiguous()):  # channels-last, and plain NCHW memory: either works
        for ours, reference, theirs in zip(
            nhwc.run(given, mask), plain.run(given, mask), expected, strict=True
        ):
            assert torch.equal(ours, reference)
            assert (ours - theirs).abs().max() <= MAX_EMBEDDING_DIFF


def test_onnx_runtime_threads_do_not_spin_between_calls() -> None:
    """Spinning ORT threads took the cores from the torch work between MTCNN's networks (a frame cost
    twice as much); the sessions rollcall makes must turn spinning off, with the configured threads."""
    options = onnxruntime_options(2)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
