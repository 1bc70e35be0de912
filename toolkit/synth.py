"""Synthetic but realistic returns, for property tests and benchmarks.

Real townships report almost only zeros; a few county departments report
thousands of 许可/处罚. Every generated return satisfies O1 in every column,
unless ``faulty`` asks for a planted error.
"""

from __future__ import annotations

import random

from .report import Number
from .spec import Format


def _table2(vals: dict[str, Number], rng: random.Random, some, busy: bool) -> None:
    scale = 5000 if busy else 200
    for cid in ("t2.license.n", "t2.penalty.n", "t2.coercion.n"):
        if cid in vals:
            vals[cid] = some(0.4, scale if cid != "t2.coercion.n" else scale // 50 + 1)
    for cid in ("t2.norm.made", "t2.norm.repealed"):
        if cid in vals:
            vals[cid] = some(0.7, 3)
    if "t2.norm.valid" in vals:
        vals["t2.norm.valid"] = vals.get("t2.norm.repealed", 0) + some(0.5, 20)
    if "t2.fees.amt" in vals:
        vals["t2.fees.amt"] = round(rng.uniform(0, 120), 2) if busy and rng.random() < 0.5 else 0


def _table3(fmt: Format, vals: dict[str, Number], rng: random.Random, some, busy: bool) -> None:
    """Per column: new + carried = handled + carried on (O1), the handled ones spread over results."""
    sheet3 = fmt.sheet("t3")
    result_rows = sorted({c.row_id for c in sheet3.cells if c.row_id.startswith("r3_") and not c.is_total})
    for col in sorted({c.col_id for c in sheet3.cells if not c.is_total}):
        new = some(0.75 if not busy else 0.3, 30 if busy else 4)
        carried = some(0.85, 3)
        total = new + carried
        out = rng.randint(0, min(total, 2)) if total else 0
        vals[f"t3.r1.{col}"], vals[f"t3.r2.{col}"], vals[f"t3.r4.{col}"] = new, carried, out
        for _ in range(total - out):
            vals[f"t3.{rng.choice(result_rows)}.{col}"] += 1


def random_values(fmt: Format, rng: random.Random, busy: bool = False, faulty: bool = False) -> dict[str, Number]:
    """Input values of one consistent return (busy = a department with large numbers)."""
    vals: dict[str, Number] = {c.id: 0 for c in fmt.inputs}

    def some(p_zero: float, hi: int) -> int:
        return 0 if rng.random() < p_zero else rng.randint(1, hi)

    _table2(vals, rng, some, busy)
    if any(s.id == "t3" for s in fmt.sheets):
        _table3(fmt, vals, rng, some, busy)
        if faulty:
            vals["t3.r1.np"] += 1
    for c in fmt.inputs:
        if c.sheet_id == "t4" and rng.random() < (0.15 if busy else 0.03):
            vals[c.id] = rng.randint(1, 5)
    return vals
