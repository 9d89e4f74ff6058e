"""The camera registry's API on the real app, against real loopback cameras (no worker needed): admin-only
changes, passwords in and never out, credentials split out of URLs, ``ROLLCALL_UI_CAMERAS`` beside it, the
camera test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from facebank.passwords import new_key
from settings import Settings
from tests.conftest import JOBS_KEY, keyed_client, migrated_app
from tests.images import shared_photo
from tests.sources.camera_server import JPEG_NAME, CameraServer, closed_port

PASSWORD = "hunter2"  # what the loopback camera's /basic/ paths accept, with user "admin"


@pytest.fixture(scope="module")
def fake_camera() -> Iterator[CameraServer]:
    server = CameraServer().start()
    yield server
    server.stop()


def registry_app(tmp_path: Path, secret_key: str | None = None, **settings: Any) -> Any:
    """The real app on a facebank of its own (``secret_key``: None for none)."""
    return migrated_app(
        Settings(
            database_url=f"sqlite:///{tmp_path / 'cameras.db'}",
            secret_key=secret_key or "",
            **settings,
        )
    )


@pytest.fixture(scope="module")
def app(redis_server: Any, tmp_path_factory: pytest.TempPathFactory, fake_camera: CameraServer) -> Any:
    return registry_app(
        tmp_path_factory.mktemp("registry"),
        new_key(),
        ui_cameras=f"hall=http://viewer:hall-pass@127.0.0.1:{fake_camera.port}/photo.jpg",
    )


@pytest.fixture
def admin(app: Any) -> Any:
    return keyed_client(app)


def create(client: Any, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/cameras", json=body)
    assert response.status_code == 201, response.get_json()
    created: dict[str, Any] = response.get_json()
    return created


def test_a_camera_is_registered_read_changed_and_removed(admin: Any, fake_camera: CameraServer) -> None:
    url = fake_camera.url("/basic/photo.jpg")

    response = admin.post(
        "/v1/cameras",
        json={"name": "crud", "url": url, "username": "admin", "password": PASSWORD, "label": "Room 12"},
    )
    assert response.status_code == 201, response.get_json()
    assert response.headers["Location"] == "/v1/cameras/crud"
    created = response.get_json()
    assert {k: created[k] for k in ("name", "url", "username", "has_password", "label", "source")} == {
        "name": "crud",
        "url": url,
        "username": "admin",
        "has_password": True,
        "label": "Room 12",
        "source": "registry",
    }
    assert created["frame_url"] == "/v1/cameras/crud/frame"
    assert admin.get("/v1/cameras/crud").get_json() == created

    changed = admin.patch("/v1/cameras/crud", json={"label": None, "small_faces": "on"})
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["label"], changed.get_json()["small_faces"]) == (None, "on")
    assert changed.get_json()["has_password"] is True, "a change that names no password keeps it"

    assert admin.delete("/v1/cameras/crud").status_code == 204
    gone = admin.get("/v1/cameras/crud")
    assert (gone.status_code, gone.get_json()["error"]["code"]) == (404, "camera_not_found")


def test_no_answer_and_no_log_line_ever_holds_the_password(
    admin: Any, fake_camera: CameraServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "Corr3ct-Horse-Battery"
    answers = [
        admin.post(
            "/v1/cameras",
            json={"name": "quiet", "url": fake_camera.url("/photo.jpg"), "username": "u", "password": secret},
        ),
        admin.get("/v1/cameras"),
        admin.get("/v1/cameras/quiet"),
        admin.patch("/v1/cameras/quiet", json={"password": secret + "2"}),
        admin.patch("/v1/cameras/quiet", json={"password": secret * 20}),  # too long: refused
        admin.post(
            "/v1/cameras",
            json={"name": "quiet", "url": fake_camera.url("/x"), "username": "u", "password": secret},
        ),
        admin.post("/v1/cameras/quiet/test"),
        admin.get("/openapi.json"),
    ]

    assert [answer.status_code for answer in answers] == [201, 200, 200, 200, 400, 409, 200, 200]
    for answer in answers:
        assert secret not in answer.get_data(as_text=True)
    assert secret not in caplog.text


def test_credentials_in_the_url_are_split_out(admin: Any) -> None:
    created = create(admin, name="split", url="http://admin:s%40fe@192.168.7.20/snap.jpg?channel=1")

    assert (created["url"], created["username"], created["has_password"]) == (
        "http://192.168.7.20/snap.jpg?channel=1",
        "admin",
        True,
    )
    both = admin.post(
        "/v1/cameras", json={"name": "both", "url": "http://a:b@192.168.7.20/", "password": "c"}
    )
    assert (both.status_code, both.get_json()["error"]["code"]) == (400, "invalid_input")


def test_changes_need_an_admin_key_and_a_jobs_key_sees_names_only(app: Any, admin: Any) -> None:
    create(
        admin,
        name="private",
        url="https://192.168.7.30/snap.jpg?token=abc",
        username="admin",
        password="x",
        tls_fingerprint_sha256="AB" * 32,
        label="Gate",
    )
    jobs = keyed_client(app, JOBS_KEY)

    for method, path, body in [
        ("post", "/v1/cameras", {"name": "mine", "url": "http://192.168.7.31/"}),
        ("patch", "/v1/cameras/private", {"label": "mine"}),
        ("delete", "/v1/cameras/private", None),
        ("post", "/v1/cameras/private/test", None),
    ]:
        response = getattr(jobs, method)(path, json=body)
        assert (response.status_code, response.get_json()["error"]["code"]) == (403, "forbidden"), path
    listing = jobs.get("/v1/cameras").get_json()
    seen = next(item for item in listing["items"] if item["name"] == "private")
    assert listing["can_manage"] is False and admin.get("/v1/cameras").get_json()["can_manage"] is True
    assert (seen["label"], seen["has_password"]) == ("Gate", True)
    assert (seen["url"], seen["username"], seen["tls_fingerprint_sha256"]) == (None, None, None)
    assert "token=abc" not in jobs.get("/v1/cameras/private").get_data(as_text=True)
    assert keyed_client(app, None).get("/v1/cameras").status_code == 401


def test_the_setting_is_listed_beside_the_registry_and_is_read_only(admin: Any) -> None:
    items = {item["name"]: item for item in admin.get("/v1/cameras").get_json()["items"]}

    assert items["hall"]["source"] == "settings"
    assert (items["hall"]["username"], items["hall"]["has_password"]) == ("viewer", True)
    assert "hall-pass" not in admin.get("/v1/cameras").get_data(as_text=True)
    taken = admin.post("/v1/cameras", json={"name": "hall", "url": "http://192.168.7.40/"})
    assert (taken.status_code, taken.get_json()["error"]["code"]) == (409, "duplicate_camera")
    for response in (admin.patch("/v1/cameras/hall", json={"label": "x"}), admin.delete("/v1/cameras/hall")):
        assert (response.status_code, response.get_json()["error"]["code"]) == (409, "conflict")
    again = admin.post("/v1/cameras", json={"name": "dup", "url": "http://192.168.7.40/"})
    assert again.status_code == 201
    twice = admin.post("/v1/cameras", json={"name": "dup", "url": "http://192.168.7.41/"})
    assert (twice.status_code, twice.get_json()["error"]["code"]) == (409, "duplicate_camera")


@pytest.mark.parametrize(
    "body",
    [
        {"name": "bad name", "url": "http://192.168.7.50/"},
        {"name": "ftp", "url": "ftp://192.168.7.50/"},
        {"name": "pin", "url": "http://192.168.7.50/", "tls_fingerprint_sha256": "ab" * 32},
        {"name": "short", "url": "https://192.168.7.50/", "tls_fingerprint_sha256": "abc"},
        {"name": "mode", "url": "http://192.168.7.50/", "small_faces": "always"},
        {"name": "extra", "url": "http://192.168.7.50/", "port": 80},
        {"name": "lonely", "url": "http://192.168.7.50/", "password": "x"},
    ],
)
def test_malformed_cameras_are_refused_with_400(admin: Any, body: dict[str, Any]) -> None:
    response = admin.post("/v1/cameras", json=body)

    assert (response.status_code, response.get_json()["error"]["code"]) == (400, "invalid_input")
    assert admin.get(f"/v1/cameras/{body['name']}").status_code in (400, 404)


def test_without_a_secret_key_a_password_is_refused_with_503(redis_server: Any, tmp_path: Path) -> None:
    client = keyed_client(registry_app(tmp_path))

    refused = client.post("/v1/cameras", json={"name": "room12", "url": "http://u:p@192.168.7.20/snap.jpg"})
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (503, "secret_key_missing")
    assert "ROLLCALL_SECRET_KEY" in refused.get_json()["error"]["message"]
    assert client.get("/v1/cameras").get_json()["items"] == []
    assert (
        client.post("/v1/cameras", json={"name": "room12", "url": "http://192.168.7.20/"}).status_code == 201
    )


def test_the_camera_test_reports_success_with_the_auth_it_answered(
    admin: Any, fake_camera: CameraServer
) -> None:
    create(
        admin,
        name="tested",
        url=fake_camera.url("/basic/photo.jpg"),
        username="admin",
        password=PASSWORD,
    )

    report = admin.post("/v1/cameras/tested/test")

    assert report.status_code == 200
    body = report.get_json()
    assert (body["ok"], body["reachable"], body["protocol"], body["auth"], body["tls"]) == (
        True,
        True,
        "http",
        "basic",
        "none",
    )
    assert (body["content_type"], body["bytes"]) == ("image/jpeg", len(shared_photo(JPEG_NAME)))
    assert body["width"] > 0 and body["height"] > 0 and body["first_frame_s"] > 0
    assert body["error_code"] is None


@pytest.mark.parametrize(
    ("url", "password", "code", "reachable"),
    [
        ("/basic/photo.jpg", "wrong", "camera_auth_failed", True),
        ("/html", None, "camera_protocol_error", True),
        ("closed", None, "camera_unreachable", False),
    ],
)
def test_the_camera_test_reports_the_precise_error(
    admin: Any, fake_camera: CameraServer, url: str, password: str | None, code: str, reachable: bool
) -> None:
    name = f"failing-{code}"
    full_url = f"http://127.0.0.1:{closed_port()}/x.jpg" if url == "closed" else fake_camera.url(url)
    create(admin, name=name, url=full_url, username="admin" if password else None, password=password)

    body = admin.post(f"/v1/cameras/{name}/test").get_json()

    assert (body["ok"], body["error_code"], body["reachable"]) == (False, code, reachable)
    assert body["error_message"] and (password is None or password not in body["error_message"])


def test_a_registered_cameras_frame_comes_through_the_proxy_with_its_credentials(
    admin: Any, fake_camera: CameraServer
) -> None:
    create(
        admin, name="proxied", url=fake_camera.url("/basic/photo.jpg"), username="admin", password=PASSWORD
    )

    response = admin.get("/v1/cameras/proxied/frame")

    assert response.status_code == 200 and response.data == shared_photo(JPEG_NAME)
    assert fake_camera.requests[-1].authorization is not None


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("post", "/v1/jobs/detect", {"camera": "nobody"}),
        ("post", "/v1/jobs/attendance", {"camera": "nobody"}),
        ("post", "/v1/jobs/identify", {"camera": "nobody", "box": [1, 1, 9, 9]}),
        ("get", "/modelfr?camera=nobody", None),
        ("get", "/modelat?camera=nobody", None),
    ],
)
def test_a_job_naming_an_unknown_camera_is_refused_at_submission(
    admin: Any, method: str, path: str, body: dict[str, Any] | None
) -> None:
    response = getattr(admin, method)(path, json=body)

    assert (response.status_code, response.get_json()["error"]["code"]) == (404, "camera_not_found")


@pytest.mark.parametrize(
    "body",
    [{"camera": "hall", "url": "http://192.168.7.20/"}, {"camera": "bad name"}, {"camera": 12}],
)
def test_a_frame_source_is_exactly_one_well_formed_thing(admin: Any, body: dict[str, Any]) -> None:
    response = admin.post("/v1/jobs/detect", json=body)

    assert (response.status_code, response.get_json()["error"]["code"]) == (400, "invalid_input")
    legacy = admin.get("/modelfr?camera=hall&ip=http://192.168.7.20/")
    assert (legacy.status_code, legacy.get_json()["error"]["code"]) == (400, "invalid_input")


def test_the_openapi_document_describes_the_registry(admin: Any) -> None:
    document = admin.get("/openapi.json").get_json()

    paths = document["paths"]
    assert set(paths["/v1/cameras"]) == {"get", "post"}
    assert set(paths["/v1/cameras/{name}"]) == {"get", "patch", "delete"}
    assert "post" in paths["/v1/cameras/{name}/test"]
    schemas = document["components"]["schemas"]
    assert "password" not in schemas["CameraOut"]["properties"]
    assert schemas["CameraCreate"]["properties"]["password"]["writeOnly"] is True
    assert {"required": ["camera"], "properties": {"camera": {"type": "string"}}} in schemas["DetectRequest"][
        "oneOf"
    ]
    assert {"ok", "auth", "tls", "first_frame_s", "error_code"} <= set(
        schemas["CameraTestReport"]["properties"]
    )


def test_a_new_key_takes_over_after_the_rotation_command(redis_server: Any, tmp_path: Path) -> None:
    old, new = new_key(), new_key()
    before = registry_app(tmp_path, old)
    create(keyed_client(before), name="rotated", url="http://admin:s3cret@192.168.7.60/snap.jpg")
    without_old = (
        registry_app(tmp_path, new).test_cli_runner().invoke(args=["facebank", "rotate-camera-passwords"])
    )
    assert without_old.exit_code == 1
    assert without_old.output.startswith("Error: secret_key_mismatch:")

    rotating = registry_app(tmp_path, f"{new},{old}")
    result = rotating.test_cli_runner().invoke(args=["facebank", "rotate-camera-passwords"])

    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 camera password re-encrypted under the first key"
    after = registry_app(tmp_path, new).extensions["rollcall.facebank"]
    resolved = after.cameras.resolve("rotated")
    assert resolved is not None and resolved.endpoint.password == "s3cret"
