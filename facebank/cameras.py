"""The camera registry: named cameras with their credentials and TLS trust, so jobs carry only a name.

A job, a session or the page names a camera (``{"camera": "room12"}``); the process that fetches
its frame (a worker, or the API for the page's proxy and ``/test``) turns the name into a
``CameraEndpoint`` here (``CameraDirectory.resolve``), decrypting the password in that process
only. So no password travels in a job's arguments, Redis, Flower or a log, and none is ever read
back through the API: records (``facebank.records.Camera``) say ``has_password`` instead.

``ROLLCALL_UI_CAMERAS`` is read beside the registry (``CameraDirectory``): its cameras are listed and
resolved like registered ones but cannot be changed through the API, and a registered camera may
not take one of their names. Camera writes leave the facebank revision alone (no gallery depends
on them).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography import x509
from sqlalchemy import Engine, delete, exc, select
from sqlalchemy.orm import Session

import errors
from facebank import models, transactions
from facebank.limits import (
    CAMERA_NAME,
    MAX_CA_PEM_BYTES,
    MAX_CAMERA_LABEL,
    MAX_CAMERA_PASSWORD,
    MAX_CAMERA_URL,
    MAX_CAMERA_USERNAME,
)
from facebank.passwords import PasswordCipher
from facebank.records import UNSET, Camera, Unset
from sources.endpoint import CameraEndpoint, normalise_fingerprint
from sources.urls import CAMERA_SCHEMES

REGISTRY, SETTINGS = "registry", "settings"
SMALL_FACE_MODES = ("off", "auto", "on")
_NAME = re.compile(CAMERA_NAME)


@dataclass(frozen=True)
class ResolvedCamera:
    """What fetching a named camera's frame needs: where and how (``endpoint``), and its small-face mode."""

    name: str
    endpoint: CameraEndpoint
    small_faces: str | None  # None: ROLLCALL_SMALL_FACES_CAMERAS by host, else the server's default


class Cameras:
    """Register, read, change and remove cameras; passwords go in and never come out but as an endpoint."""

    def __init__(self, engine: Engine, cipher: PasswordCipher | None) -> None:
        self.engine = engine
        self._cipher = cipher

    def create(
        self,
        name: str,
        url: str,
        *,
        username: str | None = None,
        password: str | None = None,
        tls_fingerprint_sha256: str | None = None,
        tls_ca_pem: str | None = None,
        small_faces: str | None = None,
        label: str | None = None,
    ) -> Camera:
        """A new camera; credentials inside ``url`` become its username and password.

        A name in use raises ``DuplicateCamera``; a password without ``ROLLCALL_SECRET_KEY``,
        ``SecretKeyMissing`` (nothing is stored).
        """
        camera_name = _camera_name(name)
        bare_url, username, password = _credentials(url, username, password)
        row = models.Camera(name=camera_name, url=bare_url)
        _apply(
            row,
            {
                "username": username,
                "password": password,
                "tls_fingerprint_sha256": tls_fingerprint_sha256,
                "tls_ca_pem": tls_ca_pem,
                "small_faces": small_faces,
                "label": label,
            },
            self._encrypt,
        )
        try:
            with transactions.write(self.engine, bump_revision=False) as session:
                session.add(row)
                session.flush()
                return _camera(row)
        except exc.IntegrityError as error:
            if self._exists(camera_name):
                raise errors.DuplicateCamera(
                    f"a camera named {camera_name!r} is registered already"
                ) from error
            raise

    def get(self, name: str) -> Camera:
        with transactions.read(self.engine) as session:
            return _camera(_camera_row(session, name))

    def find(self, name: str) -> Camera | None:
        """The camera of that name, or None."""
        with transactions.read(self.engine) as session:
            row = _find_row(session, name)
            return _camera(row) if row is not None else None

    def all(self) -> list[Camera]:
        """Every registered camera, by name."""
        with transactions.read(self.engine) as session:
            return [
                _camera(row) for row in session.scalars(select(models.Camera).order_by(models.Camera.name))
            ]

    def update(
        self,
        name: str,
        *,
        url: str | Unset = UNSET,
        username: str | None | Unset = UNSET,
        password: str | None | Unset = UNSET,
        tls_fingerprint_sha256: str | None | Unset = UNSET,
        tls_ca_pem: str | None | Unset = UNSET,
        small_faces: str | None | Unset = UNSET,
        label: str | None | Unset = UNSET,
    ) -> Camera:
        """Change the given fields (None clears an optional one); a new url's credentials are split out."""
        changes: dict[str, Any] = {
            key: value
            for key, value in {
                "username": username,
                "password": password,
                "tls_fingerprint_sha256": tls_fingerprint_sha256,
                "tls_ca_pem": tls_ca_pem,
                "small_faces": small_faces,
                "label": label,
            }.items()
            if value is not UNSET
        }
        bare_url: str | None = None
        if url is not UNSET:
            bare_url, url_user, url_password = _credentials(
                url, changes.get("username"), changes.get("password")
            )
            if url_user is not None:
                changes["username"], changes["password"] = url_user, url_password
        with transactions.write(self.engine, bump_revision=False) as session:
            row = _camera_row(session, name)
            if bare_url is not None:
                row.url = bare_url
            _apply(row, changes, self._encrypt)
            row.updated_at = models.utcnow()
            session.flush()
            return _camera(row)

    def delete(self, name: str) -> None:
        """Remove a camera; jobs and session ticks that name it later fail with ``camera_not_found``."""
        with transactions.write(self.engine, bump_revision=False) as session:
            _camera_row(session, name)
            session.execute(delete(models.Camera).where(models.Camera.name == name))

    def resolve(self, name: str) -> ResolvedCamera | None:
        """The camera's endpoint, its password decrypted here in the calling process; None if unknown."""
        with transactions.read(self.engine) as session:
            row = _find_row(session, name)
            if row is None:
                return None
            url, username, token = row.url, row.username, row.password_token
            fingerprint, ca_pem, small_faces = row.tls_fingerprint_sha256, row.tls_ca_pem, row.small_faces
        password = self._decrypt(token, name) if token is not None else None
        endpoint = CameraEndpoint(url, username, password, fingerprint, ca_pem)
        return ResolvedCamera(name, endpoint, small_faces)

    def rotate_passwords(self) -> int:
        """Re-encrypt every stored password under the first key of ``ROLLCALL_SECRET_KEY``; how many."""
        if self._cipher is None:
            raise errors.SecretKeyMissing("ROLLCALL_SECRET_KEY is not set: there is no key to rotate to")
        cipher = self._cipher
        with transactions.write(self.engine, bump_revision=False) as session:
            rows = session.scalars(
                select(models.Camera).where(models.Camera.password_token.is_not(None))
            ).all()
            for row in rows:
                assert row.password_token is not None
                row.password_token = cipher.rotate(row.password_token, f"camera {row.name!r}")
            return len(rows)

    def _encrypt(self, password: str) -> str:
        if self._cipher is None:
            raise errors.SecretKeyMissing(
                "camera passwords are stored encrypted, and ROLLCALL_SECRET_KEY is not set: set it "
                "(docs/operations.md) or register the camera without a password"
            )
        return self._cipher.encrypt(password)

    def _decrypt(self, token: str, name: str) -> str:
        if self._cipher is None:
            raise errors.SecretKeyMissing(
                f"camera {name!r} has a password, but ROLLCALL_SECRET_KEY is not set in this process "
                "(the API and every worker need the same key)"
            )
        return self._cipher.decrypt(token, f"camera {name!r}")

    def _exists(self, name: str) -> bool:
        with transactions.read(self.engine) as session:
            return _find_row(session, name) is not None


class CameraDirectory:
    """Every camera a name stands for: the registry's, then ``ROLLCALL_UI_CAMERAS``' (``configured``).

    ``configured`` maps names to URLs, which may hold ``user:password@``. A name in both is the
    registry's: the registry refuses such names, so it happens only when the setting changes later.
    """

    def __init__(self, registry: Cameras, configured: Mapping[str, str]) -> None:
        self.registry = registry
        self._configured = dict(configured)

    def all(self) -> list[Camera]:
        """The registered cameras by name, then the configured ones in the setting's order."""
        registered = self.registry.all()
        taken = {camera.name for camera in registered}
        return registered + [
            _configured(name, url) for name, url in self._configured.items() if name not in taken
        ]

    def get(self, name: str) -> Camera:
        camera = self.registry.find(name)
        if camera is not None:
            return camera
        if name in self._configured:
            return _configured(name, self._configured[name])
        raise _not_found(name)

    def resolve(self, name: str) -> ResolvedCamera:
        """The endpoint of the camera ``name``; ``CameraNotFound`` when neither source knows it."""
        registered = self.registry.resolve(name)
        if registered is not None:
            return registered
        if name in self._configured:
            return ResolvedCamera(name, CameraEndpoint(self._configured[name]), None)
        raise _not_found(name)

    def create(self, name: str, url: str, **fields: Any) -> Camera:
        """Register a camera; a name of ``ROLLCALL_UI_CAMERAS`` is refused as taken."""
        if name in self._configured:
            raise errors.DuplicateCamera(f"camera {name!r} is configured in ROLLCALL_UI_CAMERAS")
        return self.registry.create(name, url, **fields)


def _not_found(name: str) -> errors.CameraNotFound:
    return errors.CameraNotFound(f"no camera named {name!r} in the camera registry or ROLLCALL_UI_CAMERAS")


def _configured(name: str, url: str) -> Camera:
    endpoint = CameraEndpoint(url)  # moves the URL's user:password@ out of it
    return Camera(
        name=name,
        url=endpoint.url,
        username=endpoint.username,
        has_password=bool(endpoint.password),
        tls_fingerprint_sha256=None,
        tls_ca_pem=None,
        small_faces=None,
        label=None,
        source=SETTINGS,
        created_at=None,
        updated_at=None,
    )


# --- rows and checks ---


def _find_row(session: Session, name: str) -> models.Camera | None:
    return session.scalars(select(models.Camera).where(models.Camera.name == name)).one_or_none()


def _camera_row(session: Session, name: str) -> models.Camera:
    row = _find_row(session, name)
    if row is None:
        raise errors.CameraNotFound(f"no camera named {name!r} in the camera registry")
    return row


def _camera(row: models.Camera) -> Camera:
    return Camera(
        name=row.name,
        url=row.url,
        username=row.username,
        has_password=row.password_token is not None,
        tls_fingerprint_sha256=row.tls_fingerprint_sha256,
        tls_ca_pem=row.tls_ca_pem,
        small_faces=row.small_faces,
        label=row.label,
        source=REGISTRY,
        created_at=models.as_utc(row.created_at),
        updated_at=models.as_utc(row.updated_at),
    )


def _apply(row: models.Camera, changes: Mapping[str, Any], encrypt: Callable[[str], str]) -> None:
    """Check ``changes`` and write them into ``row``, then check the camera as a whole."""
    if "username" in changes:
        row.username = _optional_text(changes["username"], "username", MAX_CAMERA_USERNAME)
    if "password" in changes:
        password = _optional_text(changes["password"], "password", MAX_CAMERA_PASSWORD, allow_empty=True)
        row.password_token = encrypt(password) if password is not None else None
    if "tls_fingerprint_sha256" in changes:
        fingerprint = changes["tls_fingerprint_sha256"]
        row.tls_fingerprint_sha256 = normalise_fingerprint(fingerprint) if fingerprint is not None else None
    if "tls_ca_pem" in changes:
        row.tls_ca_pem = _ca_pem(changes["tls_ca_pem"])
    if "small_faces" in changes:
        mode = changes["small_faces"]
        if mode is not None and mode not in SMALL_FACE_MODES:
            raise errors.InvalidInput(f"small_faces must be one of {', '.join(SMALL_FACE_MODES)} (or null)")
        row.small_faces = mode
    if "label" in changes:
        row.label = _optional_text(changes["label"], "label", MAX_CAMERA_LABEL)
    if row.password_token is not None and row.username is None:
        raise errors.InvalidInput("a camera password needs a username")
    # The fetch's own rules: trust by fingerprint or CA, not both, and only for a TLS scheme.
    CameraEndpoint(row.url, row.username, None, row.tls_fingerprint_sha256, row.tls_ca_pem)


def _camera_name(value: Any) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise errors.InvalidInput(
            "a camera name is 1 to 64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def _credentials(url: Any, username: str | None, password: str | None) -> tuple[str, str | None, str | None]:
    """The URL without credentials, and the credentials: from the URL, or as given (not both)."""
    schemes = ", ".join(f"{scheme}://" for scheme in CAMERA_SCHEMES)
    if not isinstance(url, str) or len(url) > MAX_CAMERA_URL:
        raise errors.InvalidInput(f"a camera url is text of at most {MAX_CAMERA_URL} characters")
    if any(char.isspace() or not char.isprintable() for char in url):
        raise errors.InvalidInput("a camera url may not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - parsing the port is what checks it
    except ValueError as error:
        raise errors.InvalidInput(f"the camera url cannot be parsed ({error})") from None
    if parts.scheme.lower() not in CAMERA_SCHEMES:
        raise errors.InvalidInput(f"a camera url starts with {schemes}")
    if not parts.hostname:
        raise errors.InvalidInput("a camera url needs a host")
    endpoint = CameraEndpoint(url)  # moves the URL's user:password@ out of it, percent-decoded
    if endpoint.username is None and endpoint.password is None:
        return endpoint.url, username, password
    if username is not None or password is not None:
        raise errors.InvalidInput("give the credentials in the url or as username and password, not both")
    return endpoint.url, endpoint.username or None, endpoint.password if parts.password is not None else None


def _optional_text(value: Any, field: str, limit: int, allow_empty: bool = False) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or (not value and not allow_empty):
        raise errors.InvalidInput(f"{field} must be non-empty text")
    if len(value) > limit:
        raise errors.InvalidInput(f"{field} is longer than {limit} characters")
    if "\x00" in value:
        raise errors.InvalidInput(f"{field} may not contain NUL characters")
    return value


def _ca_pem(value: Any) -> str | None:
    """PEM text holding at least one certificate (the CA that signed the camera's certificate)."""
    if value is None:
        return None
    if not isinstance(value, str) or len(value.encode()) > MAX_CA_PEM_BYTES:
        raise errors.InvalidInput(f"tls_ca_pem must be PEM text of at most {MAX_CA_PEM_BYTES} bytes")
    try:
        x509.load_pem_x509_certificates(value.encode())
    except ValueError:
        raise errors.InvalidInput("tls_ca_pem holds no readable PEM certificate") from None
    return value
