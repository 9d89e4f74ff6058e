"""rollcall's jobs: detect, identify, attendance, enrol and rebuild, as Celery tasks.

Each task's keyword parameters are its arguments model's fields (``contract.jobs``); the task
validates them into the model, then ``ModelTask.run_job`` runs the job: load the frame, call the
recognition core (``recognition.core``) or the facebank, and store the answer with the models used,
the worker's hostname and per-stage timings as plain JSON. Expected failures raise an
``errors.RollcallError``; Celery stores it (JSON) and the API shows its code.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import numpy as np
from celery import Task, states
from celery.exceptions import Ignore, SoftTimeLimitExceeded

from contract.jobs import (
    ATTENDANCE,
    DETECT,
    ENROL_FACE,
    IDENTIFY,
    REBUILD_FACEBANK,
    AttendanceArgs,
    AttendanceResult,
    DetectArgs,
    DetectResult,
    EnrolFaceArgs,
    EnrolFaceResult,
    FrameSource,
    IdentifyArgs,
    IdentifyResult,
    JobAnswer,
    JobArgs,
    JobEnvelope,
    RebuildArgs,
    RebuildResult,
    SmallFaces,
    parse_args,
    result_json,
)
from contract.people import FaceRecordOut
from errors import JobTimeout, MultipleFacesFound, NoFaceFound, RollcallError, error_of
from ml.image import decode_image
from ml.quality import measure_face
from ml.timing import StageTimer
from recognition import batching, core
from recognition.frames import Frame, load_frame
from settings import get_settings
from tasks import app, callbacks, enrolment, metrics, runtime
from tasks.joblog import job_line
from tasks.runtime import Resources

log = logging.getLogger("rollcall.jobs")
# An enrolment photo must hold exactly one face this sure; weaker detections (clothing, posters) are ignored.
ENROL_MIN_PROB = 0.95
ArgsT = TypeVar("ArgsT", bound=JobArgs)


class ModelTask(Task):
    """Base of model jobs: revocation check, JSON result envelope, stable errors, one log line and metrics."""

    # Expected failures are no worker error: no ERROR line with a traceback (the job's own line records them).
    throws = (RollcallError,)

    def run_job(
        self,
        model: type[ArgsT],
        kwargs: Mapping[str, Any],
        work: Callable[[ArgsT, Resources, StageTimer], JobAnswer],
        when_revoked: Callable[[], JobAnswer] | None = None,
    ) -> dict[str, Any]:
        """Validate ``kwargs`` into ``model`` and run ``work`` on them, timed; the result's JSON.

        A job revoked before it started is skipped: its record says so. It then answers
        ``when_revoked()`` at once (a session frame, whose tick waits for every frame's answer), or is
        dropped without a result (``Ignore``).
        """
        job = self.name.rsplit(".", 1)[-1]
        source = kwargs.get("source")
        records = runtime.job_records()
        record = records.get(self.request.id) if records is not None else None
        if records is not None and record is not None and record.revoked:
            log.info("%s", job_line(self.request.id, job, "revoked", source, None, {}))
            metrics.record_job(job, "revoked", {})
            records.release_in_flight(self.request.id, record)
            if when_revoked is not None:
                return when_revoked().model_dump(mode="json")
            self.backend.mark_as_revoked(self.request.id, reason="revoked before it started")
            raise Ignore()
        timer = StageTimer()
        outcome = RollcallError.code  # internal_error: anything not caught below is a bug
        answer: JobAnswer | None = None
        batched_with: dict[str, int] = {}
        try:
            with batching.running_job():
                res = runtime.resources()
                answer = work(parse_args(model, **kwargs), res, timer)
                batched_with = batching.batch_sizes()
            outcome = "succeeded"
        except SoftTimeLimitExceeded as exc:
            outcome = JobTimeout.code
            limit = get_settings().job_soft_time_limit_s
            raise JobTimeout(f"job exceeded its time limit of {limit} s") from exc
        except RollcallError as exc:
            outcome = exc.code
            raise
        finally:
            timings = timer.report()
            log.info("%s", job_line(self.request.id, job, outcome, source, answer, timings))
            metrics.record_job(job, outcome, timings)
        envelope = JobEnvelope(
            worker=self.request.hostname or socket.gethostname(),  # the Celery node name
            models=res.pipe.describe(),
            timings_ms=timings,
            batch=batched_with or None,
        )
        return result_json(answer, envelope)

    def after_return(
        self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Once Celery has stored the outcome, hand the job's final JSON to its callback, if it has one.

        Only ended jobs call back: a revoked one does not (whoever revoked it knows). Either way the job
        no longer counts against its API key's jobs in flight.
        """
        records = runtime.job_records()
        if records is None:
            return
        if status != states.RETRY and isinstance(kwargs, dict) and (kwargs.get("source") or {}).get("upload"):
            records.uploads.delete(kwargs["source"]["upload"])  # the outcome is stored: no one reads it again
        record = records.get(task_id)
        records.release_in_flight(task_id, record)
        if status == states.SUCCESS:
            callbacks.job_ended(self, task_id, record, "succeeded", retval, None)
        elif status == states.FAILURE:
            callbacks.job_ended(self, task_id, record, "failed", None, error_of(retval))


def model_task(name: str) -> Callable[[Callable[..., dict[str, Any]]], ModelTask]:
    task: Callable[[Callable[..., dict[str, Any]]], ModelTask] = app.task(
        name=name, base=ModelTask, bind=True
    )
    return task


def _load(source: FrameSource, res: Resources, timer: StageTimer) -> Frame:
    records = runtime.job_records()
    read_upload = records.uploads.read if records is not None else None
    return load_frame(
        source, res.settings, res.settings.camera_allow, timer, lambda: res.cameras, read_upload=read_upload
    )


def _tiling(frame: Frame, small_faces: SmallFaces | None, res: Resources) -> core.Tiling:
    height, width = frame.image.shape[:2]
    return core.choose_tiling(frame.small_faces, small_faces, width * height, res.settings)


@model_task(DETECT)
def detect(
    task: ModelTask, source: dict[str, Any], small_faces: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Where are the faces: boxes, probabilities and 5 landmarks per face."""
    return task.run_job(DetectArgs, {"source": source, "small_faces": small_faces}, run_detect)


def run_detect(args: DetectArgs, res: Resources, timer: StageTimer) -> DetectResult:
    frame = _load(args.source, res, timer)
    return core.detect(frame, res.pipe, _tiling(frame, args.small_faces, res), timer)


@model_task(IDENTIFY)
def identify(task: ModelTask, source: dict[str, Any], face: dict[str, Any], top_k: int = 3) -> dict[str, Any]:
    """Who is this one face, given by its 5 landmarks or by a box around it."""
    return task.run_job(IdentifyArgs, {"source": source, "face": face, "top_k": top_k}, run_identify)


def run_identify(args: IdentifyArgs, res: Resources, timer: StageTimer) -> IdentifyResult:
    frame = _load(args.source, res, timer)
    flip = res.settings.match_flip
    return core.identify(frame, args.face, args.top_k, res.pipe, res.snapshot(), flip, timer)


@model_task(ATTENDANCE)
def attendance(
    task: ModelTask,
    source: dict[str, Any],
    roster: list[int] | None = None,
    small_faces: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Who of the enrolled people (or of the roster) is in the frame; each person at most once."""
    kwargs = {"source": source, "roster": roster, "small_faces": small_faces}
    return task.run_job(AttendanceArgs, kwargs, run_attendance)


def run_attendance(args: AttendanceArgs, res: Resources, timer: StageTimer) -> AttendanceResult:
    frame = _load(args.source, res, timer)
    tiling = _tiling(frame, args.small_faces, res)
    bank = res.snapshot(args.roster)
    return core.attendance(frame, args.roster, res.pipe, bank, tiling, res.settings.match_flip, timer)


@model_task(ENROL_FACE)
def enrol_face(task: ModelTask, person_id: int, source: dict[str, Any]) -> dict[str, Any]:
    """Add one photo of one face to a person: detect (exactly one face), check, embed, store atomically.

    The checks are ``tasks.enrolment``'s quality gate; the result reports what they measured.
    """
    return task.run_job(EnrolFaceArgs, {"person_id": person_id, "source": source}, run_enrol_face)


def run_enrol_face(args: EnrolFaceArgs, res: Resources, timer: StageTimer) -> EnrolFaceResult:
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


@model_task(REBUILD_FACEBANK)
def rebuild_facebank(task: ModelTask) -> dict[str, Any]:
    """Re-embed every enrolled face for the configured model (the seed's ``--update``, without a restart)."""
    return task.run_job(RebuildArgs, {}, run_rebuild)


def run_rebuild(args: RebuildArgs, res: Resources, timer: StageTimer) -> RebuildResult:
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
