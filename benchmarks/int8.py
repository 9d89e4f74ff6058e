"""Part ``int8``: the INT8 embedder prepared the way a deployment prepares it, in a model dir of its own.

``python -m ml.quantize`` calibrates on the shared facebank's faces (and their mirror images) and records
the gates on the embedder's oracle chips and its speed on this CPU. The benchmark prepares it in a
temporary model dir whose weights and float32 conversions are links to the configured ones, so it never
changes what the machine's own workers load; the parts after it then run with the precision
``ROLLCALL_EMBEDDER_PRECISION`` picks there (``auto``: INT8 where the record says it held its gates and
ran faster).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ml.align import flip_chips
from ml.engines import EngineLoader
from ml.pipeline import PipelineConfig, load_pipeline
from ml.quantize import calibration_chips, prepare_int8, read_chips
from ml.weights import ModelStore

log = logging.getLogger("benchmarks.int8")
GATE_CHIPS = {
    "dlib_resnet_v1": "oracles/dlib_resnet_v1/chips",
    "facenet_vggface2": "oracles/facenet_inception_resnet_v1/chips",
}


def linked_model_dir(source: Path, target: Path) -> Path:
    """``target`` as a model dir holding links to ``source``'s weights and float32 conversions."""
    (target / "converted").mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        if path.is_file():
            (target / path.name).symlink_to(path)
    for path in (source / "converted").glob("*"):
        if path.is_file() and not path.name.startswith("."):
            (target / "converted" / path.name).symlink_to(path)
    return target


def run(config: PipelineConfig, shared: Path, target: Path) -> dict[str, Any]:
    """Prepare the INT8 embedder of ``config``'s embedder in ``target`` (linked to ``config.model_dir``);
    the record it wrote."""
    model_dir = linked_model_dir(config.model_dir, target)
    float32 = load_pipeline(
        PipelineConfig(model_dir=model_dir, embedder=config.embedder, device="cpu", engine="openvino")
    )
    photos = sorted(p for p in (shared / "datasets" / "facebank").rglob("*") if p.is_file())
    chips = calibration_chips(float32, photos)
    gate_chips = read_chips(shared / GATE_CHIPS[config.embedder], float32.embedder.chip_size)
    loader = EngineLoader("openvino", ModelStore(model_dir), torch.get_num_threads())
    record = prepare_int8(loader, float32.embedder, np.concatenate([chips, flip_chips(chips)]), gate_chips)
    log.info(
        "int8: cosine to float32 min %.4f, median %.4f; %.2fx faster (%s)",
        record.min_cosine,
        record.median_cosine,
        record.speedup,
        "gates held" if record.gates_held else "GATES FAILED",
    )
    return {"model_dir": "temporary, linked to the configured one", **record.to_json()}
