"""Concurrent writers, as several API processes and workers are: no lost update, no duplicate photo.

Each thread has its own store and engine (its own connections), like separate processes would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

import errors
from facebank.store import Facebank
from tests.facebank.factories import enrol


@pytest.fixture
def stores(facebank: Facebank, database_url: str) -> Iterator[list[Facebank]]:
    """Four independent stores on the migrated database behind ``facebank``."""
    opened = [Facebank.from_url(database_url) for _ in range(4)]
    yield opened
    for store in opened:
        store.close()


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Start all calls at once, each on its own thread; return each result or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = calls[index]()
        except Exception as error:  # handed back to the test, which asserts on it
            outcomes[index] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "a writer hung"
    return outcomes


def test_same_photo_added_concurrently_is_stored_once(facebank: Facebank, stores: list[Facebank]) -> None:
    ada = facebank.people.create("Ada")
    grace = facebank.people.create("Grace")
    for round_ in range(5):
        before = facebank.revision()
        outcomes = run_together(
            [
                partial(enrol, stores[0], ada.id, f"contested-{round_}"),
                partial(enrol, stores[1], grace.id, f"contested-{round_}"),
            ]
        )

        refused = [o for o in outcomes if isinstance(o, errors.DuplicateFace)]
        stored = [o for o in outcomes if not isinstance(o, Exception)]
        assert len(refused) == 1 and len(stored) == 1, outcomes
        assert f"face {stored[0].id} of person {stored[0].person_id}" in refused[0].message
        assert facebank.revision() == before + 1
    assert facebank.stats().faces == 5


def test_two_people_created_concurrently_are_both_kept(facebank: Facebank, stores: list[Facebank]) -> None:
    before = facebank.revision()

    outcomes = run_together(
        [lambda: stores[0].people.create("Ada"), lambda: stores[1].people.create("Grace")]
    )

    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    assert sorted(p.display_name for p in facebank.people.page().items) == ["Ada", "Grace"]
    assert facebank.revision() == before + 2


def test_photos_of_different_people_added_concurrently_all_land(
    facebank: Facebank, stores: list[Facebank]
) -> None:
    people = [facebank.people.create(f"P{i}") for i in range(len(stores))]
    before = facebank.revision()

    outcomes = run_together(
        [
            partial(enrol, store, person.id, f"photo-{person.id}")
            for store, person in zip(stores, people, strict=True)
        ]
    )

    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    assert [facebank.people.get(p.id).face_count for p in people] == [1] * len(people)
    assert facebank.revision() == before + len(stores)


def test_no_revision_bump_is_lost_under_contention(facebank: Facebank, stores: list[Facebank]) -> None:
    per_writer = 10

    def write_many(store: Facebank, writer: int) -> None:
        for i in range(per_writer):
            store.people.create(f"writer {writer} person {i}")

    outcomes = run_together([partial(write_many, store, writer) for writer, store in enumerate(stores)])

    assert not any(isinstance(o, Exception) for o in outcomes), outcomes
    assert facebank.revision() == len(stores) * per_writer
    assert facebank.people.page().total == len(stores) * per_writer
