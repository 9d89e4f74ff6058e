"""The facebank's tables as a typed SQLAlchemy 2 ORM: people, their face images, embeddings per model,
rosters, attendance sessions (their state: ``facebank.sessions``) and the camera registry.

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
    Boolean,
    CheckConstraint,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
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


def as_utc(moment: datetime) -> datetime:
    """Everything is stored in UTC; SQLite hands it back naive, PostgreSQL in the session's zone."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


class AttendanceSession(Base):
    """A roster watched by cameras over time: one frame per camera per tick, aggregated per person.

    ``next_tick`` is the scheduling cursor: ticks ``0 .. next_tick - 1`` have been started. A tick
    starts only while it is the cursor (a conditional update under the session's row lock), so a
    duplicated or redelivered tick message never runs a tick twice (see ``tasks.sessions``).
    """

    __tablename__ = "attendance_sessions"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))  # "session" or "burst"
    # The roster may be deleted later; its name and members (attendance_session_people) are kept.
    roster_id: Mapped[int | None] = mapped_column(ForeignKey("rosters.id", ondelete="SET NULL"), index=True)
    roster_name: Mapped[str] = mapped_column(String(200))
    # A URL, or {"camera": name} for a registered camera (facebank.records.SessionCamera).
    cameras: Mapped[list[str | dict[str, str]]] = mapped_column(JSONType)
    small_faces: Mapped[dict[str, Any] | None] = mapped_column(JSONType)
    start_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    end_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    interval_s: Mapped[float] = mapped_column(Float)
    min_ticks: Mapped[int] = mapped_column(Integer)
    ticks_planned: Mapped[int] = mapped_column(Integer)
    next_tick: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16))
    # Per camera (same order as ``cameras``): frames, failures, unknown faces, last error.
    camera_stats: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Hash of the non-admin API key that created it (webapi.auth): other such keys cannot see it.
    # None: shared (created by an admin key).
    owner: Mapped[str | None] = mapped_column(String(64))
    # When the evidence of its streaming cameras' last window was added (``tasks.sessions.close``).
    evidence_closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class AttendanceTick(Base):
    """One tick of a session: its frames' summary once aggregated (state capturing → done/failed/missed)."""

    __tablename__ = "attendance_session_ticks"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("attendance_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    tick: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Whether the tick task got its frames and the next tick onto the queue (crash recovery).
    dispatched: Mapped[bool] = mapped_column(Boolean, default=False)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    frames: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONType)


class AttendanceSessionPerson(Base):
    """A roster member's aggregate over one session; the rows are the roster as it was at creation."""

    __tablename__ = "attendance_session_people"

    session_id: Mapped[int] = mapped_column(
        ForeignKey("attendance_sessions.id", ondelete="CASCADE"), primary_key=True
    )
    person_id: Mapped[int] = mapped_column(
        ForeignKey("people.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    ticks_seen: Mapped[int] = mapped_column(Integer, default=0)
    frames_seen: Mapped[int] = mapped_column(Integer, default=0)
    first_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    best_score: Mapped[float | None] = mapped_column(Float)
    best_camera: Mapped[int | None] = mapped_column(Integer)
    # Seconds identified tracks of theirs covered on the session's streaming cameras (None: never seen there).
    seconds_seen: Mapped[float | None] = mapped_column(Float)


class AttendanceSessionUnknown(Base):
    """A track of one of a session's streaming cameras that nobody enrolled was named on: its span, last
    embeddings (little-endian float32, ``dim`` wide) and best face; grouped into unknown people (``group_no``)
    when the session's last window is read. Deleted with the session."""

    __tablename__ = "attendance_session_unknowns"
    __table_args__ = (UniqueConstraint("session_id", "camera", "track"), NEVER_REUSE_IDS)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("attendance_sessions.id", ondelete="CASCADE"), index=True
    )
    camera: Mapped[int] = mapped_column(Integer)
    track: Mapped[str] = mapped_column(String(64))
    first_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    dim: Mapped[int] = mapped_column(Integer)
    embeddings: Mapped[bytes] = mapped_column(LargeBinary)
    face_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    group_no: Mapped[int | None] = mapped_column(Integer)


class MatchThreshold(Base):
    """The cosine threshold an operator applied for one embedding model version (from a calibration)."""

    __tablename__ = "match_thresholds"
    __table_args__ = (CheckConstraint("threshold >= -1 AND threshold <= 1", name="cosine_range"),)

    model_name: Mapped[str] = mapped_column(String(100), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(100), primary_key=True)
    threshold: Mapped[float] = mapped_column(Float)
    # What the calibration it came from rested on (all empty for a value set by hand).
    target_far: Mapped[float | None] = mapped_column(Float)
    genuine_pairs: Mapped[int | None] = mapped_column(Integer)
    impostor_pairs: Mapped[int | None] = mapped_column(Integer)
    false_reject_rate: Mapped[float | None] = mapped_column(Float)
    calibration_job_id: Mapped[str | None] = mapped_column(String(64))
    applied_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Camera(Base):
    """A registered camera: where it is, how to log in (the password encrypted) and how to trust its TLS.

    ``url`` never holds credentials; ``password_token`` is a Fernet token (``facebank.passwords``),
    never the password itself.
    """

    __tablename__ = "cameras"
    __table_args__ = NEVER_REUSE_IDS

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    url: Mapped[str] = mapped_column(String(2048))
    username: Mapped[str | None] = mapped_column(String(200))
    password_token: Mapped[str | None] = mapped_column(Text)
    # 64 lower-case hex digits, no colons.
    tls_fingerprint_sha256: Mapped[str | None] = mapped_column(String(64))
    tls_ca_pem: Mapped[str | None] = mapped_column(Text)
    small_faces: Mapped[str | None] = mapped_column(String(8))  # off, auto, on; None: the server's default
    label: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)
