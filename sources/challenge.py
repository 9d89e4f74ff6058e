"""HTTP authentication as cameras ask for it: parsing ``WWW-Authenticate`` and answering Basic or Digest.

Pure functions, no I/O. Digest follows RFC 7616 (``MD5``, ``SHA-256`` and their ``-sess`` variants,
``qop=auth``, ``userhash``, ``username*`` for names that are not plain ASCII); the ``qop``-less form
of RFC 2069 is answered too, as old cameras still send it. ``requests.auth.HTTPDigestAuth`` was not
used: it reads a 401 body without a size limit, merges several ``WWW-Authenticate`` headers into one
(a camera offering SHA-256 and MD5 sends two) and keeps its nonce in thread-local state.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import quote

import errors

# Strongest first: the hash a camera offering several challenges is answered with.
_DIGEST_ALGORITHMS = {
    "SHA-256": hashlib.sha256,
    "SHA-256-SESS": hashlib.sha256,
    "MD5": hashlib.md5,
    "MD5-SESS": hashlib.md5,
}
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(rf'\s*({_TOKEN})\s*=\s*(?:"((?:[^"\\]|\\.)*)"|({_TOKEN}))\s*')
_SCHEME = re.compile(rf"\s*({_TOKEN})(?=\s|,|$)")


@dataclass(frozen=True)
class Challenge:
    """One challenge of a ``WWW-Authenticate`` header: its scheme (lower case) and parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")

    @property
    def algorithm(self) -> str:
        """The Digest algorithm, upper case (``MD5`` when the camera names none, as RFC 7616 says)."""
        return self.params.get("algorithm", "MD5").upper()

    @property
    def answerable(self) -> bool:
        """Whether rollcall can answer it: Basic, or Digest with a known hash and ``auth`` (or no) qop."""
        if self.scheme == "basic":
            return True
        if self.scheme != "digest" or "nonce" not in self.params:
            return False
        return self.algorithm in _DIGEST_ALGORITHMS and (not self.qops or "auth" in self.qops)

    @property
    def qops(self) -> tuple[str, ...]:
        return tuple(q.strip().lower() for q in self.params.get("qop", "").split(",") if q.strip())

    @property
    def label(self) -> str:
        """``basic``, ``digest-md5`` or ``digest-sha256``: what a camera test reports."""
        if self.scheme == "basic":
            return "basic"
        return "digest-sha256" if self.algorithm.startswith("SHA-256") else "digest-md5"


def parse_challenges(headers: Iterable[str]) -> list[Challenge]:
    """Every challenge in the ``WWW-Authenticate`` header values, in order (RFC 9110 section 11.6.1).

    A malformed part ends the parse of its header: what was read before it is kept.
    """
    challenges: list[Challenge] = []
    for header in headers:
        position = 0
        while position < len(header):
            scheme = _SCHEME.match(header, position)
            if scheme is None:
                break
            position = scheme.end()
            params: dict[str, str] = {}
            while True:
                param = _PARAM.match(header, position)
                if param is None:
                    break
                name, quoted, token = param.groups()
                params[name.lower()] = re.sub(r"\\(.)", r"\1", quoted) if quoted is not None else token
                position = param.end()
                if position < len(header) and header[position] == ",":
                    position += 1
            challenges.append(Challenge(scheme.group(1).lower(), params))
            while position < len(header) and header[position] in ", ":
                position += 1
    return challenges


def choose(challenges: Iterable[Challenge]) -> Challenge | None:
    """The challenge to answer: the strongest Digest rollcall can compute, else Basic, else None."""
    answerable = [c for c in challenges if c.answerable]
    ranking = list(_DIGEST_ALGORITHMS)
    digests = sorted(
        (c for c in answerable if c.scheme == "digest"), key=lambda c: ranking.index(c.algorithm)
    )
    if digests:
        return digests[0]
    return next((c for c in answerable if c.scheme == "basic"), None)


def refusal(
    origin: str,
    challenges: list[Challenge],
    *,
    credentials: str,
    answered_before: bool,
    context: str = "",
) -> errors.CameraAuthFailed | None:
    """Why a camera's ``401`` cannot be answered, or None when ``choose(challenges)`` should answer it.

    ``credentials``: ``"set"``, ``"none"`` (the endpoint has none) or ``"elsewhere"`` (they belong to
    the camera a redirect came from); ``answered_before``: this request already carried an answer to a
    fresh challenge, so the camera refused the credentials. The message never names a user or password.
    """
    offered = ", ".join(sorted({c.scheme for c in challenges})) or "no scheme"
    chosen = choose(challenges)
    if credentials == "elsewhere":
        return errors.CameraAuthFailed(
            f"camera {origin} asks for credentials ({offered}) after a redirect; a camera's credentials are "
            "sent only to its own host and port"
        )
    if credentials == "none":
        return errors.CameraAuthFailed(
            f"camera {origin} asks for credentials ({offered}); none are set for it"
        )
    if chosen is None:
        return errors.CameraAuthFailed(
            f"camera {origin} asks for authentication rollcall cannot answer ({offered})"
        )
    if answered_before:
        where = f", {context}" if context else ""
        return errors.CameraAuthFailed(
            f"camera {origin} refused the credentials ({chosen.label}{where}); check user and password"
        )
    return None


def basic_authorization(username: str, password: str) -> str:
    """``Basic base64(user:password)`` (RFC 7617, UTF-8)."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def digest_authorization(
    challenge: Challenge, method: str, uri: str, username: str, password: str, nc: int, cnonce: str
) -> str:
    """The ``Authorization`` value answering a Digest ``challenge`` for ``method uri`` (RFC 7616 3.4).

    ``nc`` counts the requests made with this nonce (1 for the first); ``cnonce`` is the client's
    fresh random nonce. ``uri`` is the request target exactly as sent (path and query).
    """
    algorithm = challenge.algorithm
    digest = _DIGEST_ALGORITHMS[algorithm]

    def h(text: str) -> str:
        return digest(text.encode("utf-8")).hexdigest()

    realm, nonce = challenge.realm, challenge.params["nonce"]
    ha1 = h(f"{username}:{realm}:{password}")
    if algorithm.endswith("-SESS"):
        ha1 = h(f"{ha1}:{nonce}:{cnonce}")
    ha2 = h(f"{method}:{uri}")
    fields: dict[str, str] = {}
    if challenge.params.get("userhash", "").lower() == "true":
        fields["username"] = _quoted(h(f"{username}:{realm}"))
        fields["userhash"] = "true"
    elif _plain(username):
        fields["username"] = _quoted(username)
    else:
        fields["username*"] = "UTF-8''" + quote(username, safe="")
    fields.update(realm=_quoted(realm), uri=_quoted(uri), algorithm=challenge.params.get("algorithm", "MD5"))
    fields["nonce"] = _quoted(nonce)
    if challenge.qops:
        counter = f"{nc:08x}"
        fields["response"] = _quoted(h(f"{ha1}:{nonce}:{counter}:{cnonce}:auth:{ha2}"))
        fields.update(qop="auth", nc=counter, cnonce=_quoted(cnonce))
    else:  # RFC 2069: no qop, no client nonce
        fields["response"] = _quoted(h(f"{ha1}:{nonce}:{ha2}"))
    if "opaque" in challenge.params:
        fields["opaque"] = _quoted(challenge.params["opaque"])
    return "Digest " + ", ".join(f"{name}={value}" for name, value in fields.items())


def _plain(text: str) -> bool:
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
