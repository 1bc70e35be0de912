"""Turn the paths a reviewer gives (files, folders, zip archives) into byte sources.

Returns arrive as loose files, whole folders and zip archives made on Chinese
Windows (GBK member names). Nothing is extracted to disk, so zip-slip paths and
symlinks cannot escape; limits are checked before anything is decompressed.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import NianbaoError
from .xlsx import MAX_FILE_BYTES, MAX_RATIO, ProbeProblem, open_zip, read_member

WORKBOOK_SUFFIXES = frozenset({".xlsx", ".xlsm", ".xls", ".et", ".ods", ".xlsb"})
MAX_ARCHIVE_MEMBERS = 2000  # entries of one archive
MAX_NESTING = 2
MAX_ARCHIVE_BYTES = 500 * 1024 * 1024  # one budget for an archive and all archives nested in it
MAX_TREE_MEMBERS = MAX_ARCHIVE_MEMBERS  # entries of an archive and all archives nested in it: the same limit
MAX_ARCHIVE_FILE = MAX_FILE_BYTES * 10  # an archive on disk
MAX_SUSPECT = 5  # members refused as bombs before the whole tree is given up


@dataclass
class Source:
    name: str  # what the reviewer sees, e.g. "返回.zip/宝力根苏木.xlsx"
    path: str
    data: bytes | None = None
    mtime: float = 0.0
    problem: ProbeProblem | None = None
    member: tuple[int, ...] = ()  # inside an archive: entry numbers, outer archive first (read when checked)


@dataclass
class _Budget:
    """What an archive and the archives nested in it may decompress together."""

    bytes: int = MAX_ARCHIVE_BYTES
    members: int = MAX_TREE_MEMBERS
    suspect: int = MAX_SUSPECT

    def take(self, size: int) -> bool:
        self.bytes -= size
        return self.bytes >= 0


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


def _open_archive(data: bytes | str) -> zipfile.ZipFile:
    return open_zip(data, max_members=MAX_ARCHIVE_MEMBERS, max_total=2**62, per_member=False, what="压缩包")


def _member_problem(info: zipfile.ZipInfo, name: str) -> ProbeProblem | None:
    """Why a member is not read, decided from its entry alone (nothing decompressed yet)."""
    if stat.S_ISLNK(info.external_attr >> 16):
        return ProbeProblem("file-not-workbook", "压缩包中的符号链接，已忽略")
    if info.flag_bits & 0x1:
        return ProbeProblem("file-encrypted", "压缩包中的文件设置了密码")
    if info.file_size > 65_536 and info.file_size > MAX_RATIO * max(info.compress_size, 1):
        return ProbeProblem("file-too-large", "压缩比异常（疑似压缩炸弹）")
    if info.file_size > MAX_FILE_BYTES:
        return ProbeProblem("file-too-large", f"解压后{info.file_size // 1048576}MB")
    return None


def _from_zip(
    zf: zipfile.ZipFile,
    label: str,
    path: str,
    mtime: float,
    chain: tuple[int, ...],
    budget: _Budget,
    suffixes: frozenset[str] = WORKBOOK_SUFFIXES,
) -> Iterator[Source]:
    """The returns inside an open archive, as sources read later (one at a time, in the worker
    that checks them). Nested archives are opened here, within the one budget of the tree."""
    seen: dict[str, int] = {}
    for i, info in enumerate(zf.infolist()):
        if budget.suspect <= 0 or budget.bytes < 0:  # said once already: the rest of the tree is not read
            return
        budget.members -= 1
        if budget.members < 0:  # the caller refuses the whole archive, as a flat one this big
            return
        name = _member_name(info)
        suffix = Path(name).suffix.lower()
        if info.is_dir() or not _wanted(name, suffixes):
            continue
        seen[name] = seen.get(name, 0) + 1
        where = f"{label}/{shown(name)}" + (f"（同名文件第{seen[name]}个）" if seen[name] > 1 else "")
        problem = _member_problem(info, name)
        if problem is None and not budget.take(info.file_size):
            problem = ProbeProblem("file-too-large", f"压缩包解压后总量超过{MAX_ARCHIVE_BYTES // 1048576}MB，其余文件未读取")
        if problem is not None:
            budget.suspect -= problem.code == "file-too-large"
            yield Source(where, path, problem=problem)
            if budget.bytes < 0:
                return
            if budget.suspect <= 0:
                bombs = ProbeProblem("file-too-large", "压缩包内疑似压缩炸弹的文件过多，其余文件未读取")
                yield Source(label, path, problem=bombs)
                return
            continue
        if suffix == ".zip":
            yield from _nested(zf, info, where, path, mtime, chain + (i,), budget, suffixes)
            continue
        try:  # the member's own time, in the same seconds-since-epoch as a loose file's mtime
            when = dt.datetime(*info.date_time).timestamp()
        except (ValueError, OverflowError):
            when = mtime
        yield Source(where, path, mtime=when, member=chain + (i,))


def _nested(
    zf, info, where: str, path: str, mtime: float, chain: tuple[int, ...], budget: _Budget, suffixes: frozenset[str]
) -> Iterator[Source]:
    if len(chain) >= MAX_NESTING:
        yield Source(where, path, problem=ProbeProblem("file-too-large", "压缩包嵌套层数过多"))
        return
    try:
        inner = _open_archive(read_member(zf, info) or b"")
    except ProbeProblem as p:
        yield Source(where, path, problem=p)
        return
    yield from _from_zip(inner, where, path, mtime, chain, budget, suffixes)


def _archive_sources(zf: zipfile.ZipFile, label: str, path: str, mtime: float, suffixes: frozenset[str]) -> list[Source]:
    """The sources of an archive and the archives nested in it, or one refusal when together they
    hold more entries than one flat archive may (40 nested zips of 100 copies are 4,000 files, refused
    as a flat zip of 4,000 is). Listed whole before any is checked (entries only, no bytes: bounded)."""
    budget = _Budget()
    listed = list(_from_zip(zf, label, path, mtime, (), budget, suffixes))
    if budget.members < 0:
        why = f"压缩包连同其中嵌套的压缩包共有{MAX_TREE_MEMBERS}个以上文件，上限{MAX_TREE_MEMBERS}个，未读取；请分成几个压缩包"
        return [Source(label, path, problem=ProbeProblem("file-too-large", why))]
    return listed


def _from_file(p: Path | str, label: str, suffixes: frozenset[str] = WORKBOOK_SUFFIXES) -> Iterator[Source]:
    """A workbook on disk is read later, where it is checked (possibly in a worker process);
    an archive is listed here (its members are the sources), never read whole into memory."""
    label, path = shown(label), str(p)
    if _suffix(os.path.basename(path)).lower() != ".zip":
        yield Source(label, path)
        return
    try:
        st = os.stat(path)
        if st.st_size > MAX_ARCHIVE_FILE:
            raise ProbeProblem("file-too-large", f"压缩包{st.st_size // 1048576}MB")
        with _open_archive(path) as zf:
            yield from _archive_sources(zf, label, path, st.st_mtime, suffixes)
    except OSError as e:
        yield Source(label, path, problem=ProbeProblem("file-unreadable", str(e)))
    except ProbeProblem as e:
        yield Source(label, path, problem=e)


_INNER: dict[tuple[str, tuple[int, ...]], zipfile.ZipFile] = {}  # the last nested archive read (members come in order)


def _read_member_chain(path: str, chain: tuple[int, ...]) -> bytes:
    key = (path, chain[:-1])
    if len(chain) > 1 and key in _INNER:
        zf = _INNER[key]
        return read_member(zf, zf.infolist()[chain[-1]]) or b""
    with _open_archive(path) as outer:
        zf, body = outer, b""
        for depth, i in enumerate(chain):
            body = read_member(zf, zf.infolist()[i]) or b""
            if depth < len(chain) - 1:
                zf = _open_archive(body)
        if len(chain) > 1:
            _INNER.clear()
            _INNER[key] = zf
        return body


def load(src: Source) -> Source:
    """Read a source's bytes (bounded): a regular file on disk (opened without blocking, so a
    pipe put in its place cannot hang the batch), or one member of an archive."""
    if src.data is not None or src.problem is not None:
        return src
    try:
        if src.member:
            src.data = _read_member_chain(src.path, src.member)
            return src
        src.data, src.mtime = _read_regular(src.path)
    except OSError as e:
        src.problem = ProbeProblem("file-unreadable", e.strerror or str(e))
    except ProbeProblem as e:
        src.problem = e
    return src


def _read_regular(path: str) -> tuple[bytes, float]:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_BINARY", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ProbeProblem("path-skipped", f"不是普通文件（{_not_regular(st.st_mode)}），已跳过")
        if st.st_size > MAX_FILE_BYTES:
            raise ProbeProblem("file-too-large", f"文件{st.st_size // 1048576}MB，上限{MAX_FILE_BYTES // 1048576}MB")
        data = _read_bounded(fd, st.st_size)
    finally:
        os.close(fd)
    if len(data) > MAX_FILE_BYTES:
        raise ProbeProblem("file-too-large", f"文件超过{MAX_FILE_BYTES // 1048576}MB")
    return data, st.st_mtime


def _read_bounded(fd: int, size: int) -> bytes:
    """At most ``MAX_FILE_BYTES + 1`` bytes, read straight from the descriptor. The first read asks
    for the file's stated size and one more byte: asking for the limit itself allocates (and gives
    back) 20 MB per file, which cost more than reading a return. A file that grew since it was
    stat'ed is read on, up to the limit."""
    limit = MAX_FILE_BYTES + 1
    want = min(size, MAX_FILE_BYTES) + 1
    chunks: list[bytes] = []
    total = 0
    while total < limit:
        chunk = os.read(fd, (want if total < want else limit) - total)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


_SURROGATE = re.compile("[\udc80-\udcff]")  # a byte of a name that was not UTF-8
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]")


def shown(name: str) -> str:
    """A file name as people may see it: bytes that are not UTF-8 (a name written by Chinese
    Windows, read here as surrogate escapes) decoded as GBK, or replaced; control, escape and
    direction characters made visible, so a name can neither break an output nor drive a terminal."""
    if not name.isascii() and _SURROGATE.search(name):
        raw = name.encode("utf-8", "surrogateescape")
        try:
            name = raw.decode("gb18030")
        except UnicodeDecodeError:
            name = raw.decode("utf-8", "replace")
    if not _CONTROL.search(name):
        return name
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}" if ord(m.group()) < 0x100 else f"\\u{ord(m.group()):04x}", name)


_KINDS = ((stat.S_ISFIFO, "命名管道"), (stat.S_ISCHR, "字符设备"), (stat.S_ISBLK, "块设备"), (stat.S_ISSOCK, "套接字"))


def _not_regular(mode: int) -> str:
    return next((what for test, what in _KINDS if test(mode)), "特殊文件")


def _skipped(label: str, path: str, why: str) -> Source:
    return Source(shown(label), path, problem=ProbeProblem("path-skipped", why))


def _suffix(name: str) -> str:
    """``PurePosixPath(name).suffix`` for a name without slashes, without making a path of it."""
    i = name.rfind(".")
    return name[i:] if 0 < i < len(name) - 1 else ""


def _wanted(name: str, suffixes: frozenset[str]) -> bool:
    suffix = (_suffix(name) if "/" not in name else Path(name).suffix).lower()
    return not _is_temp(name) and (suffix in suffixes or suffix == ".zip")


def _entry(f: Path, label: str, root: str, suffixes: frozenset[str]) -> Iterator[Source]:
    """One directory entry: a regular file (or a link to one inside the folder) is a source;
    pipes, devices, sockets and links leading out of the folder are named and skipped."""
    try:
        st = f.lstat()
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(f)
            if os.path.commonpath([root, target]) != root:
                if _wanted(f.name, suffixes):
                    yield _skipped(label, str(f), "是指向所给文件夹以外的快捷方式（符号链接），为安全起见已跳过")
                return
            st = os.stat(target)
        if stat.S_ISREG(st.st_mode):
            if _wanted(f.name, suffixes):
                yield from _from_file(f, label, suffixes)
        elif not stat.S_ISDIR(st.st_mode):
            yield _skipped(label, str(f), f"不是普通文件（{_not_regular(st.st_mode)}），已跳过")
    except (OSError, ValueError) as e:
        yield _skipped(label, str(f), f"无法访问（{e.strerror if isinstance(e, OSError) else e}），已跳过")


def _listed(entry: os.DirEntry, path: str, label: str, root: str, suffixes: frozenset[str]) -> Iterator[Source]:
    """``_entry`` for an entry of a folder listing: a plain file or folder is told by the listing's
    own file type, without a system call per file (10,000 returns in a folder); links and anything
    else take the full look."""
    try:
        plain_file = not entry.is_symlink() and entry.is_file(follow_symlinks=False)
    except OSError:
        plain_file = False
    if not plain_file:
        yield from _entry(Path(path), label, root, suffixes)
    elif _wanted(entry.name, suffixes):
        yield from _from_file(path, label, suffixes)


def folders(p: Path, staging: bool = False) -> Iterator[tuple[str, tuple[str, ...], str, list[os.DirEntry]]]:
    """Each folder under ``p`` with its path's parts, its label and its entries, as ``os.walk``
    walks them: never following links to folders (they are entries), passing over folders that
    cannot be listed, and entering this tool's own staging folders only with ``staging``."""
    top = str(p)
    pending = [(top, Path(top).parts, str(p.relative_to(p.parent)) if p.parent != p else "")]
    while pending:
        folder, parts, label = pending.pop()
        try:
            with os.scandir(folder) as listing:
                items = list(listing)
        except OSError:
            continue
        entries = []
        for e in items:
            try:
                is_dir = e.is_dir()
            except OSError:
                is_dir = False
            if is_dir and not staging and e.name.startswith(".~nianbao"):
                continue
            if is_dir and not e.is_symlink():
                pending.append((joined(folder, e.name), (*parts, e.name), os.path.join(label, e.name) if label else e.name))
            else:
                entries.append(e)
        yield folder, parts, label, entries


def _walk(p: Path, suffixes: frozenset[str]) -> Iterator[Source]:
    """Every entry under a folder, in a stable order (the paths' own, part by part)."""
    root = os.path.realpath(p)
    entries = [(parts, e.name, folder, label, e) for folder, parts, label, listed in folders(p) for e in listed]
    entries.sort(key=lambda t: (*t[0], t[1]))
    for _parts, name, folder, label, entry in entries:
        yield from _listed(entry, joined(folder, name), os.path.join(label, name) if label else name, root, suffixes)


def joined(folder: str, name: str) -> str:
    """``str(Path(folder, name))``: the paths shown are those a ``Path`` would print ("x", not "./x")."""
    return name if folder == "." else os.path.join(folder, name)


def collect(paths: list[Path], suffixes: frozenset[str] = WORKBOOK_SUFFIXES) -> Iterator[Source]:
    """Every return (or, with ``suffixes``, every file of those kinds, e.g. published reports) under
    the given paths, in a stable order. A file named explicitly is taken whatever its extension. A
    missing path is an error (exit 2); a path that is not a regular file or folder becomes a finding
    (nothing is opened that could hang)."""
    for p in paths:
        if not os.path.lexists(p):
            raise NianbaoError(f"找不到文件或文件夹：{shown(str(p))}")
    for p in paths:
        try:
            st = p.stat()
        except OSError as e:
            yield _skipped(p.name, str(p), f"无法访问（{e.strerror}），已跳过")
            continue
        if stat.S_ISDIR(st.st_mode):
            yield from _walk(p, suffixes)
        elif stat.S_ISREG(st.st_mode):
            yield from _from_file(p, p.name, suffixes)
        else:
            yield _skipped(p.name, str(p), f"不是普通文件（{_not_regular(st.st_mode)}），已跳过")
