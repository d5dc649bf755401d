"""history summary: the trend signals' state

Revision ID: 5e1f0c2a9b7d
Revises: 0d3c5c13d57e
Create Date: 2026-12-02 15:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5e1f0c2a9b7d"
down_revision: str | Sequence[str] | None = "0d3c5c13d57e"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Summaries folded before this revision lack the trend: their basis (the ruleset
    # version and summary format) no longer matches, so they are folded again on first use.
    with op.batch_alter_table("history_summary", schema=None) as batch_op:
        batch_op.add_column(sa.Column("trend", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("history_summary", schema=None) as batch_op:
        batch_op.drop_column("trend")
