"""The facebank's tables as a typed SQLAlchemy 2 ORM: people, their face images, embeddings per model.

The original image of every face is kept (``FaceImage.image``) so the whole facebank can be
re-embedded when a new model is introduced; embeddings are keyed by (model_name, model_version)
so several models can live side by side. ``FacebankState.revision`` is bumped in the same
transaction as every change to people, faces or embeddings, which lets every worker notice in
one indexed single-row read that its in-memory gallery is stale.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Stable constraint names, so migrations can refer to them on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql")

# SQLite would otherwise hand a deleted row's id to the next insert, and a job result naming
# "person 5" must never come to mean somebody else. PostgreSQL sequences never reuse ids.
NEVER_REUSE_IDS = {"sqlite_autoincrement": True}

# The one row of ``facebank_state``.
STATE_ROW_ID = 1


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Person(Base):
    """Someone the system can recognise; ``external_id`` is the caller's key (e.g. a student number)."""

    __tablename__ = "people"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(128), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    # ``metadata`` is reserved by SQLAlchemy's declarative classes, hence the trailing underscore.
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONType, default=dict)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)

    faces: Mapped[list[FaceImage]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True
    )


class FaceImage(Base):
    """One enrolled photo of a person: the original bytes and where the face is in it."""

    __tablename__ = "face_images"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), index=True)
    # Deferred: listing faces must not drag every photo out of the database.
    image: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)
    content_type: Mapped[str] = mapped_column(String(100))
    # Unique across all people: the same photo enrolled twice is refused, whoever it was for.
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # [x1, y1, x2, y2] in image pixels, and the five MTCNN landmarks flattened [x0, y0, ..., x4, y4].
    box: Mapped[list[float]] = mapped_column(JSONType)
    landmarks: Mapped[list[float]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    person: Mapped[Person] = relationship(back_populates="faces")
    embeddings: Mapped[list[Embedding]] = relationship(
        back_populates="face", cascade="all, delete-orphan", passive_deletes=True
    )


class Embedding(Base):
    """A face's embedding by one model version, stored as little-endian float32 bytes."""

    __tablename__ = "embeddings"
    __table_args__ = (
        UniqueConstraint("face_id", "model_name", "model_version"),
        Index(None, "model_name", "model_version"),
        NEVER_REUSE_IDS,
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    face_id: Mapped[int] = mapped_column(ForeignKey("face_images.id", ondelete="CASCADE"))
    model_name: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(100))
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)

    face: Mapped[FaceImage] = relationship(back_populates="embeddings")


class FacebankState(Base):
    """The single row whose ``revision`` changes with every write, so caches can tell they are stale."""

    __tablename__ = "facebank_state"
    __table_args__ = (CheckConstraint(f"id = {STATE_ROW_ID}", name="single_row"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    revision: Mapped[int] = mapped_column(BigInteger)


class Roster(Base):
    """A named group of people (a class, a shift) that matching can be restricted to."""

    __tablename__ = "rosters"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class RosterMember(Base):
    """Membership of a person in a roster; goes away with either of them."""

    __tablename__ = "roster_members"

    roster_id: Mapped[int] = mapped_column(ForeignKey("rosters.id", ondelete="CASCADE"), primary_key=True)
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )
