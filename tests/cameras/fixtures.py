"""Session-wide real camera servers, shared by the camera tests, the end-to-end jobs and the reliability
suite (imported into ``tests/conftest.py``): each starts once per test session, on first use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from benchmarks.camera_servers import (
    ApacheCamera,
    GstRtspCamera,
    LighttpdCamera,
    SelfSignedCertificate,
    TlsFront,
)
from tests.cameras.rtsp_fakes import FakeRtspCamera


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
