"""The camera registry: named cameras with their credentials (the password encrypted) and TLS trust.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cameras",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("username", sa.String(length=200), nullable=True),
        sa.Column("password_token", sa.Text(), nullable=True),
        sa.Column("tls_fingerprint_sha256", sa.String(length=64), nullable=True),
        sa.Column("tls_ca_pem", sa.Text(), nullable=True),
        sa.Column("small_faces", sa.String(length=8), nullable=True),
        sa.Column("label", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cameras")),
        sa.UniqueConstraint("name", name=op.f("uq_cameras_name")),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("cameras")
