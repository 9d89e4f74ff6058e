"""``/v1/cameras`` and the page routes on the real app, with a real loopback camera (no worker needed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from ml.image import decode_image
from settings import Settings
from tests.conftest import JOBS_KEY, keyed_client, migrated_app
from tests.images import shared_photo
from tests.sources.camera_server import JPEG_NAME, CameraServer, closed_port


@pytest.fixture(scope="module")
def fake_camera() -> Iterator[CameraServer]:
    server = CameraServer().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def camera_app(redis_server: Any, fake_camera: CameraServer, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The app with these cameras of ``ROLLCALL_UI_CAMERAS``, on a facebank of its own (an empty registry)."""
    database = tmp_path_factory.mktemp("ui-cameras") / "facebank.db"
    cameras = {
        "room12": fake_camera.url("/photo.jpg"),
        "login-page": fake_camera.url("/html"),
        "down": f"http://127.0.0.1:{closed_port()}/shot.jpg",
        "secret": fake_camera.url("/basic/photo.jpg").replace("http://", "http://admin:hunter2@"),
    }
    spec = ",".join(f"{name}={url}" for name, url in cameras.items())
    return migrated_app(Settings(ui_cameras=spec, database_url=f"sqlite:///{database}"))


def test_cameras_are_listed_by_name_without_their_urls(camera_app: Any) -> None:
    response = keyed_client(camera_app, JOBS_KEY).get("/v1/cameras")
    assert response.status_code == 200
    items = response.get_json()["items"]
    assert [item["name"] for item in items] == ["room12", "login-page", "down", "secret"]
    assert items[0]["frame_url"] == "/v1/cameras/room12/frame"
    assert "hunter2" not in response.get_data(as_text=True) and "127.0.0.1" not in response.get_data(
        as_text=True
    )


def test_the_camera_list_and_frames_need_a_key(camera_app: Any) -> None:
    anonymous = keyed_client(camera_app, None)
    assert anonymous.get("/v1/cameras").status_code == 401
    assert anonymous.get("/v1/cameras/room12/frame").status_code == 401


def test_a_frame_is_the_cameras_bytes_unchanged(camera_app: Any, fake_camera: CameraServer) -> None:
    response = keyed_client(camera_app, JOBS_KEY).get("/v1/cameras/secret/frame")
    assert response.status_code == 200
    assert response.mimetype == "image/jpeg"
    assert response.data == shared_photo(JPEG_NAME)
    assert response.headers["Cache-Control"] == "no-store"

    # The URL's credentials reach the camera, after its challenge only.
    assert fake_camera.requests[-2].authorization is None
    assert fake_camera.requests[-1].authorization is not None


@pytest.mark.parametrize(
    ("name", "status", "code"),
    [
        ("down", 502, "camera_unreachable"),
        ("login-page", 502, "camera_protocol_error"),
        ("nobody", 404, "camera_not_found"),
    ],
)
def test_camera_failures_are_api_errors(camera_app: Any, name: str, status: int, code: str) -> None:
    response = keyed_client(camera_app, JOBS_KEY).get(f"/v1/cameras/{name}/frame")
    assert response.status_code == status
    assert response.get_json()["error"]["code"] == code


def test_the_page_shows_digest_and_rtsp_cameras(
    redis_server: Any, apache_camera: Any, gst_camera: Any
) -> None:
    from benchmarks.camera_servers import CAMERA_PASSWORD, CAMERA_USER, DAHUA

    cameras = {
        "dahua": apache_camera.url(DAHUA, credentials=(CAMERA_USER, CAMERA_PASSWORD)),
        "hall": gst_camera.url("/h264"),
        "wrong": apache_camera.url(DAHUA, credentials=(CAMERA_USER, "not-it")),
    }
    app = migrated_app(Settings(ui_cameras=",".join(f"{name}={url}" for name, url in cameras.items())))
    client = keyed_client(app, JOBS_KEY)
    for name in ("dahua", "hall"):
        response = client.get(f"/v1/cameras/{name}/frame")
        assert (response.status_code, response.mimetype) == (200, "image/jpeg"), response.get_data()[:200]
        assert decode_image(response.data, 40_000_000).shape == (240, 320, 3)
    wrong = client.get("/v1/cameras/wrong/frame")
    assert (wrong.status_code, wrong.get_json()["error"]["code"]) == (502, "camera_auth_failed")
    assert "not-it" not in wrong.get_data(as_text=True)


def test_frames_obey_the_camera_allowlist(redis_server: Any, fake_camera: CameraServer) -> None:
    app = migrated_app(
        Settings(ui_cameras=f"room12={fake_camera.url('/photo.jpg')}", camera_allow="10.0.0.0/8")
    )
    seen_before = len(fake_camera.requests)
    response = keyed_client(app, JOBS_KEY).get("/v1/cameras/room12/frame")
    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "camera_not_allowed"
    assert len(fake_camera.requests) == seen_before, "a camera outside the allowlist was contacted"


@pytest.mark.parametrize(
    "spec",
    ["room12", "=http://x/", "room 12=http://x/", "room12=ftp://x/", "a=http://x/,a=http://y/"],
)
def test_malformed_camera_settings_stop_the_api(spec: str) -> None:
    with pytest.raises(ValidationError, match="ui_cameras"):
        Settings(ui_cameras=spec)


def test_camera_settings_parse_names_and_urls() -> None:
    cameras = Settings(
        ui_cameras=" room12 = http://192.168.1.20/shot.jpg?x=1 , lab.2=https://cam.lan/a ,"
        "hall=rtsp://admin:pw@192.168.1.30:554/Streaming/Channels/101"
    ).ui_cameras
    assert {name: camera.url for name, camera in cameras.items()} == {
        "room12": "http://192.168.1.20/shot.jpg?x=1",
        "lab.2": "https://cam.lan/a",
        "hall": "rtsp://admin:pw@192.168.1.30:554/Streaming/Channels/101",
    }


def test_the_page_is_public_and_locked_down(camera_app: Any) -> None:
    anonymous = keyed_client(camera_app, None)
    root = anonymous.get("/")
    assert root.status_code == 302 and root.headers["Location"].endswith("/ui/")
    page = anonymous.get("/ui/")
    assert page.status_code == 200 and page.mimetype == "text/html"
    policy = page.headers["Content-Security-Policy"]
    assert (
        "script-src 'self'" in policy
        and "connect-src 'self'" in policy
        and "frame-ancestors 'none'" in policy
    )
    for asset, mimetype in (("app.js", "text/javascript"), ("style.css", "text/css")):
        response = anonymous.get(f"/static/{asset}")
        assert response.status_code == 200 and response.mimetype == mimetype
