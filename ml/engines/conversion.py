"""Conversion: a torch network exported once (ONNX, then OpenVINO IR) into the model store's cache.

A conversion is a preparation step, never done per request: its files are hashed and recorded like a weight
file, keyed by the weights' sha256, the torch and engine versions and the export itself (a change of any
converts again), and made under a file lock so that worker processes starting together convert once.
``python -m ml.engines convert`` prepares them where the model dir is writable (an image build). Running a
converted file is ``ml.engines.sessions``' job.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from torch import Tensor, nn

import errors
from ml.weights import ModelStore, file_sha256

log = logging.getLogger("rollcall.engines")

EngineName = Literal["torch", "openvino", "onnxruntime"]
# Bump when the way networks are exported changes, so cached conversions are redone.
_CONVERSION_REVISION = 1
CONVERTED_DIR = "converted"


@dataclass(frozen=True)
class NetSpec:
    """One network to run: its name, the weight artifact it was built from, example inputs (for tracing)
    and which axes of each input vary between calls (batch, height, width).

    ``channels_last`` names the inputs (by position) that callers pass as channels-last NCHW tensors (NHWC
    in memory): the OpenVINO runner then declares them NHWC and hands their memory over as it is, instead
    of copying them into NCHW order (bit-identical outputs; measured on P-Net over a 640×480 frame's
    canvas, 17.9 → 14.6 ms a call)."""

    name: str
    weights: str
    examples: tuple[Tensor, ...]
    dynamic_axes: tuple[dict[int, str], ...]
    outputs: tuple[str, ...]
    channels_last: tuple[int, ...] = ()

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(f"input{i}" for i in range(len(self.examples)))


def engine_version(engine: EngineName) -> str:
    """The installed version of ``engine``'s package (torch's for torch)."""
    if engine == "torch":
        return torch.__version__
    return importlib.metadata.version(engine)


class ConversionCache:
    """The conversions of one engine in one model store: made once, verified by their hash on each load."""

    def __init__(self, engine: EngineName, store: ModelStore) -> None:
        self.engine = engine
        self.store = store

    def describe(self) -> str:
        return f"{self.engine}-{engine_version(self.engine)}"

    def conversion_key(self, spec: NetSpec) -> str:
        """What a conversion depends on: the weights, torch, the engine and the export itself."""
        source = {
            "weights_sha256": self.store.expected_sha256(spec.weights)
            or file_sha256(self.store.path(spec.weights)),
            "torch": torch.__version__,
            "engine": self.describe(),
            "revision": _CONVERSION_REVISION,
            "inputs": [
                [list(t.shape), str(t.dtype), sorted(axes.items())]
                for t, axes in zip(spec.examples, spec.dynamic_axes, strict=True)
            ],
        }
        return hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:16]

    def converted_paths(self, spec: NetSpec, variant: str = "") -> list[Path]:
        """Where the conversion of ``spec`` lies (``variant``: a model derived from it, e.g. ``int8``,
        with a record of how it was made beside it)."""
        engine = f"{self.engine}-{variant}" if variant else self.engine
        stem = self.store.cache_dir / CONVERTED_DIR / f"{spec.name}.{engine}.{self.conversion_key(spec)}"
        if self.engine == "openvino":
            paths = [stem.with_suffix(stem.suffix + ".xml"), stem.with_suffix(stem.suffix + ".bin")]
        else:
            paths = [stem.with_suffix(stem.suffix + ".onnx")]
        return [*paths, stem.with_suffix(stem.suffix + ".record.json")] if variant else paths

    def cached(self, spec: NetSpec, variant: str) -> list[Path] | None:
        """The verified files of a derived model (``prepare``), or None when it was never prepared (or no
        longer verifies)."""
        paths = self.converted_paths(spec, variant)
        return paths if _verified(paths) else None

    def prepare(
        self, spec: NetSpec, variant: str, make: Callable[[Path, list[str]], list[Path]]
    ) -> list[Path]:
        """Make a derived model of ``spec`` (``make(tmp_dir, file names)`` writes its files there), hashed
        and cached beside the conversions under the same lock; made again each time this is called."""
        paths = self.converted_paths(spec, variant)
        names = [p.name for p in paths]
        return self._cache(f"{spec.name} ({variant})", paths, lambda tmp: make(tmp, names), again=True)

    def converted(self, module: nn.Module, spec: NetSpec) -> list[Path]:
        """The verified conversion of ``module``; converts (once, under a file lock) when it is missing,
        stale or damaged."""
        paths = self.converted_paths(spec)
        return self._cache(
            spec.name, paths, lambda tmp: _convert(self.engine, module, spec, tmp, paths[0].name)
        )

    def _cache(
        self, name: str, paths: list[Path], make: Callable[[Path], list[Path]], again: bool = False
    ) -> list[Path]:
        """``paths`` verified against their recorded sha256, made by ``make`` (into a temporary folder,
        then moved into place) under a file lock when missing or damaged, or when ``again``."""
        if not again and _verified(paths):
            return paths
        directory = paths[0].parent
        with contextlib.ExitStack() as stack:
            try:
                directory.mkdir(parents=True, exist_ok=True)
                stack.enter_context(_file_lock(directory / ".lock"))
            except OSError as exc:  # a read-only model dir (a container image): convert where it is built
                raise errors.WeightsMissing(
                    f"{name} has no {self.describe()} conversion in {directory} and it cannot be "
                    f"written there ({exc.strerror}): run `python -m ml.engines convert --engine "
                    f"{self.engine}` where the model dir is writable"
                ) from exc
            if not again and _verified(paths):  # another process converted it while we waited
                return paths
            log.warning("preparing %s for %s into %s", name, self.describe(), directory)
            with tempfile.TemporaryDirectory(dir=directory, prefix=".convert.") as tmp:
                produced = make(Path(tmp))
                for made, final in zip(produced, paths, strict=True):
                    os.replace(made, final)
            manifest = {p.name: file_sha256(p) for p in paths}
            _manifest_path(paths).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        if not _verified(paths):
            raise errors.WeightsCorrupt(f"conversion of {name} for {self.describe()} did not verify")
        return paths


def _manifest_path(paths: Sequence[Path]) -> Path:
    return paths[0].with_suffix(".sha256.json")


def _verified(paths: Sequence[Path]) -> bool:
    """Whether every converted file is present with the sha256 recorded when it was made."""
    manifest = _manifest_path(paths)
    if not manifest.is_file() or not all(p.is_file() for p in paths):
        return False
    try:
        recorded = json.loads(manifest.read_text())
    except ValueError:
        return False
    if all(recorded.get(p.name) == file_sha256(p) for p in paths):
        return True
    log.warning("converted model %s does not match its recorded sha256: converting again", paths[0])
    return False


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with open(path, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert(engine: EngineName, module: nn.Module, spec: NetSpec, tmp: Path, name: str) -> list[Path]:
    onnx_path = tmp / (Path(name).stem + ".onnx")
    # The TorchScript-based exporter handles these plain convolutional nets with dynamic axes as they are;
    # it warns that it is deprecated in favour of torch.export, which needs onnxscript.
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            module,
            spec.examples,
            str(onnx_path),
            dynamo=False,
            input_names=list(spec.inputs),
            output_names=list(spec.outputs),
            dynamic_axes={
                **{n: axes for n, axes in zip(spec.inputs, spec.dynamic_axes, strict=True)},
                **{n: {0: "batch"} for n in spec.outputs},
            },
            opset_version=17,
        )
    if engine == "onnxruntime":
        return [onnx_path]
    import openvino as ov

    xml = tmp / name
    ov.save_model(ov.Core().read_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    return [xml, xml.with_suffix(".bin")]
