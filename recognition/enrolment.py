"""Enrolment: one photo of one face becomes a person's reference face, if it passes the quality gate.

``enrol_face`` detects (exactly one confident face), measures and checks the face, embeds it, compares
it with the enrolled faces and stores it; the ``rollcall.models.enrol_face`` job calls it.

A reference photo is compared with every frame for as long as it is enrolled, so a bad one costs
misses (a blurred, tiny or turned face) or false names (someone else's face filed under this
person). Each check refuses with its own stable code, in this order: ``face_too_small``,
``too_blurry``, ``pose_too_far`` (from ``ml.quality``'s measurements), then ``duplicate_face``
(a near-copy of any enrolled face, when ``ROLLCALL_ENROL_DUPLICATE_SIMILARITY`` is set; a
byte-identical copy is always refused) and ``outlier_face`` (unlike all of the person's other
faces). Nothing is stored unless every check passes. Limits come from ``ROLLCALL_ENROL_*``; the
defaults accept every photo of the shared facebank and refuse a strongly blurred copy, a 40 px
face, a face turned about 45° or tilted more than 30°.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from contract.jobs import EnrolFaceResult
from contract.people import FaceRecordOut
from errors import (
    DuplicateFace,
    FaceTooSmall,
    MultipleFacesFound,
    NoFaceFound,
    OutlierFace,
    PoseTooFar,
    TooBlurry,
)
from facebank.faces import Faces
from ml.quality import FaceQuality, measure_face
from ml.timing import StageTimer
from recognition.batching import BatchedPipeline
from recognition.core import WHOLE_FRAME, Tiling, find_faces
from recognition.frames import Frame
from recognition.gallery import Gallery
from recognition.snapshot import FacebankSnapshot
from settings import Settings

# An enrolment photo must hold exactly one face this sure; weaker detections (clothing, posters) are ignored.
ENROL_MIN_PROB = 0.95


@dataclass(frozen=True, slots=True)
class QualityLimits:
    """The limits a photo must meet (see the ``ROLLCALL_ENROL_*`` settings)."""

    min_face_px: float
    min_sharpness: float
    max_yaw: float
    max_roll_deg: float
    duplicate_similarity: float | None  # None: only byte-identical copies are refused (by the facebank)
    outlier_floor: float

    @classmethod
    def from_settings(cls, settings: Settings, match_threshold: float) -> QualityLimits:
        floor = settings.enrol_outlier_floor
        return cls(
            min_face_px=settings.enrol_min_face_px,
            min_sharpness=settings.enrol_min_sharpness,
            max_yaw=settings.enrol_max_yaw,
            max_roll_deg=settings.enrol_max_roll_deg,
            duplicate_similarity=settings.enrol_duplicate_similarity,
            # A new photo must be recognised as the person by one of their enrolled photos. On the shared
            # photos (dlib, flip-averaged) same-person pairs score 0.953 or more, two-person pairs 0.888 or
            # less, against the default threshold of 0.915.
            outlier_floor=floor if floor is not None else match_threshold,
        )


@dataclass(frozen=True, slots=True)
class Resemblance:
    """How a new face compares with the enrolled ones (None: nothing to compare with)."""

    nearest_similarity: float | None  # best cosine to any enrolled face
    nearest_person_id: int | None
    person_similarity: float | None  # best cosine to the person's own enrolled faces

    def to_json(self) -> dict[str, Any]:
        def rounded(value: float | None) -> float | None:
            return None if value is None else round(value, 5)

        return {
            "nearest_similarity": rounded(self.nearest_similarity),
            "nearest_person_id": self.nearest_person_id,
            "person_similarity": rounded(self.person_similarity),
        }


def check_face(quality: FaceQuality, limits: QualityLimits) -> None:
    """Refuse a face that is too small, too blurred or turned too far (in that order)."""
    if quality.face_px < limits.min_face_px:
        raise FaceTooSmall(
            f"the face is {quality.face_px:.0f} px across; enrolment needs {limits.min_face_px:g} px "
            "(ROLLCALL_ENROL_MIN_FACE_PX): use a closer or larger photo"
        )
    if quality.sharpness < limits.min_sharpness:
        raise TooBlurry(
            f"the face's sharpness (variance of the Laplacian) is {quality.sharpness:.1f}; enrolment needs "
            f"{limits.min_sharpness:g} (ROLLCALL_ENROL_MIN_SHARPNESS): use a sharper photo"
        )
    if abs(quality.yaw) > limits.max_yaw:
        raise PoseTooFar(
            f"the face is turned: nose {abs(quality.yaw):.2f} eye distances off centre, at most "
            f"{limits.max_yaw:g} allowed (ROLLCALL_ENROL_MAX_YAW): use a frontal photo"
        )
    if abs(quality.roll_deg) > limits.max_roll_deg:
        raise PoseTooFar(
            f"the face is tilted {abs(quality.roll_deg):.0f}°, at most {limits.max_roll_deg:g}° allowed "
            "(ROLLCALL_ENROL_MAX_ROLL_DEG): use an upright photo"
        )


def resemblance(vector: np.ndarray, person_id: int, gallery: Gallery) -> Resemblance:
    """Best cosine of ``vector`` to any enrolled face, and to the person's own, from one product."""
    if gallery.face_count == 0:
        return Resemblance(None, None, None)
    with torch.inference_mode():
        query = torch.as_tensor(np.asarray(vector, dtype=np.float32), device=gallery.device)
        similarity = gallery.vectors @ torch.nn.functional.normalize(query, dim=0)
        best = int(torch.argmax(similarity))
        nearest_person = int(gallery.person_ids[gallery.person_index[best]])
        own_rows = gallery.person_ids[gallery.person_index] == person_id
        own = float(similarity[own_rows].max()) if bool(own_rows.any()) else None
    return Resemblance(float(similarity[best]), nearest_person, own)


def check_resemblance(found: Resemblance, limits: QualityLimits) -> None:
    """Refuse a near-copy of an enrolled face, then a face unlike all of the person's others."""
    near_copy, nearest = limits.duplicate_similarity, found.nearest_similarity
    if near_copy is not None and nearest is not None and nearest >= near_copy:
        raise DuplicateFace(
            f"this face is a near-copy (cosine {nearest:.4f}) of a face enrolled for person "
            f"{found.nearest_person_id}; the limit is {near_copy:g} "
            "(ROLLCALL_ENROL_DUPLICATE_SIMILARITY)"
        )
    if found.person_similarity is not None and found.person_similarity < limits.outlier_floor:
        raise OutlierFace(
            f"this face is unlike the person's enrolled faces (best cosine {found.person_similarity:.4f}, "
            f"floor {limits.outlier_floor:.4f}): is it someone else? (ROLLCALL_ENROL_OUTLIER_FLOOR)"
        )


def enrol_face(
    frame: Frame,
    person_id: int,
    models: BatchedPipeline,
    bank: FacebankSnapshot,
    faces: Faces,
    settings: Settings,
    timer: StageTimer,
) -> EnrolFaceResult:
    """Add the frame's one face to ``person_id``: detect, check, embed, compare, store (atomically).

    Refused with a stable code when the photo holds no confident face or several, or fails a check
    (``check_face``, ``check_resemblance``); nothing is stored then. The result reports what was measured.
    """
    pipe = models.pipe
    detections, _ = find_faces(models, frame.image, Tiling(WHOLE_FRAME), timer)
    confident = int((detections.probs >= ENROL_MIN_PROB).sum())
    if confident == 0:
        raise NoFaceFound("no face found in the image; enrol a photo with one clear face")
    if confident > 1:
        raise MultipleFacesFound(f"{confident} faces found; enrol a photo with exactly one face (or crop it)")
    index = int(np.argmax(detections.probs))
    limits = QualityLimits.from_settings(settings, bank.threshold)
    with timer.stage("quality"):
        chips = pipe.align(frame.image, detections.landmarks[index : index + 1])
        quality = measure_face(detections.boxes[index], detections.landmarks[index], chips[0])
        check_face(quality, limits)
    with timer.stage("embed"):
        vector = pipe.embed_chips(chips, flip=settings.enrol_flip)[0]
    with timer.stage("match"):
        found = resemblance(vector, person_id, bank.gallery)
        check_resemblance(found, limits)
    height, width = frame.image.shape[:2]
    with timer.stage("store"):
        face = faces.add(
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
    return EnrolFaceResult(
        face_id=face.id,
        face=FaceRecordOut.model_validate(face),
        quality={"faces": confident, **quality.to_json(), **found.to_json()},
        flip=settings.enrol_flip,
    )
