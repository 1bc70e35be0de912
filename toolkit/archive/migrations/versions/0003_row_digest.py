"""A digest of every stored receipt (its report, findings and status columns), so that ``verify``
finds a row changed after it was stored, as it finds a changed file. Rows already stored get theirs now.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

CHUNK = 500  # rows read and updated at a time: an archive of 10,000 returns is never all in memory


def _table() -> sa.TableClause:
    from toolkit.archive.store import DIGESTED

    json_columns = {"warning_fps", "report", "findings"}
    ints = {"id", "year", "errors", "warnings", "hints"}
    cols = [sa.column(k, sa.JSON if k in json_columns else sa.Integer if k in ints else sa.Text) for k in ("id", *DIGESTED)]
    return sa.table("submissions", *cols, sa.column("digest", sa.String(64)))


def upgrade() -> None:
    from toolkit.archive.store import DIGESTED, row_digest

    op.add_column("submissions", sa.Column("digest", sa.String(64), nullable=True))
    conn = op.get_bind()
    S = _table()
    names = ("id", *DIGESTED)
    update = S.update().where(S.c.id == sa.bindparam("row_id")).values(digest=sa.bindparam("row_digest"))
    last = 0
    while True:
        q = sa.select(*(S.c[k] for k in names)).where(S.c.id > last).order_by(S.c.id).limit(CHUNK)
        rows = conn.execute(q).all()
        if not rows:
            break
        conn.execute(update, [{"row_id": r.id, "row_digest": row_digest(r._mapping)} for r in rows])
        last = rows[-1].id


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("digest")
