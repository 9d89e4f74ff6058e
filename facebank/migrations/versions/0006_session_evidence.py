"""Attendance over live cameras: seconds of track evidence per person, and the session's last window read.

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


def downgrade() -> None:
    with op.batch_alter_table("attendance_sessions") as batch:
        batch.drop_column("evidence_closed_at")
    with op.batch_alter_table("attendance_session_people") as batch:
        batch.drop_column("seconds_seen")
