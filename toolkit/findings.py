"""One finding = one located problem. The console table, the JSON report and the
annotated workbook are three renderings of the same list of these."""

from __future__ import annotations

import hashlib
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from .spec import checks, finding_kind, tagged

SEVERITY_ORDER = {"错误": 0, "警告": 1, "提示": 2}


def fmt_num(v: Any) -> str:
    """Numbers as a clerk writes them: 5 not 5.0, 3.25 not 3.2500000001."""
    if v is None:
        return "空"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            return str(v)
        if abs(v) < 1e15 and float(v).is_integer():
            return str(int(v))
        if abs(v) >= 1e15:  # 1e308 as '1e+308', not 309 digits
            return f"{v:.6g}"
        return f"{v:.4f}".rstrip("0").rstrip(".")
    return str(v)


@dataclass
class Finding:
    code: str
    severity: str
    title: str
    message: str
    instruction: str
    file: str = ""
    unit_code: str = ""
    unit_name: str = ""
    sheet: str = ""
    cell: str = ""  # A1 address
    cell_id: str = ""  # stable id of the format definition, when the finding is about a numeric cell
    row_label: str = ""
    col_label: str = ""
    expected: Any = None
    found: Any = None
    delta: Any = None
    fingerprint: str = field(default="")
    kind: str = ""  # 强制性 | 核实性 (spec.KINDS): whether a written 说明 can make it acceptable

    def __post_init__(self) -> None:
        """Every finding knows its kind, also one rebuilt from an archive stored before kinds existed."""
        if not self.kind:
            self.kind = finding_kind(self.code, self.severity)

    @property
    def county_only(self) -> bool:
        """A note for the county (catalogue tag ``county-only``, e.g. "saved by LibreOffice"): kept in
        the JSON and on the county's pages, never shown to a clerk nor listed in a 问题清单."""
        return self.code in tagged("county-only")

    def locate(self) -> str:
        """``表三 …× 自然人（D30）`` — what a clerk needs to find the cell."""
        labels = " × ".join(p for p in (self.row_label, self.col_label) if p)
        if self.sheet and self.cell:
            return f"{self.sheet} {labels}（{self.cell}）" if labels else f"{self.sheet} {self.cell}"
        return self.sheet or ""

    def finish(self, year: int | None = None) -> Finding:
        """Compute the fingerprint: the same problem of the same unit and year at the same place gives
        the same value across runs (an accepted 说明 is bound to it); different ones never share it.
        A finding without a unit (an unreadable file) is told apart by its file, one without a cell
        by what it says."""
        who = self.unit_code or self.unit_name or self.file
        where = (
            (self.sheet, self.cell_id or self.cell)
            if (self.cell or self.cell_id)
            else (self.sheet, str(self.found), str(self.expected), self.message)
        )
        key = "|".join(str(x) for x in (self.code, who, year or "", *where))
        self.fingerprint = hashlib.sha1(key.encode("utf-8")).hexdigest()[:16]
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _visible(text: str) -> str:
    """Text from a file, safe to show: control, escape and direction characters as visible escapes
    (a cell or file name holding ESC[2J must not clear the reviewer's screen)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", text)


def make(code: str, *, where: Any = None, **fields: Any) -> Finding:
    """A finding of a catalogued (non-arithmetic) check; ``where`` may be a spec Cell."""
    ct = checks()[code]
    loc: dict[str, Any] = {}
    if where is not None:
        loc = dict(sheet=where.sheet_name, cell=where.a1, cell_id=where.id, row_label=where.row_label, col_label=where.col_label)
    loc.update({k: fields.pop(k) for k in list(fields) if k in Finding.__dataclass_fields__})
    values = {k: fmt_num(v) if not isinstance(v, str) else _visible(v) for k, v in {**loc, **fields}.items()}
    try:
        message = ct.message.format(**values)
    except (KeyError, IndexError):
        message = ct.message
    try:
        instruction = ct.instruction.format(**values)
    except (KeyError, IndexError):
        instruction = ct.instruction
    return Finding(code=code, severity=ct.severity, title=ct.title, message=message, instruction=instruction, kind=ct.kind, **loc)


NAMED = 3  # files a message names: 10,000 copies of one return are named by their count, not listed


def few_names(names: list[str], total: int | None = None, limit: int = NAMED) -> str:
    """'a、b、c等N份': a few file names and how many there are (``total``, default all of ``names``),
    never the full list: a message per copy that listed every other copy made a batch of N copies
    cost memory and output in N²."""
    total = len(names) if total is None else total
    shown = names[:limit]
    return "、".join(shown) + (f"等{total}份" if total > len(shown) else "")


def _a1_key(addr: str) -> tuple[int, str]:
    letters = addr.rstrip("0123456789")
    digits = addr[len(letters) :]
    return (int(digits) if digits else 0, letters.rjust(3))


def sort_key(f: Finding) -> tuple:
    return (f.file, SEVERITY_ORDER.get(f.severity, 9), f.sheet, _a1_key(f.cell), f.code)


def counts(findings: list[Finding]) -> dict[str, int]:
    out = {"错误": 0, "警告": 0, "提示": 0}
    for f in findings:
        out[f.severity] = out.get(f.severity, 0) + 1
    return out
