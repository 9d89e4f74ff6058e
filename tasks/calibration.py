"""``rollcall.models.calibrate``: propose a match threshold from the enrolled faces of the loaded model.

The job only proposes (``facebank.calibration`` has the method); an operator reads the counts it
rests on and applies the threshold with ``POST /v1/facebank/threshold``.
"""

from __future__ import annotations

from typing import Any

from facebank.calibration import calibrate as propose_threshold
from ml.timing import StageTimer
from settings import get_settings
from tasks import runtime
from tasks.jobs import model_task


@model_task("calibrate")
def calibrate(target_far: float = 0.001, *, timer: StageTimer) -> dict[str, Any]:
    """Score every pair of enrolled faces and propose the threshold for ``target_far``."""
    embedder = runtime.pipeline().embedder
    with timer.stage("load"):
        rows = runtime.facebank().embeddings.gallery_rows(embedder.name, embedder.version)
    with timer.stage("score"):
        proposal = propose_threshold(rows, target_far, reference=embedder.default_threshold)
    return {
        "type": "calibrate",
        "model_name": embedder.name,
        "model_version": embedder.version,
        **proposal.to_json(),
        "current_threshold": runtime.match_threshold(),
        "default_threshold": round(embedder.default_threshold, 6),
        "enrol_flip": get_settings().enrol_flip,
    }
