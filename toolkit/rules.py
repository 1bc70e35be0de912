"""Rule engine: Report → findings, driven by the rules in the format definition.

Rules are DHIS2-style records (left side, operator, right side, missing-value
strategy, severity). Expressions are tiny and parsed here, never eval'd: cell
ids joined by + and -, numbers, ``sum(glob)``, ``cached(id)``, ``parts(id)``.
This module must never import openpyxl or XlsxWriter: the same rules run on a
township return, a county summary and a report imported from a web page.
"""

from __future__ import annotations

import operator as op
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import itemgetter

from .findings import Finding, fmt_num
from .report import Number, Report
from .spec import Format, Rule

_TOKEN = re.compile(
    r"\s*([+-])?\s*(?:(\d+(?:\.\d+)?)\s*\*\s*)?"
    r"(?:(cached|parts|sum|prev)\(\s*([^)]*?)\s*\)|([a-z][a-z0-9_]*\.[a-z0-9_\[\]!*?]+\.[a-z0-9_\[\]!*?]+)"
    r"|(\d+(?:\.\d+)?))\s*"
)
_OPS = {"==": op.eq, "!=": op.ne, "<=": op.le, ">=": op.ge, "<": op.lt, ">": op.gt}
TOLERANCE = 1e-6


@dataclass
class Side:
    value: Number
    refs: int
    missing: int
    unknown: bool = False


# A parsed expression: (factor, source, ids) terms; source "v" = values, "c" = cached totals,
# "p" = last year's values, "n" = a number (ids holds it). The factor is the sign times an optional
# coefficient (``10 * prev(x)``). Parsing happens once per rule instance, not once per return.
Term = tuple[float, str, tuple]


def parse(expr: str, fmt: Format) -> list[Term]:
    pos, terms = 0, []
    expr = expr.strip()
    while pos < len(expr):
        m = _TOKEN.match(expr, pos)
        if not m or m.end() == pos:
            raise ValueError(f"无法解析表达式“{expr}”（第{pos + 1}个字符附近）")
        pos = m.end()
        sign = (-1 if m.group(1) == "-" else 1) * (float(m.group(2)) if m.group(2) else 1)
        func, arg, ref, num = m.group(3), m.group(4), m.group(5), m.group(6)
        if num is not None:
            terms.append((sign, "n", (float(num),)))
        elif func == "sum":
            terms.append((sign, "v", tuple(fmt.match(arg))))
        elif func in ("cached", "prev"):
            terms.append((sign, func[0], (arg,)))
        elif func == "parts":
            terms.append((sign, "v", fmt.cells[arg].parts))
        else:
            terms.append((sign, "v", (ref,)))
    return terms


def _source(report: Report, source: str) -> tuple[Mapping, set[str] | frozenset[str]]:
    if source == "v":
        return report.values, report.unknown
    if source == "c":
        return report.cached, report.unknown
    prev = report.previous
    return (prev.values, prev.unknown) if prev is not None else ({}, frozenset())


def _eval(terms: list[Term], report: Report) -> Side:
    total, refs, missing = 0.0, 0, 0
    for sign, source, ids in terms:
        if source == "n":
            total += sign * ids[0]
            continue
        if source == "v":
            table, unknown = report.values, report.unknown
        else:
            table, unknown = _source(report, source)
        if unknown and not unknown.isdisjoint(ids):
            return Side(0, 0, 0, unknown=True)
        refs += len(ids)
        get = table.get
        for cid in ids:
            v = get(cid)
            if v is None:
                missing += 1
            else:
                total += sign * v
    if total.is_integer():
        return Side(int(total), refs, missing)
    return Side(round(total, 6), refs, missing)


def evaluate(expr: str, fmt: Format, report: Report) -> Side:
    """Evaluate one side of a rule; missing cells count 0 here and are counted apart."""
    return _eval(parse(expr, fmt), report)


def evaluate_terms(terms: list[Term], report: Report) -> Side:
    """One parsed side of a rule instance (``compiled``), as the rule itself evaluates it."""
    return _eval(terms, report)


@dataclass(frozen=True)
class Instance:
    member: str
    left: list[Term]
    right: list[Term]
    at: str


_COMPILED: dict[tuple[str, str, str], list[Instance]] = {}


def compiled(rule: Rule, fmt: Format) -> list[Instance]:
    """The rule's instances with parsed expressions, cached per format definition."""
    key = (fmt.id, fmt.digest, rule.code)
    if key not in _COMPILED:
        out = []
        for inst in rule.instances():
            sub = (lambda e, inst=inst: e.format(**inst)) if inst else (lambda e: e)
            left, right = parse(sub(rule.left), fmt), parse(sub(rule.right), fmt)
            out.append(Instance(next(iter(inst.values()), "") if inst else "", left, right, sub(rule.at)))
        _COMPILED[key] = out
    return _COMPILED[key]


def applies(rule: Rule, report: Report) -> bool:
    """Unit types as the rule says; a cross-year rule only when last year's figures are known."""
    if rule.cross_year and report.previous is None:
        return False
    return not rule.unit_types or report.unit_type in rule.unit_types


def _failing(rule: Rule, fmt: Format, report: Report, careful: bool = False) -> list[tuple[Instance, Number, Number]]:
    """(instance, left, right) of every instance of the rule that fails on the report: by the rule's
    generated function, or (``careful``) term by term, the reference the function is proven equal to."""
    instances = compiled(rule, fmt)
    if not careful:
        prev = report.previous
        pv, pu = (prev.values, prev.unknown) if prev is not None else ({}, frozenset())
        failed = _checker(rule, fmt)(report.values, report.cached, report.unknown, pv, pu)
        return [(instances[k], lv, rv) for k, lv, rv in failed]
    out = []
    compare = _OPS[rule.operator]
    for inst in instances:
        left, right = _eval(inst.left, report), _eval(inst.right, report)
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


_CHECKERS: dict[tuple[str, str, str], Callable[..., list[tuple[int, Number, Number]]]] = {}


def _checker(rule: Rule, fmt: Format) -> Callable[..., list[tuple[int, Number, Number]]]:
    """The rule's instances as one generated Python function, made once per format definition.

    A return has ~160 rule instances of a few cells each; walking their parsed terms costs more
    than reading the file. The function does what ``_eval`` and the loop above do, in the same
    order and with the same float operations, written out per instance (cell ids are quoted with
    repr: the text comes from the format definition and is never evaluated)."""
    key = (fmt.id, fmt.digest, rule.code)
    fn = _CHECKERS.get(key)
    if fn is None:
        fn = _CHECKERS[key] = _generate(rule, compiled(rule, fmt))
    return fn


def _generate(rule: Rule, instances: list[Instance]) -> Callable[..., list[tuple[int, Number, Number]]]:
    names: dict[str, object] = {"TOL": TOLERANCE}
    lines = ["def check(values, cached, unknown, prev_values, prev_unknown):", " out = []"]
    lines.append(" get = {'v': values.get, 'c': cached.get, 'p': prev_values.get}")
    lines.append(" vg, cg, pg = get['v'], get['c'], get['p']")
    lines += _bound_shortcut(rule, instances, names)
    for k, inst in enumerate(instances):
        lines += _instance_code(k, inst, rule, names)
    lines.append(" return out")
    exec(compile("\n".join(lines), f"<rule {rule.code}>", "exec"), names)  # noqa: S102 - generated above, ids quoted
    return names["check"]  # type: ignore[return-value]


def _bound_shortcut(rule: Rule, instances: list[Instance], names: dict[str, object]) -> list[str]:
    """For a bound on many single cells (``{cell} <= 100000`` for every count): when no cell is
    unknown or blank and the largest (smallest) is within the bound, none fails, known in two C
    calls. Only for <= and >= and a bound of at most 6 decimals: rounding to 6 places then keeps
    x <= c (it is monotonic and leaves c as it is), which it does not for x < c."""
    if rule.operator not in ("<=", ">=") or rule.missing != "skip_if_any" or len(instances) < 2:
        return []
    ids, bounds = [], set()
    for inst in instances:
        if len(inst.left) != 1 or len(inst.right) != 1:
            return []
        (lsign, lsrc, lids), (rsign, rsrc, rnum) = inst.left[0], inst.right[0]
        if (lsign, lsrc, len(lids), rsign, rsrc) != (1.0, "v", 1, 1.0, "n"):
            return []
        ids.append(lids[0])
        bounds.add(rnum[0])
    if len(bounds) != 1 or round(next(iter(bounds)), 6) != next(iter(bounds)):
        return []  # a bound with more than 6 decimals: rounding could turn x <= c into round(x) > c
    names["PICK"], names["BOUND"] = itemgetter(*ids), bounds.pop()
    extreme = "max(xs) <= BOUND" if rule.operator == "<=" else "min(xs) >= BOUND"
    return [
        " if not unknown:",
        "  try:",
        "   xs = PICK(values)",
        "  except KeyError:",
        "   xs = (None,)",
        f"  if None not in xs and sum(xs) == sum(xs) and {extreme}:",  # NaN anywhere: not a shortcut
        "   return out",
    ]


def _instance_code(k: int, inst: Instance, rule: Rule, names: dict[str, object]) -> list[str]:
    terms = inst.left + inst.right
    here = frozenset(i for _, src, ids in terms if src in "vc" for i in ids)
    before = frozenset(i for _, src, ids in terms if src == "p" for i in ids)
    guards = []
    if here:
        names[f"U{k}"] = here
        guards.append(f"not (unknown and not unknown.isdisjoint(U{k}))")
    if before:
        names[f"P{k}"] = before
        guards.append(f"not (prev_unknown and not prev_unknown.isdisjoint(P{k}))")
    body = [" l = 0.0", " r = 0.0", " m = 0"]
    for var, side in (("l", inst.left), ("r", inst.right)):
        body += _side_code(var, side)
    refs = sum(len(ids) for _, src, ids in terms if src != "n")
    # as the loop: skip only when something is missing (all of it, for skip_if_all) — never with no references
    test = {"skip_if_any": "not m", "skip_if_all": f"not m or m != {refs}"}.get(rule.missing, "True")
    compare = {
        "==": "not (abs(lv - rv) <= TOL)",
        "!=": "abs(lv - rv) <= TOL",
    }.get(rule.operator, f"not (lv {rule.operator} rv)")
    body += [
        f" if {test}:",
        "  lv = int(l) if l.is_integer() else round(l, 6)",
        "  rv = int(r) if r.is_integer() else round(r, 6)",
        f"  if {compare}:",
        f"   out.append(({k}, lv, rv))",
    ]
    head = f" if {' and '.join(guards)}:" if guards else " if True:"
    return [head] + [" " + line for line in body]


def _side_code(var: str, terms: list[Term]) -> list[str]:
    out = []
    get = {"v": "vg", "c": "cg", "p": "pg"}
    for sign, source, ids in terms:
        if source == "n":
            out.append(f" {var} += {sign * ids[0]!r}")
            continue
        add = f"{var} += x" if sign == 1.0 else f"{var} -= x" if sign == -1.0 else f"{var} += {sign!r} * x"
        for cid in ids:
            out += [f" x = {get[source]}({cid!r})", " if x is None:", "  m += 1", " else:", f"  {add}"]
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
