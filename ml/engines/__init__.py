"""Inference engines behind one interface: torch, OpenVINO and ONNX Runtime run the same networks.

The model code builds its torch modules from the verified weights, then asks an ``EngineLoader`` for a
``Session`` of each network (``ml.engines.sessions``: one ``run(*inputs) -> outputs`` per engine). With
``torch`` the session runs the module itself; with ``openvino`` or ``onnxruntime`` the module is converted
once (``ml.engines.conversion``: OpenVINO IR or ONNX, hashed and cached in the model directory like a weight
file) and the session runs the conversion, loaded at start-up, never per request. ``auto`` picks the
fastest engine available for the device (measured; see the README). ``python -m ml.engines convert``
prepares the conversions ahead (``ml.engines.__main__``).
"""

from __future__ import annotations

import importlib.metadata

import torch
from torch import nn

import errors
from ml.engines.conversion import ConversionCache, EngineName, NetSpec
from ml.engines.sessions import OnnxRuntimeSession, OpenVINOSession, Session, TorchSession
from ml.weights import ModelStore

ENGINES: tuple[EngineName, ...] = ("torch", "openvino", "onnxruntime")
ENGINE_CHOICES = ("auto", *ENGINES)


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
    """Makes the sessions of one engine: torch modules as they are, or their cached conversions."""

    def __init__(self, engine: EngineName, store: ModelStore, threads: int) -> None:
        self.engine = engine
        self.store = store
        self.threads = max(1, threads)
        self.conversions = ConversionCache(engine, store)

    def describe(self) -> str:
        return self.conversions.describe()

    def session(self, module: nn.Module, spec: NetSpec) -> Session:
        """``module`` (built from ``spec.weights``) ready to run on this engine."""
        module.eval().requires_grad_(False)
        if self.engine == "torch":
            return TorchSession(module)
        files = self.conversions.converted(module, spec)
        if self.engine == "openvino":
            return OpenVINOSession(files[0], self.threads, spec.channels_last)
        return OnnxRuntimeSession(files[0], spec.inputs, self.threads)


def torch_loader(store: ModelStore) -> EngineLoader:
    """The loader a model uses when none is given: its own torch modules, no conversion (torch sessions
    take torch's own thread setting)."""
    return EngineLoader("torch", store, threads=1)
