"""Attendance over live cameras: seconds of track evidence per person, the session's last window read, and
the unidentified tracks of its streaming cameras (grouped into unknown people).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attendance_session_people") as batch:
        batch.add_column(sa.Column("seconds_seen", sa.Float(), nullable=True))
    with op.batch_alter_table("attendance_sessions") as batch:
        batch.add_column(sa.Column("evidence_closed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "attendance_session_unknowns",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=False),
        sa.Column("camera", sa.Integer(), nullable=False),
        sa.Column("track", sa.String(length=64), nullable=False),
        sa.Column("first_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("dim", sa.Integer(), nullable=False),
        sa.Column("embeddings", sa.LargeBinary(), nullable=False),
        sa.Column("face_jpeg", sa.LargeBinary(), nullable=True),
        sa.Column("group_no", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["attendance_sessions.id"],
            name=op.f("fk_attendance_session_unknowns_session_id_attendance_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attendance_session_unknowns")),
        sa.UniqueConstraint(
            "session_id",
            "camera",
            "track",
            name=op.f("uq_attendance_session_unknowns_session_id_camera_track"),
        ),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_attendance_session_unknowns_session_id"), "attendance_session_unknowns", ["session_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_attendance_session_unknowns_session_id"), table_name="attendance_session_unknowns")
    op.drop_table("attendance_session_unknowns")
    with op.batch_alter_table("attendance_sessions") as batch:
        batch.drop_column("evidence_closed_at")
    with op.batch_alter_table("attendance_session_people") as batch:
        batch.drop_column("seconds_seen")
