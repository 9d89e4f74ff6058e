"""Answering cameras' challenges: RFC 7616's own examples, several challenges in one answer, endpoints."""

from __future__ import annotations

import pytest

import errors
from sources.challenge import Challenge, choose, digest_authorization, parse_challenges
from sources.endpoint import CameraEndpoint, normalise_fingerprint

# RFC 7616 section 3.9.1: the same challenge answered with SHA-256 and with MD5.
RFC_REALM = "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_HEADERS = [
    f'Digest realm="{RFC_REALM}", qop="auth, auth-int", algorithm=SHA-256, nonce="{RFC_NONCE}", '
    f'opaque="{RFC_OPAQUE}"',
    f'Digest realm="{RFC_REALM}", qop="auth, auth-int", algorithm=MD5, nonce="{RFC_NONCE}", '
    f'opaque="{RFC_OPAQUE}"',
]


def _fields(header: str) -> dict[str, str]:
    return parse_challenges([header])[0].params


@pytest.mark.parametrize(
    ("algorithm", "response"),
    [
        ("SHA-256", "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"),
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
    ],
)
def test_digest_answers_match_rfc_7616_examples(algorithm: str, response: str) -> None:
    challenge = next(c for c in parse_challenges(RFC_HEADERS) if c.algorithm == algorithm)
    header = digest_authorization(
        challenge, "GET", "/dir/index.html", "Mufasa", "Circle of Life", 1, RFC_CNONCE
    )
    assert header.startswith("Digest ")
    fields = _fields(header)
    assert fields["response"] == response
    assert (fields["username"], fields["realm"], fields["uri"]) == ("Mufasa", RFC_REALM, "/dir/index.html")
    assert (fields["qop"], fields["nc"], fields["cnonce"], fields["opaque"]) == (
        "auth",
        "00000001",
        RFC_CNONCE,
        RFC_OPAQUE,
    )


def test_the_strongest_answerable_challenge_is_chosen() -> None:
    assert choose(parse_challenges(RFC_HEADERS)).algorithm == "SHA-256"  # type: ignore[union-attr]
    mixed = parse_challenges(['Basic realm="cam", Digest realm="cam", nonce="n1", qop="auth"'])
    assert [c.scheme for c in mixed] == ["basic", "digest"]
    assert choose(mixed).label == "digest-md5"  # type: ignore[union-attr]
    assert choose(parse_challenges(['Basic realm="cam"'])).label == "basic"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "header",
    [
        'Digest realm="cam", nonce="n1", qop="auth-int"',  # only integrity protection: not answered
        'Digest realm="cam", nonce="n1", algorithm=SHA-512-256',
        'Digest realm="cam"',  # no nonce
        "Negotiate",
        'Bearer realm="cam"',
    ],
)
def test_challenges_rollcall_cannot_answer_are_not_chosen(header: str) -> None:
    assert choose(parse_challenges([header])) is None


def test_the_counter_and_a_non_ascii_user_are_spelled_as_the_rfc_says() -> None:
    challenge = Challenge("digest", {"realm": "cam", "nonce": "n1", "qop": "auth"})
    fields = _fields(digest_authorization(challenge, "GET", "/a?b=c", "Jürgen", "pw", 11, "c1"))
    assert fields["nc"] == "0000000b"
    assert fields["username*"] == "UTF-8''J%C3%BCrgen"
    assert "username" not in fields
    hashed = _fields(
        digest_authorization(
            Challenge("digest", {"realm": "cam", "nonce": "n1", "userhash": "true"}),
            "GET",
            "/",
            "u",
            "p",
            1,
            "c",
        )
    )
    assert hashed["userhash"] == "true" and hashed["username"] != "u"
    assert "qop" not in hashed  # RFC 2069 form when the camera names no qop


def test_quoted_strings_with_commas_and_escapes_are_read_whole() -> None:
    [challenge] = parse_challenges([r'Digest realm="a, \"b\"", nonce="x,y", qop=auth'])
    assert challenge.realm == 'a, "b"' and challenge.params["nonce"] == "x,y" and challenge.qops == ("auth",)


def test_endpoint_takes_credentials_out_of_the_url_percent_decoded() -> None:
    endpoint = CameraEndpoint("http://ad%40min:p%3Ass@cam.lan:8080/snap.jpg?ch=1")
    assert (endpoint.url, endpoint.username, endpoint.password) == (
        "http://cam.lan:8080/snap.jpg?ch=1",
        "ad@min",
        "p:ss",
    )
    unencoded = CameraEndpoint("rtsp://admin:p@ss@cam.lan/Streaming/Channels/101")
    assert (unencoded.url, unencoded.username, unencoded.password) == (
        "rtsp://cam.lan/Streaming/Channels/101",
        "admin",
        "p@ss",
    )
    assert "p@ss" not in repr(unencoded)
    assert CameraEndpoint("http://cam.lan/snap.jpg").has_credentials is False


def test_endpoint_trust_is_normalised_and_checked() -> None:
    colons = ":".join(["AB"] * 32)
    endpoint = CameraEndpoint("https://cam.lan/", tls_fingerprint_sha256=colons)
    assert endpoint.tls_fingerprint_sha256 == "ab" * 32 and endpoint.tls == "fingerprint"
    assert CameraEndpoint("https://cam.lan/").tls == "system"
    assert CameraEndpoint("rtsps://cam.lan/", tls_ca_pem="PEM").tls == "ca"
    assert CameraEndpoint("rtsp://cam.lan/").tls == "none"
    assert normalise_fingerprint(" " + "Ab" * 32 + " ") == "ab" * 32
    for bad in ("ab" * 31, "zz" * 32, ""):
        with pytest.raises(errors.InvalidInput):
            normalise_fingerprint(bad)
    with pytest.raises(errors.InvalidInput, match="not both"):
        CameraEndpoint("https://cam.lan/", tls_fingerprint_sha256="ab" * 32, tls_ca_pem="PEM")
    with pytest.raises(errors.InvalidInput, match="TLS trust"):
        CameraEndpoint("http://cam.lan/", tls_fingerprint_sha256="ab" * 32)
    with pytest.raises(errors.InvalidInput, match="not both"):
        CameraEndpoint("http://a:b@cam.lan/", username="a")
