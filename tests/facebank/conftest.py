"""Every store test runs twice: on a SQLite file and on a fresh PostgreSQL database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from facebank.db import upgrade
from facebank.store import Facebank
from tests.postgres import PostgresUnavailable, temporary_database


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty, never-migrated database of each backend."""
    if request.param == "sqlite":
        # A folder that does not exist yet: make_engine must create it.
        yield f"sqlite:///{tmp_path / 'data' / 'facebank.db'}"
        return
    try:
        with temporary_database() as url:
            yield url
    except PostgresUnavailable as error:
        pytest.fail(str(error), pytrace=False)


@pytest.fixture
def facebank(database_url: str) -> Iterator[Facebank]:
    upgrade(database_url)
    store = Facebank.from_url(database_url)
    yield store
    store.close()
