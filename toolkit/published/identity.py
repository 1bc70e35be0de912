"""Who published a report, for which year, in which table format — and which roster unit it is.

The text rarely says it cleanly: the title may be missing (a copied page), the unit may be
written short or long (with or without 人民政府/办事处, with or without the county prefix),
and a PDF printed from our own template carries its identity on the 封面 instead.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from ..roster import Roster, Unit
from ..textnum import name_variants
from .tokens import norm

# ---------------------------------------------------------------- format detection

TRIAL_MARKERS = (
    "第二十条第(九)项",
    "政府集中采购",
    "采购项目数量",
    "本年新制作数量",
    "对外公开总数量",
    "上一年项目数量",
    "本年增/减",
    "其他对外管理服务事项",
)
NEW_MARKERS = ("本年制发件数", "本年废止件数", "现行有效件数", "本年处理决定数量")
SIX_SUBITEM = "行政机关不再处理其政府信息公开申请"


def detect_format(text: str) -> tuple[str, str]:
    """('zfxxgk-2021' | 'zfxxgk-2019', 'new' | 'trial' | 'hybrid?'). 'hybrid?' is only a suspicion
    from the text: the walk decides (a PDF wraps the long （六） labels across lines)."""
    t = norm(text)
    trial = any(norm(m) in t for m in TRIAL_MARKERS)
    new = any(norm(m) in t for m in NEW_MARKERS)
    six = t.count(norm(SIX_SUBITEM)) >= 2
    if trial and not six:
        return "zfxxgk-2019", "trial"
    if new and not six and "其他处理" in t:
        return "zfxxgk-2021", "hybrid?"
    return "zfxxgk-2021", "new"


# ---------------------------------------------------------------- identity from the text

_TITLE = re.compile(r"([\u4e00-\u9fff（）()·]{2,40}?)(20\d\d)年(?:度)?政府信息公开工作年度报告")
_TITLE_YEAR_FIRST = re.compile(r"(20\d\d)年(?:度)?([\u4e00-\u9fff（）()·]{2,40}?)政府信息公开工作(?:年度|情况)报告")
_YEAR_IN_TEXT = re.compile(r"(?:现将|本机关|我[\u4e00-\u9fff]{1,3})?(20\d\d)年(?:度)?(?:政府信息公开|政务公开)")
_LEAD_VERBS = ("严格", "坚持", "认真", "高度", "深入", "全面", "始终", "紧紧", "以习近平", "在", "按照", "根据", "围绕")


_YEAR_IN_NAME = re.compile(r"(?<!\d)(20[1-4]\d)(?!\d)")


def year_from_name(name: str) -> int | None:
    """'某镇2023年报', '34_liansheng_xiang_2024': the one year a file name gives, else None."""
    years = set(_YEAR_IN_NAME.findall(name))
    return int(years.pop()) if len(years) == 1 else None


def title_lines(text: str, lines: int = 6) -> list[str]:
    """The lines above the first sentence, without spaces ('宝力根苏木 2023 年' → '宝力根苏木2023年')."""
    out: list[str] = []
    for line in text[:4000].splitlines():
        compact = re.sub(r"\s+", "", line)
        if not compact:
            continue
        if "。" in compact or len(compact) > 40 or len(out) >= lines:
            break
        out.append(compact)
    return out


def _title_across_lines(text: str) -> tuple[str, int] | None:
    """A title that a PDF, a page or a narrow column broke across lines ('宝力根苏木2023年' /
    '政府信息公开工作年度报告') joined again. The title starts at a line's start; of several
    starts the lowest is taken, so a breadcrumb or site name above it ('政务公开') is no part of the unit."""
    lines = title_lines(text)
    for i in range(len(lines) - 1, -1, -1):
        block = "".join(lines[i : i + 3])
        m = _TITLE.match(block)
        if m and clean_unit(m.group(1)):
            return clean_unit(m.group(1)), int(m.group(2))
        m = _TITLE_YEAR_FIRST.match(block)
        if m and clean_unit(m.group(2)):
            return clean_unit(m.group(2)), int(m.group(1))
    return None


def guess_identity(text: str) -> tuple[str, int | None]:
    """(unit, year) from the title (also when broken across lines) or the first sentence; '' and None when not certain."""
    head = text[:20000]  # the title and first paragraph are at the top; never scan a huge text
    found = _title_across_lines(head)
    if found is not None:
        return found
    year = None
    for m in _TITLE.finditer(head):
        year = year or int(m.group(2))
        unit = clean_unit(m.group(1))
        if unit:
            return unit, int(m.group(2))
    m = _TITLE_YEAR_FIRST.search(head)  # '2022年度螅镇政府信息公开工作年度报告'
    if m and clean_unit(m.group(2)):
        return clean_unit(m.group(2)), int(m.group(1))
    if year is None and (y := _YEAR_IN_TEXT.search(head)):
        year = int(y.group(1))
    first = next((line.strip() for line in head.splitlines() if line.strip()), "")
    for verb in _LEAD_VERBS:
        i = first.find(verb)
        if 1 < i <= 30:
            return clean_unit(first[:i].rstrip("，,。")), year
    return "", year


_LEADING = re.compile(r"^(?:关于|中共|特编制|编制|现公布|公布|现将|发布|印发|我单位|本单位|本机关)+")


def clean_unit(name: str) -> str:
    """A guessed unit name without the words of the sentence around it ('特编制…', '…关于');
    '' when what is left does not end like a unit's name."""
    name = _LEADING.sub("", name.strip())
    return name if _UNIT_NAME.fullmatch(name) else ""


# what a unit's name ends with; a guess that does not ('一、总体情况本年报') is no name
_UNIT_NAME = re.compile(
    r"[\u4e00-\u9fff（）()·]{1,40}(?:政府|办事处|街道|镇|乡|苏木|嘎查|局|委员会|委|办公室|办|中心|"
    r"厅|部|署|院|所|站|队|馆|会|处|室|社|园区|管委会|监狱|海关|"
    r"省|自治区|市|县|区|旗|州|盟)"  # a whole county's or city's report: '锡林浩特市2025年…'
)


@dataclass(frozen=True)
class Cover:
    """Identity printed on the 封面 of a return made from our own template."""

    unit: str
    code: str
    year: int | None


_COVER_TITLE = re.compile(r"(20\d\d)年度政府信息公开工作年度报告\s*数据填报表")
_COVER_FIELD = re.compile(r"^\s*(填报单位|单位代码|报告年度)[\s:：|]+(\S[^|\n]*?)\s*\|?\s*$", re.MULTILINE)


def own_template_cover(text: str) -> Cover | None:
    """The 封面 of our template (printed to PDF or copied): title line, 填报单位, 单位代码, 报告年度."""
    head = text[:20000]
    title = _COVER_TITLE.search(head)
    if not title:
        return None
    fields: dict[str, str] = {}
    for k, v in _COVER_FIELD.findall(head):
        fields.setdefault(k, v.strip())
    unit = re.match(r"(.+?)\s*[（(]([0-9A-Za-z_-]+)[)）]$", fields.get("填报单位", ""))  # '名称（代码）' on the sheets
    if unit:
        fields["填报单位"] = unit.group(1)
        fields.setdefault("单位代码", unit.group(2))
    if not fields.get("填报单位"):
        return None
    year = fields.get("报告年度", "")
    return Cover(fields["填报单位"], fields.get("单位代码", ""), int(year) if year.isdigit() else int(title.group(1)))


def invented_code(unit: str) -> str:
    """A stable code for a unit that is in no roster: 'X' + 8 hex digits of its name."""
    return "X" + hashlib.sha1(unit.encode("utf-8")).hexdigest()[:8]


def unknown_unit(stem: str) -> str:
    """The name of a report whose text names no unit: said so, with the file it came from."""
    return f"未识别单位（{stem}）"


def level_of(unit: str) -> str:
    """The unit type when the name makes it certain; '其他' otherwise (then I10 does not apply):
    a '…市人民政府' may be a 县级市 or a 设区的市, and only the latter may make 规章."""
    u = unit.replace("人民政府", "").replace("办事处", "")
    if u.endswith("苏木"):
        return "苏木"
    if u.endswith("街道"):
        return "街道"
    if u.endswith(("镇", "乡")):
        return "乡镇"
    if unit.startswith(("国家", "国务院")) or unit.endswith("部"):
        return "国务院部门"
    if unit.endswith("人民政府") and re.search(r"[县区旗]$", u):
        return "县级政府"
    if re.search(r"(局|委员会|办公室|中心|委|办)$", unit):
        if re.search(r"[县旗]|区(?!域)", unit):
            return "县级部门"
        if "省" in unit or "自治区" in unit:
            return "省级部门"
        if "市" in unit:
            return "市级部门"
    return "其他"


# ---------------------------------------------------------------- matching a roster


def match_roster(name: str, roster: Roster) -> tuple[Unit | None, list[Unit]]:
    """The roster unit a published name refers to: exact name first, then the most specific
    shared variant. Returns (unit, []) on a unique match, (None, candidates) when several
    units fit equally well, (None, []) when none does."""
    exact = [u for u in roster.units if u.name == name]
    if len(exact) == 1:
        return exact[0], []
    mine = name_variants(name)
    best: tuple[int, list[Unit]] = (10**9, [])
    for u in roster.units:
        theirs = name_variants(u.name)
        common = [i + j for i, v in enumerate(mine) for j, w in enumerate(theirs) if v == w and len(v) >= 2]
        if not common:
            continue
        score = min(common)
        if score < best[0]:
            best = (score, [u])
        elif score == best[0]:
            best[1].append(u)
    if len(best[1]) == 1:
        return best[1][0], []
    return None, best[1]
