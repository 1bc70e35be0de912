"""What the archive answers with — plain records, and the small helpers the archive's modules share
(``now``, a file's verdict, a unit's usage). The lowest room of the archive: it imports none of them."""

from __future__ import annotations

import datetime as dt
import functools
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..findings import counts
from ..report import Report
from . import schema as T
from .workflow import LINK_SOURCES, STATUSES  # noqa: F401 - STATUSES: the states, defined with the workflow (kept here for callers)


def now() -> str:
    return dt.datetime.now().astimezone().isoformat(timespec="microseconds")


@dataclass
class Received:
    """One file given to ``receive``: what became of it."""

    name: str
    # 新收 | 新版本 | 重复（与最新版本相同） | 无法读取 | 拒收… | 非本单位（未接收） (see receive.py)
    outcome: str
    unit_code: str = ""
    unit_name: str = ""
    status: str = ""  # the unit's status afterwards
    counts: dict[str, int] = field(default_factory=dict)
    report: Report | None = None
    previous_at: str = ""  # 重复: when the newest version (the same bytes) was received
    version: int = 0  # 第N版 of the unit's year this file is (or, for a 重复, repeats)
    submission_id: int | None = None
    older_date: bool = False  # its 填报日期 is earlier than the approved (or previous) version's
    auto: str = ""  # the decision recorded at once: 通过 (auto-approve) | 退回 (强制性 errors, unreadable) | ""
    reason: str = ""  # why a file was refused (拒收, 无法读取), in Chinese


@dataclass
class UnitState:
    """One line of 报送情况."""

    year: int
    code: str
    name: str
    type: str
    parent: str
    status: str = "未报送"
    file: str = ""
    filler: str = ""
    phone: str = ""
    first_received: str = ""
    last_received: str = ""
    errors: int = 0
    warnings: int = 0
    hints: int = 0
    late: bool = False  # past the deadline and not 已通过
    submitted_late: bool = False  # its first version came after the deadline
    # the newest version (file, filler … hints above are its own); None = 未报送
    submission_id: int | None = None
    version: int = 0  # 第N版 of the newest version
    approved_id: int | None = None  # the version whose figures count (may be older than the newest)
    approved_version: int = 0
    pending_id: int | None = None  # the newest version when it is not the approved one
    older_date: bool = False  # the newest version's 填报日期 is earlier than the approved (or previous) one's
    filled_on: str = ""  # 填报日期 of the newest version
    source: str = ""  # who sent the newest version: 链接 | 管理页面 | 命令行 | 在线填写 | 导入
    explanation: str = ""  # the newest version's 情况说明 (cover)
    note: str = ""  # the decision on the newest version: 退回 reason or 说明
    reason: str = ""  # the reviewer's 退回 reason while it stands (also above a newer version awaiting review)
    decided_by: str = ""  # who decided on the newest version: 管理页面 | 命令行 | 自动

    def row(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class HistoryItem:
    at: str
    year: int
    unit_code: str
    kind: str  # 收到 (a version) | 重复收到 | 拒收 | 通过 | 退回 | 撤销通过 (说明: 通过 before schema 0004)
    text: str
    file: str = ""
    sha256: str = ""
    actor: str = ""  # who: 链接 | 管理页面 | 命令行 | 在线填写 | 导入 | 自动
    submission_id: int | None = None
    version: int = 0
    note: str = ""


@dataclass
class Version:
    """One version of a unit's year, as ``Archive.versions`` lists them."""

    number: int  # 第N版
    id: int
    received_at: str
    name: str
    source: str
    filled_on: str
    counts: dict[str, int]
    status: str  # the checker's verdict: 有错误 | 有警告 | 通过 | 无法读取
    decision: str = ""  # the last decision on it: 通过 | 退回 | 撤销通过 | ""
    decision_note: str = ""
    decided_by: str = ""
    approved: bool = False  # its figures are the ones that count
    newest: bool = False
    older_date: bool = False  # its 填报日期 is earlier than the previous version's
    explanation: str = ""
    repeats: int = 0  # how many times the same file was received again while it was the newest


@dataclass
class Usage:
    """A unit's use of its year in the archive (the web quotas)."""

    bytes: int = 0
    receipts: int = 0
    known: set[str] = field(default_factory=set)
    newest: str = ""  # the sha256 of the unit's newest version of the year ("" before its first)
    first_receipt: str = ""  # the earliest of ``receipts`` ("" when none)
    tried: int = 0  # with ``attempts`` asked: the unit's attempts of that kind within the window
    tried_left: float = 0.0  # … and seconds until the oldest of them leaves it


def unit_usage(
    conn: Any, unit: str, year: int, since: str = "", shas: Iterable[str] = (), attempts: tuple[str, float] | None = None
) -> Usage:
    """``Archive.usage`` on an open connection (``store`` asks it inside its own transaction)."""
    params = {"unit": unit, "year": year, "since": since, "shas": sorted(set(shas))}
    if attempts is not None:
        clock = time.time()
        params.update(kind=attempts[0], subject=unit[:128], tried_since=clock - attempts[1])
    row = conn.execute(_usage_statement(bool(since), attempts is not None), params).one()  # one round trip
    used = Usage(int(row[0]), int(row[1]), set((row[2] or "").split(",")) - {""}, row[3] or "", row[4] or "")
    if attempts is not None:
        used.tried = int(row[5])
        used.tried_left = row[6] + attempts[1] - clock if row[6] is not None else 0.0
    return used


@functools.cache
def _usage_statement(receipts: bool, attempts: bool = False) -> Any:
    """The unit-year's stored bytes (each distinct file once); with ``receipts`` the versions the
    unit's own link stored since ``:since`` (else 0) and the earliest of them; which of ``:shas`` the
    year holds; the digest of the unit's newest version — and with ``attempts`` the count and oldest
    of the unit's attempts of ``:kind`` since ``:tried_since`` — as one statement, assembled once:
    assembling its subqueries cost more than running it (every upload asks twice)."""
    from sqlalchemy import bindparam, func, literal, select

    S, F, A = T.submissions, T.files, T.attempts
    year, unit = bindparam("year"), bindparam("unit")
    mine = select(S.c.sha256).where(S.c.year == year, S.c.unit_code == unit).distinct()
    stored = select(func.coalesce(func.sum(F.c.size), 0)).where(F.c.sha256.in_(mine)).scalar_subquery()
    when = (S.c.year == year) & (S.c.unit_code == unit) & (S.c.received_at >= bindparam("since"))
    when &= S.c.source.in_(LINK_SOURCES)  # the county's own uploads for the unit take nothing of the link's hour
    counted = select(func.count()).select_from(S).where(when).scalar_subquery() if receipts else literal(0)
    first = select(func.min(S.c.received_at)).where(when).scalar_subquery() if receipts else literal("")
    held = S.c.sha256.in_(bindparam("shas", expanding=True)) & (S.c.year == year)  # digests are hexadecimal
    known = select(func.aggregate_strings(S.c.sha256, ",")).where(held).scalar_subquery()
    newest = select(S.c.sha256).where(S.c.year == year, S.c.unit_code == unit).order_by(S.c.id.desc()).limit(1)
    columns = [stored, counted, known, newest.scalar_subquery(), first]
    if attempts:  # as leases.attempts counts them
        tried = attempted("tried_since")
        columns += [select(func.count()).select_from(A).where(tried).scalar_subquery()]
        columns += [select(func.min(A.c.at)).where(tried).scalar_subquery()]
    return select(*columns)


def attempted(since: str) -> Any:
    """The attempts of ``:kind`` by ``:subject`` at or after the bound parameter ``since`` (the
    hour's uploads through a link, the wrong keys of an address)."""
    from sqlalchemy import bindparam

    A = T.attempts
    return (A.c.kind == bindparam("kind")) & (A.c.subject == bindparam("subject")) & (A.c.at >= bindparam(since))


def verdict(report: Report) -> tuple[str, dict[str, int]]:
    c = counts(report.findings)
    if not report.readable:
        return "无法读取", c
    return ("有错误" if c["错误"] else "有警告" if c["警告"] else "通过"), c
