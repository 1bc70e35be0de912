"""Published report (web text, HTML, PDF) → `Report`, so the same rules audit what was published.

Every input is first turned into a stream of cells in reading order — a flattened
web page ("cell |" per line), HTML <td>s, or `pdftotext -layout` columns — and then
the format definition is walked row by row: find the row's label (fuzzily: full- and
half-width punctuation, small typos, line breaks), take the numbers that follow.
Blank cells stay missing (None), never 0. Numbers an extractor ran together are split
where exactly one split satisfies the row total.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import re
import shutil
import subprocess
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from .errors import NianbaoError
from .findings import Finding, make
from .report import Number, Provenance, Report, derive_totals
from .spec import Cell, Format, Label, Sheet, current_format, formats

# ---------------------------------------------------------------- cells


@dataclass
class Tok:
    text: str
    line: int

    @property
    def number(self) -> Number | None:
        return parse_number(self.text)


_NUM = re.compile(r"[+-]?\d+(?:\.\d+)?")


def parse_number(text: str) -> Number | None:
    s = unicodedata.normalize("NFKC", text).strip().replace(",", "").replace(" ", "")
    if not _NUM.fullmatch(s):
        return None
    f = float(s)
    return int(f) if f.is_integer() and "." not in s else f


def norm(text: str) -> str:
    """Label comparison form: NFKC (（）→()), no spaces, unified punctuation and quotes."""
    t = unicodedata.normalize("NFKC", text)
    t = re.sub(r"\s+", "", t)
    return t.replace("，", ",").replace("、", ",").replace("“", '"').replace("”", '"').replace("：", ":")


def tokens_from_text(text: str) -> list[Tok]:
    """Plain text: '|'-flattened cells (the seed's shape) or space-separated columns (pdftotext -layout)."""
    out: list[Tok] = []
    for n, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if not stripped:
            continue
        if set(stripped) <= {"|"}:  # '||', '|||': empty merged cells, not cells
            continue
        if "|" in stripped:
            parts = stripped.split("|")
            if stripped.endswith("|"):
                parts = parts[:-1]
            for p in parts:
                out.append(Tok(p.strip(), n))
            continue
        cells = re.split(r"\s{2,}|\t", stripped)
        for c in cells:
            # "0 0 0 0" inside one column run: numbers separated by single spaces
            if re.fullmatch(r"[\d.,]+(?: [\d.,]+)+", c):
                out.extend(Tok(x, n) for x in c.split(" "))
            else:
                out.append(Tok(c.strip(), n))
    return out


def tokens_from_html(data: bytes) -> list[Tok]:
    from lxml import html as lhtml

    declared = re.search(rb"""<meta[^>]+charset=["']?([\w-]+)""", data[:4096], re.IGNORECASE)
    encoding = declared.group(1).decode("ascii") if declared else None
    if encoding is None:  # no declaration: Chinese sites use UTF-8 or GBK
        try:
            data.decode("utf-8")
            encoding = "utf-8"
        except UnicodeDecodeError:
            encoding = "gb18030"
    try:
        root = lhtml.fromstring(data, parser=lhtml.HTMLParser(encoding=encoding))
    except Exception as e:  # lxml raises several types on broken markup
        raise NianbaoError(f"网页无法解析：{e}") from e
    for bad in root.xpath("//script|//style"):
        bad.drop_tree()
    out: list[Tok] = []
    line = 0
    for el in root.iter():
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.lower()
        if tag in ("td", "th"):
            line += 1
            out.append(Tok(" ".join(el.text_content().split()), line))
        elif tag in ("p", "h1", "h2", "h3", "h4", "li", "title") and not el.xpath("ancestor::table"):
            line += 1
            text = " ".join(el.text_content().split())
            if text:
                out.append(Tok(text, line))
    return out


def pdf_text(path: Path) -> str:
    exe = shutil.which("pdftotext")
    if not exe:
        raise NianbaoError("读取PDF需要 pdftotext（poppler-utils）。请安装：apt-get install poppler-utils")
    r = subprocess.run([exe, "-layout", "-enc", "UTF-8", str(path), "-"], capture_output=True, timeout=120)
    if r.returncode != 0:
        raise NianbaoError(f"PDF文件 {path.name} 无法读取：{r.stderr.decode('utf-8', 'replace')[:200]}")
    return r.stdout.decode("utf-8", "replace")


# ---------------------------------------------------------------- format detection

TRIAL_MARKERS = ("第二十条第(九)项", "政府集中采购", "采购项目数量", "本年新制作数量", "对外公开总数量", "上一年项目数量",
                 "本年增/减", "其他对外管理服务事项")
NEW_MARKERS = ("本年制发件数", "本年废止件数", "现行有效件数", "本年处理决定数量")
SIX_SUBITEM = "行政机关不再处理其政府信息公开申请"


def detect_format(text: str) -> tuple[str, str]:
    """('zfxxgk-2021' | 'zfxxgk-2019', 'new' | 'trial' | 'hybrid')."""
    t = norm(text)
    trial = any(norm(m) in t for m in TRIAL_MARKERS)
    new = any(norm(m) in t for m in NEW_MARKERS)
    six = t.count(norm(SIX_SUBITEM)) >= 2
    if trial and not six:
        return "zfxxgk-2019", "trial"
    if new and not six and "其他处理" in t:
        return "zfxxgk-2021", "hybrid"
    return "zfxxgk-2021", "new"


# ---------------------------------------------------------------- identity from the text

_TITLE = re.compile(r"([\u4e00-\u9fff（）()·]{2,40}?)(20\d\d)年(?:度)?政府信息公开工作年度报告")
_YEAR_IN_TEXT = re.compile(r"(?:现将|本机关|我[\u4e00-\u9fff]{1,3})?(20\d\d)年(?:度)?(?:政府信息公开|政务公开)")
_LEAD_VERBS = ("严格", "坚持", "认真", "高度", "深入", "全面", "始终", "紧紧", "以习近平", "在", "按照", "根据", "围绕")


def guess_identity(text: str) -> tuple[str, int | None]:
    m = _TITLE.search(text)
    if m:
        return re.sub(r"^(关于|中共)", "", m.group(1).strip()), int(m.group(2))
    year = None
    y = _YEAR_IN_TEXT.search(text)
    if y:
        year = int(y.group(1))
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    unit = ""
    for verb in _LEAD_VERBS:
        i = first.find(verb)
        if 1 < i <= 30:
            unit = first[:i].rstrip("，,。")
            break
    return unit, year


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


# ---------------------------------------------------------------- walking the tables


@dataclass
class Parsed:
    values: dict[str, Number | None] = field(default_factory=dict)  # inputs and printed totals
    problems: list[Finding] = field(default_factory=list)
    rows_read: int = 0
    rows_total: int = 0
    pending: list = field(default_factory=list)  # (cells, candidate splits, label) settled by column sums


def _row_label(sheet: Sheet, row: int) -> Label | None:
    """The label that names a data row: the right-most label cell starting on that row."""
    first_data = min(c.col for c in sheet.cells if c.row == row)
    on_row = [lb for lb in sheet.labels if lb.row == row and lb.col < first_data]
    return max(on_row, key=lambda lb: lb.col) if on_row else None


def _matches(tok: str, label: str) -> bool:
    a, b = norm(tok), norm(label)
    if not a:
        return False
    if a == b:
        return True
    if len(a) >= 4 and b.startswith(a) and len(a) >= 0.5 * len(b):  # a label broken across lines
        return True
    if len(a) > len(b) // 2 and b[:4] in a:  # "（六）其他处理 2.申请人…": a group label run into the row label
        cut = a.find(b[:4])
        tail = a[cut:]
        if (b.startswith(tail) and len(tail) >= 0.5 * len(b)) or tail == b:
            return True
    return len(a) >= 4 and difflib.SequenceMatcher(None, a, b).ratio() >= 0.85


def _split_runs(raw: list[str], need: int, check, limit: int = 20) -> list[list[int]]:
    """Digits an extractor ran together ('0000000', '1200') → every split into ``need`` numbers
    (no leading zeros) that passes ``check`` (the row total); at most ``limit`` of them."""
    digits = "".join(raw)
    if not digits.isdigit() or len(digits) < need or len(digits) > need + 12:
        return []
    found = []
    for cuts in itertools.combinations(range(1, len(digits)), need - 1):
        parts = [digits[i:j] for i, j in zip((0, *cuts), (*cuts, len(digits)), strict=True)]
        if any(len(p) > 1 and p[0] == "0" for p in parts):
            continue
        nums = [int(p) for p in parts]
        if check(nums):
            found.append(nums)
            if len(found) >= limit:
                break
    return found


def _read_numbers(toks: list[Tok], i: int, need: int, label: str) -> tuple[list[Number | None] | None, int]:
    """The ``need`` values after position ``i``: numbers, '' (blank → None), stopping at text."""
    vals: list[Number | None] = []
    j = i
    while j < len(toks) and len(vals) < need:
        t = toks[j].text
        n = toks[j].number
        if n is not None:
            vals.append(n)
        elif t == "":
            vals.append(None)
        elif norm(t) and norm(t) in norm(label):  # the rest of a label broken across lines
            pass
        else:
            break
        j += 1
    return vals, j


def walk(fmt: Format, toks: list[Tok], name: str) -> Parsed:
    out = Parsed()
    pos = 0
    numbers_after = [0] * (len(toks) + 1)  # how many numbers remain from each position on
    for i in range(len(toks) - 1, -1, -1):
        numbers_after[i] = numbers_after[i + 1] + (toks[i].number is not None)
    ended = False
    for sheet in fmt.sheets:
        if not sheet.published:  # e.g. 信息处理费: reported in prose, not as a table
            continue
        rows = sorted({c.row for c in sheet.cells})
        for row in rows:
            cells = sorted((c for c in sheet.cells if c.row == row), key=lambda c: c.col)
            out.rows_total += 1
            if ended:
                continue
            if numbers_after[min(pos, len(toks))] == 0 and out.rows_read:
                # the text stops here (a page cut short): one finding, the rest stays unknown
                _unreadable(out, sheet, cells[0], name,
                            f"原文在{sheet.name}“{cells[0].row_label.split(' ')[-1] or sheet.title}”之前结束（可能被截断），"
                            "此后各行缺失")
                ended = True
                continue
            lb = _row_label(sheet, row)
            if lb is None:  # 表四: no row label; its numbers follow the last header label
                header = [x for x in sheet.labels if x.row < row]
                last = max(header, key=lambda x: (x.row, x.col))
                start = _find(toks, pos, [x.text for x in header if x.row == sheet.first_row], window=4000)
                if start is None:
                    _unreadable(out, sheet, cells[0], name, f"找不到{sheet.name}（{sheet.title}）的表头")
                    continue
                k = start
                while k < len(toks) and toks[k].number is None and toks[k].text != "":
                    k += 1
                label_text = last.text
            else:
                k = _find(toks, pos, [lb.text], window=600)
                if k is None:
                    _unreadable(out, sheet, cells[0], name, f"找不到“{lb.text}”一行")
                    continue
                label_text = lb.text
                k += 1
            vals, end = _read_numbers(toks, k, len(cells), label_text)
            if not vals and lb is not None:
                # pdftotext puts a row's numbers on the line above its label when a tall merged
                # label beside it is centred there: take the unconsumed numbers just before the label
                before = [t for t in toks[pos:k - 1] if t.number is not None]
                if len(before) == len(cells):
                    vals, end = [t.number for t in before], k
            if vals and len(vals) < len(cells) and end >= len(toks):  # the text stops inside this row
                _unreadable(out, sheet, cells[len(vals)], name, f"原文在“{label_text}”一行中途截断，此后各行缺失")
                for c, v in zip(cells, vals, strict=False):
                    out.values[c.id] = v
                ended = True
                continue
            if len(vals) < len(cells):
                splits = _resolve_run(fmt, cells, toks, k, end)
                if len(splits) > 1:  # decided later by the column sums (the other rows are not read yet)
                    out.pending.append((cells, splits, label_text))
                    out.rows_read += 1
                    pos = end
                    continue
                if not splits:
                    _unreadable(out, sheet, cells[0], name, f"“{label_text}”一行只读到{len(vals)}个数字，应有{len(cells)}个")
                    pos = max(pos, end)
                    continue
                vals = splits[0]
            for c, v in zip(cells, vals, strict=True):
                out.values[c.id] = v
                if v is None:
                    out.problems.append(make("value-missing", where=c, file=name))
            out.rows_read += 1
            pos = end
    return out


def _resolve_run(fmt: Format, cells: list[Cell], toks: list[Tok], k: int, end: int) -> list[list[int]]:
    raw = [t.text.strip() for t in toks[k:end]]
    tot = [i for i, c in enumerate(cells) if c.is_total]

    def check(nums: list[int]) -> bool:
        for i in tot:
            parts = [cells.index(fmt.cells[p]) for p in cells[i].parts if fmt.cells[p] in cells]
            if parts and sum(nums[p] for p in parts) != nums[i]:
                return False
        return bool(tot)

    return _split_runs(raw, len(cells), check)


def settle_pending(fmt: Format, parsed: Parsed, name: str) -> None:
    """Rows whose run-together digits split several ways: keep the split under which every
    错误 rule touching the row holds (the column sums: （七）总计, O1); if not exactly one, unreadable."""
    from .rules import run_rules

    for cells, splits, label in parsed.pending:
        ids = {c.id for c in cells}
        good = []
        for nums in splits:
            trial = dict(parsed.values) | {c.id: v for c, v in zip(cells, nums, strict=True)}
            rep = Report(values=derive_totals(fmt, {c.id: trial.get(c.id) for c in fmt.inputs}),
                         cached={c.id: trial.get(c.id) for c in fmt.totals},
                         unknown={c.id for c in fmt.inputs if c.id not in trial})
            bad = [f for f in run_rules(fmt, rep) if f.severity == "错误"
                   and (f.cell_id in ids or any(p in ids for p in fmt.cells[f.cell_id].parts)
                        or f.cell_id.split(".")[2] in {c.col_id for c in cells})]
            if not bad:
                good.append(nums)
        if len(good) == 1:
            for c, v in zip(cells, good[0], strict=True):
                parsed.values[c.id] = v
        else:
            sheet = fmt.sheet(cells[0].sheet_id)
            _unreadable(parsed, sheet, cells[0], name,
                        f"“{label}”一行的数字连在一起，有{len(splits)}种拆分都符合行合计，按列合计也无法唯一确定")


def _find(toks: list[Tok], pos: int, labels: list[str], window: int) -> int | None:
    for i in range(pos, min(len(toks), pos + window)):
        if any(_matches(toks[i].text, lb) for lb in labels):
            return i
    return None


def _unreadable(out: Parsed, sheet: Sheet, cell: Cell, name: str, detail: str) -> None:
    out.problems.append(make("table-unreadable", file=name, sheet=sheet.name, cell=cell.a1,
                             row_label=cell.row_label, detail=detail))


# ---------------------------------------------------------------- narrative vs tables

NARRATIVE = (
    (r"(?:收到|受理)[^。；，,复诉]{0,12}?政府信息公开申请(?:共)?(\d+)\s*[件项个条]", "t3.r1.tot", "本年新收申请"),
    (r"上年(?:度)?结转[^。；，,]{0,12}?(\d+)\s*[件项个条]", "t3.r2.tot", "上年结转"),
    (r"结转(?:至)?下(?:一)?年度[^。；，,]{0,8}?(\d+)\s*[件项个条]", "t3.r4.tot", "结转下年度"),
    (r"行政复议(?:案件)?(\d+)\s*[件起]", "t4.r1.rv_tot", "行政复议"),
)
SECTIONS = ("一、总体情况", "二、主动公开政府信息情况", "三、收到和处理政府信息公开申请情况",
            "四、政府信息公开行政复议、行政诉讼情况", "五、存在的主要问题及改进情况", "六、其他需要报告的事项")


def audit_text(text: str, values: dict[str, Number | None], name: str) -> list[Finding]:
    out = []
    prose = "\n".join(line for line in text.splitlines() if len(line.strip()) > 15 and "|" not in line)
    for pattern, cid, what in NARRATIVE:
        for m in re.finditer(pattern, prose):
            stated = int(m.group(1))
            table = values.get(cid)
            if table is not None and stated != table:
                start = max(0, prose.rfind("。", 0, m.start()) + 1)
                endp = prose.find("。", m.end())
                sentence = prose[start: endp + 1 if endp >= 0 else m.end() + 20].strip()
                out.append(make("narrative-mismatch", file=name, detail=what, found=stated, expected=table,
                                quote=sentence[:120], cell_id=cid))
                break
    labels = {norm(lb.text) for f in formats().values() for sh in f.sheets for lb in sh.labels}
    def table_row(h: str) -> bool:
        return any(h.startswith(lb) for lb in labels)

    headings = [h for line in text.splitlines() if re.match(r"\s*[一二三四五六]、", line) and "|" not in line
                and not table_row(h := re.sub(r"[\d.\s]+$", "", norm(line)))]
    for title in SECTIONS:
        num = title.split("、")[0]
        got = next((h for h in headings if h.startswith(num + ",")), None)
        if got is not None and got != norm(title) and not got.startswith(norm(title)):
            out.append(make("section-title", file=name, expected=title, found=got.replace(",", "、", 1)))
    return out


# ---------------------------------------------------------------- the report


def read_published(path: Path, unit: str | None = None, year: int | None = None, unit_type: str | None = None) -> Report:
    """One published report → Report (with reading findings). Raises NianbaoError when it is not text at all."""
    data = path.read_bytes()
    suffix = path.suffix.lower()
    if suffix == ".pdf" or data[:5] == b"%PDF-":
        text = pdf_text(path)
        toks = tokens_from_text(text)
    elif suffix in (".html", ".htm") or data[:200].lstrip().lower().startswith((b"<!doctype html", b"<html")):
        toks = tokens_from_html(data)
        text = "\n".join(t.text for t in toks)
    else:
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            try:
                text = data.decode("gb18030")
            except UnicodeDecodeError as e:
                raise NianbaoError(f"{path.name} 不是文本、网页或PDF文件") from e
        toks = tokens_from_text(text)
    name = path.name
    fmt_id, shape = detect_format(text)
    fmt = formats()[fmt_id]
    g_unit, g_year = guess_identity(text)
    unit = unit or g_unit or path.stem
    year = year or g_year
    rep = Report(format_id=fmt.id, format_version=fmt.version, year=year, unit_name=unit,
                 unit_code="X" + hashlib.sha1(unit.encode("utf-8")).hexdigest()[:8],
                 unit_type=unit_type or level_of(unit), level="填报单位",
                 provenance=Provenance(path=str(path), name=name, sha256=hashlib.sha256(data).hexdigest(),
                                       size=len(data), application=f"published {shape}"))
    parsed = walk(fmt, toks, name)
    settle_pending(fmt, parsed, name)
    rep.findings.extend(parsed.problems)
    if parsed.rows_read == 0:
        rep.readable = False
        rep.findings = [make("table-unreadable", file=name, detail="没有找到任何官方表格中的数字")]
        if fmt.status != "current" and (year is None or year >= current_format().valid_from_year):
            rep.findings.append(make("format-outdated", file=name, found=fmt.title, expected=current_format().title,
                                     year=year or ""))
        for f in rep.findings:
            f.unit_name = unit
        return rep
    inputs = {c.id: parsed.values.get(c.id) for c in fmt.inputs}
    rep.values = derive_totals(fmt, inputs)
    rep.cached = {c.id: parsed.values.get(c.id) for c in fmt.totals}
    # cells never read (a cut-off or unreadable row) are unknown, and so is every total built on them
    rep.unknown = {c.id for c in fmt.inputs if c.id not in parsed.values and fmt.sheet(c.sheet_id).published}
    for c in fmt.totals:  # totals come after their parts in the definition order
        if c.id not in parsed.values or any(p in rep.unknown for p in c.parts):
            rep.unknown.add(c.id)
    if shape == "hybrid":
        rep.findings.append(make("format-hybrid", file=name))
    rep.findings.extend(audit_text(text, {**rep.values, **{k: v for k, v in rep.cached.items() if v is not None}}, name))
    for f in rep.findings:
        f.unit_name = unit
    return rep


def cross_year(reports: list[Report]) -> list[Finding]:
    """I6 carry-over (上年结转 = last year's 结转下年度) and I9 现行有效 continuity across years of one unit."""
    out = []
    by_unit: dict[str, list[Report]] = {}
    for r in reports:
        if r.readable and r.year:
            by_unit.setdefault(r.unit_name, []).append(r)
    fmt = current_format()
    for unit, reps in by_unit.items():
        reps.sort(key=lambda r: r.year or 0)
        for prev, cur in itertools.pairwise(reps):
            if (cur.year or 0) - (prev.year or 0) != 1:
                continue
            carry = []
            for c in fmt.sheet("t3").cells:
                if c.row_id != "r2":
                    continue
                last = prev.values.get(f"t3.r4.{c.col_id}")
                now = cur.values.get(c.id)
                if last is not None and now is not None and last != now:
                    carry.append(make("carryover-mismatch", where=c, file=cur.provenance.name, unit_name=unit,
                                      found=now, expected=last, delta=now - last, prev_year=prev.year,
                                      year=cur.year))
            if any(not fmt.cells[f.cell_id].is_total for f in carry):  # the 总计 column only when alone
                carry = [f for f in carry if not fmt.cells[f.cell_id].is_total]
            out.extend(carry)
            for kind in ("reg", "norm"):
                pv, made = prev.values.get(f"t2.{kind}.valid"), cur.values.get(f"t2.{kind}.made")
                rep_, now = cur.values.get(f"t2.{kind}.repealed"), cur.values.get(f"t2.{kind}.valid")
                if None not in (pv, made, rep_, now) and now != pv + made - rep_:
                    cell = fmt.cells[f"t2.{kind}.valid"]
                    out.append(make("valid-continuity", where=cell, file=cur.provenance.name, unit_name=unit,
                                    found=now, expected=pv + made - rep_, prev_year=prev.year))
    for f in out:
        f.finish()
    return out
