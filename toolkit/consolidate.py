"""汇总: checked Reports → one summary Report plus the 报送情况 of every roster unit.

Pure data, like the rules: no spreadsheet library here. The summary is exactly
Σ of the accepted returns (all official cells are additive, official-format §4 I7),
so every linear rule that holds for each unit holds for the sum.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import NianbaoError
from .findings import Finding, counts, make
from .report import Number, Provenance, Report, derive_totals
from .roster import Roster, Unit
from .spec import Format

LEVEL_OF = {"县级政府": "县级汇总", "市级政府": "市级汇总", "省级政府": "省级汇总",
            "县级汇总": "市级汇总", "市级汇总": "省级汇总"}

# Layout of the 明细 sheet, shared by the summary writer and the reader (parent = Σ children).
DETAIL_SHEET = "明细"
ID_ROW = 1  # 0-based row holding the machine-readable cell ids
TOTAL_LABEL = "合计"
DETAIL_FIXED = (("unit_code", "单位代码"), ("unit_name", "单位名称"), ("unit_type", "单位类型"), ("status", "报送状态"))

STATUS_ORDER = ("有错误", "重复", "有警告", "空表", "已报送", "未报送", "不在名册", "无法读取", "汇总表（已忽略）")


@dataclass
class UnitStatus:
    """One line of 报送情况."""

    code: str
    name: str
    type: str
    status: str
    report: Report | None = None
    duplicates: list[Report] = field(default_factory=list)

    @property
    def included(self) -> bool:
        return self.report is not None and self.status not in ("不在名册", "无法读取", "未报送", "汇总表（已忽略）")

    def row(self) -> dict[str, Any]:
        r = self.report
        c = counts(r.findings) if r else {"错误": 0, "警告": 0, "提示": 0}
        return {
            "unit_code": self.code, "unit_name": self.name, "unit_type": self.type, "status": self.status,
            "file": r.provenance.name if r else "", "sha256": r.provenance.sha256 if r else "",
            "filler": r.cover.get("filler", "") if r else "", "phone": r.cover.get("phone", "") if r else "",
            "date": r.cover.get("date", "") if r else "", "errors": c["错误"], "warnings": c["警告"],
            "duplicates": [d.provenance.name for d in self.duplicates],
        }


@dataclass
class Summary:
    fmt: Format
    report: Report  # the summary itself, as a Report (values = sums)
    statuses: list[UnitStatus]
    inputs: list[Report]  # every report given, used or not
    findings: list[Finding]  # all findings of all inputs + consolidation findings
    forced: bool = False

    @property
    def included(self) -> list[UnitStatus]:
        return [s for s in self.statuses if s.included]

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses if s.status == status)


class Refused(NianbaoError):
    """Consolidation refused because included returns have 错误 (exit code 1)."""

    def __init__(self, message: str, statuses: list[UnitStatus]):
        super().__init__(message)
        self.statuses = statuses


def _date_key(r: Report) -> tuple[str, float]:
    raw = r.cover.get("date", "")
    m = re.search(r"(\d{4})\D+(\d{1,2})\D+(\d{1,2})", raw)
    day = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}" if m else ""
    return day, r.provenance.mtime


def scope(roster: Roster, units: Iterable[str] = (), exclude: Iterable[str] = (), under: str | None = None) -> list[Unit]:
    """Which roster units this summary covers: 全部, 节点汇总 (--under), 选择汇总 (--units/--exclude)."""
    chosen = list(roster.units)
    if under:
        if roster.get(under) is None:
            raise NianbaoError(f"--under 指定的单位代码 {under} 不在名册中。")
        chosen = roster.subtree(under)
    units = [u.strip() for u in units if u.strip()]
    if units:
        unknown = [u for u in units if roster.get(u) is None]
        if unknown:
            raise NianbaoError(f"--units 中的单位代码不在名册中：{'、'.join(unknown)}")
        wanted = set(units)
        chosen = [u for u in chosen if u.code in wanted]
    excl = {u.strip() for u in exclude if u.strip()}
    unknown = [u for u in excl if roster.get(u) is None]
    if unknown:
        raise NianbaoError(f"--exclude 中的单位代码不在名册中：{'、'.join(sorted(unknown))}")
    chosen = [u for u in chosen if u.code not in excl]
    if not chosen:
        raise NianbaoError("按给定条件没有任何单位需要汇总。")
    return chosen


def summary_unit(roster: Roster, chosen: list[Unit], under: str | None) -> Unit:
    """The unit the summary speaks for: --under's unit, else the roster's top unit (the county)."""
    if under:
        return roster.get(under)  # type: ignore[return-value]
    root = roster.root()
    if root is None:
        raise NianbaoError("名册中没有唯一的最上级单位（上级代码为空或不在名册中的单位），无法确定汇总单位；请用 --under 指定。")
    return root


def consolidate(fmt: Format, reports: list[Report], roster: Roster, year: int, *,
                units: Iterable[str] = (), exclude: Iterable[str] = (), under: str | None = None,
                strict: bool = False, force: bool = False) -> Summary:
    chosen = scope(roster, units, exclude, under)
    top = summary_unit(roster, chosen, under)
    in_scope = {u.code for u in chosen}
    by_code: dict[str, list[Report]] = {}
    extra_statuses: list[UnitStatus] = []
    findings: list[Finding] = [f for r in reports for f in r.findings]
    for r in reports:
        if not r.readable or r.format_id != fmt.id:
            extra_statuses.append(UnitStatus(r.unit_code, r.unit_name or r.provenance.name, "", "无法读取", r))
        elif roster.get(r.unit_code) is None:
            extra_statuses.append(UnitStatus(r.unit_code, r.unit_name, r.unit_type, "不在名册", r))
        elif r.level != "填报单位" and r.unit_code == top.code:
            # an earlier summary of this very unit left among the returns: using it as the 本级
            # return would count everything twice
            extra_statuses.append(UnitStatus(r.unit_code, r.unit_name, r.unit_type, "汇总表（已忽略）", r))
            findings.append(make("summary-ignored", file=r.provenance.name, unit_code=r.unit_code,
                                 unit_name=r.unit_name, found=r.level).finish(year))
        elif r.unit_code in in_scope:
            by_code.setdefault(r.unit_code, []).append(r)
    statuses: list[UnitStatus] = []
    for u in chosen:
        # a lower-level summary (e.g. a county's, in a city roster) includes that unit's own return:
        # it wins over a plain return with the same code; otherwise the latest 填报日期 wins
        got = sorted(by_code.get(u.code, []), key=lambda r: (r.level != "填报单位", _date_key(r)), reverse=True)
        if not got:
            statuses.append(UnitStatus(u.code, u.name, u.type, "未报送"))
            findings.append(make("unit-missing", unit_code=u.code, unit_name=u.name).finish(year))
            continue
        chosen_report, dups = got[0], got[1:]
        c = counts(chosen_report.findings)
        if dups:
            status = "重复"
            f = make("duplicate-return", file=chosen_report.provenance.name, unit_code=u.code, unit_name=u.name,
                     detail="采用 " + chosen_report.provenance.name + "；未采用 " + "、".join(d.provenance.name for d in dups))
            if strict:
                f.severity = "错误"
            findings.append(f.finish(year))
        elif c["错误"]:
            status = "有错误"
        elif c["警告"]:
            status = "有警告"
        elif any(f.code == "empty-return" for f in chosen_report.findings):
            status = "空表"
        else:
            status = "已报送"
        if dups and c["错误"]:
            status = "有错误"
        statuses.append(UnitStatus(u.code, u.name, u.type, status, chosen_report, dups))
    statuses.extend(extra_statuses)

    bad = [s for s in statuses if s.included and counts(s.report.findings)["错误"]]  # type: ignore[union-attr]
    dup_errors = [s for s in statuses if s.duplicates] if strict else []
    if (bad and not force) or dup_errors:
        lines = [f"{s.name}（{s.code}）：{s.report.provenance.name}，错误{counts(s.report.findings)['错误']}个"  # type: ignore[union-attr]
                 for s in bad]
        lines += [f"{s.name}（{s.code}）：报送了{len(s.duplicates) + 1}份（--strict 不允许重复）" for s in dup_errors]
        raise Refused("以下填报表有错误，未汇总（更正后重新汇总，或加 --force 强制汇总）：\n  " + "\n  ".join(lines),
                      statuses)

    sums: dict[str, Number | None] = {}
    for cell in fmt.inputs:
        total: float = 0
        for s in statuses:
            if s.included:
                total += s.report.value(cell.id)  # type: ignore[union-attr]
        sums[cell.id] = int(total) if float(total).is_integer() else round(total, 6)
    level = LEVEL_OF.get(top.type, "汇总")
    included = [s for s in statuses if s.included]
    summary_report = Report(
        format_id=fmt.id, format_version=fmt.version, template_version=fmt.template_version, year=year,
        unit_code=top.code, unit_name=top.name, unit_type=level, level=level,
        values=derive_totals(fmt, sums),
        cover={"filler": "nianbao 自动汇总", "date": dt.date.today().isoformat(),
               "note": f"由{len(included)}个单位的填报表汇总生成。"},
        provenance=Provenance(name="汇总"),
        children=[{"unit_code": s.code, "unit_name": s.name, "unit_type": s.type, "status": s.status,
                   "values": {c.id: v for c in fmt.inputs if (v := s.report.value(c.id))}}  # type: ignore[union-attr]
                  for s in included],  # sparse: most cells of most units are 0
    )
    summary_report.cached = {c.id: summary_report.values[c.id] for c in fmt.totals}
    return Summary(fmt, summary_report, statuses, reports, findings, forced=bool(bad))


def totals_json(summary: Summary) -> dict[str, Any]:
    """Totals and 报送情况 as plain data (for --json and the manifest)."""
    rep = summary.report
    return {
        "unit_code": rep.unit_code, "unit_name": rep.unit_name, "level": rep.level, "year": rep.year,
        "format_id": summary.fmt.id, "format_version": summary.fmt.version,
        "counts": {st: summary.count(st) for st in STATUS_ORDER},
        "totals": {cid: rep.values[cid] for cid in summary.fmt.cells},
        "units": [s.row() for s in summary.statuses],
        "forced": summary.forced,
    }
