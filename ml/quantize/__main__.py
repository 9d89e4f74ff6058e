"""``python -m ml.quantize --calibration DIR --gate-chips DIR``: prepare the INT8 embedder, print its record.

Apart from ``ml.quantize`` because it loads the whole pipeline (``ml.pipeline``), which builds the embedder
with ``ml.quantize.choose_precision``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

import errors
from ml.align import flip_chips
from ml.engines import EngineLoader
from ml.pipeline import PipelineConfig, load_pipeline
from ml.quantize import calibration_chips, prepare_int8, read_chips
from ml.weights import ModelStore
from settings import get_settings


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m ml.quantize --calibration DIR --gate-chips DIR``: prepare the INT8 embedder and print its
    record. Calibration: the faces of every photo under DIR (one face per photo, as enrolment takes them),
    and their mirror images; gate chips: aligned chips the embedder takes as they are (e.g. its oracle's)."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m ml.quantize", description=main.__doc__)
    parser.add_argument("--calibration", type=Path, required=True, help="folder of face photos (recursive)")
    parser.add_argument("--gate-chips", type=Path, required=True, help="folder of the embedder's chips")
    parser.add_argument("--embedder", default=settings.embedder)
    parser.add_argument("--model-dir", type=Path, default=settings.model_dir)
    args = parser.parse_args(argv)
    try:
        pipe = load_pipeline(
            PipelineConfig(model_dir=args.model_dir, embedder=args.embedder, device="cpu", engine="openvino")
        )
        calibration = calibration_chips(pipe, sorted(p for p in args.calibration.rglob("*") if p.is_file()))
        calibration = np.concatenate([calibration, flip_chips(calibration)])
        loader = EngineLoader("openvino", ModelStore(args.model_dir), torch.get_num_threads())
        gate_chips = read_chips(args.gate_chips, pipe.embedder.chip_size)
        record = prepare_int8(loader, pipe.embedder, calibration, gate_chips)
    except errors.RollcallError as exc:
        print(f"Error ({exc.code}): {exc.message}")
        return 1
    print(json.dumps(record.to_json(), indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
