"""The per-job log line names a camera by host:port only and counts the faces a result reports."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from contract.jobs import (
    AttendanceResult,
    DetectResult,
    FaceBox,
    FrameInfo,
    IdentifiedFace,
    IdentifyResult,
    Presence,
    RebuildResult,
)
from contract.people import PersonOut
from sources.urls import url_origin as camera_origin
from tasks.joblog import faces_reported, job_line


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("http://user:secret@192.168.1.20/snap.jpg?token=abc", "192.168.1.20:80"),
        ("https://cam.school.lan/frame", "cam.school.lan:443"),
        ("http://CAM-3.lan:8080/x", "cam-3.lan:8080"),
        ("http://[fd00::7]:81/x", "[fd00::7]:81"),
        ("http://192.168.1.20:99999/x", None),  # an invalid port: the job fails with invalid_input
        ("not a url", None),
    ],
)
def test_camera_origin_is_host_and_port_without_credentials(url: str, origin: str | None) -> None:
    assert camera_origin(url) == origin


FRAME = FrameInfo(width=640, height=480, source="upload")
FACE = FaceBox(box=[1.0, 2.0, 30.0, 40.0], prob=0.99, landmarks=[[5.0, 6.0]] * 5)
NOW = datetime.now(UTC)
PERSON = PersonOut(
    id=1, display_name="A", external_id=None, metadata={}, face_count=1, created_at=NOW, updated_at=NOW
)


def detected(faces: int) -> DetectResult:
    return DetectResult(frame=FRAME, faces=[FACE] * faces, small_faces={})


def test_faces_reported_by_each_result_shape() -> None:
    assert faces_reported(detected(3)) == 3
    present = [Presence(person=PERSON, score=0.95, face=FACE)]
    attendance = AttendanceResult(
        frame=FRAME, present=present, absent=None, unknown_faces=[FACE] * 2, threshold=0.9, small_faces={}
    )
    assert faces_reported(attendance) == 3
    face = IdentifiedFace(box=None, landmarks=FACE.landmarks)
    identify = IdentifyResult(frame=FRAME, face=face, person=None, score=0.1, threshold=0.9, candidates=[])
    assert faces_reported(identify) == 1
    assert faces_reported(RebuildResult(embedded=4, failed=0)) is None
    assert faces_reported(None) is None


def test_job_line_is_json_without_the_url_or_upload() -> None:
    line = job_line(
        "j1",
        "detect",
        "succeeded",
        {"url": "http://u:pw@10.0.0.5:8554/live?key=k"},
        detected(0),
        {"total": 1.5},
    )
    assert line.startswith("job ")
    assert json.loads(line[4:]) == {
        "job_id": "j1",
        "job": "detect",
        "outcome": "succeeded",
        "source": "camera",
        "camera": "10.0.0.5:8554",
        "faces": 0,
        "timings_ms": {"total": 1.5},
    }
    upload = job_line("j2", "detect", "invalid_input", {"image_b64": "QUJD" * 100}, None, {})
    assert "QUJD" not in upload and json.loads(upload[4:])["source"] == "upload"
