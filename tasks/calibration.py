"""``rollcall.models.calibrate``: propose a match threshold from the enrolled faces of the loaded model.

The job only proposes (``recognition.calibration`` has the method); an operator reads the counts it
rests on and applies the threshold with ``POST /v1/facebank/threshold``.
"""

from __future__ import annotations

from contract.jobs import CalibrateArgs, CalibrateResult
from ml.timing import StageTimer
from recognition.calibration import calibrate as propose_threshold
from tasks.registry import register
from tasks.runtime import Runtime


def run_calibrate(args: CalibrateArgs, res: Runtime, timer: StageTimer) -> CalibrateResult:
    """Score every pair of enrolled faces and propose the threshold for ``target_far``."""
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


calibrate = register(CalibrateArgs, run_calibrate)
