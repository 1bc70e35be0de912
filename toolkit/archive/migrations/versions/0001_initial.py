"""The first archive schema: years and rosters, files, submissions, events.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "nianbao_meta",
        sa.Column("key", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "years",
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("deadline", sa.Date, nullable=True),
        sa.Column("roster_source", sa.Text, nullable=False),
        sa.Column("loaded_at", sa.String(32), nullable=False),
    )
    op.create_table(
        "units",
        sa.Column("year", sa.Integer, sa.ForeignKey("years.year"), primary_key=True),
        sa.Column("code", sa.String(64), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("parent", sa.String(64), nullable=False),
        sa.Column("line", sa.Integer, nullable=False),
    )
    op.create_table(
        "files",
        sa.Column("sha256", sa.String(64), primary_key=True),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "submissions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("received_at", sa.String(32), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64), sa.ForeignKey("files.sha256"), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("warnings", sa.Integer, nullable=False),
        sa.Column("hints", sa.Integer, nullable=False),
        sa.Column("unit_name", sa.Text, nullable=False),
        sa.Column("filler", sa.Text, nullable=False),
        sa.Column("phone", sa.Text, nullable=False),
        sa.Column("warning_fps", sa.JSON, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
        sa.Column("findings", sa.JSON, nullable=False),
    )
    op.create_index("ix_submissions_year_unit", "submissions", ["year", "unit_code"])
    op.create_index("ix_submissions_sha", "submissions", ["year", "sha256"])
    op.create_table(
        "events",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("year", sa.Integer, nullable=False),
        sa.Column("unit_code", sa.String(64), nullable=False),
        sa.Column("at", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("fingerprints", sa.JSON, nullable=False),
        sa.Column("submission_id", sa.Integer, sa.ForeignKey("submissions.id"), nullable=True),
    )
    op.create_index("ix_events_year_unit", "events", ["year", "unit_code"])
    op.execute(sa.text("INSERT INTO nianbao_meta (key, value) VALUES ('application', 'nianbao-archive')"))


def downgrade() -> None:
    for t in ("events", "submissions", "files", "units", "years", "nianbao_meta"):
        op.drop_table(t)
