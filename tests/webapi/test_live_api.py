"""``/v1/cameras/<name>/watch`` and the frame endpoint as a watcher, on the real app and a real Redis (no
reader runs here: ``tests/integration/test_live_readers.py`` has them).

What a user would notice: watching makes a camera live for the time asked, leaving ends it, one key cannot
end another's watch, bad input gets a clear error, and the page's frame endpoint keeps working (fetching
from the camera) when Redis does not answer.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from live.demand import Demand
from settings import Settings
from tests.conftest import ADMIN_KEY, JOBS_KEY, keyed_client, migrated_app
from tests.images import shared_photo
from tests.sources.camera_server import JPEG_NAME, CameraServer, closed_port


@pytest.fixture(scope="module")
def live_app(system_factory: Any, mjpeg_camera: CameraServer) -> Any:
    """The app with cameras of ``ROLLCALL_UI_CAMERAS``, its live state in Redis databases of its own."""
    cameras = f"hall={mjpeg_camera.url('/photo.jpg')},gym={mjpeg_camera.url('/photo.jpg')}"
    return system_factory("live-api", ROLLCALL_UI_CAMERAS=cameras).app


@pytest.fixture()
def demand(live_app: Any) -> Demand:
    return Demand(redis.Redis.from_url(live_app.extensions["rollcall.settings"].result_backend))


def test_watching_makes_a_camera_live_until_the_watch_is_left(live_app: Any, demand: Demand) -> None:
    client = keyed_client(live_app, JOBS_KEY)
    response = client.post("/v1/cameras/hall/watch", json={"watcher_id": "page-1", "ttl_s": 30})
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "camera": "hall",
        "watcher_id": "page-1",
        "ttl_s": 30.0,
        "reader": None,  # no reader runs in this test
        "frame": None,
    }
    assert "hall" in demand.live_cameras()
    assert client.delete("/v1/cameras/hall/watch/page-1").status_code == 204
    assert "hall" not in demand.live_cameras()


def test_an_empty_watch_gets_an_id_and_the_default_time(live_app: Any, demand: Demand) -> None:
    response = keyed_client(live_app, JOBS_KEY).post("/v1/cameras/gym/watch", json={})
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["ttl_s"] == 5.0 and len(answer["watcher_id"]) >= 12
    assert "gym" in demand.live_cameras()
    keyed_client(live_app, JOBS_KEY).delete(f"/v1/cameras/gym/watch/{answer['watcher_id']}")


def test_one_key_cannot_end_another_keys_watch(live_app: Any, demand: Demand) -> None:
    keyed_client(live_app, JOBS_KEY).post("/v1/cameras/hall/watch", json={"watcher_id": "kiosk", "ttl_s": 30})
    assert keyed_client(live_app, ADMIN_KEY).delete("/v1/cameras/hall/watch/kiosk").status_code == 204
    assert "hall" in demand.live_cameras()  # the admin key's "kiosk" is another watch
    keyed_client(live_app, JOBS_KEY).delete("/v1/cameras/hall/watch/kiosk")
    assert "hall" not in demand.live_cameras()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ttl_s": 0.5}, "ttl_s"),
        ({"ttl_s": 61}, "ttl_s"),
        ({"watcher_id": "a b"}, "watcher_id"),
        ({"x": 1}, "x"),
    ],
)
def test_a_bad_watch_is_refused_with_the_field_named(live_app: Any, body: dict[str, Any], field: str) -> None:
    response = keyed_client(live_app, JOBS_KEY).post("/v1/cameras/hall/watch", json=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["code"] == "invalid_input" and field in error["message"]


def test_watching_a_camera_nobody_knows_is_not_found(live_app: Any, demand: Demand) -> None:
    client = keyed_client(live_app, JOBS_KEY)
    for response in (
        client.post("/v1/cameras/nowhere/watch", json={}),
        client.delete("/v1/cameras/no%20w/watch/a"),
    ):
        assert response.status_code == 404
        assert response.get_json()["error"]["code"] == "camera_not_found"
    assert "nowhere" not in demand.live_cameras()


def test_watching_needs_a_key(live_app: Any) -> None:
    assert keyed_client(live_app, None).post("/v1/cameras/hall/watch", json={}).status_code == 401


def test_a_frame_request_keeps_the_camera_live_and_fetches_while_no_reader_shares(
    live_app: Any, demand: Demand
) -> None:
    response = keyed_client(live_app, JOBS_KEY).get("/v1/cameras/gym/frame")
    assert response.status_code == 200
    assert response.headers["X-Frame-Source"] == "camera"
    assert response.data == shared_photo(JPEG_NAME)
    assert "gym" in demand.live_cameras()


def test_without_redis_the_frame_endpoint_still_fetches_and_watching_is_unavailable(
    mjpeg_camera: CameraServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    database = tmp_path_factory.mktemp("live-api-no-redis") / "facebank.db"
    app = migrated_app(
        Settings(
            ui_cameras=f"hall={mjpeg_camera.url('/photo.jpg')}",
            database_url=f"sqlite:///{database}",
            result_backend=f"redis://127.0.0.1:{closed_port()}/1",
        )
    )
    client = keyed_client(app, JOBS_KEY)
    frame = client.get("/v1/cameras/hall/frame")
    assert frame.status_code == 200 and frame.headers["X-Frame-Source"] == "camera"
    watch = client.post("/v1/cameras/hall/watch", json={})
    assert watch.status_code == 503
    assert watch.get_json()["error"]["code"] == "broker_unavailable"
