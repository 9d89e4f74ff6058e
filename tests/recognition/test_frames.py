"""Loading a job's frame from a registered camera: the worker's lookup, the camera's small-face mode, and no
registry at all for the other sources (a detect job on a URL runs while the database is away)."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest

import errors
from contract.jobs import FrameSource
from facebank.cameras import CameraDirectory
from facebank.passwords import PasswordCipher, new_key
from facebank.store import Facebank
from ml.timing import StageTimer
from recognition.frames import load_frame
from settings import Settings
from tests.images import shared_photo
from tests.sources.camera_server import JPEG_NAME, CameraServer

SETTINGS = Settings(camera_allow="127.0.0.0/8", small_faces_cameras="127.0.0.1=auto")


@pytest.fixture(scope="module")
def basic_camera() -> Iterator[CameraServer]:
    server = CameraServer(credentials=("admin", "hunter2")).start()
    yield server
    server.stop()


@pytest.fixture
def keyed(facebank: Facebank) -> Facebank:
    return Facebank(facebank.engine, PasswordCipher([new_key()]))


def never_opened() -> CameraDirectory:
    raise AssertionError("the camera registry was opened for a frame that names no camera")


def test_a_registered_camera_is_looked_up_and_its_password_answers_the_challenge(
    keyed: Facebank, basic_camera: CameraServer
) -> None:
    keyed.cameras.create(
        "room12", basic_camera.url("/basic/photo.jpg"), username="admin", password="hunter2", small_faces="on"
    )
    directory = CameraDirectory(keyed.cameras, {})
    timer = StageTimer()

    frame = load_frame(
        FrameSource(camera="room12"), SETTINGS, SETTINGS.camera_allow, timer, lambda: directory
    )

    assert frame.data == shared_photo(JPEG_NAME)
    assert (frame.source, frame.small_faces) == ("camera:room12", "on")
    assert {"fetch", "decode"} <= set(timer.report())


def test_a_camera_without_a_mode_takes_its_hosts_and_a_deleted_one_is_not_found(
    keyed: Facebank, basic_camera: CameraServer
) -> None:
    keyed.cameras.create("hall", basic_camera.url("/photo.jpg"))
    directory = CameraDirectory(keyed.cameras, {})
    source = FrameSource(camera="hall")

    frame = load_frame(source, SETTINGS, SETTINGS.camera_allow, StageTimer(), lambda: directory)
    keyed.cameras.delete("hall")

    assert frame.small_faces == "auto"  # ROLLCALL_SMALL_FACES_CAMERAS names its host
    with pytest.raises(errors.CameraNotFound, match="hall"):
        load_frame(source, SETTINGS, SETTINGS.camera_allow, StageTimer(), lambda: directory)


def test_urls_and_uploads_never_open_the_registry(basic_camera: CameraServer) -> None:
    upload = FrameSource(image_b64=base64.b64encode(shared_photo(JPEG_NAME)).decode())
    by_url = FrameSource(url=basic_camera.url("/photo.jpg"))

    uploaded = load_frame(upload, SETTINGS, SETTINGS.camera_allow, StageTimer(), never_opened)
    fetched = load_frame(by_url, SETTINGS, SETTINGS.camera_allow, StageTimer(), never_opened)

    assert (uploaded.source, uploaded.small_faces) == ("upload", None)
    assert (fetched.source, fetched.small_faces) == ("camera:127.0.0.1", "auto")


def test_a_live_cameras_shared_frame_is_taken_instead_of_a_fetch(
    keyed: Facebank, basic_camera: CameraServer
) -> None:
    """A stream reader shares the camera's newest frame (``live.framestore``): the job takes it and the
    camera sees no request; without a fresh one the job fetches as before."""
    keyed.cameras.create("lab", basic_camera.url("/photo.png"), small_faces="on")
    directory = CameraDirectory(keyed.cameras, {})
    shared = shared_photo(JPEG_NAME)
    before = len(basic_camera.requests)

    frame = load_frame(
        FrameSource(camera="lab"), SETTINGS, SETTINGS.camera_allow, StageTimer(), lambda: directory,
        shared_frame={"lab": shared}.get,
    )  # fmt: skip
    assert frame.data == shared and frame.image.shape[2] == 3
    assert (frame.source, frame.small_faces) == ("camera:lab", "on")
    assert len(basic_camera.requests) == before, "the camera was asked although a shared frame was fresh"

    fetched = load_frame(
        FrameSource(camera="lab"), SETTINGS, SETTINGS.camera_allow, StageTimer(), lambda: directory,
        shared_frame=lambda name: None,
    )  # fmt: skip
    assert fetched.data[:4] == b"\x89PNG" and len(basic_camera.requests) == before + 1
