"""The camera allowlist: what a job's URL may point at, checked on every address the host resolves to.

All URLs here use numeric hosts (resolved by the real system resolver, no network needed) or
``localhost``; the rules for names are exercised through ``check_addresses`` with explicit answers.
"""

from __future__ import annotations

import socket

import pytest

import errors
from settings import DEFAULT_CAMERA_ALLOW
from sources.netguard import CameraAllowlist

DEFAULT = CameraAllowlist.parse(DEFAULT_CAMERA_ALLOW)
LOOPBACK = CameraAllowlist.parse("127.0.0.0/8")
EVERYTHING = CameraAllowlist.parse("0.0.0.0/0, ::/0")


def _refused(allowlist: CameraAllowlist, url: str) -> errors.CameraNotAllowed:
    with pytest.raises(errors.CameraNotAllowed) as caught:
        allowlist.check_url(url)
    assert caught.value.code == "camera_not_allowed"
    return caught.value


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/snapshot.jpg",
        "http://169.254.169.254/latest/meta-data/",
        "http://8.8.8.8/",
        "http://[::1]/",
        "http://2852039166/",  # 169.254.169.254 as one integer
        "http://0x7f000001/",  # 127.0.0.1 in hex
        "http://0x7f.1/",
        "http://017700000001/",  # 127.0.0.1 in octal
        "http://127.1/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::ffff:127.0.0.1]/",
        "https://1.1.1.1/",
    ],
)
def test_default_list_refuses_loopback_metadata_and_public_addresses(url: str) -> None:
    _refused(DEFAULT, url)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("http://10.1.2.3/snap.jpg", "10.1.2.3"),
        ("http://192.168.1.20:8080/cgi-bin/snapshot", "192.168.1.20"),
        ("https://172.16.5.5/", "172.16.5.5"),
        ("http://[::ffff:10.1.2.3]/", "::ffff:10.1.2.3"),
        ("http://[fd12::5]/", "fd12::5"),
    ],
)
def test_default_list_allows_private_camera_networks(url: str, address: str) -> None:
    target = DEFAULT.check_url(url)
    assert target.addresses == (address,)


def test_cloud_metadata_inside_an_allowed_private_range_is_still_refused() -> None:
    """fd00:ec2::254 (AWS metadata over IPv6) lies inside fc00::/7, which the default list allows."""
    error = _refused(DEFAULT, "http://[fd00:ec2::254]/latest/meta-data/")
    assert "fd00:ec2::254" in error.message and "metadata" in error.message


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://0x7f000001/", "127.0.0.1"),
        ("http://2130706433/", "127.0.0.1"),
        ("http://0x7f.1:8080/", "127.0.0.1"),
        ("http://127.0.0.1/", "127.0.0.1"),
    ],
)
def test_numeric_host_forms_are_normalised_then_checked(url: str, expected: str) -> None:
    assert LOOPBACK.check_url(url).addresses == (expected,)
    assert "127.0.0.1" in _refused(DEFAULT, url).message


def test_integer_form_of_metadata_address_is_refused_even_when_loopback_is_allowed() -> None:
    error = _refused(LOOPBACK, "http://2852039166/")
    assert "169.254.169.254" in error.message


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://169.254.169.254/", "169.254.169.254"),
        ("http://100.100.100.200/", "100.100.100.200"),
        ("http://169.254.1.1/", "169.254.1.1"),
        ("http://0.0.0.0:6379/", "0.0.0.0"),
        ("http://0/", "0.0.0.0"),
        ("http://[::]/", "::"),
        ("http://224.0.0.1/", "224.0.0.1"),
        ("http://255.255.255.255/", "255.255.255.255"),
        ("http://[fe80::1]/", "fe80::1"),
        ("http://[ff02::1]/", "ff02::1"),
        ("http://[::ffff:169.254.169.254]/", "169.254.169.254"),
        ("http://[::ffff:a9fe:a9fe]/", "169.254.169.254"),
        ("http://[::169.254.169.254]/", "169.254.169.254"),  # IPv4-compatible
        ("http://[2002:a9fe:a9fe::1]/", "169.254.169.254"),  # 6to4
        ("http://[64:ff9b::a9fe:a9fe]/", "169.254.169.254"),  # NAT64 well-known prefix
        ("http://[64:ff9b:1::a9fe:a9fe]/", "64:ff9b:1::a9fe:a9fe"),  # local-use NAT64: opaque
        ("http://[fd00:ec2::254]/", "fd00:ec2::254"),
    ],
)
def test_forbidden_ranges_are_refused_even_when_everything_is_allowed(url: str, named: str) -> None:
    error = _refused(EVERYTHING, url)
    assert f" {named}," in error.message


def test_loopback_passes_only_when_listed() -> None:
    assert EVERYTHING.check_url("http://127.0.0.1:8080/").addresses == ("127.0.0.1",)
    assert EVERYTHING.check_url("http://[::1]:8080/").addresses == ("::1",)
    _refused(CameraAllowlist.parse("10.0.0.0/8"), "http://127.0.0.1:8080/")


def test_wrapped_ipv4_is_judged_as_the_ipv4_it_carries() -> None:
    six_to_four = "http://[2002:a00:1::1]/"  # 6to4 wrapping 10.0.0.1
    error = _refused(CameraAllowlist.parse("2002::/16"), six_to_four)
    assert "10.0.0.1" in error.message
    assert CameraAllowlist.parse("10.0.0.0/8").check_url(six_to_four).addresses == ("2002:a00:1::1",)
    assert CameraAllowlist.parse("10.0.0.0/8").check_url("http://[64:ff9b::a00:1]/").addresses == (
        "64:ff9b::a00:1",
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://10.0.0.1/snap.jpg",
        "file:///etc/passwd",
        "gopher://10.0.0.1:6379/_FLUSHALL",
        "javascript:alert(1)",
        "x",
    ],
)
def test_only_http_and_https_are_allowed(url: str) -> None:
    error = _refused(DEFAULT, url)
    assert "http or https" in error.message


@pytest.mark.parametrize(
    "url",
    [
        "http://",
        "http:///snap.jpg",
        "http://10.0.0.1:99999/",
        "http://10.0.0.1:0/",
        "http://bad host/",
        "http://[10.0.0.1/",
    ],
)
def test_malformed_urls_are_invalid_input(url: str) -> None:
    with pytest.raises(errors.InvalidInput) as caught:
        DEFAULT.check_url(url)
    assert caught.value.code == "invalid_input"


def test_a_name_that_does_not_resolve_is_unreachable() -> None:
    with pytest.raises(errors.CameraUnreachable) as caught:
        CameraAllowlist.parse("*.invalid").check_url("http://camera.rollcall-test.invalid/")
    assert caught.value.code == "camera_unreachable"
    assert "camera.rollcall-test.invalid" in caught.value.message


def test_credentials_never_appear_in_the_refusal() -> None:
    error = _refused(DEFAULT, "http://admin:s3cret-pw@169.254.169.254/snap.jpg?pwd=other-secret")
    assert "169.254.169.254" in error.message
    assert (
        "s3cret-pw" not in error.message
        and "other-secret" not in error.message
        and "admin" not in error.message
    )


def test_credentials_do_not_change_the_host_that_is_checked() -> None:
    """``http://10.0.0.1@169.254.169.254/``: the host is what follows the last ``@``."""
    error = _refused(DEFAULT, "http://10.0.0.1@169.254.169.254/")
    assert "169.254.169.254" in error.message
    _refused(DEFAULT, "http://10.0.0.1:80@127.0.0.1/")
    _refused(DEFAULT, "http://10.0.0.1\\@169.254.169.254/")
    _refused(DEFAULT, "http://169.254.169.254#@10.0.0.1/")


def test_international_names_are_checked_in_their_ascii_form() -> None:
    with pytest.raises(errors.CameraUnreachable) as caught:
        DEFAULT.check_url("http://bücher.rollcall-test.invalid/")
    assert caught.value.code == "camera_unreachable"
    assert "xn--bcher-kva.rollcall-test.invalid" in caught.value.message


def test_localhost_is_checked_on_every_address_the_system_resolves() -> None:
    resolved = {info[4][0] for info in socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM)}
    both = CameraAllowlist.parse("127.0.0.0/8, ::1")
    assert set(both.check_url("http://localhost:8080/").addresses) == resolved
    if "::1" in resolved:
        assert "::1" in _refused(LOOPBACK, "http://localhost/").message


def test_a_name_listed_by_name_still_may_not_reach_loopback() -> None:
    error = _refused(CameraAllowlist.parse("localhost"), "http://localhost:6379/")
    assert "localhost" in error.message


def test_every_resolved_address_must_pass() -> None:
    allowlist = CameraAllowlist.parse("127.0.0.0/8")
    allowlist.check_addresses("localhost", ["127.0.0.1"])
    with pytest.raises(errors.CameraNotAllowed) as caught:
        allowlist.check_addresses("localhost", ["127.0.0.1", "::1"])
    assert caught.value.code == "camera_not_allowed" and "::1" in caught.value.message
    with pytest.raises(errors.CameraNotAllowed) as caught:
        allowlist.check_addresses("mixed.example", ["127.0.0.1", "169.254.169.254"])
    assert "169.254.169.254" in caught.value.message


def test_names_and_wildcards_allow_non_loopback_addresses_only() -> None:
    allowlist = CameraAllowlist.parse("*.school.lan, cam7")
    allowlist.check_addresses("door.school.lan", ["10.20.0.5"])
    allowlist.check_addresses("cam7", ["198.51.100.7", "2001:db8::7"])
    for host, addresses in [
        ("door.school.lan", ["10.20.0.5", "169.254.169.254"]),
        ("door.school.lan", ["::ffff:169.254.169.254"]),
        ("door.school.lan", ["127.0.0.1"]),
        ("door.school.lan", ["fe80::1"]),
        ("door.school.lan.evil.example", ["10.20.0.5"]),
        ("cam77", ["10.20.0.5"]),
    ]:
        with pytest.raises(errors.CameraNotAllowed) as caught:
            allowlist.check_addresses(host, addresses)
        assert caught.value.code == "camera_not_allowed", (host, addresses)


def test_a_numeric_host_is_never_allowed_by_name() -> None:
    allowlist = CameraAllowlist.parse("*.school.lan")
    with pytest.raises(errors.CameraNotAllowed) as caught:
        allowlist.check_addresses("167772165", ["10.0.0.5"])
    assert caught.value.code == "camera_not_allowed"


def test_wildcard_matches_subdomains_only() -> None:
    allowlist = CameraAllowlist.parse("*.school.lan, cam7")
    assert allowlist.allows_name("a.school.lan") and allowlist.allows_name("x.y.school.lan")
    assert not allowlist.allows_name("school.lan")
    assert not allowlist.allows_name("evilschool.lan")
    assert not allowlist.allows_name("school.lan.evil.example")
    assert allowlist.allows_name("cam7") and not allowlist.allows_name("cam77")


def test_parse_reads_cidrs_names_and_wildcards() -> None:
    allowlist = CameraAllowlist.parse(" 10.0.0.0/8, ,fd00::/8, [::1], Cam7.School.LAN., *.Cams.Example ")
    assert [str(n) for n in allowlist.networks] == ["10.0.0.0/8", "fd00::/8", "::1/128"]
    assert allowlist.names == frozenset({"cam7.school.lan"})
    assert allowlist.suffixes == (".cams.example",)


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "10", "0x7f.1", "bad host", "*.", "http://cam"])
def test_parse_refuses_malformed_entries(entry: str) -> None:
    with pytest.raises(ValueError, match="camera allowlist entry"):
        CameraAllowlist.parse(f"10.0.0.0/8,{entry}")


def test_target_origin_names_host_and_port_only() -> None:
    target = DEFAULT.check_url("https://user:pw@[fd12::5]:8443/a?b=c")
    assert (target.scheme, target.host, target.port) == ("https", "fd12::5", 8443)
    assert target.origin == "[fd12::5]:8443"
    assert DEFAULT.check_url("http://10.0.0.1/").origin == "10.0.0.1:80"
