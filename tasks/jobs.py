"""rollcall's jobs: detect, identify, attendance, enrol and rebuild, as Celery tasks.

Each task is glue: load the frame, call ``ml`` and ``facebank``, return plain JSON with the
answer, the models used, the worker's hostname and per-stage timings. Expected failures
raise an ``errors.RollcallError``; Celery stores it (JSON) and the API shows its code.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from celery import Task, states
from celery.exceptions import Ignore, SoftTimeLimitExceeded
from torchvision.ops import box_iou

from contract.records import is_revoked, read_record, release_in_flight
from errors import (
    InvalidInput,
    JobTimeout,
    MultipleFacesFound,
    NoFaceFound,
    RollcallError,
    error_of,
)
from facebank.assignment import assign_faces
from facebank.gallery import match_faces
from facebank.schemas import FaceRecordOut, PersonOut
from ml.image import decode_image
from ml.mtcnn import Detections
from ml.quality import measure_face
from ml.timing import StageTimer
from settings import get_settings
from tasks import app, batching, callbacks, enrolment, metrics, runtime
from tasks.frames import Frame, load_frame
from tasks.joblog import job_line

log = logging.getLogger("rollcall.jobs")
# An enrolment photo must hold exactly one face this sure; weaker detections (clothing, posters) are ignored.
ENROL_MIN_PROB = 0.95


class ModelTask(Task):
    """Base of model jobs: JSON result envelope, stable errors, one log line and metrics per job."""

    # The timer argument is injected by __call__, so Celery must not check call signatures at submit time;
    # the API validates job arguments with its schemas instead.
    typing = False
    # Expected failures are no worker error: no ERROR line with a traceback (the job's own line records them).
    throws = (RollcallError,)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        job = self.name.rsplit(".", 1)[-1]
        if self._revoked_before_start():
            log.info("%s", job_line(self.request.id, job, "revoked", kwargs.get("source"), None, {}))
            metrics.record_job(job, "revoked", {})
            self.backend.mark_as_revoked(self.request.id, reason="revoked before it started")
            release_in_flight(self.backend, self.request.id)
            raise Ignore()
        timer = StageTimer()
        outcome = RollcallError.code  # internal_error: anything not caught below is a bug
        result: Any = None
        batched_with: dict[str, int] = {}
        try:
            with batching.running_job():
                result = self.run(*args, timer=timer, **kwargs)
                batched_with = batching.batch_sizes()
            outcome = "succeeded"
        except SoftTimeLimitExceeded as exc:
            outcome = JobTimeout.code
            raise JobTimeout(
                f"job exceeded its time limit of {get_settings().job_soft_time_limit_s} s"
            ) from exc
        except RollcallError as exc:
            outcome = exc.code
            raise
        finally:
            timings = timer.report()
            log.info("%s", job_line(self.request.id, job, outcome, kwargs.get("source"), result, timings))
            metrics.record_job(job, outcome, timings)
        result["worker"] = self.request.hostname or socket.gethostname()  # the Celery node name
        result["models"] = runtime.pipeline().describe()
        result["timings_ms"] = timings
        if batched_with:
            result["batch"] = batched_with  # jobs that shared each batched stage (tasks.batching)
        return result

    def after_return(
        self, status: str, retval: Any, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        """Once Celery has stored the outcome, hand the job's final JSON to its callback, if it has one.

        Only ended jobs call back: a revoked one does not (whoever revoked it knows). Either way the job
        no longer counts against its API key's jobs in flight.
        """
        release_in_flight(self.backend, task_id)
        if status == states.SUCCESS:
            callbacks.job_ended(self, task_id, "succeeded", retval, None)
        elif status == states.FAILURE:
            callbacks.job_ended(self, task_id, "failed", None, error_of(retval))

    def _revoked_before_start(self) -> bool:
        return is_revoked(read_record(self.backend, self.request.id))


def _faces_json(detections: Detections) -> list[dict[str, Any]]:
    return [
        {
            "box": [round(float(v), 2) for v in box],
            "prob": round(float(prob), 5),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in marks],
        }
        for box, prob, marks in zip(detections.boxes, detections.probs, detections.landmarks, strict=True)
    ]


def _detect(frame: Frame, timer: StageTimer) -> Detections:
    with timer.stage("detect"):
        return batching.detect(runtime.pipeline(), frame.image)


def _detect_with_mode(
    frame: Frame, source: dict[str, Any], small_faces: dict[str, Any] | None, timer: StageTimer
) -> tuple[Detections, dict[str, Any]]:
    """Detection in the small-face mode the job, its camera or the configuration asks for."""
    height, width = frame.image.shape[:2]
    tiling, lowered_scale = runtime.tiling_params(source, small_faces, width * height)
    bounded = {"scale_lowered_to": lowered_scale} if lowered_scale is not None else {}
    if tiling.mode == "off":
        return _detect(frame, timer), {"mode": "off", "tiled": False, **bounded}
    with timer.stage("detect"):
        found = runtime.pipeline().detect_small_faces(frame.image, tiling)
    report = {"mode": found.mode, "tiled": found.tiled, "tiles": found.tiles, "timings_ms": found.timings_ms}
    return found.detections, {**report, **bounded}


def _load(source: dict[str, Any], timer: StageTimer) -> Frame:
    return load_frame(source, get_settings(), runtime.camera_allowlist(), timer)


def model_task(name: str) -> Callable[[Callable[..., dict[str, Any]]], Task]:
    return app.task(name=f"rollcall.models.{name}", base=ModelTask, bind=False)


@model_task("detect")
def detect(
    source: dict[str, Any], small_faces: dict[str, Any] | None = None, *, timer: StageTimer
) -> dict[str, Any]:
    """Where are the faces: boxes, probabilities and 5 landmarks per face."""
    frame = _load(source, timer)
    detections, mode = _detect_with_mode(frame, source, small_faces, timer)
    return {
        "type": "detect",
        "frame": frame.describe(),
        "faces": _faces_json(detections),
        "small_faces": mode,
    }


def _people_json(person_ids: set[int]) -> dict[int, dict[str, Any]]:
    return {
        person.id: PersonOut.json_of(person)
        for person in runtime.facebank().people.get_many(sorted(person_ids))
    }


@model_task("identify")
def identify(
    source: dict[str, Any], face: dict[str, Any], top_k: int = 3, *, timer: StageTimer
) -> dict[str, Any]:
    """Who is this one face, given by its 5 landmarks or by a box around it."""
    frame = _load(source, timer)
    if "landmarks" in face:
        landmarks = _given_landmarks(face["landmarks"], frame)
        box = face.get("box")
    elif "box" in face:
        box_arr = np.asarray(face["box"], dtype=np.float32)
        detections = _detect(frame, timer)
        index = _best_overlap(detections.boxes, box_arr)
        if index is None:
            raise NoFaceFound(f"no face found inside the box {face['box']}")
        landmarks = detections.landmarks[index : index + 1]
        box = [round(float(v), 2) for v in detections.boxes[index]]
    else:
        raise InvalidInput("identify needs the face's 'landmarks' or 'box'")
    with timer.stage("embed"):
        vectors = batching.embed(runtime.pipeline(), frame.image, landmarks, get_settings().match_flip)
    with timer.stage("match"):
        gallery = runtime.gallery()
        threshold = runtime.match_threshold()
        match = match_faces(vectors, gallery, threshold, top_k=top_k)[0]
        people = _people_json({pid for pid, _ in match.candidates})
    return {
        "type": "identify",
        "frame": frame.describe(),
        "face": {"box": box, "landmarks": landmarks[0].round(2).tolist()},
        "person": people.get(match.person_id) if match.person_id is not None else None,
        "score": round(match.score, 5),
        "threshold": threshold,
        "candidates": [{"person": people[pid], "score": round(s, 5)} for pid, s in match.candidates],
    }


def _given_landmarks(points: Any, frame: Frame) -> np.ndarray:
    """A client's 5 landmarks as [1,5,2], refused unless finite, spread out and near the frame.

    Points all at one spot have no alignment, and points far outside the frame would warp a chip
    out of nothing (or shrink it through thousands of pyramid levels).
    """
    landmarks = np.asarray(points, dtype=np.float32).reshape(1, 5, 2)
    height, width = frame.image.shape[:2]
    xs, ys = landmarks[0, :, 0], landmarks[0, :, 1]
    if not np.all(np.isfinite(landmarks)):
        raise InvalidInput("landmarks must be finite numbers")
    if xs.min() < -width or xs.max() > 2 * width or ys.min() < -height or ys.max() > 2 * height:
        raise InvalidInput(f"the landmarks lie far outside the {width}×{height} frame")
    if float(np.ptp(landmarks[0], axis=0).max()) < 1.0:
        raise InvalidInput("the 5 landmarks are at one point: there is no face to align")
    return landmarks


def _best_overlap(boxes: np.ndarray, box: np.ndarray, min_iou: float = 0.3) -> int | None:
    """Index of the detected box that overlaps the given one most (IoU ≥ min_iou), else None."""
    if len(boxes) == 0:
        return None
    iou = box_iou(
        torch.as_tensor(boxes, dtype=torch.float64), torch.as_tensor(box, dtype=torch.float64)[None]
    )
    best = int(torch.argmax(iou[:, 0]))
    return best if float(iou[best, 0]) >= min_iou else None


@model_task("attendance")
def attendance(
    source: dict[str, Any],
    roster: list[int] | None = None,
    small_faces: dict[str, Any] | None = None,
    *,
    timer: StageTimer,
) -> dict[str, Any]:
    """Who of the enrolled people (or of the roster) is in the frame; each person at most once."""
    frame = _load(source, timer)
    detections, mode = _detect_with_mode(frame, source, small_faces, timer)
    with timer.stage("embed"):
        vectors = batching.embed(
            runtime.pipeline(), frame.image, detections.landmarks, get_settings().match_flip
        )
    with timer.stage("match"):
        gallery = runtime.gallery()
        threshold = runtime.match_threshold()
        restrict = set(roster) if roster is not None else None
        assignment = assign_faces(vectors, gallery, threshold, restrict_to=restrict)
        seen = {a.person_id for a in assignment.present}
        people = _people_json(seen | (restrict or set()))
    faces = _faces_json(detections)
    # People deleted since the job was submitted (or since the gallery was read) are left out.
    return {
        "type": "attendance",
        "frame": frame.describe(),
        "present": [
            {"person": people[a.person_id], "score": round(a.score, 5), "face": faces[a.face_index]}
            for a in assignment.present
            if a.person_id in people
        ],
        "absent": [people[pid] for pid in sorted(restrict - seen) if pid in people]
        if restrict is not None
        else None,
        "unknown_faces": [faces[i] for i in assignment.unknown_face_indices],
        "threshold": threshold,
        "small_faces": mode,
    }


@model_task("enrol_face")
def enrol_face(person_id: int, source: dict[str, Any], *, timer: StageTimer) -> dict[str, Any]:
    """Add one photo of one face to a person: detect (exactly one face), check, embed, store atomically.

    The checks are ``tasks.enrolment``'s quality gate; the result reports what they measured.
    """
    frame = _load(source, timer)
    detections = _detect(frame, timer)
    confident = int((detections.probs >= ENROL_MIN_PROB).sum())
    if confident == 0:
        raise NoFaceFound("no face found in the image; enrol a photo with one clear face")
    if confident > 1:
        raise MultipleFacesFound(f"{confident} faces found; enrol a photo with exactly one face (or crop it)")
    index = int(np.argmax(detections.probs))
    pipe = runtime.pipeline()
    settings = get_settings()
    limits = enrolment.QualityLimits.from_settings(settings, runtime.match_threshold())
    with timer.stage("quality"):
        chips = pipe.align(frame.image, detections.landmarks[index : index + 1])
        quality = measure_face(detections.boxes[index], detections.landmarks[index], chips[0])
        enrolment.check_face(quality, limits)
    with timer.stage("embed"):
        vector = pipe.embed_chips(chips, flip=settings.enrol_flip)[0]
    with timer.stage("match"):
        resemblance = enrolment.resemblance(vector, person_id, runtime.gallery())
        enrolment.check_resemblance(resemblance, limits)
    height, width = frame.image.shape[:2]
    with timer.stage("store"):
        face = runtime.facebank().faces.add(
            person_id,
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
    return {
        "type": "enrol_face",
        "face_id": face.id,
        "face": FaceRecordOut.json_of(face),
        "quality": {"faces": confident, **quality.to_json(), **resemblance.to_json()},
        "flip": settings.enrol_flip,
    }


@model_task("rebuild_facebank")
def rebuild_facebank(*, timer: StageTimer) -> dict[str, Any]:
    """Re-embed every enrolled face for the configured model (the seed's ``--update``, without a restart)."""
    pipe = runtime.pipeline()
    bank = runtime.facebank()
    embedded = failed = 0
    for item in bank.embeddings.pending(pipe.embedder.name, pipe.embedder.version):
        try:
            with timer.stage("decode"):
                image = decode_image(item.image_bytes, get_settings().frame_max_pixels)
        except RollcallError as exc:
            log.warning("rebuild: face %s cannot be decoded: %s", item.face_id, exc.code)
            failed += 1
            continue
        with timer.stage("embed"):
            vector = pipe.embed(image, item.landmarks, flip=get_settings().enrol_flip)[0]
        with timer.stage("store"):
            bank.embeddings.put(item.face_id, pipe.embedder.name, pipe.embedder.version, vector)
        embedded += 1
    return {"type": "rebuild_facebank", "embedded": embedded, "failed": failed}
