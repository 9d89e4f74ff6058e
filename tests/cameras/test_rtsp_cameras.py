"""RTSP cameras: GStreamer's RTSP server streaming the photo as H.264 and H.265 (openly, behind RTSP
Digest, behind TLS), and small servers that redirect or fall silent.

What a user would notice: the photo arrives as a JPEG of the stream's frame; credentials from the
URL reach the camera only through its challenge; a redirect, a forbidden address, a silent server or
a wrong password end with the code an admin can act on, within the time limits, and nothing outside
the allowlist is ever contacted.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace

import numpy as np
import pytest

import errors
from benchmarks.camera_servers import CAMERA_PASSWORD, CAMERA_USER, GstRtspCamera, TlsFront, photo_path
from ml.image import decode_image
from sources.camera import fetch_frame
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchedFrame, FetchLimits, FetchTrace
from sources.netguard import CameraAllowlist
from sources.probe import probe_camera
from sources.rtsp_relay import RtspRelay
from tests.cameras.rtsp_fakes import FakeRtspCamera

ALLOW = CameraAllowlist.parse("127.0.0.1/32")
LIMITS = FetchLimits(connect_timeout_s=2.0, read_timeout_s=2.0, total_s=6.0, max_bytes=5_000_000, retries=0)
SLACK_S = 2.0
CREDENTIALS = (CAMERA_USER, CAMERA_PASSWORD)


# A camera that works gets more time than the failure cases' tight LIMITS: on two busy cores the RTSPS
# test's TLS relay once took over 2 s to pass the OPTIONS answer (CI, 2026-12-07).
ROOMY = replace(LIMITS, connect_timeout_s=5.0, read_timeout_s=5.0, total_s=10.0)


def _fetch(endpoint: CameraEndpoint, limits: FetchLimits = ROOMY) -> tuple[FetchedFrame, FetchTrace]:
    trace = FetchTrace()
    return fetch_frame(endpoint, ALLOW, limits, trace), trace


def _fails(
    error: type[errors.RollcallError], endpoint: CameraEndpoint, limits: FetchLimits = LIMITS
) -> tuple[errors.RollcallError, float]:
    started = time.monotonic()
    with pytest.raises(errors.RollcallError) as caught:
        fetch_frame(endpoint, ALLOW, limits)
    elapsed = time.monotonic() - started
    assert caught.value.code == error.code, caught.value.message
    assert elapsed < limits.total_s + SLACK_S, f"{error.code} took {elapsed:.1f} s"
    return caught.value, elapsed


def _is_the_photo(fetched: FetchedFrame) -> None:
    """The frame is the streamed photo: same size, and close to it pixel for pixel (video is lossy)."""
    assert fetched.content_type == "image/jpeg"
    frame = decode_image(fetched.data, 40_000_000)
    photo = decode_image(photo_path().read_bytes(), 40_000_000)
    assert frame.shape == photo.shape
    assert float(np.abs(frame.astype(np.int16) - photo.astype(np.int16)).mean()) < 8.0


@pytest.mark.parametrize(("path", "codec"), [("/h264", "h264"), ("/h265", "hevc")])
def test_h264_and_h265_streams_give_the_photo(gst_camera: GstRtspCamera, path: str, codec: str) -> None:
    fetched, trace = _fetch(CameraEndpoint(gst_camera.url(path)))
    _is_the_photo(fetched)
    assert (trace.codec, trace.auth, trace.tls) == (codec, "none", "none")
    assert fetched.final_url == gst_camera.url(path)


def test_digest_rtsp_camera_with_credentials_in_the_url(gst_camera: GstRtspCamera) -> None:
    """The password holds "@" and ":" (percent-encoded in the URL, as it must be)."""
    fetched, trace = _fetch(CameraEndpoint(gst_camera.url("/h265", secure=True, credentials=CREDENTIALS)))
    _is_the_photo(fetched)
    assert trace.auth == "digest-md5"
    assert CAMERA_PASSWORD not in fetched.final_url


def test_basic_rtsp_camera_is_answered_with_basic_only_after_its_challenge(gst_camera: GstRtspCamera) -> None:
    """A camera that asks for Basic gets Basic (after its 401: never before), and a wrong password is
    ``camera_auth_failed`` naming the scheme, the password nowhere."""
    fetched, trace = _fetch(CameraEndpoint(gst_camera.url("/h264", basic=True, credentials=CREDENTIALS)))
    _is_the_photo(fetched)
    assert trace.auth == "basic"
    url = gst_camera.url("/h264", basic=True).replace("rtsp://", "rtsp://admin:wr0ng@pa55@")
    error, _ = _fails(errors.CameraAuthFailed, CameraEndpoint(url))
    assert "refused the credentials (basic, RTSP DESCRIBE)" in error.message
    assert "wr0ng" not in error.message and "pa55" not in error.message


def test_wrong_or_missing_rtsp_credentials_are_auth_failed(gst_camera: GstRtspCamera) -> None:
    url = gst_camera.url("/h264", secure=True).replace("rtsp://", "rtsp://admin:wr0ng@pa55@")
    error, _ = _fails(errors.CameraAuthFailed, CameraEndpoint(url))
    assert "refused the credentials (digest-md5, RTSP DESCRIBE)" in error.message
    assert "wr0ng" not in error.message and "pa55" not in error.message
    error, _ = _fails(errors.CameraAuthFailed, CameraEndpoint(gst_camera.url("/h264", secure=True)))
    assert "none are set" in error.message


def test_a_path_without_a_stream_is_a_protocol_error(gst_camera: GstRtspCamera) -> None:
    error, _ = _fails(errors.CameraProtocolError, CameraEndpoint(gst_camera.url("/no-such-stream")))
    assert "DESCRIBE with RTSP 404" in error.message


def test_a_frame_over_the_pixel_limit_is_too_large(gst_camera: GstRtspCamera) -> None:
    error, _ = _fails(
        errors.FrameTooLarge, CameraEndpoint(gst_camera.url("/h264")), replace(LIMITS, max_pixels=320 * 239)
    )
    assert "320×240" in error.message


def test_a_stream_over_the_byte_limit_stops_there(gst_camera: GstRtspCamera) -> None:
    _fails(errors.FrameTooLarge, CameraEndpoint(gst_camera.url("/h264")), replace(LIMITS, max_bytes=20_000))


# --- what FFmpeg must never do on its own ---
class _Listener:
    """A TCP port that only counts who connects: a target that must never be reached."""

    def __init__(self, host: str) -> None:
        self._socket = socket.create_server((host, 0))
        self._socket.settimeout(0.1)
        self.port = self._socket.getsockname()[1]
        self.connections = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._count, daemon=True)
        self._thread.start()

    def _count(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.connections += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        self._socket.close()


@pytest.fixture
def outside() -> Iterator[_Listener]:
    """A listener on 127.0.0.2, outside the tests' allowlist (127.0.0.1/32)."""
    listener = _Listener("127.0.0.2")
    yield listener
    listener.close()


def test_an_rtsp_url_to_a_forbidden_address_is_refused_before_connecting(outside: _Listener) -> None:
    error, _ = _fails(errors.CameraNotAllowed, CameraEndpoint(f"rtsp://127.0.0.2:{outside.port}/live"))
    assert "127.0.0.2" in error.message
    _fails(errors.CameraNotAllowed, CameraEndpoint("rtsps://169.254.169.254/live"))
    assert outside.connections == 0


def test_an_rtsp_redirect_outside_the_allowlist_is_never_followed(
    fake_rtsp: FakeRtspCamera, outside: _Listener
) -> None:
    target = f"rtsp://127.0.0.2:{outside.port}/live"
    error, _ = _fails(errors.CameraNotAllowed, CameraEndpoint(fake_rtsp.url(f"/redirect?to={target}")))
    assert "127.0.0.2" in error.message
    time.sleep(0.2)  # FFmpeg, had it seen the redirect, would be connecting by now
    assert outside.connections == 0
    _fails(errors.CameraNotAllowed, CameraEndpoint(fake_rtsp.url("/redirect?to=rtsp://169.254.169.254/x")))
    _fails(errors.CameraNotAllowed, CameraEndpoint(fake_rtsp.url("/redirect?to=http://127.0.0.1/x")))


def test_an_rtsp_redirect_inside_the_allowlist_is_checked_and_followed(
    fake_rtsp: FakeRtspCamera, gst_camera: GstRtspCamera
) -> None:
    seen = len(fake_rtsp.requests)
    fetched, _ = _fetch(CameraEndpoint(fake_rtsp.url(f"/redirect?to={gst_camera.url('/h264')}")))
    _is_the_photo(fetched)
    assert fetched.final_url == gst_camera.url("/h264")
    # The camera saw its own URL in each request line, not the relay's loopback one.
    assert all(request.url.startswith(fake_rtsp.url("/")) for request in fake_rtsp.requests[seen:])


def test_a_server_that_never_answers_describe_times_out(fake_rtsp: FakeRtspCamera) -> None:
    error, elapsed = _fails(errors.CameraTimeout, CameraEndpoint(fake_rtsp.url("/hang")))
    assert "did not answer RTSP DESCRIBE" in error.message
    assert elapsed >= LIMITS.read_timeout_s


def test_a_server_that_plays_but_never_sends_a_frame_times_out(fake_rtsp: FakeRtspCamera) -> None:
    error, elapsed = _fails(errors.CameraTimeout, CameraEndpoint(fake_rtsp.url("/mute")))
    assert "sent no frame" in error.message
    assert [r.method for r in fake_rtsp.requests[-4:]] == ["OPTIONS", "DESCRIBE", "SETUP", "PLAY"]


def test_a_port_that_does_not_speak_rtsp_is_a_protocol_error(apache_camera: object) -> None:
    port = apache_camera.port  # type: ignore[attr-defined]
    error, _ = _fails(errors.CameraProtocolError, CameraEndpoint(f"rtsp://127.0.0.1:{port}/live"))
    assert "does not speak RTSP" in error.message


def test_a_closed_rtsp_port_is_unreachable_at_once() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    _, elapsed = _fails(
        errors.CameraUnreachable, CameraEndpoint(f"rtsp://127.0.0.1:{port}/live"), replace(LIMITS, retries=2)
    )
    assert elapsed < 0.5


# --- RTSPS: TLS with the camera's own certificate ---
def test_rtsps_camera_pinned_by_fingerprint(rtsps_camera: TlsFront) -> None:
    endpoint = CameraEndpoint(
        f"rtsps://127.0.0.1:{rtsps_camera.port}/h264",
        tls_fingerprint_sha256=rtsps_camera.certificate.fingerprint_sha256,
    )
    fetched, trace = _fetch(endpoint)
    _is_the_photo(fetched)
    assert (trace.tls, trace.codec) == ("fingerprint", "h264")


def test_rtsps_camera_unpinned_or_mismatched_is_tls_failed(rtsps_camera: TlsFront) -> None:
    url = f"rtsps://127.0.0.1:{rtsps_camera.port}/h264"
    error, _ = _fails(errors.CameraTLSFailed, CameraEndpoint(url))
    assert "self-signed" in error.message
    error, _ = _fails(errors.CameraTLSFailed, CameraEndpoint(url, tls_fingerprint_sha256="cd" * 32))
    assert rtsps_camera.certificate.fingerprint_sha256.upper() in error.message.replace(":", "")


def test_the_relay_serves_only_its_own_process(fake_rtsp: FakeRtspCamera) -> None:
    """Another process on the machine that connects to the relay's loopback port first gets nothing."""
    upstream = socket.create_connection(("127.0.0.1", fake_rtsp.port))
    options = b"OPTIONS rtsp://127.0.0.1/mute RTSP/1.0\r\nCSeq: 1\r\n\r\n"
    with RtspRelay(upstream, fake_rtsp.url(""), None, 1_000_000, FetchTrace(), "fake") as relay:
        port = int(relay.loopback_url("/").split(":")[2].split("/")[0])
        intruder = subprocess.run(
            [
                sys.executable,
                "-c",
                "import socket, sys\n"
                "s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), 3)\n"
                "s.sendall(sys.argv[2].encode())\n"
                "try:\n    print(repr(s.recv(100)))\nexcept ConnectionResetError:\n    print('reset')",
                str(port),
                options.decode(),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert intruder.stdout.strip() in ("b''", "reset"), intruder  # closed unanswered
        with socket.create_connection(("127.0.0.1", port), timeout=3) as own:
            own.sendall(options)
            assert own.recv(100).startswith(b"RTSP/1.0 200 OK")


def test_the_camera_test_report_of_an_rtsp_camera(gst_camera: GstRtspCamera) -> None:
    endpoint = CameraEndpoint(gst_camera.url("/h265", secure=True, credentials=CREDENTIALS))
    report = probe_camera(endpoint, ALLOW, LIMITS).to_dict()
    assert (report["ok"], report["reachable"], report["protocol"]) == (True, True, "rtsp")
    assert (report["auth"], report["tls"], report["codec"]) == ("digest-md5", "none", "hevc")
    assert (report["width"], report["height"], report["content_type"]) == (320, 240, "image/jpeg")
    assert report["first_frame_s"] is not None and report["round_trips"] >= 5
    assert CAMERA_PASSWORD not in str(report)
