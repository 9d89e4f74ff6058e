"""The one way the facebank reads and writes: a transaction per call, connection failures as 503s.

A write that changes what workers match against (people, faces, embeddings, thresholds) starts by
bumping ``facebank_state.revision`` (``UPDATE ... SET revision = revision + 1``). Taking that row
lock first serialises writers on PostgreSQL, and the IMMEDIATE transaction does the same on SQLite,
so no bump is lost, writers never deadlock, and a rolled-back write leaves the revision as it was.
Rosters and attendance sessions write without the bump: no gallery depends on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from facebank import db, models


@contextmanager
def read(engine: Engine) -> Iterator[Session]:
    """A read transaction: one snapshot on both backends."""
    with db.unavailable_on_failure(engine.url), engine.connect() as connection:
        with connection.begin(), Session(connection, expire_on_commit=False) as session:
            yield session


@contextmanager
def write(engine: Engine, *, bump_revision: bool) -> Iterator[Session]:
    """A write transaction, committed when the block ends; ``bump_revision`` first moves the revision."""
    with db.unavailable_on_failure(engine.url), engine.connect() as connection:
        connection = connection.execution_options(**db.WRITE_OPTIONS)
        with connection.begin(), Session(connection, expire_on_commit=False) as session:
            if bump_revision:
                session.execute(
                    update(models.FacebankState)
                    .where(models.FacebankState.id == models.STATE_ROW_ID)
                    .values(revision=models.FacebankState.revision + 1)
                )
            yield session
            session.flush()
