"""Rosters in the facebank store (SQLite and PostgreSQL): named groups of existing people."""

from __future__ import annotations

import pytest

import errors
from facebank.store import Facebank


def test_roster_keeps_its_members_in_id_order_once_each(facebank: Facebank) -> None:
    ada, grace, alan = (facebank.people.create(name) for name in ("Ada", "Grace", "Alan"))

    roster = facebank.rosters.create("  Class 7B ", [alan.id, ada.id, alan.id])

    assert roster.name == "Class 7B"
    assert roster.person_ids == (ada.id, alan.id)
    assert facebank.rosters.get(roster.id) == roster
    assert facebank.rosters.all() == [roster]
    assert grace.id not in roster.person_ids


def test_roster_refuses_people_who_do_not_exist_and_names_them(facebank: Facebank) -> None:
    ada = facebank.people.create("Ada")

    with pytest.raises(errors.PersonNotFound, match="998, 999"):
        facebank.rosters.create("7B", [ada.id, 999, 998])

    assert facebank.rosters.all() == []


def test_roster_names_are_unique(facebank: Facebank) -> None:
    facebank.rosters.create("7B")

    with pytest.raises(errors.DuplicateRoster):
        facebank.rosters.create("7B")
    other = facebank.rosters.create("7C")
    with pytest.raises(errors.DuplicateRoster):
        facebank.rosters.update(other.id, name="7B")


def test_update_replaces_adds_and_removes_members(facebank: Facebank) -> None:
    ada, grace, alan = (facebank.people.create(name) for name in ("Ada", "Grace", "Alan"))
    roster = facebank.rosters.create("7B", [ada.id])

    assert facebank.rosters.update(roster.id, add=[grace.id, alan.id]).person_ids == (
        ada.id,
        grace.id,
        alan.id,
    )
    assert facebank.rosters.update(roster.id, remove=[grace.id]).person_ids == (ada.id, alan.id)
    replaced = facebank.rosters.update(roster.id, name="7B (spring)", person_ids=[grace.id])
    assert (replaced.name, replaced.person_ids) == ("7B (spring)", (grace.id,))
    assert facebank.rosters.get(roster.id) == replaced
    with pytest.raises(errors.PersonNotFound):
        facebank.rosters.update(roster.id, add=[12345])
    assert facebank.rosters.get(roster.id) == replaced


def test_roster_changes_leave_the_facebank_revision_alone(facebank: Facebank) -> None:
    ada = facebank.people.create("Ada")
    revision = facebank.revision()

    roster = facebank.rosters.create("7B", [ada.id])
    facebank.rosters.update(roster.id, person_ids=[])
    facebank.rosters.delete(roster.id)

    assert facebank.revision() == revision, "rosters must not make every worker reload its gallery"


def test_deleting_a_person_takes_them_off_every_roster(facebank: Facebank) -> None:
    ada, grace = facebank.people.create("Ada"), facebank.people.create("Grace")
    roster = facebank.rosters.create("7B", [ada.id, grace.id])

    facebank.people.delete(ada.id)

    assert facebank.rosters.get(roster.id).person_ids == (grace.id,)


def test_deleted_roster_is_gone_and_its_people_stay(facebank: Facebank) -> None:
    ada = facebank.people.create("Ada")
    roster = facebank.rosters.create("7B", [ada.id])

    facebank.rosters.delete(roster.id)

    with pytest.raises(errors.RosterNotFound):
        facebank.rosters.get(roster.id)
    with pytest.raises(errors.RosterNotFound):
        facebank.rosters.delete(roster.id)
    assert facebank.people.get(ada.id).display_name == "Ada"
