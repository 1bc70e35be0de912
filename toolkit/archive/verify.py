"""核对档案库: every stored file against its sha256, and every stored receipt (the report, findings and
status that export, consolidation and the pages read) against the digest kept beside it. A changed
receipt is named by unit and year, and by the cells whose stored figure differs from the figure in
the stored file, read again by the same reader.

The digest alone can be recomputed by whoever edits the database (``store.row_digest`` is a plain
sha256), so every receipt whose file is intact is also compared with its file read again: the file
is the truth, and a stored figure or cover field that differs from it is an inconsistency even when
the digest agrees. Decided simply: the receipts do not record the reader's version, so a difference
cannot be told apart from a reader that reads the same bytes differently after an upgrade; the
message names both causes (a reader that changed its figures for the same bytes would be a defect
itself). Compared only where it means something: the file reads as the same format the receipt
names (an unreadable file, or one of a format this version no longer has, keeps the digest check).
Not covered: the events table (decisions and notes) and a receipt's unit and year columns against
its report; findings and status are covered by the digest only (the checks may rightly change
between versions). Cost: one reading per receipt, a few ms each (2,000 returns: ~15 s on a busy 2-core machine,
against 0.7 s for the digests alone), said in README."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

from sqlalchemy import Text, cast, func, select

from ..codec import to_stored
from ..pool import Progress
from . import schema as T
from .store import DIGESTED, row_digest

SHOWN_CELLS = 5  # cells named in one message; the count says how many more
ADVICE = "档案库可能被直接改动过。请查明原因，并用 nianbao backup 生成的备份恢复档案库。"


def verify(read: Callable[[], Any], progress: Progress = None) -> list[str]:
    """The problems found (empty when every stored file and receipt is as received); ``read`` opens
    a reading connection to the archive (``Archive._read``)."""
    S = T.submissions
    with read() as conn:
        n_files = conn.execute(select(func.count()).select_from(T.files)).scalar_one()
        n_rows = conn.execute(select(func.count()).select_from(S)).scalar_one()
    if progress:
        progress(n_files + n_rows)
    bad_files: set[str] = set()
    problems = list(_files(read, progress, bad_files))
    problems += _rows(read, progress, bad_files)
    return problems


def _files(read: Callable[[], Any], progress: Progress, bad: set[str]) -> Iterator[str]:
    with read() as conn:
        shas = [r.sha256 for r in conn.execute(select(T.files.c.sha256))]
        for sha in shas:
            row = conn.execute(T.files.select().where(T.files.c.sha256 == sha)).one()
            data = bytes(row.data)
            if hashlib.sha256(data).hexdigest() != sha or len(data) != row.size:
                bad.add(sha)
                who = _receipts_of(conn, sha)
                yield f"{who}的原文件 {sha[:16]}… 与收到时不一致（长度 {len(data)}，应为 {row.size}）。{ADVICE}"
            if progress:
                progress(-1)


def _receipts_of(conn: Any, sha: str) -> str:
    """Whose file it is: ``宝力根苏木（152502201）2025年度（文件 x.xlsx，收到于 …）`` (the first three)."""
    S = T.submissions
    q = select(*(S.c[k] for k in ("unit_code", "unit_name", "year", "name", "received_at"))).where(S.c.sha256 == sha)
    rows = [dict(r._mapping) for r in conn.execute(q.order_by(S.c.id).limit(3))]
    return "、".join(_who(r) for r in rows) if rows else "（没有接收记录的文件）"


def _rows(read: Callable[[], Any], progress: Progress, bad_files: set[str]) -> list[str]:
    """Each receipt's digest, the JSON columns read as text: a row whose JSON no longer parses is a
    finding too, never a crash."""
    S = T.submissions
    cols = [cast(S.c[k], Text).label(k) if k in ("warning_fps", "report", "findings") else S.c[k] for k in DIGESTED]
    problems = []
    q = select(S.c.id, S.c.digest, *cols).order_by(S.c.id)
    with read() as conn:
        for r in conn.execution_options(stream_results=True, yield_per=200).execute(q):
            problem = _row_problem(read, r._mapping, bad_files)
            if problem:
                problems.append(problem)
            if progress:
                progress(-1)
    return problems


def _row_problem(read: Callable[[], Any], raw: Any, bad_files: set[str]) -> str:
    row = dict(raw)
    who = _who(row)
    try:
        for k in ("warning_fps", "report", "findings"):
            row[k] = json.loads(row[k])
    except (TypeError, ValueError):
        return f"{who}的存档审核结果已损坏（不是有效的 JSON），与收到时不一致。{ADVICE}"
    if row["digest"] is None:
        return f"{who}的存档审核结果缺少校验值，无法确认与收到时一致。{ADVICE}"
    if row_digest(row) == row["digest"]:
        where = _changed_cells(read, row) if row["sha256"] not in bad_files else ""
        if not where:
            return ""
        return (
            f"{who}的存档数字与原文件重新读取的结果不同：{where}。存档的校验值相符：或是存档连同校验值一起被改过，"
            f"或是升级 nianbao 后同一文件的读取结果变了（请告知维护人员）。{ADVICE}"
        )
    where = _changed_cells(read, row) if row["sha256"] not in bad_files else ""
    return f"{who}的存档审核结果与收到时不一致：{where or '无法确定是哪个单元格（可能改动了问题清单、状态或封面）'}。{ADVICE}"


def _who(row: dict[str, Any]) -> str:
    """``宝力根苏木（152502201）2025年度（文件 x.xlsx，收到于 …）``: unit, year and which receipt."""
    unit = f"{row['unit_name']}（{row['unit_code']}）" if row["unit_code"] else "未识别单位"
    at = str(row["received_at"])[:19].replace("T", " ")
    return f"{unit}{row['year']}年度（文件 {row['name']}，收到于 {at}）"


def _changed_cells(read: Callable[[], Any], row: dict[str, Any]) -> str:
    """The cells whose stored figure differs from what the stored file gives when read again."""
    from ..reader import read_bytes
    from ..spec import formats

    stored = row["report"] if isinstance(row["report"], dict) else {}
    fmt = formats().get(stored.get("format_id") or "")
    if fmt is None:
        return ""
    try:
        with read() as conn:
            data = bytes(conn.execute(select(T.files.c.data).where(T.files.c.sha256 == row["sha256"])).scalar_one())
    except Exception:  # noqa: BLE001 - the file is gone: the receipt alone cannot say which cell
        return ""
    again = read_bytes(data, row["name"], row["name"])
    if not again.readable or again.format_id != fmt.id:
        return ""
    fresh = to_stored(again)
    parts = _cell_changes(fmt, _cells(stored), _cells(fresh)) + _cover_changes(fmt, stored, fresh)
    more = f"等{len(parts)}处" if len(parts) > SHOWN_CELLS else ""
    return "；".join(parts[:SHOWN_CELLS]) + more


def _cells(data: dict[str, Any]) -> dict[str, Any]:
    """Cell id → stored figure (a blank cell as None; a cell absent from the sparse values is 0)."""
    values = data.get("values") if isinstance(data.get("values"), dict) else {}
    blank = data.get("blank") if isinstance(data.get("blank"), list) else []
    return {**values, **{cid: None for cid in blank if isinstance(cid, str)}}


def _shown(value: Any) -> str:
    return "空白" if value is None else str(value)


def _cell_changes(fmt: Any, was: dict[str, Any], now: dict[str, Any]) -> list[str]:
    ids = [*fmt.cells, *sorted((set(was) | set(now)) - set(fmt.cells))]
    out = []
    for cid in ids:
        a, b = was.get(cid, 0), now.get(cid, 0)
        if a != b:
            where = fmt.cells[cid].where if cid in fmt.cells else f"单元格 {cid}"
            out.append(f"{where}存档为 {_shown(a)}，原文件为 {_shown(b)}")
    return out


def _cover_changes(fmt: Any, stored: dict[str, Any], fresh: dict[str, Any]) -> list[str]:
    was = stored.get("cover") if isinstance(stored.get("cover"), dict) else {}
    now = fresh.get("cover") or {}
    labels = {f.id: f.label for f in fmt.cover.fields}
    return [
        f"{fmt.cover.sheet_name}“{labels.get(k, k)}”存档为 {_shown(was.get(k))}，原文件为 {_shown(now.get(k))}"
        for k in sorted(set(was) | set(now))
        if was.get(k) != now.get(k)
    ]
