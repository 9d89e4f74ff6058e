"""Part 10: attendance on one classroom frame, 1920x1080 with 32 faces, in process, at rollcall's defaults.

The frame is ``benchmarks.classroom``'s synthetic classroom with four rows of eight faces, 24 to 44 px
wide (back to front): faces the default 20 px minimum finds without the small-face mode. The figure is
the median over the repeats of detect + align + embed + match against the headline facebank.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from benchmarks.classroom import FRAME_SIZE, build_classroom, score_detections
from benchmarks.engine import engine_of
from benchmarks.inprocess import timed_frame
from benchmarks.networks import NetworkClock
from benchmarks.stats import summarize
from ml.pipeline import FacePipeline
from recognition.gallery import Gallery

log = logging.getLogger("benchmarks.classroom")
ROWS = ((8, 24.0), (8, 30.0), (8, 36.0), (8, 44.0))
MIN_PROB = 0.9  # a pasted face counts as found by a detection this sure that overlaps it


def run(
    pipe: FacePipeline, shared: Path, gallery: Gallery, threshold: float, repeats: int, warmup: int
) -> dict[str, Any]:
    room = build_classroom(shared, rows=ROWS)
    identities = gallery.person_count
    for _ in range(warmup):
        timed_frame(pipe, room.frame, {identities: gallery}, threshold)
    totals: list[float] = []
    stages: dict[str, list[float]] = {"detect": [], "align": [], "embed": [], "match": []}
    networks = NetworkClock(pipe)
    detector_ms = 0.0
    for _ in range(max(1, repeats)):
        with networks.measuring():
            timing, _ = timed_frame(pipe, room.frame, {identities: gallery}, threshold)
        detector_ms += networks.detector_ms
        totals.append(timing.attendance(identities))
        for name, ms in (
            ("detect", timing.detect),
            ("align", timing.align),
            ("embed", timing.embed),
            ("match", timing.match[identities]),
        ):
            stages[name].append(ms)
    found = pipe.detect([room.frame])[0]
    score = score_detections(room.boxes, found.boxes, found.probs, MIN_PROB)
    total = summarize(totals)
    log.info(
        "classroom: %dx%d, %d faces (%d found): attendance %.1f ms",
        *FRAME_SIZE,
        score["faces"],
        score["found"],
        total.median,
    )
    return {
        "frame": f"{FRAME_SIZE[0]}x{FRAME_SIZE[1]}",
        "faces_pasted": score["faces"],
        "faces_found": score["found"],
        "false_boxes": score["false_boxes"],
        "faces_detected": len(found),
        "identities": identities,
        "attendance_ms": total.to_json(),
        "stage_median_ms": {k: round(summarize(v).median, 3) for k, v in stages.items()},
        # Time inside MTCNN's three networks / whole detection, over the measured repeats.
        "detect_network_share": round(detector_ms / sum(stages["detect"]), 3),
        "engine": engine_of(pipe.describe()),
    }
