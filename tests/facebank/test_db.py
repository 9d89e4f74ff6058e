"""Engines: what every backend must guarantee, and what an unreachable database looks like to callers."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from sqlalchemy import text

import errors
from facebank import db
from facebank.store import Facebank


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_postgresql_is_database_unavailable() -> None:
    url = f"postgresql://rollcall:s3cret@127.0.0.1:{closed_port()}/facebank"
    store = Facebank.from_url(url)
    try:
        for operation in (store.revision, store.stats, lambda: store.people.create("Ada")):
            with pytest.raises(errors.DatabaseUnavailable) as caught:
                operation()
            assert caught.value.retryable and caught.value.status == 503
            assert "127.0.0.1" in caught.value.message and "s3cret" not in caught.value.message
        with pytest.raises(errors.DatabaseUnavailable):
            db.upgrade(url)
    finally:
        store.close()


def test_bare_postgresql_urls_use_psycopg_3() -> None:
    assert db.database_url("postgresql://u@h/d").drivername == "postgresql+psycopg"
    assert db.database_url("postgresql+psycopg://u@h/d").drivername == "postgresql+psycopg"
    assert db.database_url("sqlite:///x.db").drivername == "sqlite"


def test_sqlite_file_gets_its_folder_foreign_keys_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "new" / "folder" / "facebank.db"
    engine = db.make_engine(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
            assert connection.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
        assert path.exists()
    finally:
        engine.dispose()


def test_store_on_an_unmigrated_database_says_so(tmp_path: Path) -> None:
    store = Facebank.from_url(f"sqlite:///{tmp_path / 'empty.db'}")
    try:
        with pytest.raises(errors.DatabaseUnavailable, match="no such table"):
            store.revision()
    finally:
        store.close()
