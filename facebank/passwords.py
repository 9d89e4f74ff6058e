"""Camera passwords encrypted at rest: Fernet tokens under the key(s) of ``ROLLCALL_SECRET_KEY``.

A database backup or a read-only SQL account must not hand out the passwords of every camera of a
school, so the registry stores each one as a Fernet token (AES-128-CBC with HMAC-SHA256, from the
well-kept ``cryptography`` package). The key lives only in the environment of the API and the
workers. Several keys, comma-separated, make key rotation possible (``MultiFernet``): the first
encrypts, every one decrypts, and ``rotate`` re-encrypts a token under the first
(docs/operations.md says how).
"""

from __future__ import annotations

from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from pydantic import SecretStr

import errors


def parse_keys(spec: str) -> tuple[str, ...]:
    """The comma-separated Fernet keys of ``spec`` (empty: none); a malformed one raises ``ValueError``.

    The message never quotes a key: it may be a real one with a typo.
    """
    keys = tuple(entry for entry in (part.strip() for part in spec.split(",")) if entry)
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            raise ValueError(
                f"key {position} is not a Fernet key (32 url-safe base64-encoded bytes; make one with "
                '`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`)'
            ) from None
    return keys


def new_key() -> str:
    """A fresh random key, as ``ROLLCALL_SECRET_KEY`` takes it."""
    return Fernet.generate_key().decode("ascii")


class PasswordCipher:
    """Encrypts and decrypts camera passwords with the configured keys (the first one encrypts)."""

    def __init__(self, keys: Sequence[str]) -> None:
        if not keys:
            raise ValueError("a PasswordCipher needs at least one key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def encrypt(self, password: str) -> str:
        return self._fernet.encrypt(password.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str, what: str) -> str:
        """The password of ``token``; ``SecretKeyMismatch`` naming ``what`` when no key opens it."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise errors.SecretKeyMismatch(
                f"the password of {what} was encrypted with a key ROLLCALL_SECRET_KEY does not hold: "
                "restore that key (the old one may follow the new one), or set the password again"
            ) from None

    def rotate(self, token: str, what: str) -> str:
        """``token`` re-encrypted under the first key (unchanged text; new timestamp and IV)."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken:
            raise errors.SecretKeyMismatch(
                f"the password of {what} opens with none of the keys of ROLLCALL_SECRET_KEY"
            ) from None


def cipher_of(keys: Sequence[SecretStr]) -> PasswordCipher | None:
    """A cipher for the keys of ``ROLLCALL_SECRET_KEY``; None without one (the registry refuses passwords)."""
    return PasswordCipher([key.get_secret_value() for key in keys]) if keys else None
