"""Part 6: the small-face mode's cost and gain on a synthetic 1920x1080 classroom frame.

The same frame (36 real faces shrunk to 8-20 px, ``benchmarks/classroom.py``) is detected with the
mode off and on, alternating, after a warm-up; per mode: median and p95 per frame, the tile and merge
parts, and faces found / false boxes at probability 0.7 and 0.9.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from benchmarks.classroom import build_classroom, score_detections
from benchmarks.stats import ratio, summarize
from contract.jobs import SmallFaces
from ml.pipeline import FacePipeline

log = logging.getLogger("benchmarks.small_faces")
ROWS = ((6, 8.0), (6, 10.0), (6, 12.0), (6, 14.0), (6, 17.0), (6, 20.0))
MODES = ("off", "on")


def run(pipe: FacePipeline, shared: Path, repeats: int, warmup: int) -> dict[str, Any]:
    room = build_classroom(shared, rows=ROWS)
    times: dict[str, list[float]] = {mode: [] for mode in MODES}
    parts: dict[str, dict[str, list[float]]] = {mode: {} for mode in MODES}
    found: dict[str, Any] = {}
    for round_ in range(warmup + max(1, repeats)):
        order = MODES if round_ % 2 == 0 else MODES[::-1]
        for mode in order:
            started = time.perf_counter()
            detected = pipe.detect_small_faces(room.frame, SmallFaces(mode=mode))
            elapsed_ms = (time.perf_counter() - started) * 1000
            if round_ < warmup:
                continue
            times[mode].append(elapsed_ms)
            for part, ms in detected.timings_ms.items():
                parts[mode].setdefault(part, []).append(ms)
            found[mode] = {
                f"at_{p}": score_detections(
                    room.boxes, detected.detections.boxes, detected.detections.probs, p
                )
                for p in (0.7, 0.9)
            }
    result: dict[str, Any] = {
        "frame": "1920x1080 synthetic classroom, 36 faces 8-20 px wide",
        "modes": {
            mode: {
                "per_frame_ms": summarize(times[mode]).to_json(),
                "parts_median_ms": {part: round(summarize(v).median, 3) for part, v in parts[mode].items()},
                **found[mode],
            }
            for mode in MODES
        },
    }
    result["cost_ratio_on_vs_off"] = ratio(summarize(times["on"]).median, summarize(times["off"]).median)
    log.info("small faces: off %.0f ms, on %.0f ms", times["off"][-1], times["on"][-1])
    return result
