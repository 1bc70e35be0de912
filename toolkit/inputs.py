"""Turn the paths a reviewer gives (files, folders, zip archives) into byte sources.

Returns arrive as loose files, whole folders and zip archives made on Chinese
Windows (GBK member names). Nothing is extracted to disk, so zip-slip paths and
symlinks cannot escape; limits are checked before anything is decompressed.
"""

from __future__ import annotations

import datetime as dt
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import NianbaoError
from .probe import MAX_FILE_BYTES, MAX_RATIO, ProbeProblem, open_zip, read_member

WORKBOOK_SUFFIXES = {".xlsx", ".xlsm", ".xls", ".et", ".ods", ".xlsb"}
MAX_ARCHIVE_MEMBERS = 2000
MAX_NESTING = 2
MAX_ARCHIVE_BYTES = 500 * 1024 * 1024


@dataclass
class Source:
    name: str  # what the reviewer sees, e.g. "返回.zip/宝力根苏木.xlsx"
    path: str
    data: bytes | None = None
    mtime: float = 0.0
    problem: ProbeProblem | None = None


def _member_name(info: zipfile.ZipInfo) -> str:
    name = info.filename
    if not info.flag_bits & 0x800:  # not marked UTF-8: Chinese Windows zips use GBK
        try:
            name = name.encode("cp437").decode("gb18030")
        except (UnicodeEncodeError, UnicodeDecodeError):
            pass
    return name


def _is_temp(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.startswith(("~$", ".~lock", ".~nianbao")) or base.startswith("._")


def _open_archive(data: bytes) -> zipfile.ZipFile:
    return open_zip(data, max_members=MAX_ARCHIVE_MEMBERS, max_total=MAX_ARCHIVE_BYTES, per_member=False, what="压缩包")


def _from_zip(data: bytes, label: str, path: str, mtime: float, depth: int) -> Iterator[Source]:
    try:
        zf = _open_archive(data)
    except ProbeProblem as p:
        yield Source(label, path, problem=p)
        return
    for info in zf.infolist():
        if info.is_dir():
            continue
        name = _member_name(info)
        shown = f"{label}/{name}"
        if _is_temp(name):
            continue
        if stat.S_ISLNK(info.external_attr >> 16):
            yield Source(shown, path, problem=ProbeProblem("file-not-workbook", "压缩包中的符号链接，已忽略"))
            continue
        suffix = Path(name).suffix.lower()
        if suffix not in WORKBOOK_SUFFIXES and suffix != ".zip":
            continue
        if info.file_size > 1_048_576 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
            yield Source(shown, path, problem=ProbeProblem("file-too-large", "压缩比异常（疑似压缩炸弹）"))
            continue
        if info.file_size > MAX_FILE_BYTES:
            yield Source(shown, path, problem=ProbeProblem("file-too-large", f"解压后{info.file_size // 1048576}MB"))
            continue
        try:
            body = read_member(zf, info.filename) or b""
        except ProbeProblem as p:
            yield Source(shown, path, problem=p)
            continue
        if suffix == ".zip":
            if depth >= MAX_NESTING:
                yield Source(shown, path, problem=ProbeProblem("file-too-large", "压缩包嵌套层数过多"))
            else:
                yield from _from_zip(body, shown, path, mtime, depth + 1)
            continue
        try:  # the member's own time, in the same seconds-since-epoch as a loose file's mtime
            when = dt.datetime(*info.date_time).timestamp()
        except (ValueError, OverflowError):
            when = mtime
        yield Source(shown, path, body, mtime=when)


def _from_file(p: Path, label: str) -> Iterator[Source]:
    """A workbook on disk is read later, where it is checked (possibly in a worker process);
    an archive is opened here because its members are the sources."""
    if p.suffix.lower() != ".zip":
        yield Source(label, str(p))
        return
    try:
        st = p.stat()
        if st.st_size > MAX_FILE_BYTES * 10:
            raise ProbeProblem("file-too-large", f"压缩包{st.st_size // 1048576}MB")
        data = p.read_bytes()
    except OSError as e:
        yield Source(label, str(p), problem=ProbeProblem("file-unreadable", str(e)))
        return
    except ProbeProblem as e:
        yield Source(label, str(p), problem=e)
        return
    yield from _from_zip(data, label, str(p), st.st_mtime, 1)


def load(src: Source) -> Source:
    """Read a disk source's bytes (bounded); archive members already carry theirs."""
    if src.data is not None or src.problem is not None:
        return src
    p = Path(src.path)
    try:
        st = p.stat()
        if st.st_size > MAX_FILE_BYTES:
            src.problem = ProbeProblem("file-too-large", f"文件{st.st_size // 1048576}MB，上限{MAX_FILE_BYTES // 1048576}MB")
            return src
        src.data, src.mtime = p.read_bytes(), st.st_mtime
    except OSError as e:
        src.problem = ProbeProblem("file-unreadable", str(e))
    return src


def collect(paths: list[Path]) -> Iterator[Source]:
    """Every return under the given paths, in a stable order. A missing path is an error (exit 2)."""
    for p in paths:
        if not p.exists():
            raise NianbaoError(f"找不到文件或文件夹：{p}")
    for p in paths:
        if p.is_dir():
            files = sorted(
                f
                for f in p.rglob("*")
                if f.is_file() and not _is_temp(f.name) and (f.suffix.lower() in WORKBOOK_SUFFIXES or f.suffix.lower() == ".zip")
            )
            for f in files:
                yield from _from_file(f, str(f.relative_to(p.parent)) if p.parent != p else f.name)
        else:
            yield from _from_file(p, p.name)
