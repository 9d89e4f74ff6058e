"""The facebank store: people, their enrolled photos and embeddings, behind plain methods.

Every write runs in one transaction that starts by bumping ``facebank_state.revision``
(``UPDATE ... SET revision = revision + 1``). Taking that row lock first serialises writers on
PostgreSQL, and the IMMEDIATE transaction does the same on SQLite, so no bump is lost, writers
never deadlock, and a rolled-back write leaves the revision as it was. Duplicates are refused by
unique constraints, never by a check-then-insert race.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sqlalchemy import Engine, delete, exc, func, or_, select, update
from sqlalchemy.orm import Session

import errors
from facebank import db, models
from facebank.records import (
    AppliedThreshold,
    Face,
    FacebankStats,
    FaceImageData,
    GalleryRows,
    ModelCount,
    Page,
    PendingFace,
    Person,
    Roster,
)

MAX_PAGE_SIZE = 1000
MAX_DISPLAY_NAME = 200
MAX_EXTERNAL_ID = 128
MAX_MODEL_NAME = 100  # model_name and model_version columns
MAX_ROSTER_NAME = 200
MAX_ROSTER_SIZE = 10_000


class _Unset(enum.Enum):
    UNSET = enum.auto()


UNSET = _Unset.UNSET
"""Marks an ``update_person`` field left as it is (``None`` is a value: it clears ``external_id``)."""


class Facebank:
    """The people, faces and embeddings stored in one database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def from_url(cls, url: str) -> Facebank:
        """A store on ``url`` (which must already be migrated with ``facebank.db.upgrade``)."""
        return cls(db.make_engine(url))

    def close(self) -> None:
        self.engine.dispose()

    # --- transactions ---

    @contextmanager
    def _read(self) -> Iterator[Session]:
        with db.unavailable_on_failure(self.engine.url), self.engine.connect() as connection:
            with connection.begin(), Session(connection, expire_on_commit=False) as session:
                yield session

    @contextmanager
    def _write(self, bump_revision: bool = True) -> Iterator[Session]:
        """A write transaction whose first statement bumps the revision (see the module docstring).

        Roster changes pass ``bump_revision=False``: no gallery depends on them, so workers need
        not reload one.
        """
        with db.unavailable_on_failure(self.engine.url), self.engine.connect() as connection:
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

    # --- people ---

    def create_person(
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
            with self._write() as session:
                session.add(row)
                session.flush()
                return _person(row, face_count=0)
        except exc.IntegrityError as error:
            raise self._duplicate_person(external, error) from error

    def get_person(self, person_id: int) -> Person:
        with self._read() as session:
            return _person(*self._person_row(session, person_id))

    def get_people(self, person_ids: Sequence[int]) -> list[Person]:
        """The people with these ids, in that order; ids deleted meanwhile are left out (no error)."""
        wanted = list(dict.fromkeys(person_ids))
        if not wanted:
            return []
        with self._read() as session:
            found = {
                row.id: _person(row, faces)
                for row, faces in session.execute(
                    select(models.Person, _face_count()).where(models.Person.id.in_(wanted))
                )
            }
        return [found[person_id] for person_id in wanted if person_id in found]

    def list_people(self, query: str | None = None, offset: int = 0, limit: int = 50) -> Page:
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
        with self._read() as session:
            count = select(func.count()).select_from(models.Person)
            listing = (
                select(models.Person, _face_count()).order_by(models.Person.id).offset(offset).limit(limit)
            )
            if condition is not None:
                count, listing = count.where(condition), listing.where(condition)
            total = session.execute(count).scalar_one()
            items = tuple(_person(row, faces) for row, faces in session.execute(listing))
        return Page(items=items, total=total, offset=offset, limit=limit)

    def update_person(
        self,
        person_id: int,
        *,
        display_name: str | _Unset = UNSET,
        external_id: str | None | _Unset = UNSET,
        metadata: Mapping[str, Any] | _Unset = UNSET,
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
            return self.get_person(person_id)
        try:
            with self._write() as session:
                row, face_count = self._person_row(session, person_id)
                for name, value in changes.items():
                    setattr(row, name, value)
                session.flush()
                return _person(row, face_count)
        except exc.IntegrityError as error:
            raise self._duplicate_person(changes.get("external_id"), error) from error

    def delete_person(self, person_id: int) -> int:
        """Remove someone with all their photos and embeddings (biometric data); returns the photo count."""
        with self._write() as session:
            _, face_count = self._person_row(session, person_id)
            session.execute(delete(models.Person).where(models.Person.id == person_id))
            return face_count

    # --- faces ---

    def add_face(
        self,
        person_id: int,
        image_bytes: bytes,
        content_type: str,
        width: int,
        height: int,
        box: Sequence[float] | np.ndarray,
        landmarks: Sequence[float] | np.ndarray,
        embedding: np.ndarray,
        model_name: str,
        model_version: str,
    ) -> Face:
        """Enrol one photo of a person with its embedding, all or nothing.

        The same image (by SHA-256) is refused for everyone with ``DuplicateFace``, which names
        the face and person that already hold it.
        """
        if not image_bytes:
            raise errors.InvalidInput("the image is empty")
        if width <= 0 or height <= 0:
            raise errors.InvalidInput(f"image size must be positive, got {width}x{height}")
        embedding_row = _embedding_row(model_name, model_version, _vector(embedding))
        digest = hashlib.sha256(image_bytes).hexdigest()
        row = models.FaceImage(
            person_id=person_id,
            image=image_bytes,
            content_type=content_type,
            sha256=digest,
            width=width,
            height=height,
            box=_floats(box, 4, "box"),
            landmarks=_floats(landmarks, 10, "landmarks"),
        )
        try:
            with self._write() as session:
                self._person_row(session, person_id)
                self._check_dim(session, model_name, model_version, embedding_row.dim)
                row.embeddings.append(embedding_row)
                session.add(row)
                session.flush()
                return _face(row)
        except exc.IntegrityError as error:
            raise self._duplicate_face(digest, error) from error

    def list_faces(self, person_id: int) -> list[Face]:
        with self._read() as session:
            self._person_row(session, person_id)
            rows = session.scalars(
                select(models.FaceImage)
                .where(models.FaceImage.person_id == person_id)
                .order_by(models.FaceImage.id)
            )
            return [_face(row) for row in rows]

    def delete_face(self, person_id: int, face_id: int) -> None:
        """Remove one photo of a person and its embeddings."""
        with self._write() as session:
            self._person_row(session, person_id)
            deleted = session.execute(
                delete(models.FaceImage).where(
                    models.FaceImage.id == face_id, models.FaceImage.person_id == person_id
                )
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise errors.FaceNotFound(f"person {person_id} has no face {face_id}")

    def get_face(self, face_id: int) -> Face:
        with self._read() as session:
            row = session.get(models.FaceImage, face_id)
            if row is None:
                raise errors.FaceNotFound(f"no face with id {face_id}")
            return _face(row)

    def get_face_image(self, face_id: int) -> FaceImageData:
        with self._read() as session:
            found = session.execute(
                select(
                    models.FaceImage.person_id, models.FaceImage.content_type, models.FaceImage.image
                ).where(models.FaceImage.id == face_id)
            ).one_or_none()
        if found is None:
            raise errors.FaceNotFound(f"no face with id {face_id}")
        person_id, content_type, data = found
        return FaceImageData(face_id=face_id, person_id=person_id, content_type=content_type, data=data)

    # --- embeddings ---

    def faces_needing_embedding(
        self, model_name: str, model_version: str, batch_size: int = 32
    ) -> Iterator[PendingFace]:
        """Faces without an embedding by this model, in id order, ``batch_size`` photos per transaction."""
        embedded = (
            select(models.Embedding.id)
            .where(
                models.Embedding.face_id == models.FaceImage.id,
                models.Embedding.model_name == model_name,
                models.Embedding.model_version == model_version,
            )
            .exists()
        )
        after = 0
        while True:
            with self._read() as session:
                batch = session.execute(
                    select(models.FaceImage.id, models.FaceImage.image, models.FaceImage.landmarks)
                    .where(models.FaceImage.id > after, ~embedded)
                    .order_by(models.FaceImage.id)
                    .limit(batch_size)
                ).all()
            for face_id, image, landmarks in batch:
                yield PendingFace(face_id, image, np.asarray(landmarks, dtype=np.float32).reshape(5, 2))
            if len(batch) < batch_size:
                return
            after = batch[-1][0]

    def set_embedding(self, face_id: int, model_name: str, model_version: str, vector: np.ndarray) -> None:
        """Store (or replace) a face's embedding by one model version."""
        values = _vector(vector)
        new_row = _embedding_row(model_name, model_version, values)
        with self._write() as session:
            if session.get(models.FaceImage, face_id) is None:
                raise errors.FaceNotFound(f"no face with id {face_id}")
            self._check_dim(session, model_name, model_version, values.size, except_face=face_id)
            existing = session.scalars(
                select(models.Embedding).where(
                    models.Embedding.face_id == face_id,
                    models.Embedding.model_name == model_name,
                    models.Embedding.model_version == model_version,
                )
            ).one_or_none()
            if existing is None:
                new_row.face_id = face_id
                session.add(new_row)
            else:
                existing.dim, existing.vector = new_row.dim, new_row.vector

    def gallery_rows(self, model_name: str, model_version: str) -> GalleryRows:
        """Every stored embedding of one model, in face id order (vectors as stored, not re-normalised)."""
        with self._read() as session:
            rows = session.execute(
                select(
                    models.FaceImage.person_id,
                    models.Embedding.face_id,
                    models.Embedding.dim,
                    models.Embedding.vector,
                )
                .join(models.FaceImage, models.FaceImage.id == models.Embedding.face_id)
                .where(
                    models.Embedding.model_name == model_name, models.Embedding.model_version == model_version
                )
                .order_by(models.Embedding.face_id)
            ).all()
        dims = {dim for _, _, dim, _ in rows}
        if len(dims) > 1:
            raise RuntimeError(
                f"embeddings of {model_name} {model_version} have mixed dimensions {sorted(dims)}"
            )
        dim = dims.pop() if dims else 0
        person_ids = np.array([row[0] for row in rows], dtype=np.int64)
        face_ids = np.array([row[1] for row in rows], dtype=np.int64)
        vectors = np.frombuffer(b"".join(row[3] for row in rows), dtype="<f4").reshape(len(rows), dim)
        return GalleryRows(person_ids, face_ids, vectors.astype(np.float32))

    # --- rosters ---

    def create_roster(self, name: str, person_ids: Sequence[int] = ()) -> Roster:
        """A new roster of existing people; a name in use raises ``DuplicateRoster``."""
        roster_name = _roster_name(name)
        members = _member_ids(person_ids)
        try:
            with self._write(bump_revision=False) as session:
                _check_people_exist(session, members)
                row = models.Roster(name=roster_name)
                session.add(row)
                session.flush()
                session.add_all(models.RosterMember(roster_id=row.id, person_id=pid) for pid in members)
                session.flush()
                return _roster(row, members)
        except exc.IntegrityError as error:
            raise self._roster_conflict(roster_name, members, error) from error

    def get_roster(self, roster_id: int) -> Roster:
        with self._read() as session:
            row = _roster_row(session, roster_id)
            return _roster(row, _roster_members(session, roster_id))

    def list_rosters(self) -> list[Roster]:
        """Every roster with its members, in creation order."""
        with self._read() as session:
            rows = session.scalars(select(models.Roster).order_by(models.Roster.id)).all()
            members: dict[int, list[int]] = {row.id: [] for row in rows}
            for roster_id, person_id in session.execute(
                select(models.RosterMember.roster_id, models.RosterMember.person_id).order_by(
                    models.RosterMember.person_id
                )
            ):
                members.setdefault(roster_id, []).append(person_id)
        return [_roster(row, members[row.id]) for row in rows]

    def update_roster(
        self,
        roster_id: int,
        *,
        name: str | _Unset = UNSET,
        person_ids: Sequence[int] | _Unset = UNSET,
        add: Sequence[int] = (),
        remove: Sequence[int] = (),
    ) -> Roster:
        """Rename, replace the members (``person_ids``), and/or add and remove some, in that order."""
        new_name = _roster_name(name) if name is not UNSET else None
        replace = _member_ids(person_ids) if person_ids is not UNSET else None
        added, removed = _member_ids(add), set(_member_ids(remove))
        try:
            with self._write(bump_revision=False) as session:
                row = _roster_row(session, roster_id)
                if new_name is not None:
                    row.name = new_name
                current = set(_roster_members(session, roster_id))
                wanted = set(replace) if replace is not None else set(current)
                wanted = (wanted | set(added)) - removed
                _check_people_exist(session, sorted(wanted - current))
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
            raise self._roster_conflict(new_name, sorted(set(replace or ()) | set(added)), error) from error

    def delete_roster(self, roster_id: int) -> None:
        """Remove a roster (not its people); sessions that used it keep their own copy of the members."""
        with self._write(bump_revision=False) as session:
            _roster_row(session, roster_id)
            session.execute(delete(models.Roster).where(models.Roster.id == roster_id))

    def _roster_conflict(
        self, name: str | None, members: Sequence[int], error: exc.IntegrityError
    ) -> Exception:
        """A taken name, or a member deleted meanwhile (the foreign key refused it), else the error itself."""
        with self._read() as session:
            if name is not None:
                holder = session.execute(
                    select(models.Roster.id).where(models.Roster.name == name)
                ).scalar_one_or_none()
                if holder is not None:
                    return errors.DuplicateRoster(f"roster name {name!r} already belongs to roster {holder}")
            try:
                _check_people_exist(session, members)
            except errors.PersonNotFound as missing:
                return missing
        return error

    # --- applied match thresholds ---

    def apply_threshold(
        self,
        model_name: str,
        model_version: str,
        threshold: float,
        *,
        target_far: float | None = None,
        genuine_pairs: int | None = None,
        impostor_pairs: int | None = None,
        false_reject_rate: float | None = None,
        calibration_job_id: str | None = None,
    ) -> AppliedThreshold:
        """Set (or replace) the threshold workers use for one model version; bumps the revision they watch."""
        if not _storable_model_key(model_name, model_version):
            raise errors.InvalidInput(
                f"model_name and model_version must be 1 to {MAX_MODEL_NAME} characters"
            )
        if not math.isfinite(threshold) or not -1.0 <= threshold <= 1.0:
            raise errors.InvalidInput(f"a cosine threshold lies within -1..1, got {threshold}")
        row = models.MatchThreshold(
            model_name=model_name,
            model_version=model_version,
            threshold=float(threshold),
            target_far=target_far,
            genuine_pairs=genuine_pairs,
            impostor_pairs=impostor_pairs,
            false_reject_rate=false_reject_rate,
            calibration_job_id=calibration_job_id,
            applied_at=models.utcnow(),
        )
        with self._write() as session:
            stored = session.merge(row)
            session.flush()
            return _applied_threshold(stored)

    def applied_threshold(self, model_name: str, model_version: str) -> AppliedThreshold | None:
        if not _storable_model_key(model_name, model_version):
            return None
        with self._read() as session:
            row = session.get(models.MatchThreshold, (model_name, model_version))
            return _applied_threshold(row) if row is not None else None

    def applied_thresholds(self) -> list[AppliedThreshold]:
        with self._read() as session:
            rows = session.scalars(
                select(models.MatchThreshold).order_by(
                    models.MatchThreshold.model_name, models.MatchThreshold.model_version
                )
            )
            return [_applied_threshold(row) for row in rows]

    def clear_threshold(self, model_name: str, model_version: str) -> None:
        """Forget an applied threshold: workers go back to the configured or the embedder's default."""
        missing = errors.NotFound(f"no threshold applied for {model_name!r} {model_version!r}")
        if not _storable_model_key(model_name, model_version):
            raise missing
        with self._write() as session:
            deleted = session.execute(
                delete(models.MatchThreshold).where(
                    models.MatchThreshold.model_name == model_name,
                    models.MatchThreshold.model_version == model_version,
                )
            )
            if deleted.rowcount == 0:  # type: ignore[attr-defined]
                raise missing

    # --- state ---

    def revision(self) -> int:
        """A number that changes with every write: one primary-key read, cheap enough for every task."""
        with db.unavailable_on_failure(self.engine.url), self.engine.connect() as connection:
            return connection.execute(
                select(models.FacebankState.revision).where(models.FacebankState.id == models.STATE_ROW_ID)
            ).scalar_one()

    def stats(self) -> FacebankStats:
        with self._read() as session:
            revision = session.execute(
                select(models.FacebankState.revision).where(models.FacebankState.id == models.STATE_ROW_ID)
            ).scalar_one()
            people = session.execute(select(func.count()).select_from(models.Person)).scalar_one()
            faces = session.execute(select(func.count()).select_from(models.FaceImage)).scalar_one()
            per_model = session.execute(
                select(
                    models.Embedding.model_name,
                    models.Embedding.model_version,
                    func.max(models.Embedding.dim),
                    func.count(),
                )
                .group_by(models.Embedding.model_name, models.Embedding.model_version)
                .order_by(models.Embedding.model_name, models.Embedding.model_version)
            ).all()
        return FacebankStats(
            revision=revision,
            people=people,
            faces=faces,
            models=tuple(ModelCount(name, version, dim, count) for name, version, dim, count in per_model),
        )

    # --- helpers ---

    @staticmethod
    def _person_row(session: Session, person_id: int) -> tuple[models.Person, int]:
        found = session.execute(
            select(models.Person, _face_count()).where(models.Person.id == person_id)
        ).one_or_none()
        if found is None:
            raise errors.PersonNotFound(f"no person with id {person_id}")
        return found[0], found[1]

    @staticmethod
    def _check_dim(
        session: Session, model_name: str, model_version: str, dim: int, except_face: int | None = None
    ) -> None:
        """One model version, one dimension: a mismatch means the caller mixed up models."""
        query = select(models.Embedding.dim).where(
            models.Embedding.model_name == model_name, models.Embedding.model_version == model_version
        )
        if except_face is not None:
            query = query.where(models.Embedding.face_id != except_face)
        stored = session.execute(query.limit(1)).scalar_one_or_none()
        if stored is not None and stored != dim:
            raise errors.InvalidInput(
                f"{model_name} {model_version} embeddings have {stored} dimensions, this one has {dim}"
            )

    def _duplicate_face(self, digest: str, error: exc.IntegrityError) -> Exception:
        """Name the face that already holds this image, or hand back the original error if none does."""
        with self._read() as session:
            holder = session.execute(
                select(models.FaceImage.id, models.FaceImage.person_id).where(
                    models.FaceImage.sha256 == digest
                )
            ).one_or_none()
        if holder is None:
            return error
        return errors.DuplicateFace(
            f"this image is already enrolled as face {holder[0]} of person {holder[1]}"
        )

    def _duplicate_person(self, external_id: str | None, error: exc.IntegrityError) -> Exception:
        if external_id is None:
            return error
        with self._read() as session:
            holder = session.execute(
                select(models.Person.id).where(models.Person.external_id == external_id)
            ).scalar_one_or_none()
        if holder is None:
            return error
        return errors.DuplicatePerson(f"external id {external_id!r} already belongs to person {holder}")


def _face_count() -> Any:
    """Correlated count of a person's photos, for listings that show it without loading them."""
    return (
        select(func.count(models.FaceImage.id))
        .where(models.FaceImage.person_id == models.Person.id)
        .correlate(models.Person)
        .scalar_subquery()
    )


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


def _check_people_exist(session: Session, person_ids: Sequence[int]) -> None:
    """Raise ``PersonNotFound`` naming every id that is nobody."""
    wanted = set(person_ids)
    if not wanted:
        return
    found = set(session.scalars(select(models.Person.id).where(models.Person.id.in_(wanted))))
    missing = sorted(wanted - found)
    if missing:
        raise errors.PersonNotFound(f"no person with id {', '.join(map(str, missing))}")


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
    return Roster(id=row.id, name=row.name, person_ids=tuple(person_ids), created_at=as_utc(row.created_at))


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


def _floats(values: Sequence[float] | np.ndarray, count: int, what: str) -> list[float]:
    array = np.asarray(values, dtype=np.float64).reshape(-1)
    if array.size != count or not np.all(np.isfinite(array)):
        raise errors.InvalidInput(f"{what} must be {count} finite numbers, got {np.shape(values)}")
    return [float(v) for v in array]


def _vector(embedding: np.ndarray) -> np.ndarray:
    """The embedding as contiguous little-endian float32 [D], refusing what cosine similarity cannot use."""
    array = np.asarray(embedding)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1 or array.size == 0:
        raise errors.InvalidInput(f"an embedding must be one vector, got shape {array.shape}")
    vector = np.ascontiguousarray(array, dtype="<f4")
    norm = float(np.linalg.norm(vector))
    if not math.isfinite(norm) or norm == 0.0:
        raise errors.InvalidInput("an embedding must be finite and non-zero")
    return vector


def _embedding_row(model_name: str, model_version: str, vector: np.ndarray) -> models.Embedding:
    if not model_name or not model_version:
        raise errors.InvalidInput("model_name and model_version are required")
    return models.Embedding(
        model_name=model_name, model_version=model_version, dim=vector.size, vector=vector.tobytes()
    )


def as_utc(moment: datetime) -> datetime:
    """Everything is stored in UTC; SQLite hands it back naive, PostgreSQL in the session's zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _person(row: models.Person, face_count: int) -> Person:
    return Person(
        id=row.id,
        display_name=row.display_name,
        external_id=row.external_id,
        metadata=dict(row.metadata_),
        face_count=face_count,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
    )


def _face(row: models.FaceImage) -> Face:
    return Face(
        id=row.id,
        person_id=row.person_id,
        sha256=row.sha256,
        content_type=row.content_type,
        width=row.width,
        height=row.height,
        box=tuple(row.box),
        landmarks=tuple(row.landmarks),
        created_at=as_utc(row.created_at),
    )


def _storable_model_key(model_name: str, model_version: str) -> bool:
    """Whether the columns can hold this name and version (not empty, not too long, no NUL for PostgreSQL)."""
    return all(
        value and len(value) <= MAX_MODEL_NAME and "\x00" not in value
        for value in (model_name, model_version)
    )


def _applied_threshold(row: models.MatchThreshold) -> AppliedThreshold:
    return AppliedThreshold(
        model_name=row.model_name,
        model_version=row.model_version,
        threshold=row.threshold,
        target_far=row.target_far,
        genuine_pairs=row.genuine_pairs,
        impostor_pairs=row.impostor_pairs,
        false_reject_rate=row.false_reject_rate,
        calibration_job_id=row.calibration_job_id,
        applied_at=as_utc(row.applied_at),
    )
