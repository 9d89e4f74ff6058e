"""Alembic environment for the facebank.

``facebank.db.upgrade`` hands over an open connection (already in a transaction, holding the
migration lock) through ``config.attributes["connection"]``. For developers generating a new
migration, ``alembic -c <ini with script_location and sqlalchemy.url> revision --autogenerate``
works too: the engine then comes from ``facebank.db.make_engine``.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from facebank.db import make_engine
from facebank.models import Base


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        # SQLite cannot ALTER most things in place; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("offline (SQL script) migrations are not supported; use facebank.db.upgrade(url)")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no connection given and no sqlalchemy.url configured")
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


main()
