"""Rosters in the facebank store (SQLite and PostgreSQL): named groups of existing people."""

from __future__ import annotations

import pytest

import errors
from facebank.store import Facebank


def test_roster_keeps_its_members_in_id_order_once_each(facebank: Facebank) -> None:
    ada, grace, alan = (facebank.create_person(name) for name in ("Ada", "Grace", "Alan"))

    roster = facebank.create_roster("  Class 7B ", [alan.id, ada.id, alan.id])

    assert roster.name == "Class 7B"
    assert roster.person_ids == (ada.id, alan.id)
    assert facebank.get_roster(roster.id) == roster
    assert facebank.list_rosters() == [roster]
    assert grace.id not in roster.person_ids


def test_roster_refuses_people_who_do_not_exist_and_names_them(facebank: Facebank) -> None:
    ada = facebank.create_person("Ada")

    with pytest.raises(errors.PersonNotFound, match="998, 999"):
        facebank.create_roster("7B", [ada.id, 999, 998])

    assert facebank.list_rosters() == []


def test_roster_names_are_unique(facebank: Facebank) -> None:
    facebank.create_roster("7B")

    with pytest.raises(errors.DuplicateRoster):
        facebank.create_roster("7B")
    other = facebank.create_roster("7C")
    with pytest.raises(errors.DuplicateRoster):
        facebank.update_roster(other.id, name="7B")


def test_update_replaces_adds_and_removes_members(facebank: Facebank) -> None:
    ada, grace, alan = (facebank.create_person(name) for name in ("Ada", "Grace", "Alan"))
    roster = facebank.create_roster("7B", [ada.id])

    assert facebank.update_roster(roster.id, add=[grace.id, alan.id]).person_ids == (
        ada.id,
        grace.id,
        alan.id,
    )
    assert facebank.update_roster(roster.id, remove=[grace.id]).person_ids == (ada.id, alan.id)
    replaced = facebank.update_roster(roster.id, name="7B (spring)", person_ids=[grace.id])
    assert (replaced.name, replaced.person_ids) == ("7B (spring)", (grace.id,))
    assert facebank.get_roster(roster.id) == replaced
    with pytest.raises(errors.PersonNotFound):
        facebank.update_roster(roster.id, add=[12345])
    assert facebank.get_roster(roster.id) == replaced


def test_roster_changes_leave_the_facebank_revision_alone(facebank: Facebank) -> None:
    ada = facebank.create_person("Ada")
    revision = facebank.revision()

    roster = facebank.create_roster("7B", [ada.id])
    facebank.update_roster(roster.id, person_ids=[])
    facebank.delete_roster(roster.id)

    assert facebank.revision() == revision, "rosters must not make every worker reload its gallery"


def test_deleting_a_person_takes_them_off_every_roster(facebank: Facebank) -> None:
    ada, grace = facebank.create_person("Ada"), facebank.create_person("Grace")
    roster = facebank.create_roster("7B", [ada.id, grace.id])

    facebank.delete_person(ada.id)

    assert facebank.get_roster(roster.id).person_ids == (grace.id,)


def test_deleted_roster_is_gone_and_its_people_stay(facebank: Facebank) -> None:
    ada = facebank.create_person("Ada")
    roster = facebank.create_roster("7B", [ada.id])

    facebank.delete_roster(roster.id)

    with pytest.raises(errors.RosterNotFound):
        facebank.get_roster(roster.id)
    with pytest.raises(errors.RosterNotFound):
        facebank.delete_roster(roster.id)
    assert facebank.get_person(ada.id).display_name == "Ada"
