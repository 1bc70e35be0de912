"""The county's review of a unit's year (issue 27, DHIS2-style data approval) — the one place where
states are decided. Pure functions over the unit's versions (its ``submissions`` rows, oldest
first) and its events (oldest first); the archive loads them and stores what these functions decide.

- Every upload that is not identical to the unit's newest version is a new **version** (第N版 = its
  rank among the unit-year's versions). An upload identical to the newest is an event 重复收到.
- **States** (computed, never stored): 未报送 (no version); 待审核 (the newest version awaits the
  reviewer); 退回 (the newest has a 退回 — the reviewer's or automatic, for 强制性 errors or an
  unreadable file — or its approval was withdrawn); 已通过 (the newest version is approved).
- **Approval locks**: the figures that count are those of ``approved_id``, the version of the last
  通过, unless a 退回 or 撤销通过 of it followed (then no version counts). A later upload waits as
  ``pending_id`` and changes nothing until the reviewer approves it.
- **Decisions name the version**: a decision on a version that is no longer the newest is refused.
- Events of kind 说明 (archives before schema 0004) are 通过 of their version.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..spec import KINDS, finding_kind
from .db import ArchiveError

STATUSES = ("未报送", "待审核", "退回", "已通过")
APPROVE, REJECT, REOPEN, REPEAT, REFUSE, OLD_APPROVE = "通过", "退回", "撤销通过", "重复收到", "拒收", "说明"
DECISIONS = (APPROVE, OLD_APPROVE, REJECT, REOPEN)
AUTO = "自动"
SOURCES = ("链接", "管理页面", "命令行", "在线填写", "审核人在线录入", "导入")  # 在线填写: issue 30, online.py
LINK_SOURCES = ("链接", "在线填写")  # what a unit's own link stores: the versions its hourly limit counts
ACTORS = ("链接", "管理页面", "命令行", AUTO)
MANDATORY, EXPLAINABLE = KINDS  # 强制性, 核实性: from the format definition
OLDER_DATE = "填报日期早于当前版本"


@dataclass
class Flow:
    """What the versions and events of one unit-year come to."""

    status: str = "未报送"
    newest_id: int | None = None
    version: int = 0  # 第N版 of the newest version
    approved_id: int | None = None
    approved_version: int = 0
    pending_id: int | None = None  # the newest version when it is not the approved one
    note: str = ""  # the standing decision's note: 退回 reason, or the 说明 of the approval
    reason: str = ""  # the reviewer's last 退回 reason, while it stands (also over a newer pending version)
    decided_by: str = ""  # actor of the decision on the newest version
    older_date: bool = False  # the newest version's 填报日期 is earlier than the approved (or previous) one's
    held: bool = False  # the reviewer's last decision is a 退回 / 撤销通过: nothing is approved automatically


def is_decision(event: Any) -> bool:
    return event.kind in DECISIONS and event.submission_id is not None


def is_approval(event: Any) -> bool:
    return event.kind in (APPROVE, OLD_APPROVE)


def approved_of(events: Iterable[Any]) -> int | None:
    """The version of the last 通过, unless a 退回 or 撤销通过 of that version followed (then none:
    a withdrawn approval never brings back a version an approval had replaced)."""
    approved: int | None = None
    for e in events:
        if not is_decision(e):
            continue
        if is_approval(e):
            approved = e.submission_id
        elif e.submission_id == approved:
            approved = None
    return approved


def day(raw: Any) -> str:
    """A 填报日期 as YYYY-MM-DD ("" when it does not read as a date)."""
    m = re.search(r"(\d{4})\D+(\d{1,2})\D+(\d{1,2})", str(raw or ""))
    if not m:
        return ""
    try:
        return dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3))).isoformat()
    except ValueError:
        return ""


def is_older(filled_on: str, reference: str) -> bool:
    """Whether a version dated ``filled_on`` was filled in before the one dated ``reference``."""
    return bool(filled_on and reference and filled_on < reference)


def _held(events: Sequence[Any]) -> tuple[bool, str]:
    """(the reviewer's last decision is a 退回 / 撤销通过, its note)."""
    manual = [e for e in events if is_decision(e) and e.actor != AUTO]
    if manual and not is_approval(manual[-1]):
        return True, manual[-1].note
    return False, ""


def unit_flow(versions: Sequence[Any], events: Sequence[Any]) -> Flow:
    """The state of a unit-year from its versions (oldest first) and events (oldest first)."""
    if not versions:
        return Flow()
    number = {v.id: n for n, v in enumerate(versions, 1)}
    newest = versions[-1]
    fl = Flow(newest_id=newest.id, version=len(versions))
    fl.approved_id = approved_of(events)
    fl.approved_version = number.get(fl.approved_id, 0) if fl.approved_id else 0
    fl.pending_id = newest.id if newest.id != fl.approved_id else None
    fl.held, fl.reason = _held(events)
    on_newest = [e for e in events if is_decision(e) and e.submission_id == newest.id]
    if on_newest:
        last = on_newest[-1]
        fl.status, fl.note, fl.decided_by = (APPROVED if is_approval(last) else "退回"), last.note, last.actor
    elif newest.status == "无法读取":
        fl.status = "退回"
    else:
        fl.status = "待审核"
    if fl.status == "已通过":
        fl.reason = ""
    reference = _reference(versions, fl.approved_id)
    fl.older_date = reference is not None and is_older(newest.filled_on, reference.filled_on)
    return fl


APPROVED = "已通过"


def _reference(versions: Sequence[Any], approved_id: int | None) -> Any:
    """The version a new one's 填报日期 is compared with: the approved one, else the previous one."""
    if approved_id is not None and approved_id != versions[-1].id:
        return next(v for v in versions if v.id == approved_id)
    return versions[-2] if len(versions) > 1 else None


def number_of(versions: Sequence[Any], sid: int) -> int:
    return next((n for n, v in enumerate(versions, 1) if v.id == sid), 0)


def _when(at: str) -> str:
    return at[:16].replace("T", " ")


def check_newest(versions: Sequence[Any], sid: int | None, unit: str) -> Any:
    """The version a decision names (None = the newest); refused when it is not the newest."""
    if not versions:
        raise ArchiveError(f"{unit}还没有报送，无法审核。")
    newest = versions[-1]
    if sid is None or sid == newest.id:
        return newest
    n = number_of(versions, sid)
    if not n:
        raise ArchiveError(f"{unit}没有编号为 {sid} 的版本。请刷新后对最新版本作出决定。")
    raise ArchiveError(
        f"{unit}的第{n}版（编号{sid}）已不是最新，最新的是第{len(versions)}版（编号{newest.id}，"
        f"{_when(newest.received_at)}收到）；请刷新后对最新版本作出决定。"
    )


def kind_of(finding: Any) -> str:
    """强制性 or 核实性 of a finding (a Finding or its JSON); one stored before kinds existed gets its
    kind from the format definition by code."""
    kind = _field(finding, "kind")
    if kind in KINDS:
        return kind
    return finding_kind(str(_field(finding, "code") or ""), str(_field(finding, "severity") or ""))


def _field(f: Any, key: str) -> Any:
    return f.get(key) if isinstance(f, dict) else getattr(f, key, None)


def _where(f: Any) -> str:
    sheet, cell = _field(f, "sheet") or "", _field(f, "cell") or ""
    return f"{sheet}{cell}" if (sheet or cell) else ""


def mandatory_errors(findings: Iterable[Any]) -> list[Any]:
    return [f for f in findings if _field(f, "severity") == "错误" and kind_of(f) == MANDATORY]


def explainable_errors(findings: Iterable[Any]) -> list[Any]:
    return [f for f in findings if _field(f, "severity") == "错误" and kind_of(f) == EXPLAINABLE]


def describe(findings: Sequence[Any], limit: int = 3) -> str:
    """A short list of findings for a refusal or an automatic 退回: code, place and message."""
    parts = []
    for f in findings[:limit]:
        where = _where(f)
        parts.append(f"{_field(f, 'code')}{'（' + where + '）' if where else ''}：{_field(f, 'message') or ''}".strip("："))
    more = f"等{len(findings)}个" if len(findings) > limit else ""
    return "；".join(parts) + more


def check_approve(n: str, readable: bool, findings: Sequence[Any], note: str) -> list[str]:
    """The fingerprints a 通过 of version ``n`` (e.g. "某镇的第2版") accepts; refused with the reason
    when it cannot be approved."""
    if not readable:
        raise ArchiveError(f"{n}无法读取，不能通过；请让填报单位重新报送。")
    hard = mandatory_errors(findings)
    if hard:
        raise ArchiveError(f"{n}有{len(hard)}个强制性错误，不能通过（{describe(hard)}）；请退回，更正后重新报送。")
    soft = explainable_errors(findings)
    warned = [f for f in findings if _field(f, "severity") == "警告"]
    if (soft or warned) and not note.strip():
        what = "、".join(x for x in (f"{len(soft)}个需核实的错误" if soft else "", f"{len(warned)}个警告" if warned else "") if x)
        raise ArchiveError(f"{n}有{what}，通过时请写明说明（为什么接受）。")
    return sorted({_field(f, "fingerprint") for f in [*soft, *warned] if _field(f, "fingerprint")})


def check_reject(note: str) -> None:
    if not note.strip():
        raise ArchiveError("请写明退回原因。")


def check_reopen(approved_id: int | None, note: str, unit: str) -> int:
    """The version whose approval a 撤销通过 withdraws."""
    if approved_id is None:
        raise ArchiveError(f"{unit}没有已通过的版本，无需撤销。")
    if not note.strip():
        raise ArchiveError("请写明撤销通过的原因。")
    return approved_id


def auto_outcome(readable: bool, findings: Sequence[Any], auto_approve: bool, held: bool, older: bool) -> tuple[str, str] | None:
    """The decision recorded at receipt (kind, note), or None (the version waits as 待审核):
    unreadable or with 强制性 errors → 退回 at once; clean (no 错误, no 警告) → 通过 when the year
    approves clean versions automatically, the reviewer has not sent the unit back since its last
    approval, and the version is not dated before the one it replaces."""
    if not readable:
        return REJECT, "文件无法读取：" + describe([f for f in findings if _field(f, "severity") == "错误"], 1)
    hard = mandatory_errors(findings)
    if hard:
        return REJECT, f"有{len(hard)}个错误：{describe(hard)}"
    clean = not any(_field(f, "severity") in ("错误", "警告") for f in findings)
    if clean and auto_approve and not held and not older:
        return APPROVE, ""
    return None


# ================================================================ approval up the tree (issue 31)
# One level up, the same model (DHIS2 data approval by level; 逐级上报/退回 of the 报表 systems): a node of
# the roster with units below it (a county under a city) submits its summary — the consolidation of its
# approved units and of its approved lower nodes — to the level above (上报); that level approves it
# (通过) or returns it (退回, with a reason). States, computed from the node's summaries (oldest first)
# and the decisions on them (oldest first), never stored, in a unit's words: 未报送 (never submitted);
# 待审核 (the newest summary awaits the level above); 退回; 已通过. While 待审核 or 已通过 the node is
# locked: no decision on its units and no new submission; a 退回 reopens it (also an approved one: the
# level above may withdraw its approval).
LEVEL_SUBMIT = "上报"
LEVEL_DECISIONS = (APPROVE, REJECT)
LOCKED = ("待审核", "已通过")


@dataclass
class LevelFlow:
    """What the summaries a node submitted and the level above's decisions come to."""

    status: str = "未报送"
    summary_id: int | None = None  # the newest summary
    version: int = 0  # 第N次上报
    approved_id: int | None = None  # the summary that counts one level up (None unless 已通过)
    note: str = ""  # the node's note on its newest submission
    reason: str = ""  # the 退回 reason, while it stands
    submitted_at: str = ""
    decided_at: str = ""
    decided_by: str = ""

    @property
    def locked(self) -> bool:
        return self.status in LOCKED


def level_flow(summaries: Sequence[Any], events: Sequence[Any]) -> LevelFlow:
    """The state of a node's year from its summaries and the decisions on them."""
    if not summaries:
        return LevelFlow()
    newest = summaries[-1]
    fl = LevelFlow("待审核", newest.id, len(summaries), note=newest.note, submitted_at=newest.at)
    on_newest = [e for e in events if e.summary_id == newest.id and e.kind in LEVEL_DECISIONS]
    if on_newest:
        last = on_newest[-1]
        fl.decided_at, fl.decided_by = last.at, last.actor
        if last.kind == APPROVE:
            fl.status, fl.approved_id = APPROVED, newest.id
        else:
            fl.status, fl.reason = "退回", last.note
    return fl


def _named(states: Iterable[Any]) -> str:
    shown = [f"{s.name}（{s.code}）{s.status}" for s in states]
    return "、".join(shown[:5]) + (f"等{len(shown)}个" if len(shown) > 5 else "")


def check_submit(head: str, flow: LevelFlow, units: Sequence[Any], nodes: Sequence[Any], excluded: dict[str, str]) -> None:
    """Whether node ``head`` may submit: not locked; every unit (UnitState) and every lower node (a
    record with code, name and status) 已通过 or excluded with a 说明; something left to sum."""
    if flow.locked:
        raise ArchiveError(f"{head}已上报（{flow.status}），不能再次上报；如需更改，请上级退回。")
    known = {s.code for s in [*units, *nodes]}
    stray = sorted(set(excluded) - known)
    if stray:
        raise ArchiveError(f"不纳入的单位 {'、'.join(stray)} 不是{head}的下级单位。")
    bare = sorted(code for code, why in excluded.items() if not why.strip())
    if bare:
        raise ArchiveError(f"不纳入 {'、'.join(bare)} 时请写明说明（为什么不纳入）。")
    waiting = [s for s in [*units, *nodes] if s.status != APPROVED and s.code not in excluded]
    if waiting:
        raise ArchiveError(f"{head}还不能上报：以下单位尚未通过：{_named(waiting)}。请先审核通过，或写明说明后不纳入这些单位。")
    if not [s for s in [*units, *nodes] if s.code not in excluded]:
        raise ArchiveError(f"{head}没有可汇总的单位，不能上报。")


def check_level_approve(head: str, flow: LevelFlow) -> None:
    if flow.status != "待审核":
        raise ArchiveError(f"{head}没有待审核的上报（当前：{flow.status}），无需通过。")


def check_level_return(head: str, flow: LevelFlow, note: str) -> None:
    if flow.status not in LOCKED:
        raise ArchiveError(f"{head}没有待审核或已通过的上报（当前：{flow.status}），无需退回。")
    check_reject(note)


def check_unit_open(unit: str, node: str, flow: LevelFlow) -> None:
    """A decision on a unit of a node that has submitted (待审核) or been approved is refused."""
    if flow.locked:
        raise ArchiveError(
            f"{unit}所属的{node}已向上级上报（{flow.status}），其单位的审核结果已锁定；如需更改，请上级先退回{node}。"
        )
