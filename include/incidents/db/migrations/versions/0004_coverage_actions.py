"""coverage_actions: what the coverage DAG found and did about collection gaps

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 21:00:00

One row per action (gap detected, backfill requested, caught up, alert sent, skipped because the
DAG is paused), unique by an idempotency key, so repeated coverage runs never backfill or alert
twice for the same window.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coverage_actions",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("dag_id", sa.String(length=250), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=30), nullable=False),
        sa.Column("gap_kind", sa.String(length=20), nullable=True),
        sa.Column("backfill_id", sa.BigInteger(), nullable=True),
        sa.Column("run_id", sa.String(length=250), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.Column("idempotency_key", sa.String(length=300), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coverage_actions")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_coverage_actions_idempotency_key")),
    )
    op.create_index(
        "ix_coverage_actions_window", "coverage_actions", ["dag_id", "window_start"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_coverage_actions_window", table_name="coverage_actions")
    op.drop_table("coverage_actions")
