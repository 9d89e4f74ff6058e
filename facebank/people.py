"""People: who the facebank can name, with their own identifier and free-form metadata."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Engine, delete, exc, func, or_, select
from sqlalchemy.orm import Session

import errors
from facebank import models, transactions
from facebank.limits import MAX_DISPLAY_NAME, MAX_EXTERNAL_ID, MAX_PAGE_SIZE
from facebank.records import UNSET, Page, Person, Unset


class People:
    """Create, find, change and delete people; deleting one deletes their photos and embeddings."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self, display_name: str, external_id: str | None = None, metadata: Mapping[str, Any] | None = None
    ) -> Person:
        """Add someone; an ``external_id`` already in use raises ``DuplicatePerson``."""
        external = _external_id(external_id)
        row = models.Person(
            display_name=_display_name(display_name),
            external_id=external,
            metadata_=_metadata(metadata or {}),
        )
        try:
            with transactions.write(self.engine, bump_revision=True) as session:
                session.add(row)
                session.flush()
                return _person(row, face_count=0)
        except exc.IntegrityError as error:
            raise self._duplicate(external, error) from error

    def get(self, person_id: int) -> Person:
        with transactions.read(self.engine) as session:
            return _person(*person_row(session, person_id))

    def get_many(self, person_ids: Sequence[int]) -> list[Person]:
        """The people with these ids, in that order; ids deleted meanwhile are left out (no error)."""
        wanted = list(dict.fromkeys(person_ids))
        if not wanted:
            return []
        with transactions.read(self.engine) as session:
            found = {
                row.id: _person(row, faces)
                for row, faces in session.execute(
                    select(models.Person, _face_count()).where(models.Person.id.in_(wanted))
                )
            }
        return [found[person_id] for person_id in wanted if person_id in found]

    def page(self, query: str | None = None, offset: int = 0, limit: int = 50) -> Page:
        """People in enrolment order; ``query`` matches name or external id, case-insensitively, anywhere."""
        if offset < 0 or not 1 <= limit <= MAX_PAGE_SIZE:
            raise errors.InvalidInput(f"offset must be >= 0 and limit within 1..{MAX_PAGE_SIZE}")
        condition = None
        if query and query.strip():
            needle = query.strip()
            condition = or_(
                models.Person.display_name.icontains(needle, autoescape=True),
                models.Person.external_id.icontains(needle, autoescape=True),
            )
        with transactions.read(self.engine) as session:
            count = select(func.count()).select_from(models.Person)
            listing = (
                select(models.Person, _face_count()).order_by(models.Person.id).offset(offset).limit(limit)
            )
            if condition is not None:
                count, listing = count.where(condition), listing.where(condition)
            total = session.execute(count).scalar_one()
            items = tuple(_person(row, faces) for row, faces in session.execute(listing))
        return Page(items=items, total=total, offset=offset, limit=limit)

    def update(
        self,
        person_id: int,
        *,
        display_name: str | Unset = UNSET,
        external_id: str | None | Unset = UNSET,
        metadata: Mapping[str, Any] | Unset = UNSET,
    ) -> Person:
        """Change the given fields; ``metadata`` is replaced as a whole."""
        changes: dict[str, Any] = {}
        if display_name is not UNSET:
            changes["display_name"] = _display_name(display_name)
        if external_id is not UNSET:
            changes["external_id"] = _external_id(external_id)
        if metadata is not UNSET:
            changes["metadata_"] = _metadata(metadata)
        if not changes:
            return self.get(person_id)
        try:
            with transactions.write(self.engine, bump_revision=True) as session:
                row, face_count = person_row(session, person_id)
                for name, value in changes.items():
                    setattr(row, name, value)
                session.flush()
                return _person(row, face_count)
        except exc.IntegrityError as error:
            raise self._duplicate(changes.get("external_id"), error) from error

    def delete(self, person_id: int) -> int:
        """Remove someone with all their photos and embeddings (biometric data); returns the photo count."""
        with transactions.write(self.engine, bump_revision=True) as session:
            _, face_count = person_row(session, person_id)
            session.execute(delete(models.Person).where(models.Person.id == person_id))
            return face_count

    def _duplicate(self, external_id: str | None, error: exc.IntegrityError) -> Exception:
        """Name the person who already holds this external id, or hand back the original error."""
        if external_id is None:
            return error
        with transactions.read(self.engine) as session:
            holder = session.execute(
                select(models.Person.id).where(models.Person.external_id == external_id)
            ).scalar_one_or_none()
        if holder is None:
            return error
        return errors.DuplicatePerson(f"external id {external_id!r} already belongs to person {holder}")


def person_row(session: Session, person_id: int) -> tuple[models.Person, int]:
    """A person's row and photo count, or ``PersonNotFound``."""
    found = session.execute(
        select(models.Person, _face_count()).where(models.Person.id == person_id)
    ).one_or_none()
    if found is None:
        raise errors.PersonNotFound(f"no person with id {person_id}")
    return found[0], found[1]


def check_people_exist(session: Session, person_ids: Sequence[int]) -> None:
    """Raise ``PersonNotFound`` naming the ids that are nobody (the first ``MAX_IDS_NAMED`` of them)."""
    wanted = set(person_ids)
    if not wanted:
        return
    found = set(session.scalars(select(models.Person.id).where(models.Person.id.in_(wanted))))
    missing = sorted(wanted - found)
    if missing:
        raise errors.PersonNotFound.naming(missing)


def _face_count() -> Any:
    """Correlated count of a person's photos, for listings that show it without loading them."""
    return (
        select(func.count(models.FaceImage.id))
        .where(models.FaceImage.person_id == models.Person.id)
        .correlate(models.Person)
        .scalar_subquery()
    )


def _display_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise errors.InvalidInput("display_name must be non-empty text")
    if len(value.strip()) > MAX_DISPLAY_NAME:
        raise errors.InvalidInput(f"display_name is longer than {MAX_DISPLAY_NAME} characters")
    return value.strip()


def _external_id(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise errors.InvalidInput("external_id must be non-empty text or null")
    if len(value.strip()) > MAX_EXTERNAL_ID:
        raise errors.InvalidInput(f"external_id is longer than {MAX_EXTERNAL_ID} characters")
    return value.strip()


def _metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise errors.InvalidInput("metadata must be a JSON object")
    try:
        # A round trip through JSON: what is stored is exactly what will be read back.
        result: dict[str, Any] = json.loads(json.dumps(dict(value), allow_nan=False))
    except (TypeError, ValueError) as error:
        raise errors.InvalidInput(f"metadata is not JSON: {error}") from error
    return result


def _person(row: models.Person, face_count: int) -> Person:
    return Person(
        id=row.id,
        display_name=row.display_name,
        external_id=row.external_id,
        metadata=dict(row.metadata_),
        face_count=face_count,
        created_at=models.as_utc(row.created_at),
        updated_at=models.as_utc(row.updated_at),
    )
