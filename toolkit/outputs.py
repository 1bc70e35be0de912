"""Never overwrite what a user cannot get back: an output path that is one of the inputs is
refused outright; an existing file is replaced only when nianbao itself made it as the same
kind of output (and it holds nothing a person typed), or when the user says --overwrite.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

from .errors import NianbaoError

KIND_NAMES = {
    "summary": "汇总表",
    "annotated": "审核意见副本",
    "template": "模板",
    "manifest": "汇总清单",
    "imported": "导入结果",
    "json": "JSON文件",
    "draft-docx": "年报文稿",
    "draft-html": "年报网页",
    "audit": "审计结果",
}


class OutputRefused(NianbaoError):
    """An output would destroy an input or a file with someone's data (exit code 2)."""


def input_files(paths: Iterable[Path | str]) -> list[str]:
    """Every file under the given paths, as ``Path.rglob("*")`` then ``is_file()`` find them (links
    to files count; links to folders are not entered): the inputs no output may replace. Listed
    with the folder listing's own file types, without a system call per file of a big folder."""
    from .inputs import folders, joined

    out: list[str] = []
    for p in paths:
        p = os.fspath(p)
        if os.path.isdir(p):
            listed = folders(Path(p), staging=True)
            out.extend(joined(here, e.name) for here, _, _, entries in listed for e in entries if _is_file(e))
        elif os.path.exists(p):
            out.append(p)
    return out


def _is_file(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _identity(path: Path | str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
        return st.st_dev, st.st_ino
    except (OSError, ValueError):
        return None


class OutputGuard:
    """Decides, before anything is written, whether each output path may be written."""

    def __init__(self, inputs: Iterable[Path | str] = (), overwrite: bool = False):
        self.overwrite = overwrite
        self.inputs: set[tuple[int, int]] = set()
        # and by path: an input saved in place meanwhile (a new file renamed over it) has another
        # identity. Absolute paths cost no system call (resolving 10,000 inputs did); an input
        # that cannot be looked at now is resolved, in case it was reached through a link.
        self.input_paths: set[str] = set()
        for p in inputs:
            ident = _identity(p)
            self.input_paths.add(os.path.abspath(p) if ident is not None else os.path.realpath(p))
            if ident is not None:
                self.inputs.add(ident)

    def check(self, path: Path, kind: str, unit_code: str = "", year: int | None = None) -> None:
        """Raise OutputRefused when writing ``path`` would lose something."""
        path = Path(path)
        what = KIND_NAMES.get(kind, "输出文件")
        if _identity(path) in self.inputs or {os.path.abspath(path), os.path.realpath(path)} & self.input_paths:
            raise OutputRefused(f"{what}的保存位置 {path} 是输入文件之一，不能覆盖输入文件。请换一个文件名或文件夹。")
        if not path.exists():
            return
        if path.is_dir():
            raise OutputRefused(f"{what}的保存位置 {path} 是一个文件夹，请给出文件名。")
        if self.overwrite or regenerable(path, kind, unit_code, year):
            return
        raise OutputRefused(
            f"{path} 已存在，而且不是本工具先前生成的同类{what}（可能是填报单位交回的、有人填写过的文件），"
            "为防止丢失数据，没有覆盖它。请换一个文件名或文件夹；确认可以覆盖时加 --overwrite。"
        )


def regenerable(path: Path, kind: str, unit_code: str = "", year: int | None = None) -> bool:
    """True for a file nianbao made as this kind of output and nobody has filled in since."""
    if kind in ("manifest", "json", "imported") and path.suffix.lower() == ".json":
        try:
            text = path.read_text(encoding="utf-8")
            if kind == "manifest" and _MANIFEST_HEAD.match(text):
                return True  # what the full parse below decides, without parsing 10,000 inputs
            data = json.loads(text)
        except (OSError, ValueError):
            return False
        return isinstance(data, dict) and (data.get("tool") == "nianbao" or "format_id" in data)
    if kind.startswith("draft-"):
        return _untouched_draft(path, kind)
    if kind == "audit":
        from .published.audit_writer import is_audit_workbook

        return is_audit_workbook(path)
    if kind == "summary" and _claims_summary(path, unit_code, year):
        return True  # what the full read below would decide, without reading 10,000 rows
    report = _read(path)
    if report is None:
        return False
    if kind == "summary":
        return report.level != "填报单位" and report.unit_code == unit_code and (year is None or report.year == year)
    if kind == "annotated":
        from .spec import conventions

        return conventions().findings_sheet in report.extra_sheets
    if kind in ("template", "imported"):
        return _pristine(report) or (kind == "imported" and "导入" in report.cover.get("note", ""))
    return False


# How every manifest this tool writes begins (summary_writer.manifest_text): an object whose first
# member says the tool. A file that begins so is ours to replace, whatever follows.
_MANIFEST_HEAD = re.compile(r'\{\s*"tool"\s*:\s*"nianbao"\s*,')


def _claims_summary(path: Path, unit_code: str, year: int | None) -> bool:
    """The file is byte for byte the summary its manifest was written for (so nobody has typed into
    it since), and its properties say: a summary of this unit and year in a known format. Anything
    else — an edited summary, a return with forged properties — gets the full read."""
    from .spec import conventions, formats
    from .summary_writer import manifest_matches
    from .xlsx import claimed_properties

    if not manifest_matches(path, path.with_name(path.stem + ".manifest.json")):
        return False
    props = {k.removeprefix(conventions().prefix): v for k, v in claimed_properties(path).items()}
    level = props.get("level") or "填报单位"
    return (
        props.get("format_id", "") in formats()
        and level != "填报单位"
        and props.get("unit_code") == unit_code
        and (year is None or props.get("year") == str(year))
    )


def _untouched_draft(path: Path, kind: str) -> bool:
    """A draft nianbao wrote and nobody has edited: an office's edited report is never replaced."""
    if kind == "draft-html":
        try:
            return b'<meta name="generator" content="nianbao' in path.read_bytes()[:4096]
        except OSError:
            return False
    try:
        from docx import Document

        core = Document(str(path)).core_properties
    except Exception:  # noqa: BLE001 - not a .docx at all
        return False
    return core.last_modified_by == "nianbao" and core.revision == 1


def _read(path: Path):
    from .reader import read_bytes

    try:
        data = path.read_bytes()
    except OSError:
        return None
    report = read_bytes(data, path.name, str(path))
    return report if report.readable and report.format_id else None


def _pristine(report) -> bool:
    """A blank template: every figure 0 and none of the clerk's cover fields filled in."""
    from .spec import formats

    fmt = formats()[report.format_id]
    clerk_fields = [f.id for f in fmt.cover.fields if f.editable]
    return all(not report.values.get(c.id) for c in fmt.inputs) and not any(report.cover.get(fid) for fid in clerk_fields)
