"""Engines and schema migrations for the facebank: SQLite on one machine, PostgreSQL for several.

``make_engine`` gives every backend the same guarantees the store relies on: foreign keys enforced
(SQLite needs a PRAGMA for that), real transactions (pysqlite's own BEGIN handling is replaced by
ours, so reads inside a transaction see one snapshot and DDL is transactional), short connect
timeouts, and connection failures surfacing as ``errors.DatabaseUnavailable``.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import URL, Connection, Engine, create_engine, event, exc, make_url, text

import errors

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"

# Execution option naming the kind of BEGIN a SQLite transaction starts with. Writers use
# IMMEDIATE: they take the write lock up front (waiting up to the busy timeout) instead of
# failing with "database is locked" when a read transaction later tries to write.
SQLITE_BEGIN = "rollcall_sqlite_begin"
WRITE_OPTIONS: dict[str, Any] = {SQLITE_BEGIN: "IMMEDIATE"}

SQLITE_BUSY_TIMEOUT_S = 30.0
POSTGRES_CONNECT_TIMEOUT_S = 5
POOL_TIMEOUT_S = 10.0
# Any constant shared by every rollcall process: serialises concurrent `upgrade` calls on PostgreSQL.
MIGRATION_LOCK_KEY = 0x726F6C6C63616C6C  # "rollcall"


def database_url(url: str | URL) -> URL:
    """Parse ``url``; a bare ``postgresql://`` means psycopg 3, the driver rollcall installs."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def safe_url(url: URL) -> str:
    """The URL for messages and logs, password hidden."""
    return url.render_as_string(hide_password=True)


def make_engine(url: str | URL) -> Engine:
    """An engine for the facebank at ``url`` (connects lazily, on first use)."""
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed)
    connect_args: dict[str, Any] = {}
    if parsed.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": POSTGRES_CONNECT_TIMEOUT_S, "application_name": "rollcall"}
    return create_engine(
        parsed,
        pool_pre_ping=True,
        pool_timeout=POOL_TIMEOUT_S,
        pool_recycle=1800,
        connect_args=connect_args,
    )


def _switch_to_wal(cursor: sqlite3.Cursor) -> None:
    """``PRAGMA journal_mode = WAL``, retried while the database is locked, up to the busy timeout.

    SQLite answers "database is locked" at once, without its busy handler's wait, when another
    connection holds a lock on a new database while this one switches it to WAL: of three migrations
    started together on a new facebank file, one failed at its first connection about one time in
    fifteen. Once the file is in WAL mode the pragma is a no-op that takes no lock."""
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_S
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def _sqlite_engine(url: URL) -> Engine:
    in_memory = url.database in (None, "", ":memory:")
    if not in_memory:
        assert url.database is not None
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, pool_pre_ping=True, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_S})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from pysqlite (it would BEGIN only before DML, so SELECTs
        # ran outside transactions); `_on_begin` emits the BEGIN instead.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        if not in_memory:
            # WAL: readers never block the writer, and the API and workers read concurrently.
            _switch_to_wal(cursor)
            cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        mode = connection.get_execution_options().get(SQLITE_BEGIN, "")
        connection.exec_driver_sql(f"BEGIN {mode}".strip())

    return engine


@contextmanager
def unavailable_on_failure(url: URL) -> Iterator[None]:
    """Turn connection-level failures into ``errors.DatabaseUnavailable`` (retryable, HTTP 503).

    A database without rollcall's tables (never migrated: the API does not migrate) is one too, with
    the command that fixes it in the message, rather than an ``internal_error``.
    """
    try:
        yield
    except exc.DBAPIError as error:
        if _is_missing_table(error):
            raise errors.DatabaseUnavailable(
                f"facebank database {safe_url(url)} has no facebank tables yet ({_first_line(error)}): "
                "run `python -m webapi.cli migrate` (make run and compose's migrate service do)"
            ) from error
        if isinstance(error, exc.OperationalError | exc.InterfaceError) or error.connection_invalidated:
            raise errors.DatabaseUnavailable(_unavailable_message(url, error)) from error
        raise
    except exc.TimeoutError as error:  # the pool's wait for a connection: not a DBAPI error
        raise errors.DatabaseUnavailable(_unavailable_message(url, error)) from error


# PostgreSQL's SQLSTATE for "undefined table"; SQLite says "no such table" in an OperationalError.
UNDEFINED_TABLE = "42P01"


def _is_missing_table(error: exc.DBAPIError) -> bool:
    cause = error.orig
    return getattr(cause, "sqlstate", None) == UNDEFINED_TABLE or str(cause).startswith("no such table")


def _unavailable_message(url: URL, error: Exception) -> str:
    return f"facebank database {safe_url(url)} is unavailable: {_first_line(error)}"


def _first_line(error: Exception) -> str:
    cause = getattr(error, "orig", None) or error
    return str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__


def alembic_config() -> Config:
    """Alembic's configuration, built in code so no alembic.ini has to ship or be found at run time."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def head_revision() -> str:
    """The newest migration this code knows."""
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, f"no migrations found in {MIGRATIONS_DIR}"
    return head


def upgrade(url: str | URL) -> None:
    """Bring the database at ``url`` to the newest schema; a no-op when it is already there.

    Safe to call from several processes at once: they queue on a lock (an advisory lock on
    PostgreSQL, the write lock on SQLite) and the later ones find nothing to do.
    """
    engine = make_engine(url)
    try:
        with unavailable_on_failure(engine.url), engine.connect() as connection:
            connection = connection.execution_options(**WRITE_OPTIONS)
            with connection.begin():
                if connection.dialect.name == "postgresql":
                    connection.execute(
                        text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY}
                    )
                before = MigrationContext.configure(connection).get_current_revision()
                config = alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, "head")
                after = MigrationContext.configure(connection).get_current_revision()
        if before != after:
            log.info("facebank %s migrated from %s to %s", safe_url(engine.url), before, after)
    finally:
        engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The schema revision the database is at (None: never migrated)."""
    with unavailable_on_failure(engine.url), engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
