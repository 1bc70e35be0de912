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
from .findings import NAMED, Finding, counts, few_names, make
from .report import CellValues, Number, Provenance, Report, derive_totals
from .roster import Roster, Unit
from .spec import Format, formats

LEVEL_OF = {
    "县级政府": "县级汇总",
    "市级政府": "市级汇总",
    "省级政府": "省级汇总",
    "县级汇总": "市级汇总",
    "市级汇总": "省级汇总",
}
# The unit a group of roster units belongs to, guessed from their types when the roster lacks it.
PARENT_TYPE = (({"市级部门", "县级汇总", "县级政府"}, "市级政府"), ({"省级部门", "市级汇总", "市级政府"}, "省级政府"))


# One status per roster unit (and per file that belongs to no roster unit). 通过 … 空表 are
# units that sent a return (已报送); the last three are files, not units.
SUBMITTED = ("有错误", "重复", "有警告", "空表", "通过")
STATUS_ORDER = (*SUBMITTED, "未报送", "不在名册", "无法读取", "汇总表（已忽略）")
FILE_ONLY = ("不在名册", "无法读取", "汇总表（已忽略）")

SCOPE_ALL, SCOPE_NODE, SCOPE_SELECTION = "全部", "节点汇总", "选择汇总"


@dataclass(frozen=True)
class ConsolidateOptions:
    """What to sum and how — the choices of `nianbao consolidate`, named once for the API, the
    archive, the command line, the web and the summary's manifest.

    ``units``: only these unit codes (选择汇总); ``exclude``: not these; ``under``: that unit and the
    units below it (节点汇总); ``strict``: a unit that sent several returns refuses the summary;
    ``force``: returns with 错误 are summed too (marked in 汇总说明); ``summary_name``: the name of the
    summarising unit when the roster has no line of its own for it."""

    units: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    under: str | None = None
    strict: bool = False
    force: bool = False
    summary_name: str | None = None

    @classmethod
    def of(cls, options: ConsolidateOptions | None = None, **choices: Any) -> ConsolidateOptions:
        """``options`` with ``choices`` (field names: ``force=True`` …) changed; a misspelt choice
        is a TypeError, as for any keyword."""
        import dataclasses

        base = options or cls()
        for key in ("units", "exclude"):
            if key in choices:
                choices[key] = tuple(choices[key] or ())
        return dataclasses.replace(base, **choices)

    def manifest(self) -> dict[str, Any]:
        """The choices as the summary's manifest records them."""
        return {
            "units": list(self.units),
            "exclude": list(self.exclude),
            "under": self.under,
            "strict": self.strict,
            "force": self.force,
        }


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
        return self.report is not None and self.status in SUBMITTED

    def row(self) -> dict[str, Any]:
        r = self.report
        c = counts(r.findings) if r else {"错误": 0, "警告": 0, "提示": 0}
        return {
            "unit_code": self.code,
            "unit_name": self.name,
            "unit_type": self.type,
            "status": self.status,
            "file": r.provenance.name if r else "",
            "sha256": r.provenance.sha256 if r else "",
            "filler": r.cover.get("filler", "") if r else "",
            "phone": r.cover.get("phone", "") if r else "",
            "date": r.cover.get("date", "") if r else "",
            "errors": c["错误"],
            "warnings": c["警告"],
            "duplicates": [d.provenance.name for d in self.duplicates],
        }


@dataclass
class Scope:
    """Which units a summary speaks for, and whether that is the whole of its unit."""

    top: Unit
    units: list[Unit]
    kind: str = SCOPE_ALL
    left_out: list[Unit] = field(default_factory=list)  # units of the top unit that a selection leaves out
    top_in_roster: bool = True

    @property
    def codes(self) -> set[str]:
        return {u.code for u in self.units}

    def note(self) -> str:
        """What a reader of the summary must know about its scope, in one sentence ('' for 全部)."""
        if self.kind == SCOPE_SELECTION:
            names = "、".join(f"{u.name}（{u.code}）" for u in self.left_out[:5])
            more = f"等{len(self.left_out)}个单位" if len(self.left_out) > 5 else ""
            return f"选择汇总：只包括{len(self.units)}个单位，未包括{names}{more}，不是{self.top.name}的全部汇总"
        if self.kind == SCOPE_NODE:
            return f"节点汇总：{self.top.name}及其下级共{len(self.units)}个单位"
        return ""


@dataclass
class Summary:
    fmt: Format
    report: Report  # the summary itself, as a Report (values = sums)
    statuses: list[UnitStatus]
    inputs: list[Report]  # every report given, used or not
    findings: list[Finding]  # findings of the reports in scope + consolidation findings
    scope: Scope
    forced: bool = False
    outside: list[Report] = field(default_factory=list)  # reports of roster units outside the scope
    notes: list[tuple[str, str]] = field(default_factory=list)  # (unit, 说明) of accepted warnings (archive)

    @property
    def included(self) -> list[UnitStatus]:
        return [s for s in self.statuses if s.included]

    def count(self, status: str) -> int:
        return sum(1 for s in self.statuses if s.status == status)

    def tally(self) -> dict[str, int]:
        """应报/已报送/未报送 counted as units, then each status; files outside the roster apart."""
        units = [s for s in self.statuses if s.status not in FILE_ONLY]
        out = {
            "应报": len(units),
            "已报送": sum(1 for s in units if s.status in SUBMITTED),
            "未报送": self.count("未报送"),
            "纳入汇总": len(self.included),
        }
        out |= {st: self.count(st) for st in STATUS_ORDER if st != "未报送"}
        return out

    @property
    def has_errors(self) -> bool:
        """Problems in what this summary was asked to cover (exit code 1)."""
        return any(f.severity == "错误" for f in self.findings)


class Refused(NianbaoError):
    """Consolidation refused because included returns have 错误 (exit code 1)."""

    def __init__(self, message: str, statuses: list[UnitStatus], reports: list[Report] | None = None):
        super().__init__(message)
        self.statuses = statuses
        self.reports = reports or []


def _date_key(r: Report) -> tuple[str, bool, float]:
    """Latest 填报日期 first; on the same day a file whose properties were not tampered with (a
    claimed summary that could not be verified), then the latest modified."""
    raw = r.cover.get("date", "")
    m = re.search(r"(\d{4})\D+(\d{1,2})\D+(\d{1,2})", raw)
    day = f"{int(m.group(1)):04d}-{int(m.group(2)):02d}-{int(m.group(3)):02d}" if m else ""
    return day, not any(f.code == "summary-unverified" for f in r.findings), r.provenance.mtime


# ---------------------------------------------------------------- scope


def _implicit_top(roster: Roster, code: str | None, name: str | None) -> Unit | None:
    """The unit above the roster's top units when the roster itself lacks its row (e.g. a county's
    roster listing only townships and departments, all with the county's code as 上级代码)."""
    codes = {u.code for u in roster.units}
    tops = [u for u in roster.units if u.parent and u.parent not in codes]
    parents = {u.parent for u in tops}
    if code is None:
        if len(parents) != 1 or len(tops) != sum(1 for u in roster.units if u.parent not in codes):
            return None
        code = parents.pop()
    elif code not in parents:
        return None
    types = {u.type for u in roster.units if u.parent == code}
    typ = next((t for members, t in PARENT_TYPE if types & members), "县级政府")
    return Unit(code, name or f"上级单位{code}", typ, "")


def _node(roster: Roster, under: str | None, summary_name: str | None) -> tuple[Unit, list[Unit], bool]:
    """(top unit, its units, whether the top unit is a roster row)."""
    if under:
        unit = roster.get(under)
        if unit is not None:
            return unit, roster.subtree(under), True
        implicit = _implicit_top(roster, under, summary_name)
        if implicit is None:
            raise NianbaoError(f"--under 指定的单位代码 {under} 不在名册中，也不是名册中任何单位的上级代码。")
        return implicit, roster.subtree(under), False
    root = roster.root()
    if root is not None:
        return root, list(roster.units), True
    implicit = _implicit_top(roster, None, summary_name)
    if implicit is not None:
        return implicit, list(roster.units), False
    raise NianbaoError(_no_root_message(roster))


def _no_root_message(roster: Roster) -> str:
    codes = {u.code for u in roster.units}
    groups: dict[str, int] = {}
    for u in roster.units:
        if u.parent not in codes:
            groups[u.parent or "（空）"] = groups.get(u.parent or "（空）", 0) + 1
    usable = [p for p in groups if p != "（空）"]
    parts = "；".join(f"上级代码为{p}的{n}个" for p, n in groups.items())
    hint = "可以用 " + " 或 ".join(f"--under {p}" for p in usable[:3]) + " 分别汇总，或" if usable else "请"
    return f"名册中有多个最上级单位（{parts}），无法确定汇总单位；{hint}在名册中加上汇总单位本身一行（上级代码为空）。"


def scope(
    roster: Roster,
    units: Iterable[str] = (),
    exclude: Iterable[str] = (),
    under: str | None = None,
    summary_name: str | None = None,
) -> Scope:
    """Which roster units this summary covers: 全部, 节点汇总 (--under), 选择汇总 (--units/--exclude)."""
    top, chosen, in_roster = _node(roster, under, summary_name)
    node_units = list(chosen)
    wanted = [u.strip() for u in units if u.strip()]
    unknown = [u for u in wanted if roster.get(u) is None]
    if unknown:
        raise NianbaoError(f"--units 中的单位代码不在名册中：{'、'.join(unknown)}")
    if wanted:
        chosen = [u for u in chosen if u.code in set(wanted)]
    excl = {u.strip() for u in exclude if u.strip()}
    unknown = sorted(u for u in excl if roster.get(u) is None)
    if unknown:
        raise NianbaoError(f"--exclude 中的单位代码不在名册中：{'、'.join(unknown)}")
    chosen = [u for u in chosen if u.code not in excl]
    if not chosen:
        raise NianbaoError("按给定条件没有任何单位需要汇总。")
    kept = set(chosen)  # Unit is frozen (hashable): a set keeps this linear for 10,000 units
    left_out = [u for u in node_units if u not in kept]
    kind = SCOPE_SELECTION if left_out else (SCOPE_NODE if under else SCOPE_ALL)
    return Scope(top, chosen, kind, left_out, in_roster)


# ---------------------------------------------------------------- statuses


def _status_of(report: Report, dups: list[Report]) -> str:
    c = counts(report.findings)
    if c["错误"]:
        return "有错误"
    if dups:
        return "重复"
    if c["警告"]:
        return "有警告"
    if any(f.code == "empty-return" for f in report.findings):
        return "空表"
    return "通过"


def _sort_inputs(reports: list[Report], fmt: Format, roster: Roster, sc: Scope, year: int):
    """Split the given reports: by unit of the scope, files that belong to no unit, outside the scope."""
    by_code: dict[str, list[Report]] = {}
    extra: list[UnitStatus] = []
    outside: list[Report] = []
    findings: list[Finding] = []
    codes = sc.codes  # a set built once, not once per report
    for r in reports:
        if not r.readable or r.format_id != fmt.id:
            extra.append(UnitStatus(r.unit_code, r.unit_name or r.provenance.name, "", "无法读取", r))
        elif r.level != "填报单位" and r.unit_code == sc.top.code:
            # an earlier summary of this very unit left among the returns: using it as the 本级
            # return would count everything twice
            extra.append(UnitStatus(r.unit_code, r.unit_name, r.unit_type, "汇总表（已忽略）", r))
            findings.append(
                make(
                    "summary-ignored", file=r.provenance.name, unit_code=r.unit_code, unit_name=r.unit_name, found=r.level
                ).finish(year)
            )
        elif roster.get(r.unit_code) is None:
            extra.append(UnitStatus(r.unit_code, r.unit_name, r.unit_type, "不在名册", r))
        elif r.unit_code in codes:
            by_code.setdefault(r.unit_code, []).append(r)
        else:
            outside.append(r)
    return by_code, extra, outside, findings


def _unit_statuses(sc: Scope, by_code: dict[str, list[Report]], strict: bool, year: int):
    statuses: list[UnitStatus] = []
    findings: list[Finding] = []
    for u in sc.units:
        # a lower-level summary (e.g. a county's, in a city roster) includes that unit's own return:
        # it wins over a plain return with the same code; otherwise the latest 填报日期 wins
        got = sorted(by_code.get(u.code, []), key=lambda r: (r.level != "填报单位", _date_key(r)), reverse=True)
        if not got:
            statuses.append(UnitStatus(u.code, u.name, u.type, "未报送"))
            findings.append(make("unit-missing", unit_code=u.code, unit_name=u.name).finish(year))
            continue
        chosen, dups = got[0], got[1:]
        if dups:
            f = make(
                "duplicate-return",
                file=chosen.provenance.name,
                unit_code=u.code,
                unit_name=u.name,
                detail=f"采用 {chosen.provenance.name}；未采用 {few_names([d.provenance.name for d in dups[:NAMED]], len(dups))}",
            )
            if strict:
                f.severity = "错误"
            findings.append(f.finish(year))
        statuses.append(UnitStatus(u.code, u.name, u.type, _status_of(chosen, dups), chosen, dups))
    return statuses, findings


def _refusal(statuses: list[UnitStatus], strict: bool, force: bool) -> str:
    """Why this consolidation must not be written ('' when it may)."""
    unread = [s for s in statuses if s.included and s.report.unknown]  # type: ignore[union-attr]
    if unread:
        lines = [
            f"{s.name}（{s.code}）：{s.report.provenance.name}，{_unread_tables(s.report)}未能读取"  # type: ignore[union-attr]
            for s in unread
        ]
        codes = ",".join(s.code for s in unread)
        return (
            "以下填报表有表格未能读取，不能汇总（未读取的表不会按0计算，--force 也不能汇总它们）：\n  "
            + "\n  ".join(lines)
            + "\n请让这些单位用原模板重新填写；"
            f"或用 --exclude {codes} 先汇总其余单位（汇总表将标明为选择汇总）。"
        )
    bad = [s for s in statuses if s.included and counts(s.report.findings)["错误"]]  # type: ignore[union-attr]
    dup_errors = [s for s in statuses if s.duplicates] if strict else []
    if (bad and not force) or dup_errors:
        lines = [
            f"{s.name}（{s.code}）：{s.report.provenance.name}，错误{counts(s.report.findings)['错误']}个"  # type: ignore[union-attr]
            for s in bad
        ]
        lines += [f"{s.name}（{s.code}）：报送了{len(s.duplicates) + 1}份（--strict 不允许重复）" for s in dup_errors]
        return "以下填报表有错误，未汇总（更正后重新汇总，或加 --force 强制汇总）：\n  " + "\n  ".join(lines)
    return ""


def _unread_tables(report: Report) -> str:
    fmt = formats().get(report.format_id)
    sheets = sorted({cid.split(".")[0] for cid in report.unknown})
    return "、".join(fmt.sheet(s).name if fmt else s for s in sheets)


def consolidate(
    fmt: Format,
    reports: list[Report],
    roster: Roster,
    year: int,
    options: ConsolidateOptions | None = None,
    **choices: Any,
) -> Summary:
    """Sum the chosen returns (``options``, or its fields as keywords) into one summary Report;
    raise Refused when that would be wrong."""
    opts = ConsolidateOptions.of(options, **choices)
    strict, force = opts.strict, opts.force
    sc = scope(roster, opts.units, opts.exclude, opts.under, opts.summary_name)
    by_code, extra, outside, findings = _sort_inputs(reports, fmt, roster, sc, year)
    statuses, more = _unit_statuses(sc, by_code, strict, year)
    statuses.extend(extra)
    in_scope = [r for s in statuses if s.report for r in (s.report, *s.duplicates)]
    findings = [f for r in in_scope for f in r.findings] + findings + more
    if not sc.top_in_roster:
        findings.append(
            make("summary-unit-missing", unit_code=sc.top.code, unit_name=sc.top.name, found=sc.top.code).finish(year)
        )
    reason = _refusal(statuses, strict, force)
    if reason:
        raise Refused(reason, statuses, in_scope)
    summary_report = _sum(fmt, sc, statuses, year)
    forced = any(counts(s.report.findings)["错误"] for s in statuses if s.included)  # type: ignore[union-attr]
    return Summary(fmt, summary_report, statuses, reports, findings, sc, forced=forced, outside=outside)


def _nonzero(report: Report) -> dict[str, Number]:
    """The report's non-zero values (blank counts 0): what a sum needs, without asking every cell."""
    if isinstance(report.values, CellValues):
        return report.values.nonzero
    return {k: v for k, v in report.values.items() if v}


def _sum(fmt: Format, sc: Scope, statuses: list[UnitStatus], year: int) -> Report:
    included = [s for s in statuses if s.included]
    nonzero = [_nonzero(s.report) for s in included]  # type: ignore[arg-type]
    inputs = {c.id for c in fmt.inputs}
    running: dict[str, Number] = {}
    for nz in nonzero:  # unit by unit: each cell's figures are added in the same order as a sum per cell
        for cid, v in nz.items():
            if cid in inputs:  # the totals it carries are derived again below
                running[cid] = running.get(cid, 0) + v
    sums: dict[str, Number | None] = {}
    for cell in fmt.inputs:
        total = running.get(cell.id, 0)
        sums[cell.id] = int(total) if float(total).is_integer() else round(total, 6)
    level = LEVEL_OF.get(sc.top.type, "汇总")
    note = f"由{len(included)}个单位的填报表汇总生成。" + (sc.note() + "。" if sc.note() else "")
    rep = Report(
        format_id=fmt.id,
        format_version=fmt.version,
        template_version=fmt.template_version,
        year=year,
        unit_code=sc.top.code,
        unit_name=sc.top.name,
        unit_type=level,
        level=level,
        values=derive_totals(fmt, sums),
        scope=sc.kind,
        scope_note=sc.note(),
        cover={"filler": "nianbao 自动汇总", "date": dt.date.today().isoformat(), "note": note},
        provenance=Provenance(name="汇总"),
        children=[
            {
                "unit_code": s.code,
                "unit_name": s.name,
                "unit_type": s.type,
                "status": s.status,
                "values": {cid: v for cid, v in nz.items() if cid in inputs},
            }
            for s, nz in zip(included, nonzero, strict=True)
        ],  # sparse: most cells of most units are 0
    )
    rep.cached = {c.id: rep.values[c.id] for c in fmt.totals}
    return rep


def totals_json(summary: Summary) -> dict[str, Any]:
    """Totals and 报送情况 as plain data (for --json and the manifest)."""
    rep = summary.report
    return {
        "unit_code": rep.unit_code,
        "unit_name": rep.unit_name,
        "level": rep.level,
        "year": rep.year,
        "scope": summary.scope.kind,
        "scope_note": summary.scope.note(),
        "format_id": summary.fmt.id,
        "format_version": summary.fmt.version,
        "counts": summary.tally(),
        "totals": {cid: rep.values[cid] for cid in summary.fmt.cells},
        "units": [s.row() for s in summary.statuses],
        "forced": summary.forced,
    }
