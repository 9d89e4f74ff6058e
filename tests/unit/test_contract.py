"""The job contract: every task's signature is its arguments model, and results keep their JSON."""

from __future__ import annotations

import inspect

import pytest

from contract.jobs import (
    AttendanceArgs,
    CalibrateArgs,
    DetectArgs,
    EnrolFaceArgs,
    IdentifyArgs,
    JobArgs,
    RebuildArgs,
    SessionFrameArgs,
    parse_args,
    task_name,
    to_kwargs,
)
from errors import InvalidInput


@pytest.mark.parametrize(
    "model",
    [DetectArgs, IdentifyArgs, AttendanceArgs, EnrolFaceArgs, RebuildArgs, CalibrateArgs, SessionFrameArgs],
)
def test_each_task_takes_exactly_its_arguments_models_fields(model: type[JobArgs]) -> None:
    from tasks import app

    app.loader.import_default_modules()
    task = app.tasks[task_name(model.job_type)]
    assert task.typing, "Celery checks the call against the signature"
    parameters = list(inspect.signature(task.run).parameters)
    assert parameters == list(model.model_fields)


def test_arguments_travel_as_plain_json_without_unset_fields() -> None:
    args = AttendanceArgs.model_validate({"source": {"url": "http://cam/x"}, "small_faces": {"mode": "auto"}})
    assert to_kwargs(args) == {"source": {"url": "http://cam/x"}, "small_faces": {"mode": "auto"}}
    assert parse_args(AttendanceArgs, **to_kwargs(args)) == args


def test_malformed_arguments_are_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="top_k"):
        parse_args(IdentifyArgs, source={"url": "http://cam/x"}, face={}, top_k="many")
    with pytest.raises(InvalidInput, match="small_faces"):
        parse_args(DetectArgs, source={"url": "http://cam/x"}, small_faces={"mode": "sideways"})


@pytest.mark.parametrize("scheme", ["http", "https", "rtsp", "rtsps", "RTSP"])
def test_camera_urls_of_every_scheme_are_shown_without_credentials_path_or_query(scheme: str) -> None:
    from contract.redaction import redacted_repr

    shown = redacted_repr(
        {"source": {"url": f"{scheme}://admin:p%40ss@cam.lan:8554/Streaming/101?token=t0k"}}
    )
    port = "8554"
    assert f"{scheme.lower()}://cam.lan:{port}/…" in shown
    for secret in ("admin", "p%40ss", "Streaming", "t0k"):
        assert secret not in shown
