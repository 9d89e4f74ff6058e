"""Schema migrations: from an empty database to the newest schema, idempotently, matching the models."""

from __future__ import annotations

import threading

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from facebank import db
from facebank.models import Base
from facebank.store import Facebank
from tests.facebank.factories import enrol


def test_upgrade_builds_the_schema_in_an_empty_database(database_url: str) -> None:
    engine = db.make_engine(database_url)
    try:
        assert db.current_revision(engine) is None

        db.upgrade(database_url)

        assert db.current_revision(engine) == db.head_revision()
        assert set(inspect(engine).get_table_names()) >= set(Base.metadata.tables)
        assert Facebank(engine).revision() == 0
    finally:
        engine.dispose()


def test_upgrade_again_changes_nothing_and_keeps_the_data(database_url: str) -> None:
    db.upgrade(database_url)
    store = Facebank.from_url(database_url)
    try:
        person = store.people.create("Ada", external_id="S-001")
        face = enrol(store, person.id, "ada")
        person = store.people.get(person.id)
        revision = store.revision()

        db.upgrade(database_url)

        assert db.current_revision(store.engine) == db.head_revision()
        assert store.people.get(person.id) == person
        assert store.faces.of_person(person.id) == [face]
        assert store.revision() == revision
    finally:
        store.close()


def test_concurrent_upgrades_of_a_new_database_both_succeed(database_url: str) -> None:
    failures: list[BaseException] = []

    def run() -> None:
        try:
            db.upgrade(database_url)
        except Exception as error:  # collected for the assertion below
            failures.append(error)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    store = Facebank.from_url(database_url)
    try:
        assert db.current_revision(store.engine) == db.head_revision()
        assert store.revision() == 0
    finally:
        store.close()


def test_migrations_create_exactly_what_the_models_describe(database_url: str) -> None:
    db.upgrade(database_url)
    engine = db.make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, Base.metadata)
    finally:
        engine.dispose()
    assert differences == []
