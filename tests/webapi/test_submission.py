"""Submission's pure parts: a request *is* its job's arguments, parsed and checked before anything is sent.

Fast: the real app's request handling in a test request context; no Redis, database or worker is
reached (what is sent, and what a worker makes of it, is proven in tests/integration/test_jobs.py).
"""

from __future__ import annotations

import base64
import io
from typing import Any

import pytest
from flask import Flask
from pydantic import Field, ValidationError

from contract.jobs import (
    AttendanceArgs,
    AttendanceOptions,
    DetectArgs,
    FaceHint,
    FrameSource,
    IdentifyArgs,
    JobArgs,
    SmallFaces,
    to_kwargs,
)
from errors import InvalidInput, NotAnImage
from settings import Settings
from webapi import create_app
from webapi.schemas import AttendanceRequest, DetectRequest, FrameRequest, IdentifyRequest, job_args
from webapi.submission import parse_frame_request

PNG_1PX = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Flask:
    """The real app; nothing here opens a connection (create_app opens none)."""
    database = tmp_path_factory.mktemp("submission") / "never-opened.sqlite"
    return create_app(Settings(database_url=f"sqlite:///{database}", small_faces_max_tile_cost=16.0))


def test_an_attendance_request_becomes_its_jobs_arguments_without_the_requests_own_fields() -> None:
    body = AttendanceRequest.model_validate(
        {
            "url": "http://192.168.1.20/shot.jpg",
            "roster": [3, 1],
            "small_faces": {"mode": "on", "rows": 2},
            "callback_url": "http://192.168.1.5:9000/hook",
        }
    )
    args = job_args(AttendanceArgs, body)
    assert to_kwargs(args) == {
        "source": {"url": "http://192.168.1.20/shot.jpg"},
        "roster": [3, 1],
        "small_faces": {"mode": "on", "rows": 2},
    }
    resolved = job_args(
        AttendanceArgs, AttendanceRequest.model_validate({"camera": "room12", "roster_id": 7}), roster=[5]
    )
    assert to_kwargs(resolved) == {"source": {"camera": "room12"}, "roster": [5]}


def test_an_identify_request_names_its_face_and_a_detect_request_its_upload() -> None:
    identify = IdentifyRequest.model_validate({"camera": "room12", "box": [10, 10, 50, 60], "top_k": 5.0})
    args = job_args(IdentifyArgs, identify, face=identify.face())
    assert args.face == FaceHint(box=[10, 10, 50, 60]) and args.top_k == 5
    detect = job_args(DetectArgs, DetectRequest.model_validate({"image_b64": "AAAA"}))
    assert detect.source == FrameSource(image_b64="AAAA") and detect.small_faces is None


def test_a_field_added_to_a_jobs_options_is_carried_by_its_request_without_an_api_change() -> None:
    """What issue 25 asked for: the option is defined once, in the contract; the request that extends
    the options accepts, validates and documents it, and ``job_args`` carries it into the job."""

    class Options(AttendanceOptions):
        min_face_prob: float | None = Field(None, ge=0.5, le=1.0, description="A stricter face floor.")

    class Args(Options, JobArgs):
        job_type = "attendance"
        source: FrameSource

    class Request(FrameRequest, Options):
        pass

    body = Request.model_validate({"url": "http://192.168.1.20/shot.jpg", "min_face_prob": 0.97})
    assert to_kwargs(job_args(Args, body)) == {
        "source": {"url": "http://192.168.1.20/shot.jpg"},
        "min_face_prob": 0.97,
    }
    with pytest.raises(ValidationError, match="min_face_prob"):
        Request.model_validate({"url": "http://192.168.1.20/shot.jpg", "min_face_prob": 0.1})
    assert (
        Request.model_json_schema()["properties"]["min_face_prob"]["description"] == "A stricter face floor."
    )


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"url": "http://cam/x", "top_k": "3", "box": [0, 0, 9, 9]}, "top_k"),  # JSON types as documented
        ({"url": "http://cam/x", "camera": "room12", "box": [0, 0, 9, 9]}, "exactly one"),
        ({"upload": "another-job", "box": [0, 0, 9, 9]}, "upload"),  # set by the API, never by a client
        ({"url": "ftp://cam/x", "box": [0, 0, 9, 9]}, "url"),
        ({"url": "http://cam/x"}, "landmarks"),
        ({"url": "http://cam/x", "box": [9, 9, 0, 0]}, "box"),
    ],
)
def test_a_request_is_held_to_the_documented_types_and_rules(body: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        IdentifyRequest.model_validate(body)


def test_a_multipart_upload_is_checked_with_the_request(app: Flask) -> None:
    image = (io.BytesIO(PNG_1PX), "frame.png")
    with app.test_request_context(
        "/v1/jobs/detect", method="POST", data={"image": image, "small_faces": '{"mode": "on"}'}
    ):
        body = parse_frame_request(DetectRequest)
    assert base64.b64decode(body.image_b64 or "") == PNG_1PX
    assert body.small_faces == SmallFaces(mode="on")
    two = {"image": [(io.BytesIO(PNG_1PX), "a.png"), (io.BytesIO(PNG_1PX), "b.png")]}
    with (
        app.test_request_context("/v1/jobs/detect", method="POST", data=two),
        pytest.raises(InvalidInput, match="one 'image'"),
    ):
        parse_frame_request(DetectRequest)
    text = {"image": (io.BytesIO(b"not an image at all"), "notes.txt")}
    with app.test_request_context("/v1/jobs/detect", method="POST", data=text), pytest.raises(NotAnImage):
        parse_frame_request(DetectRequest)


def test_small_faces_over_the_servers_cost_are_refused_at_submission(app: Flask) -> None:
    costly = {"url": "http://cam/x", "small_faces": {"mode": "on", "scale": 4, "min_face_size": 8}}
    with app.test_request_context("/v1/jobs/detect", method="POST", json=costly):
        with pytest.raises(InvalidInput, match="ROLLCALL_SMALL_FACES_MAX_TILE_COST"):
            parse_frame_request(DetectRequest)
    off = {"url": "http://cam/x", "small_faces": {"mode": "off", "scale": 4, "min_face_size": 8}}
    with app.test_request_context("/v1/jobs/detect", method="POST", json=off):
        assert parse_frame_request(DetectRequest).small_faces == SmallFaces(
            mode="off", scale=4, min_face_size=8
        )


def test_the_openapi_document_shows_the_contracts_limits(app: Flask) -> None:
    schemas = app.test_client().get("/openapi.json").get_json()["components"]["schemas"]
    assert schemas["AttendanceRequest"]["properties"]["roster"]["anyOf"][0]["maxItems"] == 10_000
    assert schemas["SmallFaces"]["properties"]["rows"]["maximum"] == 8
    assert "upload" not in schemas["DetectRequest"]["properties"]
    assert set(schemas["JobState"]["properties"]) == {
        "job_id",
        "type",
        "state",
        "submitted_at",
        "result",
        "error",
    }
