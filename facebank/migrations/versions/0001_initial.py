"""Initial schema: people, face images, embeddings per model, the revision row, rosters.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A frozen copy of facebank.models.JSONType: migrations never import the live models.
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# Ids of deleted people and faces are never handed out again (see facebank.models.NEVER_REUSE_IDS).


def upgrade() -> None:
    state = op.create_table(
        "facebank_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("revision", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("id = 1", name=op.f("ck_facebank_state_single_row")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_facebank_state")),
    )
    op.bulk_insert(state, [{"id": 1, "revision": 0}])
    op.create_table(
        "people",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("external_id", sa.String(length=128), nullable=True),
        sa.Column("display_name", sa.String(length=200), nullable=False),
        sa.Column("metadata", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_people")),
        sa.UniqueConstraint("external_id", name=op.f("uq_people_external_id")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "face_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.Column("image", sa.LargeBinary(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("box", JSON, nullable=False),
        sa.Column("landmarks", JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_face_images_person_id_people"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_face_images")),
        sa.UniqueConstraint("sha256", name=op.f("uq_face_images_sha256")),
        sqlite_autoincrement=True,
    )
    op.create_index(op.f("ix_face_images_person_id"), "face_images", ["person_id"])
    op.create_table(
        "embeddings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("face_id", sa.Integer(), nullable=False),
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("vector", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["face_id"],
            ["face_images.id"],
            name=op.f("fk_embeddings_face_id_face_images"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_embeddings")),
        sa.UniqueConstraint(
            "face_id",
            "model_name",
            "model_version",
            name=op.f("uq_embeddings_face_id_model_name_model_version"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_embeddings_model_name_model_version"), "embeddings", ["model_name", "model_version"]
    )
    op.create_table(
        "rosters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rosters")),
        sa.UniqueConstraint("name", name=op.f("uq_rosters_name")),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "roster_members",
        sa.Column("roster_id", sa.Integer(), nullable=False),
        sa.Column("person_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["roster_id"],
            ["rosters.id"],
            name=op.f("fk_roster_members_roster_id_rosters"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["person_id"], ["people.id"], name=op.f("fk_roster_members_person_id_people"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("roster_id", "person_id", name=op.f("pk_roster_members")),
    )
    op.create_index(op.f("ix_roster_members_person_id"), "roster_members", ["person_id"])


def downgrade() -> None:
    # Drops every person, photo and embedding: the biometric data goes with the schema.
    op.drop_table("roster_members")
    op.drop_table("rosters")
    op.drop_table("embeddings")
    op.drop_table("face_images")
    op.drop_table("people")
    op.drop_table("facebank_state")
