"""The INT8 embedder: OpenVINO post-training quantization (NNCF) of the embedder's converted network,
prepared once and cached beside the conversions, with a record of the gates it passed on this CPU.

Preparation (``python -m ml.quantize``, in ``ml.quantize.__main__``; never per request) quantizes the
float32 OpenVINO conversion with NNCF, calibrated on face chips (the shared facebank's, by default), then
measures on held-out chips (the embedder's oracle chips) the cosine of each INT8 embedding to its float32
twin and times both networks back to back on this CPU. The record (``Int8Record``) travels with the model
files, hashed with them.

``ROLLCALL_EMBEDDER_PRECISION`` chooses: ``float32``; ``int8`` (refused unless prepared and within the
gates); ``auto`` (the default): INT8 only where its record says the gates held and it measured faster on
a CPU of this kind, float32 everywhere else (a GPU, another engine, a CPU never measured).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.metadata
import json
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

import errors
from ml.engines import EngineLoader
from ml.engines.sessions import OpenVINOSession, Session

if TYPE_CHECKING:
    from ml.embedder import Embedder
    from ml.pipeline import FacePipeline

Precision = Literal["auto", "float32", "int8"]
PRECISIONS: tuple[Precision, ...] = ("auto", "float32", "int8")
VARIANT = "int8"
# The gates of issue 24: each INT8 embedding's cosine to its float32 twin, and their median.
MIN_COSINE = 0.98
MIN_MEDIAN_COSINE = 0.995
_TIMED_BATCH = 8  # chips per timed forward (a frame's faces go through in one forward)
_TIMED_ROUNDS = 7


@dataclass(frozen=True)
class Int8Record:
    """How an INT8 network was made and what it measured, on which CPU."""

    embedder: str
    cpu: str
    nncf: str
    calibration_chips: int
    calibration_sha256: str
    gate_chips: int
    min_cosine: float
    median_cosine: float
    float32_ms: float  # median per forward of ``_TIMED_BATCH`` chips
    int8_ms: float
    speedup: float

    @property
    def gates_held(self) -> bool:
        return self.min_cosine >= MIN_COSINE and self.median_cosine >= MIN_MEDIAN_COSINE

    @property
    def faster(self) -> bool:
        return self.speedup > 1.0

    def to_json(self) -> dict[str, object]:
        return {**dataclasses.asdict(self), "gates_held": self.gates_held, "faster": self.faster}

    @classmethod
    def read(cls, path: Path) -> Int8Record:
        data = json.loads(path.read_text())
        return cls(**{f.name: data[f.name] for f in dataclasses.fields(cls)})


def cpu_signature() -> str:
    """The CPU's model name and the instruction sets INT8 speed depends on (a record measured on one CPU
    says nothing about another)."""
    model, flags = "unknown", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and model == "unknown":
                model = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")
    return " ".join([model, *(f for f in wanted if f in flags)])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two [N, D] arrays."""
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


def prepare_int8(
    loader: EngineLoader, embedder: Embedder, calibration_chips: np.ndarray, gate_chips: np.ndarray
) -> Int8Record:
    """Quantize ``embedder``'s OpenVINO conversion, calibrated on ``calibration_chips``, and record its
    gates on ``gate_chips`` and its speed on this CPU; cached (``ConversionCache.prepare``)."""
    if loader.engine != "openvino":
        raise errors.InvalidInput(f"the INT8 embedder runs on OpenVINO, not {loader.engine}")
    for chips in (calibration_chips, gate_chips):
        embedder.check_chips(chips)
        if len(chips) == 0:
            raise errors.InvalidInput("INT8 preparation needs calibration and gate chips")
    spec = embedder.net_spec()
    float32 = loader.session(embedder.network, spec)
    xml = loader.conversions.converted_paths(spec)[0]

    def make(tmp: Path, names: list[str]) -> list[Path]:
        import nncf
        import openvino as ov

        # NNCF draws its progress bar on stdout, which belongs to the commands' results (one JSON line).
        with contextlib.redirect_stdout(sys.stderr):
            quantized = nncf.quantize(
                ov.Core().read_model(str(xml)),
                nncf.Dataset([chip[None] for chip in calibration_chips]),
                subset_size=len(calibration_chips),
            )
        model_xml = tmp / names[0]
        ov.save_model(quantized, str(model_xml), compress_to_fp16=False)
        int8 = OpenVINOSession(model_xml, loader.threads)
        record = _measure(embedder, float32, int8, calibration_chips, gate_chips)
        (tmp / names[2]).write_text(json.dumps(record.to_json(), indent=2, sort_keys=True) + "\n")
        return [model_xml, model_xml.with_suffix(".bin"), tmp / names[2]]

    paths = loader.conversions.prepare(spec, VARIANT, make)
    return Int8Record.read(paths[2])


def _measure(
    embedder: Embedder, float32: Session, int8: Session, calibration: np.ndarray, gate_chips: np.ndarray
) -> Int8Record:
    import torch

    def run(session: Session, chips: np.ndarray) -> np.ndarray:
        return session.run(torch.from_numpy(np.ascontiguousarray(chips)))[0].numpy()

    similarity = cosines(run(int8, gate_chips), run(float32, gate_chips))
    batch = np.resize(gate_chips, (_TIMED_BATCH, *gate_chips.shape[1:]))
    float_ms: list[float] = []
    int8_ms: list[float] = []
    for r in range(_TIMED_ROUNDS + 1):  # the first round warms both up
        for session, times in ((float32, float_ms), (int8, int8_ms))[:: 1 if r % 2 else -1]:
            started = time.perf_counter()
            run(session, batch)
            if r:
                times.append((time.perf_counter() - started) * 1000)
    return Int8Record(
        embedder=embedder.name,
        cpu=cpu_signature(),
        nncf=importlib.metadata.version("nncf"),
        calibration_chips=len(calibration),
        calibration_sha256=_sha256(calibration),
        gate_chips=len(gate_chips),
        min_cosine=round(float(similarity.min()), 5),
        median_cosine=round(float(np.median(similarity)), 5),
        float32_ms=round(statistics.median(float_ms), 3),
        int8_ms=round(statistics.median(int8_ms), 3),
        speedup=round(statistics.median(f / i for f, i in zip(float_ms, int8_ms, strict=True)), 3),
    )


def _sha256(chips: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(chips).tobytes()).hexdigest()


def prepared_int8(
    loader: EngineLoader, embedder: Embedder | type[Embedder]
) -> tuple[Path, Int8Record] | None:
    """The prepared INT8 network of ``embedder`` for ``loader``'s engine and its record, if any."""
    if loader.engine != "openvino":
        return None
    paths = loader.conversions.cached(embedder.net_spec(), VARIANT)
    return None if paths is None else (paths[0], Int8Record.read(paths[2]))


def choose_precision(
    requested: str, loader: EngineLoader, embedder: Embedder | type[Embedder]
) -> tuple[str, Session | None]:
    """The embedder's precision for ``requested`` and, for INT8, its session (see the module docstring);
    ``embedder``: the model (or its class) being built."""
    if requested not in PRECISIONS:
        raise errors.InvalidInput(f"embedder precision must be one of {PRECISIONS}, got {requested!r}")
    if requested == "float32":
        return "float32", None
    found = prepared_int8(loader, embedder)
    if requested == "auto":
        if found is None:
            return "float32", None
        path, record = found
        if not (record.gates_held and record.faster and record.cpu == cpu_signature()):
            return "float32", None
        return "int8", OpenVINOSession(path, loader.threads)
    if loader.engine != "openvino":
        raise errors.InvalidInput(f"the INT8 embedder runs on the openvino engine, not {loader.engine}")
    if found is None:
        raise errors.WeightsMissing(
            f"{embedder.name} has no INT8 network for {loader.describe()} in {loader.store.cache_dir}: "
            "run `python -m ml.quantize` first"
        )
    path, record = found
    if not record.gates_held:
        raise errors.InvalidInput(
            f"the INT8 {embedder.name} failed its gates (cosine to float32 min {record.min_cosine}, "
            f"median {record.median_cosine}; needed {MIN_COSINE} and {MIN_MEDIAN_COSINE}): use float32"
        )
    return "int8", OpenVINOSession(path, loader.threads)


def read_chips(folder: Path, size: int) -> np.ndarray:
    """Every image in ``folder`` that is a ``size``×``size`` chip, as [N, size, size, 3] RGB uint8."""
    import cv2

    chips = []
    for path in sorted(folder.iterdir()):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is not None and image.shape[:2] == (size, size):
            chips.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
    if not chips:
        raise errors.InvalidInput(f"no {size}x{size} chips in {folder}")
    return np.stack(chips)


def calibration_chips(pipe: FacePipeline, photos: Sequence[Path]) -> np.ndarray:
    """The most probable face of each photo, aligned for the pipeline's embedder."""
    import cv2

    chips = []
    for path in photos:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        found = pipe.detect([image])[0]
        if len(found):
            chips.append(pipe.align(image, found.landmarks[:1])[0])
    if not chips:
        raise errors.InvalidInput("no face found in the calibration photos")
    return np.stack(chips)
