"""Write what `nianbao import` read: a filled return workbook (our template, so check,
consolidate and --annotate work on it unchanged) and a JSON file beside it.

Output names are unique within a run and never replace an input, an earlier output of the
same run, or (unless the user asks with --overwrite) any file already there: two reports of
the same unit and year get `_2`, `_3`… instead of silently replacing each other. Long Chinese
names are shortened by bytes so that no name exceeds the 255-byte limit of common file systems.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..fileio import atomic_write_text, safe_filename
from ..findings import fmt_num
from ..report import Number, Report, derive_totals
from ..roster import Unit
from ..spec import Format, formats
from ..template import ReturnContent, write_return

MAX_NAME_BYTES = 255


def fit_bytes(text: str, limit: int) -> str:
    """The longest prefix of ``text`` whose UTF-8 form has at most ``limit`` bytes (never half a character)."""
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: max(0, limit)].decode("utf-8", "ignore")


def _resolved(p: Path) -> Path:
    try:
        return Path(p).resolve()
    except OSError:
        return Path(p).absolute()


class OutputNames:
    """Chooses the output names of one run."""

    def __init__(self, out_dir: Path, inputs: Iterable[Path] = (), overwrite: bool = False):
        self.out_dir = Path(out_dir)
        self.overwrite = overwrite
        self.protected = {_resolved(p) for p in inputs}
        self.used: set[Path] = set()

    def pair(self, report: Report) -> tuple[Path, Path]:
        """(workbook, json) for one report: free names, reserved for this run."""
        unit = safe_filename(report.unit_name or "单位未知", 10**6)
        for n in range(1, 10_000):
            tail = f"_{report.year or '年度未知'}年_导入" + ("" if n == 1 else f"_{n}")
            room = MAX_NAME_BYTES - len((tail + ".xlsx").encode("utf-8"))
            stem = (fit_bytes(unit, room).rstrip(" .") or "单位") + tail
            paths = (self.out_dir / f"{stem}.xlsx", self.out_dir / f"{stem}.json")
            if any(_resolved(p) in self.used or _resolved(p) in self.protected for p in paths):
                continue
            if not self.overwrite and any(p.exists() for p in paths):
                continue
            self.used.update(_resolved(p) for p in paths)
            return paths
        raise RuntimeError("no free output name")  # pragma: no cover - 10,000 reports of one unit and year


def write_imported(report: Report, out_dir: Path, names: OutputNames | None = None) -> tuple[Path, Path]:
    """Write the workbook and the JSON of one imported report; returns their paths."""
    from ..jsonout import dumps, file_json

    fmt = formats()[report.format_id]
    xlsx, js = (names or OutputNames(out_dir)).pair(report)
    values = {c.id: None if c.id in report.unknown else report.values.get(c.id) for c in fmt.inputs}
    printed, notes = printed_totals(fmt, report, values)
    content = ReturnContent(
        unit=Unit(report.unit_code, report.unit_name, report.unit_type),
        year=report.year or 0,
        values=values,
        raw=printed,
        notes=notes,
        cover={"note": f"由 nianbao 从已发布的年报导入：{report.provenance.name}（空白表示原文缺失或无法确定）"},
    )
    write_return(xlsx, fmt, content)
    data = {"tool": "nianbao", **file_json(report)}
    atomic_write_text(js, dumps(data) + "\n")  # never NaN/Infinity, which JSON does not have
    return xlsx, js


def printed_totals(
    fmt: Format, report: Report, inputs: dict[str, Number | None]
) -> tuple[dict[str, Number], dict[tuple[str, str], str]]:
    """The totals to write as the figures the report printed, each with its note: every total whose
    printed figure differs from what the template's formula would show over the cells written (a
    report that printed an inconsistent total, or a total whose parts could not all be read). The
    return then shows what was published; `check` reports each as a total that is no formula."""
    formula = {k: 0 if v is None else v for k, v in derive_totals(fmt, {k: v or 0 for k, v in inputs.items()}).items()}
    raw: dict[str, Number] = {}
    notes: dict[tuple[str, str], str] = {}
    for c in fmt.totals:
        shown = report.cached.get(c.id)
        if shown is None or shown == formula.get(c.id):
            continue
        raw[c.id] = shown
        why = "其中有原文缺失或无法确定的分项" if any(p in report.unknown for p in c.parts) else "原文数字与分项之和不一致"
        notes[(c.sheet_name, c.a1)] = (
            f"已发布的年报此格印为{fmt_num(shown)}，按本表分项计算为{fmt_num(formula.get(c.id, 0))}（{why}）。"
            "此处保留原文数字而非公式，请向发布单位核实。"
        )
    return raw, notes
