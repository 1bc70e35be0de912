"""Approval up the tree (issue 31): reviewers' keys per level (rows of ``secrets`` of kind key, with
who holds them and when they were last used), and a node's summary submitted to the level above with
that level's decisions on it.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("secrets") as batch:
        batch.add_column(sa.Column("label", sa.Text, nullable=False, server_default=""))
        batch.add_column(sa.Column("used_at", sa.String(32), nullable=True))
    op.create_table(
        "summaries",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("basis", sa.JSON, nullable=False),
        sa.Column("excluded", sa.JSON, nullable=False),
    )
    op.create_index("ix_summaries_year_unit", "summaries", ["year", "unit_code"])
    op.create_table(
        "summary_events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("summary_id", sa.Integer, sa.ForeignKey("summaries.id"), nullable=False),
        sa.Column("actor", sa.Text, nullable=False),
    )
    op.create_index("ix_summary_events_year_unit", "summary_events", ["year", "unit_code"])


def downgrade() -> None:
    op.drop_index("ix_summary_events_year_unit", table_name="summary_events")
    op.drop_table("summary_events")
    op.drop_index("ix_summaries_year_unit", table_name="summaries")
    op.drop_table("summaries")
    with op.batch_alter_table("secrets") as batch:
        batch.drop_column("used_at")
        batch.drop_column("label")
