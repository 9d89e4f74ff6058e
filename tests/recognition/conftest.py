"""The recognition tests that read a facebank use the store tests' databases (SQLite and PostgreSQL)."""

from tests.facebank.conftest import database_url, facebank

__all__ = ["database_url", "facebank"]
