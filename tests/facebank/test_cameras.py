"""The camera registry in the facebank store (SQLite and PostgreSQL): passwords encrypted at rest, never read
back but as an endpoint, credentials split out of URLs, TLS trust checked and normalised."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trustme
from pydantic import SecretStr
from sqlalchemy import text

import errors
from facebank.cameras import CameraDirectory
from facebank.db import upgrade
from facebank.passwords import PasswordCipher, cipher_of, new_key, parse_keys
from facebank.records import Camera
from facebank.store import Facebank
from sources.endpoint import CameraEndpoint

KEY = new_key()
PASSWORD = "pa:ss@wörd/1"  # a colon, an unencoded @, a slash and a non-ASCII letter


@pytest.fixture
def keyed(database_url: str) -> Iterator[Facebank]:
    """A facebank whose registry holds the key ``KEY``."""
    upgrade(database_url)
    store = Facebank.from_url(database_url, PasswordCipher([KEY]))
    yield store
    store.close()


def stored_tokens(store: Facebank) -> list[str | None]:
    with store.engine.connect() as connection:
        return [row[0] for row in connection.execute(text("SELECT password_token FROM cameras"))]


def test_a_camera_keeps_its_settings_and_shows_no_password(keyed: Facebank) -> None:
    camera = keyed.cameras.create(
        "room12",
        "https://192.168.1.20/ISAPI/Streaming/channels/101/picture",
        username="admin",
        password=PASSWORD,
        tls_fingerprint_sha256=":".join(["AB", "cd"] * 16),  # as browsers and openssl show it
        small_faces="on",
        label="Room 12, back wall",
    )

    assert camera.has_password and camera.username == "admin"
    assert camera.tls_fingerprint_sha256 == "abcd" * 16
    assert (camera.small_faces, camera.label, camera.source) == ("on", "Room 12, back wall", "registry")
    assert PASSWORD not in repr(camera), "a record never holds the password"
    assert keyed.cameras.get("room12") == camera
    assert keyed.cameras.all() == [camera]


def test_the_password_is_encrypted_at_rest_and_decrypted_only_into_the_endpoint(keyed: Facebank) -> None:
    keyed.cameras.create("room12", "http://192.168.1.20/snap.jpg", username="admin", password=PASSWORD)

    [token] = stored_tokens(keyed)
    assert token is not None and PASSWORD not in token and PASSWORD.encode().hex() not in token
    resolved = keyed.cameras.resolve("room12")
    assert resolved is not None
    assert resolved.endpoint == CameraEndpoint("http://192.168.1.20/snap.jpg", "admin", PASSWORD)
    assert PASSWORD not in repr(resolved.endpoint), "an endpoint's repr hides the password"


def test_credentials_in_the_url_are_split_out(keyed: Facebank) -> None:
    camera = keyed.cameras.create(
        "lab", "http://admin:pa%3Ass%40w%C3%B6rd%2F1@192.168.1.21:8080/snap.jpg?ch=1"
    )

    assert camera.url == "http://192.168.1.21:8080/snap.jpg?ch=1"
    assert camera.username == "admin" and camera.has_password
    resolved = keyed.cameras.resolve("lab")
    assert resolved is not None and resolved.endpoint.password == PASSWORD
    with pytest.raises(errors.InvalidInput, match="not both"):
        keyed.cameras.create("lab2", "http://a:b@192.168.1.21/", username="c")


def test_an_unencoded_at_sign_stays_in_the_password(keyed: Facebank) -> None:
    camera = keyed.cameras.create("room12", "http://admin:p@ss@192.168.1.20/x.jpg")
    viewer = keyed.cameras.create("hall", "http://viewer@192.168.1.21/x.jpg")

    assert (camera.url, camera.username) == ("http://192.168.1.20/x.jpg", "admin")
    resolved = keyed.cameras.resolve("room12")
    assert resolved is not None and resolved.endpoint.password == "p@ss"
    assert (viewer.username, viewer.has_password) == ("viewer", False)


def test_without_a_key_passwords_are_refused_and_cameras_without_one_are_fine(database_url: str) -> None:
    upgrade(database_url)
    store = Facebank.from_url(database_url)
    try:
        with pytest.raises(errors.SecretKeyMissing, match="ROLLCALL_SECRET_KEY"):
            store.cameras.create("room12", "http://192.168.1.20/snap.jpg", username="admin", password="x")
        with pytest.raises(errors.SecretKeyMissing):
            store.cameras.create("room13", "http://admin:x@192.168.1.20/snap.jpg")
        assert store.cameras.all() == []
        open_camera = store.cameras.create("hall", "http://192.168.1.30/snap.jpg", username="viewer")
        assert not open_camera.has_password
    finally:
        store.close()


def test_a_lost_key_makes_the_password_unreadable_not_wrong(database_url: str) -> None:
    upgrade(database_url)
    first = Facebank.from_url(database_url, PasswordCipher([KEY]))
    first.cameras.create("room12", "http://192.168.1.20/snap.jpg", username="admin", password=PASSWORD)
    first.close()
    other_key = Facebank.from_url(database_url, PasswordCipher([new_key()]))
    no_key = Facebank.from_url(database_url)
    try:
        with pytest.raises(errors.SecretKeyMismatch, match="room12"):
            other_key.cameras.resolve("room12")
        with pytest.raises(errors.SecretKeyMissing, match="room12"):
            no_key.cameras.resolve("room12")
    finally:
        other_key.close()
        no_key.close()


def test_rotation_re_encrypts_under_the_new_key_so_the_old_one_can_go(database_url: str) -> None:
    upgrade(database_url)
    old, new = new_key(), new_key()
    before = Facebank.from_url(database_url, PasswordCipher([old]))
    before.cameras.create("room12", "http://192.168.1.20/snap.jpg", username="admin", password=PASSWORD)
    before.close()
    rotating = Facebank.from_url(database_url, PasswordCipher([new, old]))
    after = Facebank.from_url(database_url, PasswordCipher([new]))
    try:
        assert rotating.cameras.rotate_passwords() == 1
        resolved = after.cameras.resolve("room12")
        assert resolved is not None and resolved.endpoint.password == PASSWORD
    finally:
        rotating.close()
        after.close()


def test_update_changes_clears_and_replaces(keyed: Facebank) -> None:
    keyed.cameras.create(
        "room12", "http://192.168.1.20/snap.jpg", username="admin", password="old", label="x"
    )

    changed = keyed.cameras.update("room12", password="new", label=None, small_faces="auto")
    assert (changed.label, changed.small_faces, changed.has_password) == (None, "auto", True)
    resolved = keyed.cameras.resolve("room12")
    assert resolved is not None and resolved.endpoint.password == "new"
    moved = keyed.cameras.update("room12", url="http://operator:secret@192.168.1.22/snap.jpg")
    assert (moved.url, moved.username) == ("http://192.168.1.22/snap.jpg", "operator")
    resolved = keyed.cameras.resolve("room12")
    assert resolved is not None and resolved.endpoint.password == "secret"
    cleared = keyed.cameras.update("room12", username=None, password=None)
    assert (cleared.username, cleared.has_password) == (None, False)
    assert stored_tokens(keyed) == [None]
    with pytest.raises(errors.InvalidInput, match="needs a username"):
        keyed.cameras.update("room12", password="orphan")
    assert keyed.cameras.get("room12") == cleared, "a refused update changes nothing"


def test_names_are_unique_and_checked(keyed: Facebank) -> None:
    keyed.cameras.create("room12", "http://192.168.1.20/snap.jpg")

    with pytest.raises(errors.DuplicateCamera):
        keyed.cameras.create("room12", "http://192.168.1.21/snap.jpg")
    for bad in ("", "room 12", "-room", "a" * 65, "room/12"):
        with pytest.raises(errors.InvalidInput, match="camera name"):
            keyed.cameras.create(bad, "http://192.168.1.20/snap.jpg")


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "ftp://192.168.1.20/x"}, "http://, https://, rtsp://, rtsps://"),
        ({"url": "http:///x.jpg"}, "needs a host"),
        ({"url": "http://192.168.1.20/a b"}, "spaces"),
        ({"tls_fingerprint_sha256": "ab" * 31}, "64 hex digits"),
        ({"tls_fingerprint_sha256": "zz" * 32}, "64 hex digits"),
        (
            {"url": "http://192.168.1.20/x", "tls_fingerprint_sha256": "ab" * 32},
            "TLS trust is set for a http",
        ),
        ({"tls_ca_pem": "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n"}, "no readable PEM"),
        ({"small_faces": "always"}, "small_faces"),
        ({"label": ""}, "label"),
    ],
)
def test_malformed_cameras_are_refused_with_the_rule(
    keyed: Facebank, fields: dict[str, str], message: str
) -> None:
    camera = {"name": "room12", "url": "https://192.168.1.20/x", **fields}

    with pytest.raises(errors.InvalidInput, match=message):
        keyed.cameras.create(**camera)
    assert keyed.cameras.all() == []


def test_a_private_ca_is_kept_and_reaches_the_endpoint(keyed: Facebank) -> None:
    ca_pem = trustme.CA().cert_pem.bytes().decode()

    keyed.cameras.create("gate", "https://192.168.1.40/snap.jpg", tls_ca_pem=ca_pem)

    resolved = keyed.cameras.resolve("gate")
    assert resolved is not None and resolved.endpoint.tls_ca_pem == ca_pem
    with pytest.raises(errors.InvalidInput, match="not both"):
        keyed.cameras.update("gate", tls_fingerprint_sha256="ab" * 32)


def test_delete_removes_the_camera(keyed: Facebank) -> None:
    keyed.cameras.create("room12", "http://192.168.1.20/snap.jpg")
    revision = keyed.revision()

    keyed.cameras.delete("room12")

    assert keyed.cameras.resolve("room12") is None
    with pytest.raises(errors.CameraNotFound):
        keyed.cameras.delete("room12")
    assert keyed.revision() == revision, "cameras must not make every worker reload its gallery"


def test_the_directory_reads_the_setting_beside_the_registry(keyed: Facebank) -> None:
    keyed.cameras.create("room12", "http://192.168.1.20/snap.jpg", small_faces="on")
    directory = CameraDirectory(keyed.cameras, {"hall": "http://viewer:hall-pass@192.168.1.30/snap.jpg"})

    listed = directory.all()
    assert [(camera.name, camera.source) for camera in listed] == [
        ("room12", "registry"),
        ("hall", "settings"),
    ]
    hall = directory.get("hall")
    assert hall == Camera(
        name="hall",
        url="http://192.168.1.30/snap.jpg",
        username="viewer",
        has_password=True,
        tls_fingerprint_sha256=None,
        tls_ca_pem=None,
        small_faces=None,
        label=None,
        source="settings",
        created_at=None,
        updated_at=None,
    )
    assert directory.resolve("hall").endpoint == CameraEndpoint(
        "http://192.168.1.30/snap.jpg", "viewer", "hall-pass"
    )
    assert directory.resolve("room12").small_faces == "on"
    with pytest.raises(errors.DuplicateCamera, match="ROLLCALL_UI_CAMERAS"):
        directory.create("hall", "http://192.168.1.31/snap.jpg")
    with pytest.raises(errors.CameraNotFound, match="registry or ROLLCALL_UI_CAMERAS"):
        directory.resolve("nowhere")


def test_secret_keys_are_checked_without_being_quoted() -> None:
    good = new_key()
    assert parse_keys(f" {good} , {good}") == (good, good)
    assert parse_keys("") == ()
    with pytest.raises(ValueError, match="key 2 is not a Fernet key") as refused:
        parse_keys(f"{good},not-a-key-but-a-secret")
    assert "not-a-key-but-a-secret" not in str(refused.value)
    assert cipher_of(()) is None
    cipher = cipher_of((SecretStr(good),))
    assert cipher is not None and cipher.decrypt(cipher.encrypt("x"), "test") == "x"
