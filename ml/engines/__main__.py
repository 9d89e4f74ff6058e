"""``python -m ml.engines convert``: prepare the conversions a CPU worker will load (e.g. at image build
time, where the model dir is still writable).

Apart from ``ml.engines`` because it loads the whole pipeline (``ml.pipeline``), which imports the engines.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import torch

import errors
from ml.engines import ENGINE_CHOICES
from ml.engines.conversion import CONVERTED_DIR
from ml.pipeline import PipelineConfig, load_pipeline
from settings import get_settings


def main(argv: Sequence[str] | None = None) -> int:
    """Load the pipeline on the chosen engine, converting what is missing; 1 on a rollcall error."""
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m ml.engines", description=__doc__)
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
    print(f"{pipe.engine}: MTCNN and {pipe.embedder.name} ready in {settings.model_dir / CONVERTED_DIR}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
