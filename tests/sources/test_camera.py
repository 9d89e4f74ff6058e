"""fetch_frame against real loopback servers that behave like good and broken cameras.

Every failure must carry its stable error code and end within its time budget (bounded
generously: budget + 2 s), and nothing may reach an address the allowlist did not approve.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import replace

import pytest
import trustme

import errors
from ml.image import decode_image
from settings import DEFAULT_CAMERA_ALLOW, Settings
from sources.camera import FetchedFrame, FetchLimits, fetch_frame
from sources.endpoint import CameraEndpoint
from sources.netguard import CameraAllowlist
from tests.images import png_bomb, shared_photo
from tests.sources.camera_server import JPEG_NAME, PNG_NAME, CameraServer, closed_port

ALLOW = CameraAllowlist.parse("127.0.0.1/32")
LIMITS = FetchLimits(
    connect_timeout_s=2.0, read_timeout_s=3.0, total_s=6.0, max_bytes=5_000_000, retries=0, backoff_s=0.05
)
SLACK_S = 2.0


def fetch_url(url: str, allowlist: CameraAllowlist, limits: FetchLimits, **trust: str) -> FetchedFrame:
    """``fetch_frame`` for a plain URL, as a job names its camera (credentials in ``user:pass@``)."""
    return fetch_frame(CameraEndpoint(url, **trust), allowlist, limits)


@pytest.fixture
def camera() -> Iterator[CameraServer]:
    server = CameraServer().start()
    yield server
    server.stop()


@contextlib.contextmanager
def _running(server: CameraServer) -> Iterator[CameraServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _fails(
    error: type[errors.RollcallError],
    url: str,
    limits: FetchLimits = LIMITS,
    allowlist: CameraAllowlist = ALLOW,
    within_s: float | None = None,
) -> tuple[errors.RollcallError, float]:
    """Fetch, expect ``error`` (checked by its code), and return it with the wall time it took."""
    started = time.monotonic()
    with pytest.raises(errors.RollcallError) as caught:
        fetch_url(url, allowlist, limits)
    elapsed = time.monotonic() - started
    assert caught.value.code == error.code, caught.value.message
    bound = (within_s if within_s is not None else limits.total_s) + SLACK_S
    assert elapsed < bound, f"{error.code} took {elapsed:.2f} s, budget {bound:.2f} s"
    return caught.value, elapsed


# --- frames that arrive ---
def test_fetches_a_real_jpeg(camera: CameraServer) -> None:
    fetched = fetch_url(camera.url("/photo.jpg"), ALLOW, LIMITS)
    assert isinstance(fetched, FetchedFrame)
    assert fetched.data == shared_photo(JPEG_NAME)
    assert fetched.content_type == "image/jpeg"
    assert fetched.final_url == camera.url("/photo.jpg")
    assert 0 < fetched.elapsed_s < 2
    assert decode_image(fetched.data, 40_000_000).shape == (240, 320, 3)


@pytest.mark.parametrize(
    ("path", "name", "content_type"),
    [
        ("/photo.png", PNG_NAME, "image/png"),
        ("/octet", JPEG_NAME, "application/octet-stream"),
        ("/notype", JPEG_NAME, "application/octet-stream"),
    ],
)
def test_image_and_octet_stream_types_are_accepted(
    camera: CameraServer, path: str, name: str, content_type: str
) -> None:
    fetched = fetch_url(camera.url(path), ALLOW, LIMITS)
    assert fetched.data == shared_photo(name)
    assert fetched.content_type == content_type


@pytest.mark.parametrize("path", ["/mjpeg", "/mjpeg-nolength", "/mjpeg-dashed"])
def test_mjpeg_stream_yields_its_first_frame_without_waiting_for_the_end(
    camera: CameraServer, path: str
) -> None:
    limits = replace(LIMITS, read_timeout_s=10.0, total_s=10.0)
    fetched = fetch_url(camera.url(path), ALLOW, limits)
    assert fetched.data == shared_photo(JPEG_NAME)
    assert fetched.content_type == "image/jpeg"
    assert fetched.elapsed_s < 2.0  # the stream stays open: we stopped after one part


def test_mjpeg_part_without_length_ends_at_its_jpeg_end_not_at_the_next_frame(camera: CameraServer) -> None:
    """A camera sends the next boundary only with its next frame (here 5 s later): the part is complete
    at the JPEG's end-of-image marker, so the fetch does not wait a frame interval."""
    limits = replace(LIMITS, read_timeout_s=10.0, total_s=10.0)
    fetched = fetch_url(camera.url("/mjpeg-slow"), ALLOW, limits)
    assert fetched.data == shared_photo(JPEG_NAME)
    assert fetched.elapsed_s < 2.5  # the next boundary comes after 5 s


def test_localhost_is_reached_at_its_checked_addresses(camera: CameraServer) -> None:
    fetched = fetch_url(
        camera.url("/photo.jpg", host="localhost"), CameraAllowlist.parse("127.0.0.0/8,::1"), LIMITS
    )
    assert fetched.data == shared_photo(JPEG_NAME)
    assert camera.requests[-1].host_header == f"localhost:{camera.port}"


def test_ipv6_loopback_camera() -> None:
    with _running(CameraServer(host="::1")) as camera6:
        fetched = fetch_url(f"http://[::1]:{camera6.port}/photo.jpg", CameraAllowlist.parse("::1"), LIMITS)
        assert fetched.data == shared_photo(JPEG_NAME)
        assert camera6.requests[-1].host_header == f"[::1]:{camera6.port}"


def test_credentials_wait_for_a_challenge_and_are_never_returned_or_logged(
    camera: CameraServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A camera that asks for nothing gets no credentials; one that answers 401 without saying how
    to authenticate is ``camera_auth_failed``, and the password appears nowhere."""
    caplog.set_level(logging.DEBUG)
    url = camera.url("/photo.jpg").replace("http://", "http://admin:s3cret-pw@")
    fetched = fetch_url(url, ALLOW, LIMITS)
    assert camera.requests[-1].authorization is None
    assert "s3cret-pw" not in fetched.final_url and fetched.final_url == camera.url("/photo.jpg")
    error, _ = _fails(errors.CameraAuthFailed, url.replace("/photo.jpg", "/status/401"))
    assert "s3cret-pw" not in error.message and camera.requests[-1].authorization is None
    assert "s3cret-pw" not in caplog.text
    assert base64.b64encode(b"admin:s3cret-pw").decode() not in caplog.text


def test_limits_from_settings() -> None:
    settings = Settings(
        camera_connect_timeout_s=1.5, camera_read_timeout_s=4, camera_max_bytes=1234, camera_retries=3
    )
    limits = FetchLimits.from_settings(settings)
    assert (limits.connect_timeout_s, limits.read_timeout_s, limits.max_bytes, limits.retries) == (
        1.5,
        4,
        1234,
        3,
    )
    assert limits.total_s == 5.5 and limits.max_redirects == 3


# --- the allowlist, on every hop ---
def test_default_allowlist_refuses_a_loopback_camera_before_connecting(camera: CameraServer) -> None:
    error, _ = _fails(
        errors.CameraNotAllowed,
        camera.url("/photo.jpg"),
        allowlist=CameraAllowlist.parse(DEFAULT_CAMERA_ALLOW),
    )
    assert "127.0.0.1" in error.message
    assert camera.requests == []


def test_redirect_to_cloud_metadata_is_refused(camera: CameraServer) -> None:
    error, _ = _fails(
        errors.CameraNotAllowed, camera.url("/redirect?to=http://169.254.169.254/latest/meta-data/")
    )
    assert "169.254.169.254" in error.message


@pytest.mark.parametrize(
    "location",
    [
        "http://[::ffff:169.254.169.254]/",
        "http://2852039166/",
        "ftp://127.0.0.1/snap.jpg",
        "file:///etc/passwd",
    ],
)
def test_redirect_to_disguised_or_non_http_targets_is_refused(camera: CameraServer, location: str) -> None:
    _fails(errors.CameraNotAllowed, camera.url(f"/redirect?to={location}"))


def test_redirect_to_a_loopback_address_outside_the_list_never_reaches_it(camera: CameraServer) -> None:
    with _running(CameraServer(host="127.0.0.2", port=camera.port)) as outside:
        error, _ = _fails(errors.CameraNotAllowed, camera.url(f"/redirect?to={outside.url('/photo.jpg')}"))
        assert "127.0.0.2" in error.message
        assert outside.requests == []
    assert camera.paths() == [f"/redirect?to={outside.url('/photo.jpg')}"]


def test_redirects_are_followed_up_to_three(camera: CameraServer) -> None:
    relative = fetch_url(camera.url("/redirect?to=/photo.jpg"), ALLOW, LIMITS)
    assert relative.data == shared_photo(JPEG_NAME) and relative.final_url == camera.url("/photo.jpg")
    assert fetch_url(camera.url("/chain/3"), ALLOW, LIMITS).final_url == camera.url("/photo.jpg")
    seen = len(camera.requests)
    error, _ = _fails(errors.CameraProtocolError, camera.url("/chain/4"))
    assert "redirected more than 3" in error.message
    assert len(camera.requests) - seen == 4  # the fourth redirect is not followed


def test_dns_rebinding_cannot_move_the_connection(
    camera: CameraServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``rebind.attacker.test`` is a simulated third party's name: its server answers 127.0.0.1
    (allowed) to the first query and 127.0.0.2 (not allowed) to every later one, which is how a
    rebinding attack turns a checked name into an internal target. The resolver is replaced for
    that one name only; all connections are real.
    """
    real_getaddrinfo = socket.getaddrinfo
    queries: list[str] = []

    def rebinding_getaddrinfo(host: str, port: object, *args: object, **kwargs: object) -> list:
        if host != "rebind.attacker.test":
            return real_getaddrinfo(host, port, *args, **kwargs)  # type: ignore[arg-type]
        queries.append(host)
        address = "127.0.0.1" if len(queries) == 1 else "127.0.0.2"
        return [(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", (address, int(port)))]  # type: ignore[call-overload]

    monkeypatch.setattr(socket, "getaddrinfo", rebinding_getaddrinfo)
    with _running(CameraServer(host="127.0.0.2", port=camera.port)) as internal:
        fetched = fetch_url(camera.url("/photo.jpg", host="rebind.attacker.test"), ALLOW, LIMITS)
        assert fetched.data == shared_photo(JPEG_NAME)
        assert camera.requests[-1].host_header == f"rebind.attacker.test:{camera.port}"
        assert internal.requests == []
        assert queries == [
            "rebind.attacker.test"
        ]  # resolved once, at the check; the connect did not ask again

        # A redirect back to the same name is a new hop: checked again, and now refused.
        hop = camera.url("/photo.jpg", host="rebind.attacker.test")
        error, _ = _fails(
            errors.CameraNotAllowed, camera.url(f"/redirect?to={hop}", host="rebind.attacker.test")
        )
        assert "127.0.0.2" in error.message
        assert internal.requests == []


# --- answers that are not frames ---
@pytest.mark.parametrize("status", [404, 500, 304])
def test_http_errors_are_protocol_errors_and_not_retried(camera: CameraServer, status: int) -> None:
    error, _ = _fails(errors.CameraProtocolError, camera.url(f"/status/{status}"), replace(LIMITS, retries=2))
    assert str(status) in error.message
    assert camera.paths() == [f"/status/{status}"]


@pytest.mark.parametrize("status", [401, 403])
def test_http_401_and_403_are_auth_failures_and_not_retried(camera: CameraServer, status: int) -> None:
    error, _ = _fails(errors.CameraAuthFailed, camera.url(f"/status/{status}"), replace(LIMITS, retries=2))
    assert camera.paths() == [f"/status/{status}"]


def test_html_login_page_is_a_protocol_error(camera: CameraServer) -> None:
    error, _ = _fails(errors.CameraProtocolError, camera.url("/html"), replace(LIMITS, retries=2))
    assert "text/html" in error.message
    assert camera.paths() == ["/html"]


def test_compressed_body_is_a_protocol_error(camera: CameraServer) -> None:
    """We ask for identity; a gzip body would have to be inflated, which is how gzip bombs work."""
    error, _ = _fails(errors.CameraProtocolError, camera.url("/gzip"))
    assert "gzip" in error.message


def test_mjpeg_stream_without_part_headers_is_a_protocol_error(camera: CameraServer) -> None:
    _, elapsed = _fails(errors.CameraProtocolError, camera.url("/mjpeg-garbage"))
    assert elapsed < 2.0


def test_empty_body_is_a_protocol_error(camera: CameraServer) -> None:
    error, _ = _fails(errors.CameraProtocolError, camera.url("/empty"))
    assert "empty" in error.message


def test_truncated_jpeg_arrives_and_then_is_not_an_image(camera: CameraServer) -> None:
    fetched = fetch_url(camera.url("/truncated.jpg"), ALLOW, LIMITS)
    with pytest.raises(errors.NotAnImage) as caught:
        decode_image(fetched.data, 40_000_000)
    assert caught.value.code == "not_an_image"


def test_connection_closed_mid_frame_is_unreachable(camera: CameraServer) -> None:
    error, _ = _fails(errors.CameraUnreachable, camera.url("/cut.jpg"))
    assert "broke after" in error.message


def test_png_bomb_arrives_small_and_is_refused_by_size_before_decoding(camera: CameraServer) -> None:
    fetched = fetch_url(camera.url("/bomb.png"), ALLOW, LIMITS)
    assert fetched.data == png_bomb(30_000, 30_000)
    started = time.monotonic()
    with pytest.raises(errors.FrameTooLarge) as caught:
        decode_image(fetched.data, 40_000_000)
    assert caught.value.code == "frame_too_large"
    assert time.monotonic() - started < 1.0


# --- size limits ---
def test_announced_size_over_the_limit_is_refused_up_front(camera: CameraServer) -> None:
    error, elapsed = _fails(errors.FrameTooLarge, camera.url("/huge"), replace(LIMITS, max_bytes=1_000_000))
    assert "50000000" in error.message
    assert elapsed < 1.0


def test_endless_body_without_length_stops_at_the_limit(camera: CameraServer) -> None:
    _, elapsed = _fails(errors.FrameTooLarge, camera.url("/endless"), replace(LIMITS, max_bytes=1_000_000))
    assert elapsed < 2.0


def test_mjpeg_frame_over_the_limit_is_too_large(camera: CameraServer) -> None:
    _fails(errors.FrameTooLarge, camera.url("/mjpeg"), replace(LIMITS, max_bytes=10_000))


# --- time budgets ---
def test_body_trickling_one_byte_a_second_ends_at_the_budget(camera: CameraServer) -> None:
    limits = replace(LIMITS, read_timeout_s=5.0, total_s=2.0)
    error, elapsed = _fails(errors.CameraTimeout, camera.url("/trickle"), limits)
    assert elapsed >= 1.8
    assert "budget" in error.message


def test_headers_trickling_one_byte_a_second_end_at_the_budget(camera: CameraServer) -> None:
    limits = replace(LIMITS, read_timeout_s=5.0, total_s=2.0)
    _, elapsed = _fails(errors.CameraTimeout, camera.url("/trickle-headers"), limits)
    assert elapsed >= 1.8


def test_camera_that_never_answers_hits_the_read_timeout(camera: CameraServer) -> None:
    limits = replace(LIMITS, read_timeout_s=1.0, total_s=10.0, retries=2)
    _, elapsed = _fails(errors.CameraTimeout, camera.url("/hang"), limits, within_s=1.0)
    assert elapsed >= 0.9
    assert camera.paths() == ["/hang"]  # a read timeout is not retried


def test_camera_that_never_answers_hits_the_total_budget(camera: CameraServer) -> None:
    limits = replace(LIMITS, read_timeout_s=30.0, total_s=1.5)
    _, elapsed = _fails(errors.CameraTimeout, camera.url("/hang"), limits)
    assert elapsed >= 1.4


# --- network failures and retries ---
def test_connection_refused_is_unreachable_at_once_without_retries() -> None:
    """A closed port answers as fast as any other failure that is not a silence (#26): no retries."""
    limits = replace(LIMITS, retries=2, backoff_s=0.1)
    error, elapsed = _fails(errors.CameraUnreachable, f"http://127.0.0.1:{closed_port()}/snap.jpg", limits)
    assert "refused" in error.message.lower()
    assert elapsed < 0.1  # no pause of 0.1 s: refused connections are not retried


def test_connection_reset_is_unreachable_and_not_retried(camera: CameraServer) -> None:
    _fails(errors.CameraUnreachable, camera.url("/reset"), replace(LIMITS, retries=2))
    assert camera.paths() == ["/reset"]


@contextlib.contextmanager
def _listener_with_full_backlog() -> Iterator[int]:
    """A loopback port whose accept queue is full: the kernel drops new SYNs, so connects time out."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers: list[socket.socket] = []
    try:
        for _ in range(32):
            try:
                fillers.append(socket.create_connection(("127.0.0.1", port), timeout=0.3))
            except TimeoutError:
                break
        else:
            raise AssertionError("could not fill the listen backlog to provoke a connect timeout")
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_connect_timeout_is_retried_then_times_out() -> None:
    limits = replace(LIMITS, connect_timeout_s=0.5, retries=1, backoff_s=0.1, total_s=5.0)
    with _listener_with_full_backlog() as port:
        error, elapsed = _fails(errors.CameraTimeout, f"http://127.0.0.1:{port}/snap.jpg", limits)
    assert "connect" in error.message
    assert elapsed >= 1.0  # two attempts of 0.5 s each


def test_retries_stop_when_the_budget_is_spent() -> None:
    limits = replace(LIMITS, connect_timeout_s=0.5, retries=50, backoff_s=0.05, total_s=1.5)
    with _listener_with_full_backlog() as port:
        _fails(errors.CameraTimeout, f"http://127.0.0.1:{port}/snap.jpg", limits)


# --- https: pinned to the checked address, verified against the URL's host name ---
@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


def _tls_camera(ca: trustme.CA, name: str, server_names: list[str | None]) -> CameraServer:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(name).configure_cert(context)
    context.sni_callback = lambda _sock, server_name, _ctx: server_names.append(server_name)  # type: ignore[assignment,func-returns-value]
    return CameraServer(tls=context)


def test_https_connects_to_the_checked_address_but_verifies_the_host_name(tls_ca: trustme.CA) -> None:
    """The certificate names only ``localhost`` (no IP): it verifies only if SNI and the check use it."""
    ca_pem = tls_ca.cert_pem.bytes().decode()
    server_names: list[str | None] = []
    with _running(_tls_camera(tls_ca, "localhost", server_names)) as camera:
        fetched = fetch_url(
            camera.url("/photo.jpg", host="localhost"),
            CameraAllowlist.parse("127.0.0.1,::1"),
            LIMITS,
            tls_ca_pem=ca_pem,
        )
        assert fetched.data == shared_photo(JPEG_NAME)
        assert server_names[-1] == "localhost"
        with pytest.raises(errors.CameraTLSFailed) as caught:
            fetch_url(camera.url("/photo.jpg"), ALLOW, LIMITS, tls_ca_pem=ca_pem)
        assert "certificate" in caught.value.message
        _fails(
            errors.CameraTLSFailed,
            camera.url("/photo.jpg", host="localhost"),
            LIMITS,
            allowlist=CameraAllowlist.parse("127.0.0.1,::1"),
        )


def test_https_certificate_for_another_name_is_refused(tls_ca: trustme.CA) -> None:
    with _running(_tls_camera(tls_ca, "camera.school.lan", [])) as camera:
        with pytest.raises(errors.CameraTLSFailed) as caught:
            fetch_url(
                camera.url("/photo.jpg", host="localhost"),
                CameraAllowlist.parse("127.0.0.1,::1"),
                LIMITS,
                tls_ca_pem=tls_ca.cert_pem.bytes().decode(),
            )
        assert "not valid for 'localhost'" in caught.value.message


def test_a_service_that_does_not_speak_http_is_a_protocol_error_and_not_retried(camera: CameraServer) -> None:
    error, _ = _fails(errors.CameraProtocolError, camera.url("/not-http"), replace(LIMITS, retries=2))
    assert "did not answer HTTP" in error.message
    assert camera.paths() == ["/not-http"]
