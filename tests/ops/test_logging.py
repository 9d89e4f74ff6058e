"""Each job leaves one JSON log line (id, type, camera host, faces, timings, outcome) and no secrets."""

from __future__ import annotations

import base64
import json
import re
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import ADMIN_KEY, JOBS_KEY, System
from tests.ops.conftest import FRAME, OpsWorker, run_detect, wait_for
from tests.shared_data import shared_dir

pytestmark = pytest.mark.integration


def job_lines(log: str) -> dict[str, dict[str, Any]]:
    """The worker's ``job {...}`` lines, parsed, by job id."""
    lines = [json.loads(match) for match in re.findall(r"\] job (\{.*\})$", log, flags=re.MULTILINE)]
    return {line["job_id"]: line for line in lines}


def test_each_job_logs_one_line_with_camera_host_faces_and_timings_but_no_secrets(
    ops_system: System, ops_worker: OpsWorker, camera: str
) -> None:
    with_credentials = camera.replace("http://", "http://user:secret@")
    port = urlsplit(camera).port
    upload = base64.b64encode((shared_dir() / FRAME).read_bytes()).decode()
    client = ops_system.client()
    fetched = run_detect(client, {"url": f"{with_credentials}/{FRAME}?token=secret"})
    missing = run_detect(client, {"url": f"{with_credentials}/no/such/frame.jpg"})
    uploaded = run_detect(client, {"image_b64": upload})
    assert [fetched["state"], missing["state"], uploaded["state"]] == ["succeeded", "failed", "succeeded"]

    ids = [fetched["job_id"], missing["job_id"], uploaded["job_id"]]
    lines = wait_for(
        lambda: (found := job_lines(ops_worker.log())) and all(i in found for i in ids) and found,
        30,
        "the three job log lines",
    )
    log = ops_worker.log()
    assert sum(log.count(f'"job_id": "{job_id}"') for job_id in ids) == 3, "one line per job"

    line = lines[fetched["job_id"]]
    assert line["job"] == "detect" and line["outcome"] == "succeeded"
    assert line["source"] == "camera" and line["camera"] == f"127.0.0.1:{port}"
    assert line["faces"] == len(fetched["result"]["faces"]) == 2
    assert set(line["timings_ms"]) == {"fetch", "decode", "detect", "total"}

    line = lines[missing["job_id"]]
    assert line["outcome"] == "camera_protocol_error" and line["faces"] is None  # a 404
    assert line["camera"] == f"127.0.0.1:{port}"
    assert set(line["timings_ms"]) == {"fetch", "total"}

    line = lines[uploaded["job_id"]]
    assert line["outcome"] == "succeeded" and line["source"] == "upload" and "camera" not in line
    assert line["faces"] == 2

    assert "secret" not in log
    assert ADMIN_KEY not in log and JOBS_KEY not in log
    for start in range(0, len(upload) - 40, len(upload) // 7):  # no piece of the image, anywhere
        assert upload[start : start + 40] not in log
    assert "landmarks" not in log, "job results (which may name people) are not logged"
