"""posts.place_key: the place key of the analysis, stored for duplicate detection

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28 16:00:00

Existing rows keep NULL ("not computed"): routing derives their key from the text, as before.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("place_key", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("posts", schema=None) as batch_op:
        batch_op.drop_column("place_key")
