"""Inference sessions: one network on one engine, behind one ``run(*inputs) -> outputs``.

The model code (``ml.mtcnn``, ``ml.embedder``) holds a ``Session`` for each network and never knows
which engine answers: torch runs the module itself, OpenVINO and ONNX Runtime run a file that
``ml.engines.conversion`` prepared. Which session a model gets is ``ml.engines.EngineLoader``'s choice.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from torch import Tensor, nn

# float32 as torch computes (no bf16/f16 on CPUs that have it); one request at a time per worker process;
# no thread pinning: several worker processes share the cores (and it measured no faster alone).
OPENVINO_CONFIG: dict[str, Any] = {
    "INFERENCE_PRECISION_HINT": "f32",
    "PERFORMANCE_HINT": "LATENCY",
    "ENABLE_CPU_PINNING": False,
}


class Session(Protocol):
    """One network ready to run: input tensors in, output tensors out (always a tuple)."""

    def run(self, *inputs: Tensor) -> tuple[Tensor, ...]: ...


class TorchSession:
    """The torch module itself (on whatever device it lies)."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module.eval().requires_grad_(False)

    def run(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        out = self.module(*inputs)
        return tuple(out) if isinstance(out, tuple) else (out,)


def _as_numpy(tensor: Tensor) -> np.ndarray:
    return np.ascontiguousarray(tensor.detach().cpu().numpy())


class OpenVINOSession:
    """An OpenVINO model file (a conversion, or a model derived from one: ``ml.quantize``) on the CPU.

    ``channels_last`` names the inputs (by position) that callers pass as channels-last NCHW tensors
    (NHWC in memory): they are declared NHWC and handed over as they are (see ``NetSpec``)."""

    def __init__(self, xml: Path, threads: int, channels_last: Sequence[int] = ()) -> None:
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
        self._request = compiled.create_infer_request()
        self._outputs = compiled.outputs
        self._channels_last = tuple(channels_last)

    def run(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        arrays = [
            _as_numpy(t.permute(0, 2, 3, 1) if i in self._channels_last else t) for i, t in enumerate(inputs)
        ]
        results = self._request.infer(arrays, share_outputs=False)
        return tuple(torch.from_numpy(np.asarray(results[o])) for o in self._outputs)


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


class OnnxRuntimeSession:
    """An ONNX file on ONNX Runtime's CPU provider; inputs are fed by their exported names."""

    def __init__(self, onnx: Path, input_names: Sequence[str], threads: int) -> None:
        import onnxruntime as ort

        self._session = ort.InferenceSession(
            str(onnx), onnxruntime_options(threads), providers=["CPUExecutionProvider"]
        )
        self._names = tuple(input_names)

    def run(self, *inputs: Tensor) -> tuple[Tensor, ...]:
        feed: dict[str, Any] = {n: _as_numpy(t) for n, t in zip(self._names, inputs, strict=True)}
        return tuple(torch.from_numpy(out) for out in self._session.run(None, feed))
