"""The archive's tables (SQLAlchemy Core): one definition for SQLite and PostgreSQL.

A file's bytes are stored once, keyed by their sha256, and never changed; a submission is one
receipt of a file for a unit and year, with the Report the checker made of it (values and
findings as JSON, so nothing is read twice) and a digest of the row; events are the reviewer's decisions and
what else happened to a unit's uploads (workflow.py).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    false,
)

metadata = MetaData()


def _row_digest(context: Any) -> str:
    """The digest of the submission being inserted, whoever inserts it."""
    from .store import row_digest

    return row_digest(context.get_current_parameters())


meta = Table(
    "nianbao_meta",
    metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

years = Table(
    "years",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("deadline", Date, nullable=True),
    Column("roster_source", Text, nullable=False, default=""),
    Column("loaded_at", String(32), nullable=False),
    # approve clean versions (no 错误, no 警告) at receipt (workflow.auto_outcome); off: the county reviews each
    Column("auto_approve", Boolean, nullable=False, default=False, server_default=false()),
)

units = Table(
    "units",
    metadata,
    Column("year", Integer, ForeignKey("years.year"), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("name", Text, nullable=False),
    Column("type", String(32), nullable=False),
    Column("parent", String(64), nullable=False, default=""),
    Column("line", Integer, nullable=False, default=0),
)

files = Table(
    "files",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("size", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

submissions = Table(
    "submissions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("year", Integer, nullable=False),
    Column("unit_code", String(64), nullable=False, default=""),
    Column("received_at", String(32), nullable=False),
    Column("name", Text, nullable=False),
    Column("sha256", String(64), ForeignKey("files.sha256"), nullable=False),
    Column("status", String(16), nullable=False),  # the checker's verdict: 有错误 | 有警告 | 通过 | 无法读取
    Column("errors", Integer, nullable=False, default=0),
    Column("warnings", Integer, nullable=False, default=0),
    Column("hints", Integer, nullable=False, default=0),
    Column("unit_name", Text, nullable=False, default=""),
    Column("filler", Text, nullable=False, default=""),
    Column("phone", Text, nullable=False, default=""),
    Column("warning_fps", JSON, nullable=False),  # fingerprints of the 警告, for 说明 matching
    Column("report", JSON, nullable=False),  # values, cover, provenance … (codec.to_stored)
    Column("findings", JSON, nullable=False),
    # who sent it (workflow.SOURCES: 链接 | 管理页面 | 命令行 | 在线填写 | 导入; "" before schema 0004), its
    # 填报日期 as YYYY-MM-DD ("" if the cover has none) and its 情况说明 (the cover's note): read by status
    # for every unit, so kept as columns rather than dug out of the report JSON
    Column("source", String(16), nullable=False, default="", server_default=""),
    Column("filled_on", String(32), nullable=False, default="", server_default=""),
    Column("explanation", Text, nullable=False, default="", server_default=""),
    # sha256 of the row (store.row_digest), computed from the values inserted: ``verify`` finds a row
    # changed after it was stored. Last, so that the other columns' defaults are filled in before it.
    Column("digest", String(64), nullable=True, default=_row_digest),
)
Index("ix_submissions_year_unit", submissions.c.year, submissions.c.unit_code)
Index("ix_submissions_sha", submissions.c.year, submissions.c.sha256)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("year", Integer, nullable=False),
    Column("unit_code", String(64), nullable=False),
    Column("at", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # workflow.py: 通过 | 退回 | 撤销通过 | 重复收到 | 拒收 (说明: old 通过)
    Column("note", Text, nullable=False, default=""),
    Column("fingerprints", JSON, nullable=False),  # the warnings and explainable errors a 通过 accepts
    Column("submission_id", Integer, ForeignKey("submissions.id"), nullable=True),
    Column("actor", String(16), nullable=False, default="", server_default=""),  # 链接 | 管理页面 | 命令行 | 自动
)
Index("ix_events_year_unit", events.c.year, events.c.unit_code)

secrets = Table(
    "secrets",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # link (a unit's private upload link) | admin
    Column("year", Integer, nullable=False, default=0),
    Column("unit_code", String(64), nullable=False, default=""),
    Column("digest", String(64), nullable=False, unique=True),  # sha256 of the secret; the secret itself is never stored
    Column("created_at", String(32), nullable=False),
    Column("revoked_at", String(32), nullable=True),
    # a reviewer's key (kind key, issue 31): who holds it, and when it last signed in (schema 0006)
    Column("label", Text, nullable=False, default="", server_default=""),
    Column("used_at", String(32), nullable=True),
)
Index("ix_secrets_unit", secrets.c.kind, secrets.c.year, secrets.c.unit_code)

# 在线填写 drafts (issue 30, online.py): what a clerk (author 链接) or the reviewer (author 审核人) typed and
# has not submitted yet — {"cover": {...}, "values": {cell id: text}}; dropped when the figures are stored
drafts = Table(
    "drafts",
    metadata,
    Column("year", Integer, primary_key=True),
    Column("unit_code", String(64), primary_key=True),
    Column("author", String(16), primary_key=True),
    Column("body", JSON, nullable=False),
    Column("updated_at", String(32), nullable=False),
)

# Approval up the tree (issue 31, tree.py; states in workflow.py): a node's summary (a county's, the
# consolidation of its approved units) submitted to the level above, kept as stored like a unit's
# version, and the level above's decisions on it. ``basis``: [unit code, approved submission or
# summary id] of what was summed; ``excluded``: {unit code: 说明} of units left out on purpose.
summaries = Table(
    "summaries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("year", Integer, nullable=False),
    Column("unit_code", String(64), nullable=False),
    Column("at", String(32), nullable=False),
    Column("actor", Text, nullable=False, default=""),
    Column("note", Text, nullable=False, default=""),
    Column("report", JSON, nullable=False),  # codec.to_stored of the summary Report
    Column("basis", JSON, nullable=False),
    Column("excluded", JSON, nullable=False),
)
Index("ix_summaries_year_unit", summaries.c.year, summaries.c.unit_code)

summary_events = Table(
    "summary_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("year", Integer, nullable=False),
    Column("unit_code", String(64), nullable=False),
    Column("at", String(32), nullable=False),
    Column("kind", String(16), nullable=False),  # workflow.py: 通过 | 退回
    Column("note", Text, nullable=False, default=""),
    Column("summary_id", Integer, ForeignKey("summaries.id"), nullable=False),
    Column("actor", Text, nullable=False, default=""),  # 命令行, or the scope of the key that decided
)
Index("ix_summary_events_year_unit", summary_events.c.year, summary_events.c.unit_code)

# --- issue 31, serve --workers (leases.py): attempts the server processes count together (schema 0007)
# kind: login (subject: the client address, a wrong admin key) | upload (subject: a unit's link);
# at: seconds since the epoch (the processes share no monotonic clock). Rows older than the window go.
attempts = Table(
    "attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),
    Column("subject", String(128), nullable=False),
    Column("at", Float, nullable=False),
)
Index("ix_attempts_kind_subject", attempts.c.kind, attempts.c.subject, attempts.c.at)
