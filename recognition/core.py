"""The recognition core: detect, identify and attendance as plain functions over one decoded frame.

Each takes the frame, the loaded pipeline behind its batching front (``recognition.batching``, which
batches detection and embedding with other jobs' when it is on) and, to name people, one
``FacebankSnapshot``; it times its stages in the job's ``StageTimer`` and returns the job's answer
(``contract.jobs``). Enrolment (``recognition.enrolment``) finds its face here too.
Celery jobs (``tasks.jobs``), attendance-session frames (``tasks.sessions``) and the in-process
benchmarks (``benchmarks.inprocess``) all call these.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torchvision.ops import box_iou

from contract.jobs import (
    AttendanceArgs,
    AttendanceResult,
    Candidate,
    DetectResult,
    FaceBox,
    IdentifiedFace,
    IdentifyArgs,
    IdentifyResult,
    Presence,
    SmallFaces,
)
from errors import InvalidInput, NoFaceFound
from ml.mtcnn import Detections
from ml.timing import StageTimer
from recognition.batching import BatchedPipeline
from recognition.frames import Frame
from recognition.gallery import Assignment, assign_faces, match_faces
from recognition.snapshot import FacebankSnapshot
from settings import Settings

# The whole frame only: how identify and enrolment detect, and the benchmarks' in-process attendance.
WHOLE_FRAME = SmallFaces(mode="off")


@dataclasses.dataclass(frozen=True)
class Tiling:
    """The small-face mode a job runs with, and the scale it was lowered to to fit the frame (or None)."""

    params: SmallFaces
    lowered_scale: float | None = None


def choose_tiling(
    camera_mode: str | None,
    options: SmallFaces | None,
    frame_pixels: int,
    settings: Settings,
) -> Tiling:
    """The job's own small-face options, else its camera's mode (``Frame.small_faces``: the registry's,
    else ``ROLLCALL_SMALL_FACES_CAMERAS``'), else the configured default.

    Bounded by the settings: a frame too large for its tiles is tiled at a smaller scale, or not at
    all (``ROLLCALL_SMALL_FACES_MAX_TILE_PIXELS``). The cost limit per frame pixel is the submitter's
    check (``SmallFaces.check_cost``: the API's, at submission and at a session's creation).
    """
    params = options if options is not None else SmallFaces(mode=camera_mode or settings.small_faces)
    if params.mode == "off":
        return Tiling(params)
    scale = params.fitted_scale(frame_pixels, settings.small_faces_max_tile_pixels)
    if scale >= params.scale:
        return Tiling(params)
    if scale < 1.0:  # even unenlarged tiles would be too many pixels: the whole frame alone
        return Tiling(params.model_copy(update={"mode": "off"}), scale)
    return Tiling(params.model_copy(update={"scale": round(scale, 3)}), round(scale, 3))


def find_faces(
    models: BatchedPipeline,
    image: np.ndarray,
    tiling: Tiling,
    timer: StageTimer,
    cascade: StageTimer | None = None,
) -> tuple[Detections, dict[str, Any]]:
    """The faces in the frame, in the small-face mode ``tiling`` says, and a report of what ran.

    ``cascade``, when given, receives the detector's own stages (the benchmarks'; whole frame only).
    """
    bounded = {"scale_lowered_to": tiling.lowered_scale} if tiling.lowered_scale is not None else {}
    with timer.stage("detect"):
        if tiling.params.mode == "off":
            if cascade is not None:
                found = models.pipe.detect([image], cascade)[0]
            else:
                found = models.detect(image)
            return found, {"mode": "off", "tiled": False, **bounded}
        small = models.pipe.detect_small_faces(image, tiling.params)
    report = {"mode": small.mode, "tiled": small.tiled, "tiles": small.tiles, "timings_ms": small.timings_ms}
    return small.detections, {**report, **bounded}


def embed_faces(
    models: BatchedPipeline, image: np.ndarray, landmarks: np.ndarray, flip: bool, timer: StageTimer
) -> np.ndarray:
    """Embeddings [N, D] of the faces at ``landmarks`` (batched with other jobs' when batching is on)."""
    with timer.stage("embed"):
        return models.embed(image, landmarks, flip)


def assign(vectors: np.ndarray, bank: FacebankSnapshot, roster: Sequence[int] | None) -> Assignment:
    """Each person (of the roster, if any) at most once, to their best face above the threshold."""
    restrict = set(roster) if roster is not None else None
    return assign_faces(vectors, bank.gallery, bank.threshold, restrict_to=restrict)


def detect(frame: Frame, models: BatchedPipeline, tiling: Tiling, timer: StageTimer) -> DetectResult:
    """Where are the faces: boxes, probabilities and 5 landmarks per face."""
    detections, mode = find_faces(models, frame.image, tiling, timer)
    return DetectResult(frame=frame.describe(), faces=face_boxes(detections), small_faces=mode)


def identify(
    frame: Frame,
    args: IdentifyArgs,
    models: BatchedPipeline,
    bank: FacebankSnapshot,
    flip: bool,
    timer: StageTimer,
) -> IdentifyResult:
    """Who is this one face, given by its 5 landmarks or by a box around it (``args.face``)."""
    face = args.face
    if face.landmarks is not None:
        landmarks = given_landmarks(face.landmarks, frame)
        box = face.box
    elif face.box is not None:
        detections, _ = find_faces(models, frame.image, Tiling(WHOLE_FRAME), timer)
        index = _best_overlap(detections.boxes, np.asarray(face.box, dtype=np.float32))
        if index is None:
            raise NoFaceFound(f"no face found inside the box {face.box}")
        landmarks = detections.landmarks[index : index + 1]
        box = [round(float(v), 2) for v in detections.boxes[index]]
    else:
        raise InvalidInput("identify needs the face's 'landmarks' or 'box'")
    vectors = embed_faces(models, frame.image, landmarks, flip, timer)
    with timer.stage("match"):
        match = match_faces(vectors, bank.gallery, bank.threshold, top_k=args.top_k)[0]
    people = bank.people
    return IdentifyResult(
        frame=frame.describe(),
        face=IdentifiedFace(box=box, landmarks=landmarks[0].round(2).tolist()),
        person=people.get(match.person_id) if match.person_id is not None else None,
        score=round(match.score, 5),
        threshold=bank.threshold,
        candidates=[
            Candidate(person=people[pid], score=round(s, 5)) for pid, s in match.candidates if pid in people
        ],
    )


def attendance(
    frame: Frame,
    args: AttendanceArgs,
    models: BatchedPipeline,
    bank: FacebankSnapshot,
    tiling: Tiling,
    flip: bool,
    timer: StageTimer,
) -> AttendanceResult:
    """Who of the enrolled people (or of the roster) is in the frame; each person at most once.

    ``args`` are the job's arguments as the client chose them (``contract.jobs``); people deleted since
    the job was submitted (or since the snapshot was read) are left out.
    """
    roster = args.roster
    detections, mode = find_faces(models, frame.image, tiling, timer)
    vectors = embed_faces(models, frame.image, detections.landmarks, flip, timer)
    with timer.stage("match"):
        assignment = assign(vectors, bank, roster)
    faces = face_boxes(detections)
    people = bank.people
    seen = {a.person_id for a in assignment.present}
    return AttendanceResult(
        frame=frame.describe(),
        present=[
            Presence(person=people[a.person_id], score=round(a.score, 5), face=faces[a.face_index])
            for a in assignment.present
            if a.person_id in people
        ],
        absent=[people[pid] for pid in sorted(set(roster) - seen) if pid in people]
        if roster is not None
        else None,
        unknown_faces=[faces[i] for i in assignment.unknown_face_indices],
        threshold=bank.threshold,
        small_faces=mode,
    )


def face_boxes(detections: Detections) -> list[FaceBox]:
    return [
        FaceBox(
            box=[round(float(v), 2) for v in box],
            prob=round(float(prob), 5),
            landmarks=[[round(float(x), 2), round(float(y), 2)] for x, y in marks],
        )
        for box, prob, marks in zip(detections.boxes, detections.probs, detections.landmarks, strict=True)
    ]


def given_landmarks(points: Any, frame: Frame) -> np.ndarray:
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
