"""The expression language of the format definition's rules: parsed once per loaded format.

A rule's sides are tiny expressions — cell ids joined by + and -, numbers, an optional factor
(``10 * prev(x)``), ``sum(glob)``, ``cached(id)``, ``parts(id)``, ``prev(id)`` — parsed here, never
eval'd. ``Format.compiled`` (toolkit/spec.py) holds each rule's parsed instances (``CompiledRule``),
so parsing happens once per format definition, not per return and not in a module dictionary; the
rule's generated check function is made on first use and kept on the same object.

This module sits with the format definition in the lowest layer: it reads a ``Format`` and a
``Report``-shaped object (``values``, ``cached``, ``unknown``, ``previous``) and imports neither.
"""

from __future__ import annotations

import operator as op
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from operator import itemgetter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .spec import Format, Rule

Number = float | int

_TOKEN = re.compile(
    r"\s*([+-])?\s*(?:(\d+(?:\.\d+)?)\s*\*\s*)?"
    r"(?:(cached|parts|sum|prev)\(\s*([^)]*?)\s*\)|([a-z][a-z0-9_]*\.[a-z0-9_\[\]!*?]+\.[a-z0-9_\[\]!*?]+)"
    r"|(\d+(?:\.\d+)?))\s*"
)
OPS = {"==": op.eq, "!=": op.ne, "<=": op.le, ">=": op.ge, "<": op.lt, ">": op.gt}
TOLERANCE = 1e-6

# A parsed expression: (factor, source, ids) terms; source "v" = values, "c" = cached totals,
# "p" = last year's values, "n" = a number (ids holds it). The factor is the sign times an optional
# coefficient (``10 * prev(x)``).
Term = tuple[float, str, tuple]
# The generated check: (values, cached, unknown, prev_values, prev_unknown) → [(instance index, left, right)]
Checker = Callable[..., list[tuple[int, Number, Number]]]


@dataclass
class Side:
    value: Number
    refs: int
    missing: int
    unknown: bool = False


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


def _source(report: Any, source: str) -> tuple[Mapping, set[str] | frozenset[str]]:
    if source == "v":
        return report.values, report.unknown
    if source == "c":
        return report.cached, report.unknown
    prev = report.previous
    return (prev.values, prev.unknown) if prev is not None else ({}, frozenset())


def evaluate_terms(terms: list[Term], report: Any) -> Side:
    """One parsed side on a report; missing cells count 0 here and are counted apart."""
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


@dataclass(frozen=True)
class Instance:
    member: str
    left: list[Term]
    right: list[Term]
    at: str


@dataclass(frozen=True)
class CompiledRule:
    """One rule of one format with its expressions parsed (an instance per for_each value), and the
    generated function that checks them all (``check``, made on first use)."""

    rule: Rule
    instances: tuple[Instance, ...]

    @cached_property
    def check(self) -> Checker:
        return generate(self.rule, self.instances)


def compile_rule(rule: Rule, fmt: Format) -> CompiledRule:
    """The rule's instances with parsed expressions (``Format.compiled`` calls this once per rule)."""
    out = []
    for inst in rule.instances():
        sub = (lambda e, inst=inst: e.format(**inst)) if inst else (lambda e: e)
        left, right = parse(sub(rule.left), fmt), parse(sub(rule.right), fmt)
        out.append(Instance(next(iter(inst.values()), "") if inst else "", left, right, sub(rule.at)))
    return CompiledRule(rule, tuple(out))


# ---------------------------------------------------------------- the generated check


def generate(rule: Rule, instances: tuple[Instance, ...]) -> Checker:
    """The rule's instances as one generated Python function.

    A return has ~160 rule instances of a few cells each; walking their parsed terms costs more
    than reading the file. The function does what ``evaluate_terms`` and the careful loop of
    toolkit/rules.py do, in the same order and with the same float operations, written out per
    instance (cell ids are quoted with repr: the text comes from the format definition and is never
    evaluated)."""
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


def _bound_shortcut(rule: Rule, instances: tuple[Instance, ...], names: dict[str, object]) -> list[str]:
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
