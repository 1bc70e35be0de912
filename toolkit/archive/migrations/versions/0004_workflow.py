"""The county's review (issue 27): who sent each version, its 填报日期 and 情况说明, who recorded each
event, and the year's auto-approve setting.

Archives made before keep the figures they counted: the newest version of each unit that the old
rules called 已通过 (no 错误, and no 警告 or 警告 covered by a 说明) gets a 通过 (actor 自动, or the
说明's note), one with 错误 or unreadable an automatic 退回; older 说明 events stand as 通过 of their
version (workflow.py reads kind 说明 as 通过).

Revision ID: 0004
Revises: 0003
"""

import datetime as dt
import re

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

CHUNK = 500


def _day(raw: object) -> str:
    m = re.search(r"(\d{4})\D+(\d{1,2})\D+(\d{1,2})", str(raw or ""))
    return f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}" if m else ""


def _backfill(conn) -> None:  # type: ignore[no-untyped-def]
    S = sa.table(
        "submissions",
        sa.column("id", sa.Integer),
        sa.column("report", sa.JSON),
        sa.column("filled_on", sa.Text),
        sa.column("explanation", sa.Text),
    )
    update = S.update().where(S.c.id == sa.bindparam("row_id")).values(filled_on=sa.bindparam("f"), explanation=sa.bindparam("e"))
    last = 0
    while True:
        rows = conn.execute(sa.select(S.c.id, S.c.report).where(S.c.id > last).order_by(S.c.id).limit(CHUNK)).all()
        if not rows:
            break
        params = []
        for r in rows:
            cover = (r.report or {}).get("cover") or {}
            params.append({"row_id": r.id, "f": _day(cover.get("date")), "e": str(cover.get("note") or "")})
        conn.execute(update, params)
        last = rows[-1].id


def _outcome(sub, events: list) -> tuple[str, str, list] | None:  # type: ignore[no-untyped-def]
    """(kind, note, fingerprints) of the event that keeps the old status of a unit's newest version."""
    on_it = [e for e in events if e.submission_id == sub.id and e.kind in ("退回", "说明")]
    if on_it:
        return None  # a 退回 or 说明 on it decides already
    if sub.errors or sub.status == "无法读取":
        return "退回", ("文件无法读取" if sub.status == "无法读取" else f"有{sub.errors}个错误"), []
    need = set(sub.warning_fps or ())
    if not need:
        return "通过", "", []
    ok = [e for e in events if e.kind == "说明" and need <= set(e.fingerprints or ())]
    return ("通过", ok[-1].note, sorted(need)) if ok else None


def _old_outcomes(conn) -> None:  # type: ignore[no-untyped-def]
    S = sa.table(
        "submissions",
        *(sa.column(c, sa.Integer) for c in ("id", "year", "errors")),
        *(sa.column(c, sa.Text) for c in ("unit_code", "status")),
        sa.column("warning_fps", sa.JSON),
    )
    E = sa.table(
        "events",
        *(sa.column(c, sa.Integer) for c in ("id", "year", "submission_id")),
        *(sa.column(c, sa.Text) for c in ("unit_code", "at", "kind", "note", "actor")),
        sa.column("fingerprints", sa.JSON),
    )
    events: dict = {}
    for e in conn.execute(sa.select(E).order_by(E.c.id)):
        events.setdefault((e.year, e.unit_code), []).append(e)
    newest = sa.select(sa.func.max(S.c.id)).where(S.c.unit_code != "").group_by(S.c.year, S.c.unit_code).scalar_subquery()
    at = dt.datetime.now().astimezone().isoformat(timespec="microseconds")
    rows = []
    for sub in conn.execute(sa.select(S).where(S.c.id.in_(newest)).order_by(S.c.id)):
        got = _outcome(sub, events.get((sub.year, sub.unit_code), []))
        if got is not None:
            kind, note, fps = got
            rows.append(
                dict(
                    year=sub.year,
                    unit_code=sub.unit_code,
                    at=at,
                    kind=kind,
                    note=note,
                    fingerprints=fps,
                    submission_id=sub.id,
                    actor="自动",
                )
            )
    if rows:
        conn.execute(E.insert(), rows)


def upgrade() -> None:
    op.add_column("submissions", sa.Column("source", sa.String(16), nullable=False, server_default=""))
    op.add_column("submissions", sa.Column("filled_on", sa.String(32), nullable=False, server_default=""))
    op.add_column("submissions", sa.Column("explanation", sa.Text, nullable=False, server_default=""))
    op.add_column("events", sa.Column("actor", sa.String(16), nullable=False, server_default=""))
    op.add_column("years", sa.Column("auto_approve", sa.Boolean, nullable=False, server_default=sa.false()))
    conn = op.get_bind()
    _backfill(conn)
    _old_outcomes(conn)


def downgrade() -> None:
    for table, col in (("years", "auto_approve"), ("events", "actor"), ("submissions", "explanation")):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(col)
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("filled_on")
        batch.drop_column("source")
