"""The county's roster of reporting units (名册): CSV (UTF-8, UTF-8 with BOM, GBK) or XLSX.

Every problem is reported with the line number a reviewer sees in Excel, because
the roster is typed by hand and is the first thing that goes wrong.
"""

from __future__ import annotations

import csv
import hashlib
import io
import pickle
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from .errors import RosterError
from .textnum import decode_text

COLUMNS = ("单位代码", "单位名称", "单位类型", "上级代码")
# Unit types a roster may use; grouped by the level they belong to.
UNIT_TYPES = (
    "乡镇",
    "乡",
    "镇",
    "街道",
    "苏木",
    "县级政府",
    "县级部门",
    "县级汇总",
    "市级政府",
    "市级部门",
    "市级汇总",
    "省级政府",
    "省级部门",
    "省级汇总",
    "国务院部门",
    "其他",
)
_CODE = re.compile(r"[0-9A-Za-z][0-9A-Za-z_-]{0,31}")
_BAD_NAME = re.compile(r'[\x00-\x1f\x7f<>:"/\\|?*]')


@dataclass(frozen=True)
class Unit:
    code: str
    name: str
    type: str
    parent: str = ""
    line: int = 0


class _Unpacked:
    """The roster this process unpacked last (a checking worker gets the server's roster with every
    upload: 2,600 units of a province cost 8 ms to pickle and unpickle each time, its digest nothing).
    Per-process state, not format data."""

    last: tuple[str, Roster] | None = None


def _unpack(digest: str, packed: bytes) -> Roster:
    last = _Unpacked.last
    if last is not None and last[0] == digest:
        return last[1]
    units, source = pickle.loads(packed)
    ros = Roster(tuple(Unit(*u) for u in units), source)
    ros.__dict__["_packed"] = (digest, packed)
    _Unpacked.last = (digest, ros)
    return ros


@dataclass(frozen=True)
class Roster:
    units: tuple[Unit, ...]
    source: str

    def __reduce__(self) -> tuple:
        """Pickled as its packed units and their digest, packed once per roster: a worker that has
        unpacked the same roster before takes that one again (``_unpack``)."""
        return (_unpack, self._packed)

    @cached_property
    def _packed(self) -> tuple[str, bytes]:
        rows = tuple((u.code, u.name, u.type, u.parent, u.line) for u in self.units)
        packed = pickle.dumps((rows, self.source), protocol=pickle.HIGHEST_PROTOCOL)
        return hashlib.sha256(packed).hexdigest(), packed

    @cached_property
    def _index(self) -> dict[str, Unit]:
        return {u.code: u for u in self.units}

    @cached_property
    def _order(self) -> dict[str, int]:
        return {u.code: i for i, u in enumerate(self.units)}

    def only(self, codes: set[str] | frozenset[str]) -> Roster:
        """The roster's units among ``codes`` (in roster order): what checking one unit's file needs."""
        found = sorted((c for c in codes if c in self._index), key=self._order.__getitem__)
        return Roster(tuple(self._index[c] for c in found), self.source)

    def by_code(self) -> dict[str, Unit]:
        return dict(self._index)

    def get(self, code: str) -> Unit | None:
        return self._index.get(code)

    @cached_property
    def _children(self) -> dict[str, list[Unit]]:
        children: dict[str, list[Unit]] = {}
        for u in self.units:
            children.setdefault(u.parent, []).append(u)
        return children

    def above(self, code: str) -> list[str]:
        """The unit ``code`` and the codes above it (its county, city…) — a 上级代码 that has no row
        of its own too: a roster may name its county only as the units' parent."""
        out: list[str] = []
        while code and code not in out:
            out.append(code)
            unit = self.get(code)
            code = unit.parent if unit is not None else ""
        return out

    def subtree(self, root: str) -> list[Unit]:
        """The unit ``root`` and every unit below it."""
        children = self._children
        out, stack = [], [root]
        seen = set()
        while stack:
            code = stack.pop()
            if code in seen:
                continue
            seen.add(code)
            u = self.get(code)
            if u:
                out.append(u)
            stack.extend(c.code for c in children.get(code, []))
        return sorted(out, key=lambda u: self._order[u.code])

    def root(self) -> Unit | None:
        """The top unit (its parent is empty or outside the roster), e.g. the county itself."""
        codes = {u.code for u in self.units}
        tops = [u for u in self.units if not u.parent or u.parent not in codes]
        return tops[0] if len(tops) == 1 else None


def _decode(data: bytes, name: str) -> str:
    try:
        return decode_text(data)
    except ValueError as e:  # NUL bytes: not a text file
        raise RosterError(f"名册 {name} 不是文本格式的 CSV 文件，请另存为 CSV 或 .xlsx。") from e
    except UnicodeDecodeError as e:
        raise RosterError(
            f"名册 {name} 的文字编码无法识别（不是 UTF-8 也不是 GBK），请在 Excel 中另存为“CSV UTF-8（逗号分隔）”或 .xlsx。"
        ) from e


MAX_ROSTER_BYTES = 20 * 1024 * 1024  # a roster of 100,000 units is about 6 MB
MAX_FIELD = 1000  # characters in one cell; a unit name is at most 60


def _rows_from_csv(path: Path, data: bytes) -> list[list[str]]:
    text = _decode(data, path.name)
    try:
        sample = text[:4096]
        dialect = csv.Sniffer().sniff(sample, delimiters=",\t;，") if sample.strip() else csv.excel
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        return [list(r) for r in reader]
    except csv.Error as e:  # e.g. a field longer than the csv module's limit, an unclosed quote
        why = "有一个单元格过长" if "field larger" in str(e) else "格式有误"
        raise RosterError(
            f"名册 {path.name} 第{reader.line_num}行无法读取（{why}），请检查是否有未配对的引号或过长的内容。"
        ) from e


def _rows_from_xlsx(path: Path, data: bytes) -> list[list[str]]:
    """Bounded like a return: the zip and sheet extents are checked before calamine allocates."""
    from python_calamine import CalamineWorkbook

    from .xlsx import ProbeProblem, probe

    try:
        probe(data)
        rows = CalamineWorkbook.from_filelike(io.BytesIO(data)).get_sheet_by_index(0).to_python()
    except ProbeProblem as e:
        raise RosterError(f"名册 {path.name} 无法使用：{e.detail or e.code}。请另存为 CSV 或 .xlsx 后重试。") from e
    except Exception as e:  # calamine raises several types for broken files  # noqa: BLE001
        raise RosterError(f"无法读取名册 {path.name}：{e}。请确认它是 Excel 文件。") from e

    def cell(v: object) -> str:
        if isinstance(v, float) and v.is_integer():
            return str(int(v))
        return "" if v is None else str(v)

    return [[cell(v) for v in r] for r in rows]


def _read_rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise RosterError(f"找不到名册文件：{path}")
    if path.stat().st_size > MAX_ROSTER_BYTES:
        raise RosterError(f"名册 {path.name} 过大（{path.stat().st_size // 1048576}MB），请确认选对了文件。")
    suffix = path.suffix.lower()
    if suffix not in (".xlsx", ".xlsm", ".ods", ".csv", ".txt", ""):
        raise RosterError(f"名册 {path.name} 的格式不支持，请使用 .csv 或 .xlsx。")
    data = path.read_bytes()
    rows = _rows_from_xlsx(path, data) if suffix in (".xlsx", ".xlsm", ".ods") else _rows_from_csv(path, data)
    rows = [[c.strip() for c in r] for r in rows]
    while rows and not any(rows[0]):
        rows.pop(0)
    if not rows:
        raise RosterError(f"名册 {path.name} 是空的。")
    return rows


def _header(rows: list[list[str]], name: str) -> dict[str, int]:
    header = [h.replace("\ufeff", "").strip() for h in rows[0]]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise RosterError(
            f"名册 {name} 第1行（表头）缺少列：{'、'.join(missing)}。"
            f"表头应为：{'，'.join(COLUMNS)}；实际为：{'，'.join(h for h in header if h)[:200] or '（空）'}。"
        )
    return {c: header.index(c) for c in COLUMNS}


def _unit(row: list[str], idx: dict[str, int], name_of_file: str, line: int) -> Unit:
    """One roster line, checked; every problem names the line as Excel shows it."""
    where = f"名册 {name_of_file} 第{line}行"
    code, name, typ, parent = (row[idx[c]] if idx[c] < len(row) else "" for c in COLUMNS)
    long = next((c for c in row if len(c) > MAX_FIELD), None)
    if long is not None:
        raise RosterError(f"{where}：有一个单元格长达{len(long)}个字符，不像名册内容，请检查。")
    if not code:
        raise RosterError(f"{where}：单位代码为空。")
    if not _CODE.fullmatch(code):
        raise RosterError(f"{where}：单位代码“{code}”只能由数字、字母、短横线组成，最长32位。")
    if not name:
        raise RosterError(f"{where}：单位名称为空。")
    if _BAD_NAME.search(name) or ".." in name:
        raise RosterError(
            f'{where}：单位名称“{name}”含有不能用于文件名的字符（/ \\ : * ? " < > | 或 ..），请改用全角字符或删除。'
        )
    if len(name) > 60:
        raise RosterError(f"{where}：单位名称过长（{len(name)}个字），请不超过60个字。")
    if name[0] in "=+-@":
        raise RosterError(f"{where}：单位名称“{name}”不能以 = + - @ 开头。")
    if typ not in UNIT_TYPES:
        raise RosterError(f"{where}：单位类型“{typ}”无法识别，应为以下之一：{'、'.join(UNIT_TYPES)}。")
    if parent and not _CODE.fullmatch(parent):
        raise RosterError(f"{where}：上级代码“{parent}”格式不对。")
    if parent == code:
        raise RosterError(f"{where}：上级代码不能是本单位自己的代码。")
    return Unit(code, name, typ, parent, line)


INVENTED_CODE = re.compile(r"X[0-9a-f]{8}")  # toolkit.published.identity.invented_code: 'X' + 8 hex digits


def is_invented_code(code: str) -> bool:
    """A code made up for a published report's unit that is in no roster (a key for pairing years,
    meaningless to people: never shown)."""
    return bool(INVENTED_CODE.fullmatch(code or ""))


def load_roster(path: Path | str) -> Roster:
    """Read and validate a roster; any problem raises RosterError naming the line."""
    path = Path(path)
    rows = _read_rows(path)
    idx = _header(rows, path.name)
    units: list[Unit] = []
    seen: dict[str, int] = {}
    for n, row in enumerate(rows[1:], start=2):
        if not any(row):
            continue
        unit = _unit(row, idx, path.name, n)
        if unit.code in seen:
            raise RosterError(f"名册 {path.name} 第{n}行：单位代码“{unit.code}”与第{seen[unit.code]}行重复。")
        seen[unit.code] = n
        units.append(unit)
    if not units:
        raise RosterError(f"名册 {path.name} 只有表头，没有任何单位。")
    _refuse_cycle(units, path.name)
    return Roster(tuple(units), path.name)


def _refuse_cycle(units: list[Unit], name: str) -> None:
    """Units that are each other's 上级 (A under B, B under A) have no top and no place in a summary:
    name them, with their lines, in the order the 上级代码 lead round."""
    by_code = {u.code: u for u in units}
    done: set[str] = set()
    for start in units:
        path: list[str] = []
        code = start.code
        while code in by_code and code not in done and code not in path:
            path.append(code)
            code = by_code[code].parent
        if code in path:
            ring = [by_code[c] for c in path[path.index(code) :]]
            shown = " → ".join(f"{u.name}（{u.code}，第{u.line}行）" for u in [*ring, ring[0]])
            raise RosterError(
                f"名册 {name} 中的上级代码形成了循环（箭头指向上级）：{shown}。这些单位互为上级，无法确定谁汇总谁；"
                "请改正其中的上级代码（最上级单位的上级代码应为空）。"
            )
        done.update(path)


def validate_single_unit(code: str, name: str, typ: str) -> Unit:
    """A one-unit roster given on the command line, checked like a roster line."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "命令行参数.csv"
        with open(p, "w", encoding="utf-8", newline="") as fh:
            csv.writer(fh).writerows([COLUMNS, [code.strip(), name.strip(), typ.strip(), ""]])
        return load_roster(p).units[0]
