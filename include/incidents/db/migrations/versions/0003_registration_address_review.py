"""Case registration time and historical cases; post address and review flag; skipped sources

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-04 20:40:00

- ``cases.registered_at``: when the pipeline registered the case; deadlines run from it (the
  post time, ``opened_at``, stays for statistics and lag). Existing rows take ``opened_at``.
- ``cases.historical``: registered from a window that ended longer ago than the live horizon:
  counted and listed, never notified or escalated automatically.
- ``posts.address``: street, house number or landmark the text names (``settlement`` is only
  ever an OKTMO settlement); ``posts.needs_review``: a low-confidence incident or hazard.
- ``batches.skipped_sources``: the sources a collection window skipped, each with the reason.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("registered_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("historical", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.execute("UPDATE cases SET registered_at = opened_at WHERE registered_at IS NULL")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("address", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("needs_review", sa.Boolean(), nullable=True))
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("skipped_sources", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_column("skipped_sources")
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_column("needs_review")
        batch_op.drop_column("address")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("historical")
        batch_op.drop_column("registered_at")
