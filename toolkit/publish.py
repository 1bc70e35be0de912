"""Write what `nianbao import` read: a filled return workbook (our template, so check,
consolidate and --annotate work on it unchanged) and a JSON file beside it."""

from __future__ import annotations

import json
from pathlib import Path

from .fileio import atomic_write_text, safe_filename
from .findings import fmt_num
from .report import Report
from .roster import Unit
from .spec import formats
from .template import ReturnContent, write_return


def write_imported(report: Report, out_dir: Path) -> tuple[Path, Path]:
    fmt = formats()[report.format_id]
    stem = safe_filename(f"{report.unit_name}_{report.year or '年度未知'}年_导入", 90)
    xlsx, js = Path(out_dir) / f"{stem}.xlsx", Path(out_dir) / f"{stem}.json"
    content = ReturnContent(
        unit=Unit(report.unit_code, report.unit_name, report.unit_type), year=report.year or 0,
        values={c.id: report.values.get(c.id) for c in fmt.inputs},
        cover={"note": f"由 nianbao 从已发布的年报导入：{report.provenance.name}（空白表示原文缺失）"},
    )
    write_return(xlsx, fmt, content)
    data = {**report.to_dict(), "findings": [f.to_dict() for f in report.findings]}
    atomic_write_text(js, json.dumps(data, ensure_ascii=False, indent=2, default=fmt_num) + "\n")
    return xlsx, js
