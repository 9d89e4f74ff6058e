"""Inference engines behind one interface: torch, OpenVINO and ONNX Runtime run the same networks.

The model code builds its torch modules from the verified weights as always, then asks an ``EngineLoader``
for a ``Runner`` of each network: a callable from input tensors to output tensors. With ``torch`` the
runner is the module itself; with ``openvino`` or ``onnxruntime`` the module is converted once (OpenVINO IR
or ONNX), the conversion output is hashed and cached in the model directory like a weight file, keyed by
the weights' sha256 and the torch and engine versions (a change of any re-converts), and loaded at start-up,
never per request. ``auto`` picks the fastest engine available for the device (measured; see the README).
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
from typing import Any, Literal

import numpy as np
import torch
from torch import Tensor, nn

import errors
from ml.weights import ModelStore, file_sha256

log = logging.getLogger("rollcall.engines")

EngineName = Literal["torch", "openvino", "onnxruntime"]
ENGINES: tuple[EngineName, ...] = ("torch", "openvino", "onnxruntime")
ENGINE_CHOICES = ("auto", *ENGINES)
# Bump when the way networks are exported changes, so cached conversions are redone.
_CONVERSION_REVISION = 1
_CONVERTED_DIR = "converted"
# float32 as torch computes (no bf16/f16 on CPUs that have it); one request at a time per worker process;
# no thread pinning: several worker processes share the cores (and it measured no faster alone).
OPENVINO_CONFIG: dict[str, Any] = {
    "INFERENCE_PRECISION_HINT": "f32",
    "PERFORMANCE_HINT": "LATENCY",
    "ENABLE_CPU_PINNING": False,
}

Runner = Callable[..., tuple[Tensor, ...]]


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


def available_engines() -> list[EngineName]:
    """Engines importable in this environment (torch always)."""
    found: list[EngineName] = ["torch"]
    for engine in ("openvino", "onnxruntime"):
        try:
            importlib.metadata.version(engine)
        except importlib.metadata.PackageNotFoundError:
            continue
        found.append(engine)  # type: ignore[arg-type]
    return found


def resolve_engine(name: str, device: torch.device) -> EngineName:
    """``auto``: torch on a GPU; on the CPU OpenVINO when installed, else torch (measured: OpenVINO fastest,
    ONNX Runtime slower than torch; README "Inference engines"). OpenVINO and ONNX Runtime: CPU only."""
    if name not in ENGINE_CHOICES:
        raise errors.InvalidInput(f"engine must be one of {ENGINE_CHOICES}, got {name!r}")
    if name == "auto":
        if device.type != "cpu":
            return "torch"
        available = available_engines()
        return "openvino" if "openvino" in available else "torch"
    if name != "torch" and device.type != "cpu":
        raise errors.InvalidInput(f"engine {name} runs on the CPU only; device is {device}")
    if name not in available_engines():
        raise errors.InvalidInput(f"engine {name} is not installed (pip install {name})")
    return name  # type: ignore[return-value]


class EngineLoader:
    """Turns torch modules into runners of one engine, converting through the model store's cache."""

    def __init__(self, engine: EngineName, store: ModelStore, threads: int) -> None:
        self.engine = engine
        self.store = store
        self.threads = max(1, threads)

    def describe(self) -> str:
        return f"{self.engine}-{engine_version(self.engine)}"

    def load(self, module: nn.Module, spec: NetSpec) -> Runner:
        module.eval().requires_grad_(False)
        if self.engine == "torch":
            return _torch_runner(module)
        files = self._converted(module, spec)
        if self.engine == "openvino":
            return openvino_runner(files[0], self.threads, spec.channels_last)
        return _onnxruntime_runner(files[0], spec, self.threads)

    # --- conversion cache ---
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
        stem = self.store.cache_dir / _CONVERTED_DIR / f"{spec.name}.{engine}.{self.conversion_key(spec)}"
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

    def _converted(self, module: nn.Module, spec: NetSpec) -> list[Path]:
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


def _torch_runner(module: nn.Module) -> Runner:
    def run(*inputs: Tensor) -> tuple[Tensor, ...]:
        out = module(*inputs)
        return tuple(out) if isinstance(out, tuple) else (out,)

    return run


def _as_numpy(tensor: Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().numpy())


def openvino_runner(xml: Path, threads: int, channels_last: Sequence[int] = ()) -> Runner:
    """A runner of an OpenVINO model file: a conversion, or a model derived from one (``ml.quantize``)."""
    import openvino as ov
    from openvino.preprocess import PrePostProcessor

    core = ov.Core()
    model = core.read_model(str(xml))
    if channels_last:
        layouts = PrePostProcessor(model)
        for index in channels_last:
            layouts.input(index).tensor().set_layout(ov.Layout("NHWC"))
            layouts.input(index).model().set_layout(ov.Layout("NCHW"))
        model = layouts.build()
    compiled = core.compile_model(model, "CPU", {**OPENVINO_CONFIG, "INFERENCE_NUM_THREADS": threads})
    request = compiled.create_infer_request()
    outputs = compiled.outputs

    def run(*inputs: Tensor) -> tuple[Tensor, ...]:
        arrays = [_as_numpy(t.permute(0, 2, 3, 1) if i in channels_last else t) for i, t in enumerate(inputs)]
        results = request.infer(arrays, share_outputs=False)
        return tuple(torch.from_numpy(np.asarray(results[o])) for o in outputs)

    return run


def onnxruntime_options(threads: int) -> Any:
    """ONNX Runtime's session options: ``threads`` for each operator, one operator at a time, and no
    spinning. Its threads otherwise spin after every call, taking the cores from the torch work between
    MTCNN's networks: measured on 2 cores, detection and embedding of a 640×480 frame took 162–179 ms
    with spinning and 77–78 ms without."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _onnxruntime_runner(onnx: Path, spec: NetSpec, threads: int) -> Runner:
    import onnxruntime as ort

    session = ort.InferenceSession(
        str(onnx), onnxruntime_options(threads), providers=["CPUExecutionProvider"]
    )
    names = spec.inputs

    def run(*inputs: Tensor) -> tuple[Tensor, ...]:
        feed: dict[str, Any] = {n: _as_numpy(t) for n, t in zip(names, inputs, strict=True)}
        return tuple(torch.from_numpy(out) for out in session.run(None, feed))

    return run


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ml.engines convert``: prepare the conversions a CPU worker will load (e.g. at image
    build time, where the model dir is still writable)."""
    import argparse

    from ml.pipeline import PipelineConfig, load_pipeline
    from settings import get_settings

    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m ml.engines", description=main.__doc__)
    parser.add_argument("command", choices=["convert"])
    parser.add_argument("--engine", default=settings.engine, choices=ENGINE_CHOICES)
    parser.add_argument("--embedder", default=settings.embedder)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        pipe = load_pipeline(
            PipelineConfig(
                model_dir=settings.model_dir, embedder=args.embedder, device="cpu", engine=args.engine
            )
        )
    except errors.RollcallError as exc:
        print(f"Error ({exc.code}): {exc.message}")
        return 1
    print(f"{pipe.engine}: MTCNN and {pipe.embedder.name} ready in {settings.model_dir / _CONVERTED_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
