"""``rollcall.models.calibrate``: propose a match threshold from the enrolled faces of the loaded model.

The job only proposes (``recognition.calibration`` has the method); an operator reads the counts it
rests on and applies the threshold with ``POST /v1/facebank/threshold``.
"""

from __future__ import annotations

from typing import Any

from contract.jobs import CALIBRATE, CalibrateArgs, CalibrateResult
from ml.timing import StageTimer
from recognition.calibration import calibrate as propose_threshold
from tasks.jobs import ModelTask, model_task
from tasks.runtime import Runtime


@model_task(CALIBRATE)
def calibrate(task: ModelTask, target_far: float = 0.001) -> dict[str, Any]:
    """Score every pair of enrolled faces and propose the threshold for ``target_far``."""
    return task.run_job(CalibrateArgs, {"target_far": target_far}, run_calibrate)


def run_calibrate(args: CalibrateArgs, res: Runtime, timer: StageTimer) -> CalibrateResult:
    embedder = res.pipe.embedder
    with timer.stage("load"):
        rows = res.facebank.embeddings.gallery_rows(embedder.name, embedder.version)
    with timer.stage("score"):
        proposal = propose_threshold(rows, args.target_far, reference=embedder.default_threshold)
    return CalibrateResult(
        model_name=embedder.name,
        model_version=embedder.version,
        **proposal.to_json(),
        current_threshold=res.snapshot().threshold,
        default_threshold=round(embedder.default_threshold, 6),
        enrol_flip=res.settings.enrol_flip,
    )
