"""Real cameras through the real API and a real worker: a detect job on a Digest camera and on RTSP
cameras finds the photo's face; a wrong password fails with ``camera_auth_failed`` and the job's JSON
holds no piece of it; the legacy route takes an RTSP URL. Silent and redirecting RTSP servers through a
real worker (which must serve the next job) are in ``tests/reliability/test_camera_faults.py``."""

from __future__ import annotations

import json
from typing import Any

import pytest

from benchmarks.camera_servers import CAMERA_PASSWORD, CAMERA_USER, HIKVISION, ApacheCamera, GstRtspCamera
from tests.conftest import WorkerProcess, wait_for_job

pytestmark = pytest.mark.integration
CREDENTIALS = (CAMERA_USER, CAMERA_PASSWORD)


def _detect(client: Any, url: str) -> dict[str, Any]:
    response = client.post("/v1/jobs/detect", json={"url": url})
    assert response.status_code == 202, response.get_json()
    return wait_for_job(client, response.get_json()["job_id"], timeout=60)


def _faces(job: dict[str, Any]) -> int:
    assert job["state"] == "succeeded", job
    return sum(face["prob"] >= 0.99 for face in job["result"]["faces"])


def test_detect_jobs_on_digest_and_rtsp_cameras_find_the_photos_face(
    client: Any, worker: WorkerProcess, apache_camera: ApacheCamera, gst_camera: GstRtspCamera
) -> None:
    urls = {
        "digest": apache_camera.url(HIKVISION, credentials=CREDENTIALS),
        "rtsp-h264": gst_camera.url("/h264"),
        "rtsp-h265-digest": gst_camera.url("/h265", secure=True, credentials=CREDENTIALS),
    }
    jobs = {kind: _detect(client, url) for kind, url in urls.items()}
    assert {kind: _faces(job) for kind, job in jobs.items()} == {kind: 1 for kind in urls}
    assert jobs["rtsp-h264"]["result"]["frame"]["width"] == 320
    for job in jobs.values():
        assert CAMERA_PASSWORD not in json.dumps(job)


def test_a_wrong_password_fails_the_job_with_auth_failed_and_no_piece_of_it(
    client: Any, worker: WorkerProcess, apache_camera: ApacheCamera
) -> None:
    url = apache_camera.url(HIKVISION).replace("http://", "http://admin:wr0ng@pa55word@")
    job = _detect(client, url)
    assert job["state"] == "failed" and job["error"]["code"] == "camera_auth_failed", job
    shown = json.dumps(job)
    for fragment in ("wr0ng", "pa55word"):
        assert fragment not in shown
        assert fragment not in worker.log()


def test_the_legacy_route_takes_an_rtsp_camera(
    client: Any, worker: WorkerProcess, gst_camera: GstRtspCamera
) -> None:
    response = client.get("/modelfr", query_string={"ip": gst_camera.url("/h265")})
    assert response.status_code == 200, response.get_json()
    assert len(response.get_json()["box"]) == 1
