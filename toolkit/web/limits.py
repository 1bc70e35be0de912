"""What one unit's link may take of the county's machine: bytes per file and per unit-year, uploads
per hour, and a turn at the checker (one check at a time per unit, a few waiting). The archive
counts what is stored, so several server processes agree; this module only keeps, per process, the
upload attempts that left no row (refused or duplicate files) and the per-unit queues."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
import threading
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request

MB = 1024 * 1024
FORM_OVERHEAD = 64 * 1024  # a link's form around its file: boundaries, headers, the CSRF field
CONTACT = "如有疑问，请联系县（旗、区）政务公开办。"
REFUSE_CODES = frozenset({"unexpected-large-part"})  # pictures or embedded objects: refused before storing


@dataclass(frozen=True)
class Quotas:
    """Per-unit limits of the upload links. A return is 20–60 KB and a unit sends a few a year, so
    the defaults leave a county's real work a hundred times the room it needs."""

    file_bytes: int = 2 * MB  # one uploaded file (also each file of the county's own batch upload)
    unit_bytes: int = 30 * MB  # distinct files stored for one unit and year
    uploads_per_hour: int = 60  # uploads through one unit's link
    waiting: int = 3  # uploads of one unit waiting for their turn at the checker


def mb(n: int) -> str:
    return f"{n / MB:.1f}".rstrip("0").rstrip(".") + " MB"


@dataclass
class _Turn:
    lock: Any  # asyncio.Lock, made inside the event loop
    users: int = 0  # holding or waiting


@dataclass
class Limits:
    """One per server process (on ``views.Context``)."""

    quotas: Quotas = field(default_factory=Quotas)
    max_units: int = 10_000  # units remembered for the hourly counts (a county has a few hundred)
    _turns: dict[str, _Turn] = field(default_factory=dict)
    _recent: OrderedDict[str, deque[float]] = field(default_factory=OrderedDict)
    _limiter: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)  # the hourly counts, from the uploads' threads

    # ------------------------------------------------------------ request body

    def link_body(self, endpoint: Callable) -> Callable:
        """Wrap a link's upload route: a body over one file's limit is refused from its
        Content-Length before anything is read, and while it streams (a length that lies)."""
        limit = self.quotas.file_bytes + FORM_OVERHEAD

        @functools.wraps(endpoint)
        async def bounded(request: Request):
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > limit:
                raise HTTPException(413, too_big_message(self.quotas.file_bytes))
            seen = 0
            upstream = request.receive

            async def counted():
                nonlocal seen
                message = await upstream()
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise HTTPException(413, too_big_message(self.quotas.file_bytes))
                return message

            return await endpoint(Request(request.scope, counted))

        return bounded

    # ------------------------------------------------------------ a turn at the checker

    @contextlib.asynccontextmanager
    async def turn(self, unit: str) -> AsyncIterator[None]:
        """One check at a time per unit; the wait is on the event loop (no thread is held), and more
        than ``quotas.waiting`` uploads waiting behind the one being checked are refused at once."""
        import asyncio

        slot = self._turns.get(unit)
        if slot is None:
            slot = self._turns[unit] = _Turn(asyncio.Lock())
        if slot.users > self.quotas.waiting:
            raise HTTPException(429, "本单位还有几份文件正在排队审核。请等刚才上传的文件出结果后再上传（通常不超过一分钟）。")
        slot.users += 1
        try:
            async with slot.lock:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:  # the dict holds only units with uploads in flight
                self._turns.pop(unit, None)

    async def run(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run a check in a thread of the uploads' own limiter, so that uploads never take the
        threads the pages use (anyio's default 40): the county's pages are always served."""
        import anyio

        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(16)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._limiter)

    # ------------------------------------------------------------ quotas

    def receive(self, archive: Any, unit: str, year: int, paths: list[Path], **options: Any) -> list:
        """A link's upload, in the uploads' thread (``run``): its quotas, then ``archive.receive``
        with the link's limits (the unit-year's bytes counted again as it stores)."""
        self.admit(archive, unit, year, paths)
        return archive.receive(paths, year, only_unit=unit, **self.store_options(unit), **options)

    def admit(self, archive: Any, unit: str, year: int, paths: list[Path]) -> None:
        """Refuse an upload through a unit's link that would go over the hour's uploads or the
        unit-year's bytes (files the year already holds add nothing: a retry is acknowledged)."""
        since = (dt.datetime.now().astimezone() - dt.timedelta(hours=1)).isoformat(timespec="microseconds")
        shas = {hashlib.sha256(p.read_bytes()).hexdigest(): p.stat().st_size for p in paths}
        used = archive.usage(unit, year, since, shas)
        q = self.quotas
        with self._lock:
            if max(used.receipts, self._attempts(unit)) >= q.uploads_per_hour:
                raise HTTPException(429, per_hour_message(q.uploads_per_hour))
            adds = sum(size for sha, size in shas.items() if sha not in used.known)
            if adds and used.bytes + adds > q.unit_bytes:
                raise HTTPException(413, over_quota_message(used.bytes, adds, q.unit_bytes))
            self._attempt(unit)

    def _attempts(self, unit: str) -> int:
        """This process's uploads of the unit in the last hour (refused and duplicate ones leave no
        row in the archive, yet cost a check)."""
        times = self._recent.get(unit)
        if not times:
            return 0
        hour_ago = time.monotonic() - 3600
        while times and times[0] < hour_ago:
            times.popleft()
        return len(times)

    def _attempt(self, unit: str) -> None:
        times = self._recent.pop(unit, None) or deque()
        times.append(time.monotonic())
        self._recent[unit] = times  # most recent last
        while len(self._recent) > self.max_units:
            self._recent.popitem(last=False)

    def store_options(self, unit: str | None) -> dict[str, Any]:
        """``receive``'s limits: for a unit's link all of them, for the county's batch the per-file ones."""
        options: dict[str, Any] = {"refuse_codes": REFUSE_CODES, "max_bytes": self.quotas.file_bytes}
        if unit is not None:
            options["unit_bytes"] = self.quotas.unit_bytes
        return options


def too_big_message(limit: int, name: str = "", size: int = 0) -> str:
    what = f"文件“{name}”有 {mb(size)}，" if name else "上传的文件"
    return (
        f"{what}超过每个文件 {mb(limit)} 的上限。填报表本身一般只有几十 KB：请删除文件中的图片、附件等多余内容"
        f"（或另存为新的 .xlsx 文件）后重新上传。{CONTACT}"
    )


def over_quota_message(used: int, adds: int, limit: int) -> str:
    return (
        f"本单位本年度已存入 {mb(used)} 的文件，再存这次上传的 {mb(adds)} 就超过每个单位每年 {mb(limit)} 的上限，"
        f"没有接收。请删除文件中的图片后重新上传；确需存入时请联系县（旗、区）政务公开办。"
    )


def per_hour_message(limit: int) -> str:
    return f"本单位一小时内已上传 {limit} 次，达到上限。请一小时后再试；急需时请联系县（旗、区）政务公开办。"
