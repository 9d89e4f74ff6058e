"""rollcall's jobs: detect, identify, attendance, enrol and rebuild, each registered from its model.

One line per job type registers its Celery task (``tasks.registry.register``: the arguments model of
``contract.jobs``, and the function here that does the job): load the frame, call the recognition core
(``recognition.core``) or the facebank, and return the job's answer; the registry validates the
message, times, logs and wraps the answer in the worker's envelope.
"""

from __future__ import annotations

import logging

from contract.jobs import (
    AttendanceArgs,
    AttendanceResult,
    DetectArgs,
    DetectResult,
    EnrolFaceArgs,
    EnrolFaceResult,
    FrameSource,
    IdentifyArgs,
    IdentifyResult,
    RebuildArgs,
    RebuildResult,
    SmallFaces,
)
from errors import RollcallError
from ml.image import decode_image
from ml.timing import StageTimer
from recognition import core, enrolment
from recognition.frames import Frame, load_frame
from tasks.registry import register
from tasks.runtime import Runtime

log = logging.getLogger("rollcall.jobs")


def _load(source: FrameSource, res: Runtime, timer: StageTimer) -> Frame:
    read_upload = res.records.uploads.read if res.records is not None else None
    return load_frame(
        source,
        res.settings,
        res.settings.camera_allow,
        timer,
        lambda: res.cameras,
        read_upload=read_upload,
        shared_frame=res.shared_frame,
    )


def _tiling(frame: Frame, small_faces: SmallFaces | None, res: Runtime) -> core.Tiling:
    height, width = frame.image.shape[:2]
    return core.choose_tiling(frame.small_faces, small_faces, width * height, res.settings)


def run_detect(args: DetectArgs, res: Runtime, timer: StageTimer) -> DetectResult:
    """Where are the faces: boxes, probabilities and 5 landmarks per face."""
    frame = _load(args.source, res, timer)
    return core.detect(frame, res.models, _tiling(frame, args.small_faces, res), timer)


def run_identify(args: IdentifyArgs, res: Runtime, timer: StageTimer) -> IdentifyResult:
    """Who is this one face, given by its 5 landmarks or by a box around it."""
    frame = _load(args.source, res, timer)
    flip = res.settings.match_flip
    return core.identify(frame, args, res.models, res.snapshot(), flip, timer)


def run_attendance(args: AttendanceArgs, res: Runtime, timer: StageTimer) -> AttendanceResult:
    """Who of the enrolled people (or of the roster) is in the frame; each person at most once."""
    frame = _load(args.source, res, timer)
    tiling = _tiling(frame, args.small_faces, res)
    bank = res.snapshot(args.roster)
    return core.attendance(frame, args, res.models, bank, tiling, res.settings.match_flip, timer)


def run_enrol_face(args: EnrolFaceArgs, res: Runtime, timer: StageTimer) -> EnrolFaceResult:
    """Add one photo of one face to a person: detect (exactly one face), check, embed, store atomically.

    The checks are ``recognition.enrolment``'s quality gate; the result reports what they measured.
    """
    frame = _load(args.source, res, timer)
    bank, faces = res.snapshot(), res.facebank.faces
    return enrolment.enrol_face(frame, args.person_id, res.models, bank, faces, res.settings, timer)


def run_rebuild(args: RebuildArgs, res: Runtime, timer: StageTimer) -> RebuildResult:
    """Re-embed every enrolled face for the configured model (the seed's ``--update``, without a restart)."""
    pipe, bank, settings = res.pipe, res.facebank, res.settings
    embedded = failed = 0
    for item in bank.embeddings.pending(pipe.embedder.name, pipe.embedder.version):
        try:
            with timer.stage("decode"):
                image = decode_image(item.image_bytes, settings.frame_max_pixels)
        except RollcallError as exc:
            log.warning("rebuild: face %s cannot be decoded: %s", item.face_id, exc.code)
            failed += 1
            continue
        with timer.stage("embed"):
            vector = pipe.embed(image, item.landmarks, flip=settings.enrol_flip)[0]
        with timer.stage("store"):
            bank.embeddings.put(item.face_id, pipe.embedder.name, pipe.embedder.version, vector)
        embedded += 1
    return RebuildResult(embedded=embedded, failed=failed)


detect = register(DetectArgs, run_detect)
identify = register(IdentifyArgs, run_identify)
attendance = register(AttendanceArgs, run_attendance)
enrol_face = register(EnrolFaceArgs, run_enrol_face)
rebuild_facebank = register(RebuildArgs, run_rebuild)
