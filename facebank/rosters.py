"""Rosters: named groups of people (a class, a shift) that attendance can be restricted to.

Roster writes leave the facebank revision alone: no gallery depends on them, so workers need not
reload one.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, delete, exc, select
from sqlalchemy.orm import Session

import errors
from facebank import models, transactions
from facebank.limits import MAX_ROSTER_NAME, MAX_ROSTER_SIZE
from facebank.people import check_people_exist
from facebank.records import UNSET, Roster, Unset


class Rosters:
    """Create, read, change and delete rosters; deleting a person takes them off every roster."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, name: str, person_ids: Sequence[int] = ()) -> Roster:
        """A new roster of existing people; a name in use raises ``DuplicateRoster``."""
        roster_name = _roster_name(name)
        members = _member_ids(person_ids)
        try:
            with transactions.write(self.engine, bump_revision=False) as session:
                check_people_exist(session, members)
                row = models.Roster(name=roster_name)
                session.add(row)
                session.flush()
                session.add_all(models.RosterMember(roster_id=row.id, person_id=pid) for pid in members)
                session.flush()
                return _roster(row, members)
        except exc.IntegrityError as error:
            raise self._conflict(roster_name, members, error) from error

    def get(self, roster_id: int) -> Roster:
        with transactions.read(self.engine) as session:
            row = _roster_row(session, roster_id)
            return _roster(row, _roster_members(session, roster_id))

    def all(self) -> list[Roster]:
        """Every roster with its members, in creation order."""
        with transactions.read(self.engine) as session:
            rows = session.scalars(select(models.Roster).order_by(models.Roster.id)).all()
            members: dict[int, list[int]] = {row.id: [] for row in rows}
            for roster_id, person_id in session.execute(
                select(models.RosterMember.roster_id, models.RosterMember.person_id).order_by(
                    models.RosterMember.person_id
                )
            ):
                members.setdefault(roster_id, []).append(person_id)
        return [_roster(row, members[row.id]) for row in rows]

    def update(
        self,
        roster_id: int,
        *,
        name: str | Unset = UNSET,
        person_ids: Sequence[int] | Unset = UNSET,
        add: Sequence[int] = (),
        remove: Sequence[int] = (),
    ) -> Roster:
        """Rename, replace the members (``person_ids``), and/or add and remove some, in that order."""
        new_name = _roster_name(name) if name is not UNSET else None
        replace = _member_ids(person_ids) if person_ids is not UNSET else None
        added, removed = _member_ids(add), set(_member_ids(remove))
        try:
            with transactions.write(self.engine, bump_revision=False) as session:
                row = _roster_row(session, roster_id)
                if new_name is not None:
                    row.name = new_name
                current = set(_roster_members(session, roster_id))
                wanted = set(replace) if replace is not None else set(current)
                wanted = (wanted | set(added)) - removed
                check_people_exist(session, sorted(wanted - current))
                gone = current - wanted
                if gone:
                    session.execute(
                        delete(models.RosterMember).where(
                            models.RosterMember.roster_id == roster_id,
                            models.RosterMember.person_id.in_(gone),
                        )
                    )
                session.add_all(
                    models.RosterMember(roster_id=roster_id, person_id=pid)
                    for pid in sorted(wanted - current)
                )
                session.flush()
                return _roster(row, sorted(wanted))
        except exc.IntegrityError as error:
            raise self._conflict(new_name, sorted(set(replace or ()) | set(added)), error) from error

    def delete(self, roster_id: int) -> None:
        """Remove a roster (not its people); sessions that used it keep their own copy of the members."""
        with transactions.write(self.engine, bump_revision=False) as session:
            _roster_row(session, roster_id)
            session.execute(delete(models.Roster).where(models.Roster.id == roster_id))

    def _conflict(self, name: str | None, members: Sequence[int], error: exc.IntegrityError) -> Exception:
        """A taken name, or a member deleted meanwhile (the foreign key refused it), else the error itself."""
        with transactions.read(self.engine) as session:
            if name is not None:
                holder = session.execute(
                    select(models.Roster.id).where(models.Roster.name == name)
                ).scalar_one_or_none()
                if holder is not None:
                    return errors.DuplicateRoster(f"roster name {name!r} already belongs to roster {holder}")
            try:
                check_people_exist(session, members)
            except errors.PersonNotFound as missing:
                return missing
        return error


def _roster_row(session: Session, roster_id: int) -> models.Roster:
    row = session.get(models.Roster, roster_id)
    if row is None:
        raise errors.RosterNotFound(f"no roster with id {roster_id}")
    return row


def _roster_members(session: Session, roster_id: int) -> list[int]:
    return list(
        session.scalars(
            select(models.RosterMember.person_id)
            .where(models.RosterMember.roster_id == roster_id)
            .order_by(models.RosterMember.person_id)
        )
    )


def _roster_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise errors.InvalidInput("a roster name must be non-empty text")
    if len(value.strip()) > MAX_ROSTER_NAME:
        raise errors.InvalidInput(f"a roster name is longer than {MAX_ROSTER_NAME} characters")
    return value.strip()


def _member_ids(person_ids: Sequence[int]) -> list[int]:
    """Distinct person ids in ascending order, refused beyond ``MAX_ROSTER_SIZE``."""
    members = sorted(set(person_ids))
    if len(members) > MAX_ROSTER_SIZE:
        raise errors.InvalidInput(f"a roster holds at most {MAX_ROSTER_SIZE} people")
    if any(not isinstance(pid, int) or isinstance(pid, bool) for pid in members):
        raise errors.InvalidInput("person ids must be integers")
    return members


def _roster(row: models.Roster, person_ids: Sequence[int]) -> Roster:
    return Roster(
        id=row.id, name=row.name, person_ids=tuple(person_ids), created_at=models.as_utc(row.created_at)
    )
