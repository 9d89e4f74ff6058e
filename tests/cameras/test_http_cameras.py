"""HTTP(S) snapshot cameras as schools have them: Apache httpd with Digest (MD5) and Basic on Hikvision's,
Dahua's and Axis's paths, lighttpd with Digest SHA-256, HTTPS with a self-signed certificate.

What a user would notice: the photo arrives; a Digest camera never sees a password (no Basic header
in its access log, no credentials before its challenge); after the first fetch a Digest snapshot takes
one request; a wrong password or an untrusted certificate is an error an admin can act on, whose
message never holds the password.
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

import errors
from benchmarks.camera_servers import (
    AXIS,
    CAMERA_PASSWORD,
    CAMERA_USER,
    DAHUA,
    HIKVISION,
    ApacheCamera,
    LighttpdCamera,
    photo_path,
)
from sources.authcache import CHALLENGES
from sources.camera import fetch_frame
from sources.endpoint import CameraEndpoint
from sources.fetch import FetchLimits, FetchTrace
from sources.netguard import CameraAllowlist

ALLOW = CameraAllowlist.parse("127.0.0.1/32")
LIMITS = FetchLimits(connect_timeout_s=2.0, read_timeout_s=3.0, total_s=5.0, max_bytes=5_000_000, retries=0)
CREDENTIALS = (CAMERA_USER, CAMERA_PASSWORD)


def _fetch(endpoint: CameraEndpoint) -> tuple[bytes, FetchTrace]:
    trace = FetchTrace()
    return fetch_frame(endpoint, ALLOW, LIMITS, trace).data, trace


def _sent(camera: ApacheCamera, tag: str, at_least: int) -> list[str]:
    """The Authorization headers of the requests this test made (tagged), once the camera logged them (in
    the order its threads finished them, not always the order they were sent)."""
    return [auth for _, auth in camera.requests(tag, at_least=at_least)]


@pytest.mark.parametrize("path", [HIKVISION, DAHUA])
def test_digest_cameras_give_the_photo_and_never_see_a_password(
    apache_camera: ApacheCamera, path: str
) -> None:
    tag = f"digest-{path}"
    endpoint = CameraEndpoint(apache_camera.url(path, credentials=CREDENTIALS, tag=tag))
    for _ in range(3):
        data, trace = _fetch(endpoint)
        assert data == photo_path().read_bytes()
        assert trace.auth == "digest-md5"
    sent = _sent(apache_camera, tag, at_least=3)
    assert len(sent) >= 3, sent
    assert not [auth for auth in sent if auth.startswith("Basic")], sent
    assert not [auth for auth in sent if CAMERA_PASSWORD in auth]


def test_a_digest_snapshot_takes_one_request_after_the_first_fetch(apache_camera: ApacheCamera) -> None:
    """The first fetch learns the camera's nonce from its 401; later ones answer with their first request,
    on any path of the same camera (one extra round trip over an open snapshot, once per process)."""
    CHALLENGES.forget(("http", "127.0.0.1", apache_camera.port, ("127.0.0.1",), CAMERA_USER))
    tag = "one-request"
    _, first = _fetch(CameraEndpoint(apache_camera.url(HIKVISION, credentials=CREDENTIALS, tag=tag)))
    _, later = _fetch(CameraEndpoint(apache_camera.url(HIKVISION, credentials=CREDENTIALS, tag=tag)))
    _, other_path = _fetch(CameraEndpoint(apache_camera.url(DAHUA, credentials=CREDENTIALS, tag=tag)))
    assert (first.round_trips, later.round_trips, other_path.round_trips) == (2, 1, 1)
    assert sorted(auth[:6] for auth in _sent(apache_camera, tag, at_least=4)) == [
        "-",
        "Digest",
        "Digest",
        "Digest",
    ]


def test_the_first_request_to_a_camera_carries_no_credentials(apache_camera: ApacheCamera) -> None:
    user = "first-contact"  # a user the process never challenged for: nothing remembered
    tag = "first-contact"
    with pytest.raises(errors.CameraAuthFailed):
        fetch_frame(
            CameraEndpoint(apache_camera.url(DAHUA, credentials=(user, "nope"), tag=tag)), ALLOW, LIMITS
        )
    sent = _sent(apache_camera, tag, at_least=2)
    assert sorted(auth[:6] for auth in sent) == ["-", "Digest"], sent


def test_sha256_digest_camera(lighttpd_camera: LighttpdCamera) -> None:
    endpoint = CameraEndpoint(lighttpd_camera.url(), username=CAMERA_USER, password=CAMERA_PASSWORD)
    data, first = _fetch(endpoint)
    assert data == photo_path().read_bytes()
    assert (first.auth, first.round_trips) == ("digest-sha256", 2)
    _, later = _fetch(endpoint)
    assert (later.auth, later.round_trips) == ("digest-sha256", 1)


def test_basic_camera_gets_basic_only_in_answer_to_its_challenge(apache_camera: ApacheCamera) -> None:
    tag = "basic"
    endpoint = CameraEndpoint(apache_camera.url(AXIS, credentials=CREDENTIALS, tag=tag))
    for _ in range(2):
        data, trace = _fetch(endpoint)
        assert data == photo_path().read_bytes() and trace.auth == "basic"
        assert trace.round_trips == 2  # the camera's 401 first, then Basic
    schemes = [auth.split(" ")[0] for auth in _sent(apache_camera, tag, at_least=4)]
    # Each fetch: a first request without Basic (nothing, or the camera's remembered Digest nonce, a hash
    # that reveals nothing), then Basic in answer to the 401 that asked for it. (Apache logs a request when
    # its thread is done with it, so the two of a fetch may be logged in either order.)
    assert len(schemes) == 4 and schemes.count("Basic") == 2, schemes
    assert set(schemes) - {"Basic"} <= {"-", "Digest"}, schemes


def test_wrong_password_with_an_unencoded_at_sign_is_auth_failed_and_never_shown(
    apache_camera: ApacheCamera, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = apache_camera.url(HIKVISION).replace("http://", "http://admin:wr0ng@pa55word@")
    with pytest.raises(errors.CameraAuthFailed) as caught:
        fetch_frame(CameraEndpoint(url), ALLOW, LIMITS)
    message = caught.value.message
    assert "refused the credentials (digest-md5)" in message and "admin" not in message
    for fragment in ("wr0ng", "pa55word", "@pa55"):
        assert fragment not in message and fragment not in caplog.text


def test_a_digest_camera_without_credentials_is_auth_failed(apache_camera: ApacheCamera) -> None:
    with pytest.raises(errors.CameraAuthFailed, match=r"asks for credentials \(digest\); none are set"):
        fetch_frame(CameraEndpoint(apache_camera.url(HIKVISION)), ALLOW, LIMITS)


# --- HTTPS with the camera's own self-signed certificate ---
def test_a_pinned_self_signed_camera_is_trusted_by_its_fingerprint(apache_camera: ApacheCamera) -> None:
    fingerprint = apache_camera.certificate.fingerprint_sha256
    colons = ":".join(fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()  # as openssl prints it
    endpoint = CameraEndpoint(
        apache_camera.url(HIKVISION, tls=True, credentials=CREDENTIALS), tls_fingerprint_sha256=colons
    )
    data, trace = _fetch(endpoint)
    assert data == photo_path().read_bytes()
    assert (trace.tls, trace.auth) == ("fingerprint", "digest-md5")


def test_an_unpinned_self_signed_camera_is_tls_failed(apache_camera: ApacheCamera) -> None:
    endpoint = CameraEndpoint(apache_camera.url(HIKVISION, tls=True, credentials=CREDENTIALS))
    with pytest.raises(errors.CameraTLSFailed, match="not trusted") as caught:
        fetch_frame(endpoint, ALLOW, LIMITS)
    assert "self-signed" in caught.value.message


def test_a_fingerprint_mismatch_is_tls_failed_and_names_both_fingerprints(
    apache_camera: ApacheCamera,
) -> None:
    tag = "fingerprint-mismatch"
    endpoint = CameraEndpoint(
        apache_camera.url(HIKVISION, tls=True, credentials=CREDENTIALS, tag=tag),
        tls_fingerprint_sha256="ab" * 32,
    )
    with pytest.raises(errors.CameraTLSFailed) as caught:
        fetch_frame(endpoint, ALLOW, replace(LIMITS, retries=2))
    presented = apache_camera.certificate.fingerprint_sha256.upper()
    message = caught.value.message.replace(":", "")
    assert presented in message and "AB" * 32 in message
    # No request was sent over the untrusted connection (a second for a late log line to show up).
    assert apache_camera.requests(tag, at_least=1, timeout_s=1.0) == []
