"""Several server processes on one archive (issue 31, ``serve --workers``): the attempts they must
count together — wrong admin keys per client address, uploads through a unit's link — as rows, so
that every process sees the others' (toolkit/archive/leases.py).

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("at", sa.Float, nullable=False),
    )
    op.create_index("ix_attempts_kind_subject", "attempts", ["kind", "subject", "at"])


def downgrade() -> None:
    op.drop_index("ix_attempts_kind_subject", table_name="attempts")
    op.drop_table("attempts")
