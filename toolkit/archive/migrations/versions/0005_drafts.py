"""Online form drafts (issue 30): what a clerk (through the unit's link) or the county's reviewer
has typed into the 在线填写 form and not yet submitted, one per year, unit and author, so that a
reload or another day loses nothing. A draft is dropped when its figures are stored as a submission.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "drafts",
        sa.Column("year", sa.Integer, primary_key=True),
        sa.Column("unit_code", sa.String(64), primary_key=True),
        sa.Column("author", sa.String(16), primary_key=True),
        sa.Column("body", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.String(32), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("drafts")
