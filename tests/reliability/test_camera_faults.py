"""Bad cameras through real worker jobs: each fails with its stable code in time, and the worker goes on.

The camera behaviours are the fetch tests' (``tests/sources/camera_server.py``), here reached by a
real worker process with a 1 s connect + 2 s read budget. After every fault the same worker
must serve a good frame, and its peak memory must show that no huge body or bomb was allocated.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.cameras.rtsp_fakes import FakeRtspCamera
from tests.conftest import wait_for_job
from tests.reliability.conftest import Deployment, HoldingCamera, peak_rss_mib, submit
from tests.sources.camera_server import CameraServer, closed_port

pytestmark = [pytest.mark.reliability, pytest.mark.integration]
BUDGET_S = 1 + 2  # connect + read timeouts of the shared deployment
MARGIN_S = 3  # queueing, decoding and polling on a busy 2-core machine
PEAK_GROWTH_LIMIT_MIB = 150  # a 200 MB body or a 2.7 GB bomb would blow far past this

# fault: (path on the bad camera, the code the caller gets, the reason the worker logs). Each failure
# keeps its own code, so an admin can act on it (docs/cameras.md says what a code tells a caller about
# the allowed networks); the worker's log names the same code with the detail.
FAULTS = {
    "slow_trickle": ("/trickle", "camera_timeout", "camera_timeout"),
    "hang": ("/hang", "camera_timeout", "camera_timeout"),
    "connection_refused": (None, "camera_unreachable", "camera_unreachable"),
    "tcp_reset": ("/reset", "camera_unreachable", "camera_unreachable"),
    "http_404": ("/status/404", "camera_protocol_error", "camera_protocol_error"),
    "http_500": ("/status/500", "camera_protocol_error", "camera_protocol_error"),
    "http_401": ("/status/401", "camera_auth_failed", "camera_auth_failed"),
    "html_page": ("/html", "camera_protocol_error", "camera_protocol_error"),
    "not_http": ("/not-http", "camera_protocol_error", "camera_protocol_error"),
    "truncated_jpeg": ("/truncated.jpg", "not_an_image", None),
    "empty_body": ("/empty", "camera_protocol_error", "camera_protocol_error"),
    "body_200mb_announced": ("/huge/200000000", "frame_too_large", None),
    "body_endless_no_length": ("/endless", "frame_too_large", None),
    "png_30000x30000": ("/bomb.png", "frame_too_large", None),
    "redirect_to_cloud_metadata": (
        "/redirect?to=http://169.254.169.254/latest/meta-data/",
        "camera_not_allowed",
        None,
    ),
}


@pytest.fixture(scope="module")
def bad_camera() -> Iterator[CameraServer]:
    camera = CameraServer().start()
    yield camera
    camera.stop()


@pytest.fixture(scope="module")
def figures(shared: Deployment, report: dict[str, Any]) -> Iterator[dict[str, Any]]:
    worker = shared.workers[0]
    assert worker.process is not None
    found: dict[str, Any] = {"faults": {}, "peak_rss_mib_before": round(peak_rss_mib(worker.process.pid), 1)}
    yield found
    found["peak_rss_mib_after"] = round(peak_rss_mib(worker.process.pid), 1)
    report["camera_faults"] = found


@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_a_bad_camera_fails_the_job_with_its_code_and_the_worker_serves_the_next(
    fault: str,
    shared: Deployment,
    bad_camera: CameraServer,
    holding_camera: HoldingCamera,
    figures: dict[str, Any],
) -> None:
    path, code, logged = FAULTS[fault]
    url = bad_camera.url(path) if path is not None else f"http://127.0.0.1:{closed_port()}/shot.jpg"
    _fails_in_time_and_the_worker_goes_on(fault, url, code, logged, shared, holding_camera, figures)


# RTSP servers that misbehave (tests/cameras/rtsp_fakes.py): silent after PLAY, silent at DESCRIBE, a
# redirect to the cloud metadata address (never followed: FFmpeg does not even see it).
RTSP_FAULTS = {
    "rtsp_no_frame_after_play": ("/mute", "camera_timeout", "camera_timeout"),
    "rtsp_describe_never_answered": ("/hang", "camera_timeout", "camera_timeout"),
    "rtsp_redirect_to_cloud_metadata": (
        "/redirect?to=rtsp://169.254.169.254/live",
        "camera_not_allowed",
        None,
    ),
}


@pytest.mark.parametrize("fault", sorted(RTSP_FAULTS))
def test_a_bad_rtsp_camera_fails_the_job_with_its_code_and_the_worker_serves_the_next(
    fault: str,
    shared: Deployment,
    fake_rtsp: FakeRtspCamera,
    holding_camera: HoldingCamera,
    figures: dict[str, Any],
) -> None:
    path, code, logged = RTSP_FAULTS[fault]
    _fails_in_time_and_the_worker_goes_on(
        fault, fake_rtsp.url(path), code, logged, shared, holding_camera, figures
    )


def _fails_in_time_and_the_worker_goes_on(
    fault: str,
    url: str,
    code: str,
    logged: str | None,
    shared: Deployment,
    holding_camera: HoldingCamera,
    figures: dict[str, Any],
) -> None:
    worker = shared.workers[0]
    assert worker.process is not None
    client = shared.client()
    reason = f"camera fetch failed: {logged}:"
    logged_before = worker.log().count(reason)
    started = time.monotonic()
    job = wait_for_job(client, submit(client, "detect", {"url": url}), timeout=BUDGET_S + 30)
    took = time.monotonic() - started

    assert job["state"] == "failed", job
    assert job["error"]["code"] == code, job["error"]
    assert took < BUDGET_S + MARGIN_S, f"{fault} took {took:.1f} s"
    if logged is not None:  # the operator still learns why
        assert worker.log().count(f"camera fetch failed: {logged}:") == logged_before + 1, worker.log()[
            -2000:
        ]
    good = wait_for_job(client, submit(client, "detect", {"url": holding_camera.url()}), timeout=30)
    assert good["state"] == "succeeded", good
    assert good["result"]["worker"] == worker.node, "the same worker serves the next job"
    growth = peak_rss_mib(worker.process.pid) - figures["peak_rss_mib_before"]
    assert growth < PEAK_GROWTH_LIMIT_MIB, f"the worker's peak memory grew by {growth:.0f} MiB after {fault}"
    figures["faults"][fault] = {"code": code, "seconds": round(took, 2)}
