"""The prose of a published report against its tables, and its section titles against 30号.

A report whose text says "收到申请3件" while its table says 0 has a defect a reviewer wants
to see, as does a section titled differently from the notice.
"""

from __future__ import annotations

import re

from ..findings import Finding, fmt_num, make
from ..report import Number
from ..spec import current_format, formats
from .tokens import norm

NARRATIVE = (
    (r"(?:收到|受理)[^。；，,复诉]{0,12}?政府信息公开申请(?:共)?(\d+)\s*[件项个条]", "t3.r1.tot", "本年新收申请"),
    (r"上年(?:度)?结转[^。；，,]{0,12}?(\d+)\s*[件项个条]", "t3.r2.tot", "上年结转"),
    (r"结转(?:至)?下(?:一)?年度[^。；，,]{0,8}?(\d+)\s*[件项个条]", "t3.r4.tot", "结转下年度"),
    (r"行政复议(?:案件)?(\d+)\s*[件起]", "t4.r1.rv_tot", "行政复议"),
    # 表二: '共制定规范性文件0件,废止规范性文件0件,现行有效的规范性文件0件' (not '规章、行政规范性文件0件': both rows)
    (r"(?<!、)(?:制定|制发|印发)(?:行政)?规范性文件(?:共)?(\d+)\s*件", "t2.norm.made", "制定规范性文件"),
    (r"废止(?:行政)?规范性文件(?:共)?(\d+)\s*件", "t2.norm.repealed", "废止规范性文件"),
    (r"现行有效(?:的)?(?:行政)?规范性文件(?:共)?(\d+)\s*件", "t2.norm.valid", "现行有效规范性文件"),
)


def _table_says(cid: str, values: dict[str, Number | None], candidates: dict[str, set[Number | None]]) -> set[Number]:
    """What the table may hold in ``cid``: its value, or every value a run-together row allows."""
    if values.get(cid) is not None:
        return {values[cid]}  # type: ignore[arg-type]
    return {v for v in candidates.get(cid, set()) if v is not None} if None not in candidates.get(cid, {None}) else set()


def audit_text(
    text: str, values: dict[str, Number | None], name: str, candidates: dict[str, set[Number | None]] | None = None
) -> list[Finding]:
    """Narrative figures that disagree with the table, and section titles that differ from 30号.
    A cell whose digits split several ways disagrees only when none of its possible values is the stated one."""
    out = []
    prose = "\n".join(line for line in text.splitlines() if len(line.strip()) > 15 and "|" not in line)
    for pattern, cid, what in NARRATIVE:
        for m in re.finditer(pattern, prose):
            stated = int(m.group(1))
            says = _table_says(cid, values, candidates or {})
            if says and stated not in says:
                table = next(iter(says)) if len(says) == 1 else "或".join(fmt_num(v) for v in sorted(says))
                start = max(0, prose.rfind("。", 0, m.start()) + 1)
                endp = prose.find("。", m.end())
                sentence = prose[start : endp + 1 if endp >= 0 else m.end() + 20].strip()
                out.append(
                    make(
                        "narrative-mismatch",
                        file=name,
                        detail=what,
                        found=stated,
                        expected=table,
                        quote=sentence[:120],
                        cell_id=cid,
                    )
                )
                break
    return out + _section_titles(text, name)


def _section_titles(text: str, name: str) -> list[Finding]:
    labels = {norm(lb.text) for f in formats().values() for sh in f.sheets for lb in sh.labels}

    def table_row(h: str) -> bool:
        return any(h.startswith(lb) for lb in labels)

    headings = [
        h
        for line in text.splitlines()
        if re.match(r"\s*[一二三四五六]、", line)
        and "|" not in line
        and len(line) < 200
        and not table_row(h := re.sub(r"[\d.\s]+$", "", norm(line)))
    ]
    out = []
    for title in current_format().sections:
        num = title.split("、")[0]
        got = next((h for h in headings if h.startswith(num + ",")), None)
        if got is not None and got != norm(title) and not got.startswith(norm(title)):
            out.append(make("section-title", file=name, expected=title, found=got.replace(",", "、", 1)))
    return out
