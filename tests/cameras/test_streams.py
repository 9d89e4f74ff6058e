"""Cameras read continuously (``sources.stream``), as the live readers read them: real RTSP and MJPEG servers.

What a user would notice: one connection per camera however long it is read (the camera's own view,
through a counting proxy), frames at the camera's pace that are the streamed photo, no cut-off when the
first frame's budget or byte limit has passed, a reader that closes the stream frees the camera at once,
and a camera that breaks off ends the stream with the code an admin can act on.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pytest

import errors
from benchmarks.camera_servers import CAMERA_PASSWORD, CAMERA_USER, GstRtspCamera, photo_path
from ml.image import decode_image
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits
from sources.netguard import CameraAllowlist
from sources.stream import FrameStream, StreamFrame, open_stream
from tests.cameras.proxy import CountingProxy
from tests.conftest import wait_until
from tests.sources.camera_server import CameraServer, closed_port

ALLOW = CameraAllowlist.parse("127.0.0.1/32")
# A first frame within 4 s, and at most 200 kB before it: both lifted once the stream runs. (The test
# server's keyframe is ~140 kB, then ~30 kB a second: measured through the relay's byte count.)
LIMITS = FetchLimits(connect_timeout_s=2.0, read_timeout_s=3.0, total_s=4.0, max_bytes=200_000, retries=0)


def _take(stream: FrameStream, count: int) -> list[StreamFrame]:
    frames = []
    for frame in stream.frames():
        frames.append(frame)
        if len(frames) == count:
            break
    return frames


def _is_the_photo(image: np.ndarray) -> None:
    photo = decode_image(photo_path().read_bytes(), 40_000_000)
    assert image.shape == photo.shape
    assert float(np.abs(image.astype(np.int16) - photo.astype(np.int16)).mean()) < 8.0


def _closes_promptly(stream: FrameStream, front: CountingProxy) -> None:
    """Closing from another thread ends ``frames`` and the camera's connection at once (well inside the
    read timeout that would otherwise notice)."""
    iterating = threading.Event()
    ended = threading.Event()

    def read() -> None:
        for _ in stream.frames():
            iterating.set()
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    assert iterating.wait(10)
    closed_at = time.monotonic()
    stream.close()
    assert ended.wait(2), "frames() did not end after close()"
    wait_until(lambda: front.open_now == 0, 2, "the camera's connection to close")
    assert (front.last_closed() or 0) - closed_at < 2.0


@pytest.mark.parametrize(("path", "secure"), [("/h264", False), ("/h265", True)])
def test_an_rtsp_camera_is_read_on_one_connection_past_its_first_frame_limits(
    gst_camera: GstRtspCamera, proxy: Callable[[int], CountingProxy], path: str, secure: bool
) -> None:
    front = proxy(gst_camera.secure_port if secure else gst_camera.port)
    credentials = (
        f"{CAMERA_USER}:{CAMERA_PASSWORD.replace('@', '%40').replace(':', '%3A')}@" if secure else ""
    )
    endpoint = CameraEndpoint(f"rtsp://{credentials}127.0.0.1:{front.port}{path}")
    stream = open_stream(endpoint, ALLOW, LIMITS, poll_interval_s=0.2)
    started = time.monotonic()
    frames = _take(stream, 50)  # 10 frames/s: 5 s at the camera's own pace, past the 4 s budget and 200 kB
    elapsed = time.monotonic() - started
    stream.close()
    assert elapsed > LIMITS.total_s
    assert front.accepted == 1
    _is_the_photo(frames[-1].image())
    assert decode_image(frames[-1].jpeg(), 40_000_000).shape == frames[-1].image().shape
    assert (frames[-1].width, frames[-1].height) == frames[-1].image().shape[1::-1]


def test_closing_an_rtsp_stream_frees_the_camera_at_once(
    gst_camera: GstRtspCamera, proxy: Callable[[int], CountingProxy]
) -> None:
    front = proxy(gst_camera.port)
    stream = open_stream(CameraEndpoint(f"rtsp://127.0.0.1:{front.port}/h264"), ALLOW, LIMITS, 0.2)
    _closes_promptly(stream, front)


def test_an_rtsp_camera_that_goes_away_ends_the_stream_with_a_camera_code(
    gst_camera: GstRtspCamera, proxy: Callable[[int], CountingProxy]
) -> None:
    front = proxy(gst_camera.port)
    stream = open_stream(CameraEndpoint(f"rtsp://127.0.0.1:{front.port}/h264"), ALLOW, LIMITS, 0.2)
    frames = stream.frames()
    next(frames)
    front.stop()  # the camera's end of the connection goes away
    started = time.monotonic()
    with pytest.raises(errors.RollcallError) as caught:
        for _ in frames:
            pass
    assert caught.value.code in ("camera_unreachable", "camera_timeout"), caught.value.message
    assert time.monotonic() - started < LIMITS.read_timeout_s + 2


def test_an_mjpeg_camera_is_read_part_after_part_on_one_connection(
    mjpeg_camera: CameraServer, proxy: Callable[[int], CountingProxy]
) -> None:
    front = proxy(mjpeg_camera.port)
    endpoint = CameraEndpoint(f"http://127.0.0.1:{front.port}/mjpeg-live")
    started = time.monotonic()
    frames = _take(open_stream(endpoint, ALLOW, replace(LIMITS, total_s=2.0), 0.2), 30)
    assert time.monotonic() - started > 2.0  # past the first part's budget
    assert front.accepted == 1
    photo = photo_path().read_bytes()
    assert all(
        frame.jpeg() == photo for frame in frames
    )  # the camera's own bytes, parts with and without length
    _is_the_photo(frames[-1].image())


def test_closing_an_mjpeg_stream_frees_the_camera_at_once(
    mjpeg_camera: CameraServer, proxy: Callable[[int], CountingProxy]
) -> None:
    front = proxy(mjpeg_camera.port)
    stream = open_stream(CameraEndpoint(f"http://127.0.0.1:{front.port}/mjpeg-live"), ALLOW, LIMITS, 0.2)
    _closes_promptly(stream, front)


def test_a_snapshot_camera_is_polled_at_the_interval(mjpeg_camera: CameraServer) -> None:
    before = mjpeg_camera.paths().count("/photo.jpg")
    started = time.monotonic()
    frames = _take(open_stream(CameraEndpoint(mjpeg_camera.url("/photo.jpg")), ALLOW, LIMITS, 0.3), 4)
    elapsed = time.monotonic() - started
    assert mjpeg_camera.paths().count("/photo.jpg") - before == 4
    assert elapsed >= 3 * 0.3
    assert frames[0].jpeg() == photo_path().read_bytes()


def test_a_stream_to_a_closed_port_fails_as_unreachable() -> None:
    endpoint = CameraEndpoint(f"rtsp://127.0.0.1:{closed_port()}/h264")
    with pytest.raises(errors.CameraUnreachable):
        next(open_stream(endpoint, ALLOW, LIMITS, 0.2).frames())
