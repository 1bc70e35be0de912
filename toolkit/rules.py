"""Rule engine: Report → findings, driven by the rules in the format definition.

Rules are DHIS2-style records (left side, operator, right side, missing-value
strategy, severity). Their expressions are the format definition's own little
language (toolkit/expr.py), parsed once per format (``Format.compiled``); this
module turns failing instances into findings a clerk can act on.
This module must never import openpyxl or XlsxWriter: the same rules run on a
township return, a county summary and a report imported from a web page.
"""

from __future__ import annotations

from .expr import OPS, TOLERANCE, Instance, Side, evaluate_terms, parse
from .findings import Finding, fmt_num
from .report import Number, Report
from .spec import Format, Rule


def evaluate(expr: str, fmt: Format, report: Report) -> Side:
    """Evaluate one side of a rule; missing cells count 0 here and are counted apart."""
    return evaluate_terms(parse(expr, fmt), report)


def compiled(rule: Rule, fmt: Format) -> tuple[Instance, ...]:
    """The rule's instances with parsed expressions (``Format.compiled``: once per format definition)."""
    return fmt.compiled[rule.code].instances


def applies(rule: Rule, report: Report) -> bool:
    """Unit types as the rule says; a cross-year rule only when last year's figures are known."""
    if rule.cross_year and report.previous is None:
        return False
    return not rule.unit_types or report.unit_type in rule.unit_types


def _failing(rule: Rule, fmt: Format, report: Report, careful: bool = False) -> list[tuple[Instance, Number, Number]]:
    """(instance, left, right) of every instance of the rule that fails on the report: by the rule's
    generated function (toolkit/expr.py), or (``careful``) term by term, the reference the function
    is proven equal to."""
    made = fmt.compiled[rule.code]
    instances = made.instances
    if not careful:
        prev = report.previous
        pv, pu = (prev.values, prev.unknown) if prev is not None else ({}, frozenset())
        failed = made.check(report.values, report.cached, report.unknown, pv, pu)
        return [(instances[k], lv, rv) for k, lv, rv in failed]
    out = []
    compare = OPS[rule.operator]
    for inst in instances:
        left, right = evaluate_terms(inst.left, report), evaluate_terms(inst.right, report)
        if left.unknown or right.unknown:
            continue
        missing = left.missing + right.missing
        if missing:
            if rule.missing == "skip_if_any":
                continue
            if rule.missing == "skip_if_all" and missing == left.refs + right.refs:
                continue
        lv, rv = left.value, right.value
        if rule.operator in ("==", "!="):
            ok = (abs(lv - rv) <= TOLERANCE) == (rule.operator == "==")
        else:
            ok = compare(lv, rv)
        if not ok:
            out.append((inst, lv, rv))
    return out


def run_rule(rule: Rule, fmt: Format, report: Report, careful: bool = False) -> list[Finding]:
    """All failures of one rule on one report (the summary member only if nothing else failed)."""
    if not applies(rule, report):
        return []
    failures: list[tuple[str, Finding]] = []
    for inst, lv, rv in _failing(rule, fmt, report, careful):
        cell = fmt.cells[inst.at]
        found, expected = _pinned(inst, rule.operator, report, lv, rv)
        if rule.likely_scale:  # 应为: what the clerk probably meant (3.5 万元), not the bound (1000)
            expected = _clean(found * rule.likely_scale)
        delta = _clean(found - expected)
        fields = {
            "left": fmt_num(lv),
            "right": fmt_num(rv),
            "delta": fmt_num(abs(delta)),
            "left_yuan": fmt_num(lv * 10000),
            "likely": fmt_num(expected),
            "col_label": cell.col_label.split(" ")[-1],
            "row_label": cell.row_label,
            "unit_type": report.unit_type or "未知",
            "where": cell.where,
            "year": report.year or "本",
            "prev_year": (report.previous.year if report.previous else None) or "上",
            "prev_where": _prev_where(inst, fmt),
            "value": fmt_num(report.value(inst.at)),
            "prev_value": fmt_num(report.previous.value(inst.at)) if report.previous else "",
        }
        f = Finding(
            code=rule.code,
            severity=rule.severity,
            kind=rule.kind,
            title=rule.title,
            message=rule.message.format(**fields),
            instruction=rule.instruction,
            file=report.provenance.name,
            unit_code=report.unit_code,
            unit_name=report.unit_name,
            sheet=cell.sheet_name,
            cell=cell.a1,
            cell_id=cell.id,
            row_label=cell.row_label,
            col_label=cell.col_label,
            expected=expected,
            found=found,
            delta=delta,
        )
        failures.append((inst.member, f))
    if rule.summary_member and any(m != rule.summary_member for m, _ in failures):
        failures = [(m, f) for m, f in failures if m != rule.summary_member]
    return [f for _, f in failures]


def _prev_where(inst: Instance, fmt: Format) -> str:
    """Where last year's figure of a cross-year rule sits (its cell in last year's table)."""
    for _, source, ids in inst.left + inst.right:
        if source == "p":
            return fmt.cells[ids[0]].where
    return ""


def _clean(x: float) -> Number:
    return int(x) if float(x).is_integer() else round(x, 6)


def _pinned(inst: Instance, operator: str, report: Report, lv: Number, rv: Number) -> tuple[Number, Number]:
    """(found, expected) for the cell a finding is pinned to, so that the numbers a clerk reads next
    to a cell are that cell's own: what it shows, and what it would have to be for the rule to hold.
    An O1 failure pinned to （七）总计 says “应为4，实为3”, not the two sides of the equation."""
    if operator != "==":
        return lv, rv
    for side, terms in ((1, inst.left), (-1, inst.right)):
        for sign, source, ids in terms:
            if source in ("v", "c") and inst.at in ids and len(ids) == 1:
                table = report.values if source == "v" else report.cached
                shown = table.get(inst.at) or 0
                return shown, _clean(shown - side * sign * (lv - rv))
    return lv, rv


def run_rules(fmt: Format, report: Report, careful: bool = False) -> list[Finding]:
    """Every rule of the format on the report. Totals whose formula was overwritten are
    reported once (as formula-overwritten), not again by the total rules."""
    overwritten = {f.cell_id for f in report.findings if f.code == "formula-overwritten"}
    out: list[Finding] = []
    for rule in fmt.rules:
        for f in run_rule(rule, fmt, report, careful):
            if f.cell_id in overwritten and rule.left.startswith("cached("):
                continue
            out.append(f.finish(report.year))
    return out
