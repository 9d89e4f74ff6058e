"""Session-wide real camera servers, shared by the camera tests, the end-to-end jobs and the reliability
suite (imported into ``tests/conftest.py``): each starts once per test session, on first use."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from benchmarks.camera_servers import (
    ApacheCamera,
    GstRtspCamera,
    LighttpdCamera,
    SelfSignedCertificate,
    TlsFront,
)
from tests.cameras.proxy import CountingProxy
from tests.cameras.rtsp_fakes import FakeRtspCamera
from tests.sources.camera_server import CameraServer


@pytest.fixture(scope="session")
def apache_camera() -> Iterator[ApacheCamera]:
    camera = ApacheCamera().start()
    yield camera
    camera.stop()


@pytest.fixture(scope="session")
def lighttpd_camera() -> Iterator[LighttpdCamera]:
    camera = LighttpdCamera().start()
    yield camera
    camera.stop()


@pytest.fixture(scope="session")
def gst_camera() -> Iterator[GstRtspCamera]:
    camera = GstRtspCamera().start()
    yield camera
    camera.stop()


@pytest.fixture(scope="session")
def rtsps_camera(gst_camera: GstRtspCamera, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsFront]:
    """The GStreamer camera behind TLS with a self-signed certificate (``.certificate``)."""
    certificate = SelfSignedCertificate(tmp_path_factory.mktemp("rtsps"))
    front = TlsFront(gst_camera.port, certificate).start()
    yield front
    front.stop()


@pytest.fixture(scope="session")
def fake_rtsp() -> Iterator[FakeRtspCamera]:
    camera = FakeRtspCamera().start()
    yield camera
    camera.stop()


@pytest.fixture(scope="session")
def mjpeg_camera() -> Iterator[CameraServer]:
    """The loopback camera server (``tests/sources/camera_server.py``); ``/mjpeg-live`` is its endless
    10 frames/s MJPEG stream."""
    server = CameraServer().start()
    yield server
    server.stop()


@pytest.fixture()
def proxy() -> Iterator[Callable[[int], CountingProxy]]:
    """Put a counting proxy in front of a camera's port: the camera's own view of its connections."""
    started: list[CountingProxy] = []

    def make(port: int) -> CountingProxy:
        front = CountingProxy(port).start()
        started.append(front)
        return front

    yield make
    for front in started:
        front.stop()
