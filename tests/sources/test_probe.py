"""The camera test report against a real loopback camera: what an admin reads after adding a camera."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits
from sources.netguard import CameraAllowlist
from sources.probe import probe_camera
from tests.images import shared_photo
from tests.sources.camera_server import JPEG_NAME, CameraServer, closed_port

ALLOW = CameraAllowlist.parse("127.0.0.1/32")
LIMITS = FetchLimits(connect_timeout_s=2.0, read_timeout_s=3.0, total_s=5.0, max_bytes=5_000_000, retries=0)


@pytest.fixture(scope="module")
def camera() -> Iterator[CameraServer]:
    server = CameraServer(credentials=("probe-user", "probe-pw")).start()
    yield server
    server.stop()


def test_a_working_camera_reports_its_frame_and_how_it_was_reached(camera: CameraServer) -> None:
    endpoint = CameraEndpoint(camera.url("/basic/photo.jpg"), username="probe-user", password="probe-pw")
    report = probe_camera(endpoint, ALLOW, LIMITS).to_dict()
    assert report["ok"] is True and report["reachable"] is True
    assert (report["protocol"], report["auth"], report["tls"]) == ("http", "basic", "none")
    assert (report["width"], report["height"]) == (320, 240)
    assert report["bytes"] == len(shared_photo(JPEG_NAME)) and report["content_type"] == "image/jpeg"
    assert report["round_trips"] == 2  # the challenge, then the answer
    assert 0 < report["first_frame_s"] <= report["elapsed_s"]
    assert report["error_code"] is None and report["error_message"] is None


def test_a_failing_camera_reports_the_code_without_the_password(camera: CameraServer) -> None:
    wrong = CameraEndpoint(camera.url("/basic/photo.jpg"), username="probe-user", password="wrong-pw")
    report = probe_camera(wrong, ALLOW, LIMITS)
    assert (report.ok, report.reachable, report.error_code) == (False, True, "camera_auth_failed")
    assert report.auth == "basic" and report.width is None
    assert "wrong-pw" not in str(report.to_dict())
    closed = probe_camera(CameraEndpoint(f"http://127.0.0.1:{closed_port()}/x.jpg"), ALLOW, LIMITS)
    assert (closed.ok, closed.reachable, closed.error_code) == (False, False, "camera_unreachable")
    html = probe_camera(CameraEndpoint(camera.url("/html")), ALLOW, LIMITS)
    assert (html.reachable, html.error_code, html.auth) == (True, "camera_protocol_error", "none")
