"""The job contract: arguments travel as plain JSON and are validated with the limits the API states."""

from __future__ import annotations

import pytest

from contract.jobs import (
    JOBS,
    AttendanceArgs,
    DetectArgs,
    FrameSource,
    IdentifyArgs,
    SmallFaces,
    parse_args,
    to_kwargs,
)
from contract.routing import task_routes
from errors import InvalidInput
from settings import Settings


def test_arguments_travel_as_plain_json_without_unset_fields() -> None:
    args = AttendanceArgs.model_validate({"source": {"url": "http://cam/x"}, "small_faces": {"mode": "auto"}})
    assert to_kwargs(args) == {"source": {"url": "http://cam/x"}, "small_faces": {"mode": "auto"}}
    assert parse_args(AttendanceArgs, **to_kwargs(args)) == args


def test_malformed_arguments_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="top_k"):
        parse_args(IdentifyArgs, source={"url": "http://cam/x"}, face={"box": [0, 0, 9, 9]}, top_k="many")
    with pytest.raises(InvalidInput, match="small_faces"):
        parse_args(DetectArgs, source={"url": "http://cam/x"}, small_faces={"mode": "sideways"})


def test_a_message_is_held_to_the_limits_the_api_states() -> None:
    """A worker validates a message with the API's own types: a sender that bypasses the API gets the
    same refusals (one check, stated once in the contract)."""
    with pytest.raises(InvalidInput, match="exactly one of 'url', 'image_b64' or 'camera'"):
        parse_args(DetectArgs, source={"url": "http://cam/x", "camera": "room12"})
    with pytest.raises(InvalidInput, match="source.url"):
        parse_args(DetectArgs, source={"url": "file:///etc/passwd"})
    with pytest.raises(InvalidInput, match="small_faces.rows"):
        parse_args(DetectArgs, source={"camera": "room12"}, small_faces={"rows": 9})
    with pytest.raises(InvalidInput, match="roster"):
        parse_args(AttendanceArgs, source={"camera": "room12"}, roster=[2**31])
    with pytest.raises(InvalidInput, match="landmarks"):
        parse_args(IdentifyArgs, source={"camera": "room12"}, face={"landmarks": [[1, 2]]})


def test_an_upload_by_reference_is_a_frame_source_of_its_own() -> None:
    assert FrameSource(upload="job-1").upload == "job-1"
    with pytest.raises(ValueError, match="exactly one"):
        FrameSource(upload="job-1", image_b64="AAAA")


def test_each_job_goes_to_the_queue_its_model_names() -> None:
    settings = Settings(model_queue="q.models", bulk_queue="q.bulk", frame_queue="q.frames", io_queue="q.io")
    routes = task_routes(settings)
    queues = {job.job_type: routes[job.task_name()]["queue"] for job in JOBS}
    assert queues == {
        "detect": "q.models",
        "identify": "q.models",
        "attendance": "q.models",
        "enrol_face": "q.bulk",
        "rebuild_facebank": "q.bulk",
        "calibrate": "q.bulk",
        "session_frame": "q.frames",
    }
    assert routes["rollcall.sessions.*"]["queue"] == "q.models"
    assert routes["rollcall.io.*"]["queue"] == "q.io"


def test_small_faces_are_sent_as_the_client_set_them() -> None:
    args = DetectArgs(source=FrameSource(camera="room12"), small_faces=SmallFaces(mode="on", rows=2))
    assert to_kwargs(args) == {"source": {"camera": "room12"}, "small_faces": {"mode": "on", "rows": 2}}
