"""The recognition core (``recognition.core``) as plain functions: a real pipeline, real photos, a gallery
enrolled from the shared facebank's photos, and the job's answer as a client reads it.

Fast layer: no Redis, no database and no worker process (the same functions behind Celery are proven
in tests/integration/test_recognition.py).
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest

from contract.jobs import AttendanceArgs, AttendanceResult, FaceHint, FrameSource, IdentifyArgs, SmallFaces
from contract.people import PersonOut
from errors import InvalidInput, NoFaceFound
from facebank.records import GalleryRows
from ml.pipeline import FacePipeline, PipelineConfig, load_pipeline
from ml.timing import StageTimer
from recognition import core
from recognition.batching import BatchedPipeline
from recognition.frames import Frame
from recognition.gallery import Gallery
from recognition.snapshot import FacebankSnapshot
from settings import Settings, get_settings
from tests.shared_data import shared_dir

PEOPLE = ("obama", "biden", "kit_harington", "rose_leslie", "alex_lacamoire")
OBAMA, BIDEN, KIT = (PEOPLE.index(name) + 1 for name in ("obama", "biden", "kit_harington"))


@pytest.fixture(scope="module")
def pipe() -> FacePipeline:
    return load_pipeline(PipelineConfig(model_dir=get_settings().model_dir, device="cpu"))


@pytest.fixture(scope="module")
def models(pipe: FacePipeline) -> BatchedPipeline:
    return BatchedPipeline(pipe)


def _frame(path: Path) -> Frame:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert image is not None, path
    return Frame(image=image, data=path.read_bytes(), source="test")


def probe(name: str) -> Frame:
    return _frame(shared_dir() / "datasets" / "facebank_probe" / name)


@pytest.fixture(scope="module")
def bank(pipe: FacePipeline) -> FacebankSnapshot:
    """Every photo of the shared facebank enrolled by its most probable face, as enrolment does."""
    person_ids, vectors = [], []
    for person_id, name in enumerate(PEOPLE, start=1):
        for path in sorted((shared_dir() / "datasets" / "facebank" / name).iterdir()):
            image = _frame(path).image
            found = pipe.detect([image])[0]
            assert len(found), path
            vectors.append(pipe.embed(image, found.landmarks[:1])[0])
            person_ids.append(person_id)
    rows = GalleryRows(
        np.asarray(person_ids, np.int64), np.arange(len(person_ids), dtype=np.int64), np.stack(vectors)
    )
    gallery = Gallery.from_rows(rows, pipe.embedder.name, pipe.embedder.version, 1, "cpu")
    now = datetime.now(UTC)
    people = {
        pid: PersonOut(
            id=pid,
            display_name=name,
            external_id=None,
            metadata={},
            face_count=person_ids.count(pid),
            created_at=now,
            updated_at=now,
        )
        for pid, name in enumerate(PEOPLE, start=1)
    }
    return FacebankSnapshot(1, gallery, people, pipe.embedder.default_threshold)


def _source() -> FrameSource:
    return FrameSource(image_b64=base64.b64encode(b"unused: the frame is already loaded").decode())


def whole_frame_attendance(
    photo: str, models: BatchedPipeline, bank: FacebankSnapshot, roster: list[int] | None = None
) -> AttendanceResult:
    args = AttendanceArgs(source=_source(), roster=roster)
    tiling = core.Tiling(core.WHOLE_FRAME)
    return core.attendance(probe(photo), args, models, bank, tiling, False, StageTimer())


def test_detect_answers_every_face_with_its_box_probability_and_five_landmarks(
    models: BatchedPipeline,
) -> None:
    frame = probe("two_people.jpg")
    timer = StageTimer()
    answer = core.detect(frame, models, core.Tiling(core.WHOLE_FRAME), timer)
    assert len(answer.faces) == 2
    height, width = frame.image.shape[:2]
    for face in answer.faces:
        x1, y1, x2, y2 = face.box
        assert 0 <= x1 < x2 <= width + 1 and 0 <= y1 < y2 <= height + 1
        assert face.prob >= 0.9 and len(face.landmarks) == 5
    assert (answer.frame.width, answer.frame.height, answer.frame.source) == (width, height, "test")
    assert answer.small_faces["mode"] == "off" and "detect" in timer.report()


def test_attendance_names_who_is_there_once_each_and_lists_the_rosters_absentees(
    models: BatchedPipeline, bank: FacebankSnapshot
) -> None:
    answer = whole_frame_attendance("obama_and_biden.jpg", models, bank, roster=[OBAMA, BIDEN, KIT])
    assert sorted(p.person.display_name for p in answer.present) == ["biden", "obama"]
    assert [p.display_name for p in answer.absent or []] == ["kit_harington"]
    assert answer.threshold == bank.threshold
    faces = core.detect(
        probe("obama_and_biden.jpg"), models, core.Tiling(core.WHOLE_FRAME), StageTimer()
    ).faces
    assert len(answer.present) + len(answer.unknown_faces) == len(faces)  # every face is accounted for
    anyone = whole_frame_attendance("obama_and_biden.jpg", models, bank)
    assert anyone.absent is None and len(anyone.present) == 2


def test_a_stranger_is_an_unknown_face_not_a_wrong_name(
    models: BatchedPipeline, bank: FacebankSnapshot
) -> None:
    answer = whole_frame_attendance("lin-manuel-miranda.png", models, bank)
    assert answer.present == [] and len(answer.unknown_faces) == 1


def test_identify_names_the_face_in_a_box_or_at_its_landmarks(
    models: BatchedPipeline, bank: FacebankSnapshot
) -> None:
    frame = probe("obama1.jpg")
    found = core.detect(frame, models, core.Tiling(core.WHOLE_FRAME), StageTimer()).faces[0]
    by_box = core.identify(
        frame, IdentifyArgs(source=_source(), face=FaceHint(box=found.box)), models, bank, False, StageTimer()
    )
    by_marks = core.identify(
        frame,
        IdentifyArgs(source=_source(), face=FaceHint(landmarks=found.landmarks)),
        models,
        bank,
        False,
        StageTimer(),
    )
    for answer in (by_box, by_marks):
        assert answer.person is not None and answer.person.display_name == "obama"
        assert answer.score >= bank.threshold
        assert answer.candidates[0].person.display_name == "obama"
    assert by_box.score == pytest.approx(by_marks.score, abs=1e-4)


def test_identify_with_a_box_around_no_face_says_no_face_found(
    models: BatchedPipeline, bank: FacebankSnapshot
) -> None:
    frame = probe("obama1.jpg")
    args = IdentifyArgs(source=_source(), face=FaceHint(box=[0, 0, 8, 8]))
    with pytest.raises(NoFaceFound):
        core.identify(frame, args, models, bank, False, StageTimer())


@pytest.mark.parametrize(
    "points",
    [
        [[10.0, 10.0]] * 5,  # one spot: nothing to align
        [[float("nan"), 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0], [5.0, 5.0]],
        [[1e6, 1.0], [2.0, 2.0], [3.0, 3.0], [4.0, 4.0], [5.0, 5.0]],  # far outside the frame
    ],
    ids=["one-point", "not-finite", "far-outside"],
)
def test_landmarks_that_describe_no_face_are_refused(points: list[list[float]]) -> None:
    frame = Frame(image=np.zeros((100, 100, 3), np.uint8), data=b"", source="test")
    with pytest.raises(InvalidInput):
        core.given_landmarks(points, frame)


def test_tiling_takes_the_jobs_options_then_the_cameras_mode_then_the_default() -> None:
    settings = Settings(small_faces="off")
    own = SmallFaces(mode="on")
    assert core.choose_tiling("auto", own, 640 * 480, settings).params == own
    assert core.choose_tiling("on", None, 640 * 480, settings).params.mode == "on"
    assert core.choose_tiling(None, None, 640 * 480, settings).params.mode == "off"
    assert core.choose_tiling(None, None, 640 * 480, Settings(small_faces="auto")).params.mode == "auto"


def test_a_frame_too_large_for_its_tiles_is_tiled_at_a_lower_scale_or_not_at_all() -> None:
    settings = Settings(small_faces_max_tile_pixels=24_000_000)
    on = SmallFaces(mode="on", scale=2.0)
    assert core.choose_tiling(None, on, 1920 * 1080, settings) == core.Tiling(on)
    lowered = core.choose_tiling(None, on, 3840 * 2160, settings)
    assert lowered.params.mode == "on" and 1.0 <= lowered.params.scale < 2.0
    assert lowered.lowered_scale == lowered.params.scale
    huge = core.choose_tiling(None, on, 12000 * 9000, settings)
    assert huge.params.mode == "off" and huge.lowered_scale is not None and huge.lowered_scale < 1.0
