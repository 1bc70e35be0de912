"""Row-label aliases seen in published reports (``templates/aliases/<format id>.toml``).

Published reports mistype, shorten or reword the official row labels. Each variant seen in
a real report is kept as data with the place it was seen, so the importer grows with the
corpus and a reviewer can check every alias against its source. A broken file is refused
at load time (exit 2), never half-used.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache

from .errors import SpecError
from .spec import Format, formats, templates_dir
from .textnum import norm


@dataclass(frozen=True)
class Alias:
    sheet_id: str
    row_id: str
    text: str
    source: str


def _row_labels(fmt: Format) -> dict[tuple[str, str], str]:
    """(sheet id, row id) → the official row label (its right-most part, as printed on the row)."""
    return {(c.sheet_id, c.row_id): c.row_label.split(" ")[-1] for c in fmt.cells.values() if c.row_label}


def parse_aliases(raw: dict, fmt: Format, where: str) -> tuple[Alias, ...]:
    """Validate the parsed TOML of an alias file against ``fmt``."""
    head = raw.get("format", {})
    if head.get("id") != fmt.id:
        raise SpecError(f"{where}：[format] id 应为“{fmt.id}”，实际为“{head.get('id', '')}”")
    labels = _row_labels(fmt)
    official = {norm(text): key for key, text in labels.items()}
    out: list[Alias] = []
    seen: dict[str, tuple[str, str]] = {}
    for sheet_id, rows in raw.items():
        if sheet_id == "format":
            continue
        if not isinstance(rows, dict) or sheet_id not in {s.id for s in fmt.sheets}:
            raise SpecError(f"{where}：工作表“{sheet_id}”不存在于格式 {fmt.id}")
        for row_id, entries in rows.items():
            key = (sheet_id, row_id)
            if key not in labels:
                raise SpecError(f"{where}：{sheet_id} 中没有行“{row_id}”")
            if not isinstance(entries, list):
                raise SpecError(f"{where}：[[{sheet_id}.{row_id}]] 应为表数组")
            for i, e in enumerate(entries, start=1):
                out.append(_entry(e, key, f"{where} [[{sheet_id}.{row_id}]] 第{i}项", official, seen))
    return tuple(out)


def _entry(
    e: object, key: tuple[str, str], where: str, official: dict[str, tuple[str, str]], seen: dict[str, tuple[str, str]]
) -> Alias:
    if not isinstance(e, dict):
        raise SpecError(f"{where} 格式不对")
    alias, source = str(e.get("alias", "")).strip(), str(e.get("source", "")).strip()
    if not alias or not source:
        raise SpecError(f"{where}：alias 和 source 都必须填写")
    n = norm(alias)
    if n in official and official[n] != key:
        raise SpecError(f"{where}：别名“{alias}”是另一行（{'.'.join(official[n])}）的正式标签")
    if n in seen and seen[n] != key:
        raise SpecError(f"{where}：别名“{alias}”同时给了 {'.'.join(seen[n])}")
    seen[n] = key
    return Alias(key[0], key[1], alias, source)


@cache
def aliases(fmt_id: str) -> tuple[Alias, ...]:
    """The aliases of one format; none when the format has no alias file."""
    fmt = formats()[fmt_id]
    path = templates_dir() / "aliases" / f"{fmt_id}.toml"
    if not path.is_file():
        return ()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise SpecError(f"无法读取别名文件 {path.name}：{e}") from e
    return parse_aliases(raw, fmt, f"aliases/{path.name}")


def row_aliases(fmt: Format) -> dict[tuple[str, str], list[str]]:
    """(sheet id, row id) → alias texts."""
    out: dict[tuple[str, str], list[str]] = {}
    for a in aliases(fmt.id):
        out.setdefault((a.sheet_id, a.row_id), []).append(a.text)
    return out
