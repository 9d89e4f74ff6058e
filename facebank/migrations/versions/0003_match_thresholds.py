"""Applied match thresholds: the calibrated cosine threshold an operator chose per embedding model.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "match_thresholds",
        sa.Column("model_name", sa.String(length=100), nullable=False),
        sa.Column("model_version", sa.String(length=100), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.Column("target_far", sa.Float(), nullable=True),
        sa.Column("genuine_pairs", sa.Integer(), nullable=True),
        sa.Column("impostor_pairs", sa.Integer(), nullable=True),
        sa.Column("false_reject_rate", sa.Float(), nullable=True),
        sa.Column("calibration_job_id", sa.String(length=64), nullable=True),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "threshold >= -1 AND threshold <= 1", name=op.f("ck_match_thresholds_cosine_range")
        ),
        sa.PrimaryKeyConstraint("model_name", "model_version", name=op.f("pk_match_thresholds")),
    )


def downgrade() -> None:
    op.drop_table("match_thresholds")
