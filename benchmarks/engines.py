"""Part ``engines``: rollcall's detection on the torch engine against OpenVINO, same frames, same process.

torch is the engine a GPU worker runs, OpenVINO the one ``auto`` picks on a CPU; on the CPU torch's
detection should cost little more than OpenVINO's at camera sizes (issue 24 asks ≤ 1.3× at 1280×720).
Each frame is detected on both engines back to back, alternating which goes first; the ratio is the
median over those pairs of torch time / OpenVINO time.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence
from typing import Any

from benchmarks.frames import Frame, load_frames
from benchmarks.stats import summarize
from ml.engines import available_engines
from ml.pipeline import FacePipeline, PipelineConfig, load_pipeline
from ml.timing import StageTimer

log = logging.getLogger("benchmarks.engines")
SIZE = "1280x720"


def _detect_ms(pipe: FacePipeline, frame: Frame) -> float:
    clock = StageTimer()
    with clock.stage("detect"):
        pipe.detect([frame.image])
    return clock.ms["detect"]


def compare(
    torch_pipe: FacePipeline, openvino: FacePipeline, frames: Sequence[Frame], repeats: int
) -> dict[str, Any]:
    """Both engines on every frame (one unmeasured pass first: oneDNN and OpenVINO build per shape)."""
    for frame in frames:
        _detect_ms(torch_pipe, frame)
        _detect_ms(openvino, frame)
    torch_ms: list[float] = []
    openvino_ms: list[float] = []
    for r in range(repeats):
        for i, frame in enumerate(frames):
            if (r + i) % 2 == 0:
                a, b = _detect_ms(torch_pipe, frame), _detect_ms(openvino, frame)
            else:
                b, a = _detect_ms(openvino, frame), _detect_ms(torch_pipe, frame)
            torch_ms.append(a)
            openvino_ms.append(b)
    return {
        "samples": len(torch_ms),
        "torch_detect_ms": summarize(torch_ms).to_json(),
        "openvino_detect_ms": summarize(openvino_ms).to_json(),
        "torch_over_openvino": round(
            summarize([a / b for a, b in zip(torch_ms, openvino_ms, strict=True)]).median, 3
        ),
    }


def run(config: PipelineConfig, photos: Sequence[str], repeats: int) -> dict[str, Any]:
    """The ratio on the photos stretched to ``SIZE``; skipped (with a note) without OpenVINO."""
    if "openvino" not in available_engines():
        return {"skipped": "OpenVINO is not installed", "sizes": {}}
    torch_pipe = load_pipeline(dataclasses.replace(config, engine="torch", device="cpu"))
    openvino = load_pipeline(dataclasses.replace(config, engine="openvino", device="cpu"))
    sizes = {SIZE: compare(torch_pipe, openvino, load_frames(list(photos), [SIZE])[SIZE], repeats)}
    log.info("engines: %s: torch / OpenVINO detection %.2fx", SIZE, sizes[SIZE]["torch_over_openvino"])
    return {"torch": torch_pipe.engine, "openvino": openvino.engine, "sizes": sizes}
