"""Throwaway PostgreSQL databases for tests: each test gets its own, dropped afterwards.

The server is the one CI and the development machines run (ROLLCALL_TEST_POSTGRES_URL, default
``postgresql://postgres@127.0.0.1:5432/postgres``, trust auth). An unreachable server is an error,
never a skip: the PostgreSQL path is what several machines share in production.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from psycopg import sql
from sqlalchemy import make_url

ADMIN_URL = os.environ.get("ROLLCALL_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


class PostgresUnavailable(RuntimeError):
    """The test PostgreSQL server could not be reached or refused to create a database."""


@contextmanager
def temporary_database() -> Iterator[str]:
    """Create ``rollcall_test_<hex>``, yield its SQLAlchemy URL (psycopg 3), drop it with FORCE afterwards."""
    name = f"rollcall_test_{secrets.token_hex(6)}"
    try:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as error:
        raise PostgresUnavailable(
            f"cannot create a test database on {ADMIN_URL} ({str(error).splitlines()[0]}): PostgreSQL must "
            "run for these tests (set ROLLCALL_TEST_POSTGRES_URL to a superuser URL of another server)."
        ) from error
    try:
        url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
