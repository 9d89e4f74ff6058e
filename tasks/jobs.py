"""rollcall's jobs: detect, identify, attendance, enrol and rebuild, each registered from its model.

One line per job type registers its Celery task (``tasks.registry.register``: the arguments model of
``contract.jobs``, and the function here that does the job): load the frame, call the recognition core
(``recognition.core``) or the facebank, and return the job's answer; the registry validates the
message, times, logs and wraps the answer in the worker's envelope.
"""

from __future__ import annotations

import logging

import numpy as np

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
from contract.people import FaceRecordOut
from errors import MultipleFacesFound, NoFaceFound, RollcallError
from ml.image import decode_image
from ml.quality import measure_face
from ml.timing import StageTimer
from recognition import core
from recognition.frames import Frame, load_frame
from tasks import enrolment, runtime
from tasks.registry import register
from tasks.runtime import Resources

log = logging.getLogger("rollcall.jobs")
# An enrolment photo must hold exactly one face this sure; weaker detections (clothing, posters) are ignored.
ENROL_MIN_PROB = 0.95


def _load(source: FrameSource, res: Resources, timer: StageTimer) -> Frame:
    records = runtime.job_records()
    read_upload = records.uploads.read if records is not None else None
    return load_frame(
        source, res.settings, res.settings.camera_allow, timer, lambda: res.cameras, read_upload=read_upload
    )


def _tiling(frame: Frame, small_faces: SmallFaces | None, res: Resources) -> core.Tiling:
    height, width = frame.image.shape[:2]
    return core.choose_tiling(frame.small_faces, small_faces, width * height, res.settings)


def run_detect(args: DetectArgs, res: Resources, timer: StageTimer) -> DetectResult:
    """Where are the faces: boxes, probabilities and 5 landmarks per face."""
    frame = _load(args.source, res, timer)
    return core.detect(frame, res.pipe, _tiling(frame, args.small_faces, res), timer)


def run_identify(args: IdentifyArgs, res: Resources, timer: StageTimer) -> IdentifyResult:
    """Who is this one face, given by its 5 landmarks or by a box around it."""
    frame = _load(args.source, res, timer)
    flip = res.settings.match_flip
    return core.identify(frame, args.face, args.top_k, res.pipe, res.snapshot(), flip, timer)


def run_attendance(args: AttendanceArgs, res: Resources, timer: StageTimer) -> AttendanceResult:
    """Who of the enrolled people (or of the roster) is in the frame; each person at most once."""
    frame = _load(args.source, res, timer)
    tiling = _tiling(frame, args.small_faces, res)
    bank = res.snapshot(args.roster)
    return core.attendance(frame, args.roster, res.pipe, bank, tiling, res.settings.match_flip, timer)


def run_enrol_face(args: EnrolFaceArgs, res: Resources, timer: StageTimer) -> EnrolFaceResult:
    """Add one photo of one face to a person: detect (exactly one face), check, embed, store atomically.

    The checks are ``tasks.enrolment``'s quality gate; the result reports what they measured.
    """
    frame = _load(args.source, res, timer)
    pipe, settings = res.pipe, res.settings
    detections, _ = core.find_faces(pipe, frame.image, core.Tiling(core.WHOLE_FRAME), timer)
    confident = int((detections.probs >= ENROL_MIN_PROB).sum())
    if confident == 0:
        raise NoFaceFound("no face found in the image; enrol a photo with one clear face")
    if confident > 1:
        raise MultipleFacesFound(f"{confident} faces found; enrol a photo with exactly one face (or crop it)")
    index = int(np.argmax(detections.probs))
    bank = res.snapshot()
    limits = enrolment.QualityLimits.from_settings(settings, bank.threshold)
    with timer.stage("quality"):
        chips = pipe.align(frame.image, detections.landmarks[index : index + 1])
        quality = measure_face(detections.boxes[index], detections.landmarks[index], chips[0])
        enrolment.check_face(quality, limits)
    with timer.stage("embed"):
        vector = pipe.embed_chips(chips, flip=settings.enrol_flip)[0]
    with timer.stage("match"):
        resemblance = enrolment.resemblance(vector, args.person_id, bank.gallery)
        enrolment.check_resemblance(resemblance, limits)
    height, width = frame.image.shape[:2]
    with timer.stage("store"):
        face = res.facebank.faces.add(
            args.person_id,
            image_bytes=frame.data,
            content_type=frame.content_type,
            width=width,
            height=height,
            box=detections.boxes[index].tolist(),
            landmarks=detections.landmarks[index].reshape(-1).tolist(),
            embedding=vector,
            model_name=pipe.embedder.name,
            model_version=pipe.embedder.version,
        )
    return EnrolFaceResult(
        face_id=face.id,
        face=FaceRecordOut.model_validate(face),
        quality={"faces": confident, **quality.to_json(), **resemblance.to_json()},
        flip=settings.enrol_flip,
    )


def run_rebuild(args: RebuildArgs, res: Resources, timer: StageTimer) -> RebuildResult:
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
