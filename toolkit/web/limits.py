"""What one unit's link may take of the county's machine: bytes per file and per unit-year, uploads
per hour, and a turn at the checker (one check at a time per unit, a few waiting); and how often an
address may try the admin key. Everything counted here is shared by the archive's server processes
(``serve --workers``): the archive counts what is stored and the attempts that left no row (refused or
duplicate files, wrong keys), and a unit's turn and its places in the queue are the archive's locks
(PostgreSQL advisory locks, released by the database when a process dies; toolkit/archive/leases.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import hashlib
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
HOUR = 3600.0
TURN_POLL = (0.05, 0.5)  # seconds between tries at a turn another process holds: first, at most


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
    lock: Any  # asyncio.Lock, made inside the event loop: this process's uploads of the unit, in order
    users: int = 0  # holding or waiting, in this process


@dataclass
class Held:
    """A unit's turn and its place in the queue as an upload holds them (``Limits.turn``): let go
    by the upload's own thread once its page is read (``release``: one hand-over to a thread fewer),
    or else when the turn ends."""

    locks: Any
    names: tuple[str, ...]
    done: bool = False

    def claim(self) -> bool:
        """Mark them let go by the caller, who then lets go of ``names``; False if they already are."""
        was, self.done = self.done, True
        return not was

    def release(self) -> None:
        if self.claim():
            self.locks.release(*self.names)


@dataclass
class Limits:
    """One per server process (on ``views.Context``), over the archive every process shares."""

    quotas: Quotas = field(default_factory=Quotas)
    archive: Any = None  # the server's Archive: the counts and the locks shared by its processes
    _turns: dict[str, _Turn] = field(default_factory=dict)
    _locks: Any = None  # archive.process_locks(), made on first use
    at_once: int = 16  # uploads this process checks and stores at a time (``uploads_at_once``)
    _limiter: Any = None

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
    async def turn(self, unit: str) -> AsyncIterator[Held]:
        """One check at a time per unit, whichever server process took the upload; more than
        ``quotas.waiting`` uploads waiting behind the one being checked are refused at once. A place in
        the queue and the turn are the archive's locks (``place``); the wait is on the event loop (no
        thread is held): in order within this process, by polling the lock across processes. The
        usual upload, the only one of its unit here, asks for its place and the turn in one call."""
        import asyncio

        places = [f"place\0{unit}\0{k}" for k in range(self.quotas.waiting + 1)]
        name = f"turn\0{unit}"
        slot = self._turns.get(unit)
        alone = slot is None  # no other upload of the unit holds or awaits the turn in this process
        if slot is None:
            slot = self._turns[unit] = _Turn(asyncio.Lock())
        slot.users += 1
        place, turned, in_order = None, False, False
        # from here every lock taken is let go in a ``finally`` (``_call`` finishes even when the client leaves)
        try:
            if alone:  # the local order at once (a new lock: no wait), then the place and the turn in one call
                in_order = await slot.lock.acquire()
                place, turned = await self._call(self.locks().take_first_with, places, name)
            else:
                place = await self._call(self.locks().take_first, places)
            if place is None:
                raise HTTPException(429, QUEUE_FULL, headers={"retry-after": str(QUEUE_RETRY_SECONDS)})
            if not in_order:
                in_order = await slot.lock.acquire()
            if not turned:
                await self._take_turn(name)
            held = Held(self.locks(), (name, place))
            place = None
            try:
                yield held
            finally:  # the turn and the place in one call, before the next upload here takes the turn
                if held.claim():
                    await self._call(self.locks().release, *held.names)
        finally:
            if in_order:
                slot.lock.release()
            slot.users -= 1
            if slot.users == 0:  # the dict holds only units with uploads in flight
                self._turns.pop(unit, None)
            if place is not None:  # the turn was never taken
                await self._call(self.locks().release, place)

    async def _take_turn(self, name: str) -> None:
        """Wait until the turn is free in every process (another process's upload of the unit ends)."""
        import asyncio

        pause = TURN_POLL[0]
        while await self._call(self.locks().take_first, [name]) is None:
            await asyncio.sleep(pause)
            pause = min(TURN_POLL[1], pause * 2)

    def locks(self) -> Any:
        if self._locks is None:
            self._locks = self.archive.process_locks()
        return self._locks

    def close(self) -> None:
        """The server stops: its locks are released (PostgreSQL ends the session's locks)."""
        if self._locks is not None:
            self._locks.close()

    async def _call(self, fn: Callable, *args: Any) -> Any:
        """A short call on the locks off the event loop, shielded: a client that leaves (the request
        cancelled) neither loses a lock just taken nor skips letting one go."""
        import anyio

        with anyio.CancelScope(shield=True):
            return await anyio.to_thread.run_sync(functools.partial(fn, *args))

    async def run(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        """Run a check in a thread of the uploads' own limiter, so that uploads never take the
        threads the pages use (anyio's default 40): the county's pages are always served. The others
        wait their turn in order, on the event loop."""
        import anyio

        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(self.at_once)
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._limiter)

    # ------------------------------------------------------------ quotas

    def receive(self, archive: Any, unit: str, year: int, paths: list[Path], **options: Any) -> list:
        """A link's upload, in the uploads' thread (``run``): its quotas, then ``archive.receive``
        with the link's limits (the unit-year's bytes counted again as it stores). An upload that
        leaves no new version (refused, a file sent again, a failure) is counted as an attempt: the
        hour's count is the unit's versions received plus these."""
        self.admit(archive, unit, year, paths)
        new_version = False
        try:
            received = archive.receive(paths, year, only_unit=unit, **self.store_options(unit), **options)
            new_version = any(r.submission_id is not None and not r.previous_at for r in received)
            return received
        finally:
            if not new_version:  # still within the unit's turn: no other process counts in between
                _count_attempt(archive, unit)

    def admit(self, archive: Any, unit: str, year: int, paths: list[Path]) -> None:
        """Refuse an upload through a unit's link that would go over the hour's uploads or the
        unit-year's bytes. Files the year already holds add no bytes; the unit's newest version sent
        again is acknowledged whatever the hour's count (a retry after a lost answer must hear
        "received", not "try in an hour"; it stores nothing new, and what it costs, a check, is bounded
        by the unit's queue) — an older version sent again is a new version, and counts. Called within
        the unit's turn, so the count and the attempt added after it are not raced by another process."""
        now = dt.datetime.now().astimezone()
        since = (now - dt.timedelta(hours=1)).isoformat(timespec="microseconds")
        shas = {hashlib.sha256(p.read_bytes()).hexdigest(): p.stat().st_size for p in paths}
        used = archive.usage(unit, year, since, shas, attempts=(UPLOAD, HOUR))  # both counts in one round trip
        q = self.quotas
        adds = sum(size for sha, size in shas.items() if sha not in used.known)
        if set(shas) - {used.newest} and used.receipts + used.tried >= q.uploads_per_hour:
            wait = _hour_wait(used, now, q.uploads_per_hour)
            raise HTTPException(429, per_hour_message(q.uploads_per_hour, wait), headers={"retry-after": str(wait)})
        if adds and used.bytes + adds > q.unit_bytes:
            raise HTTPException(413, over_quota_message(used.bytes, adds, q.unit_bytes))

    # ------------------------------------------------------------ the admin key

    def login_wait(self, client: str) -> int:
        """Seconds the address must wait before it may try the admin key again (0: it may now):
        ``LOGIN_TRIES`` wrong keys within ``LOGIN_WINDOW`` seconds lock it out until the oldest of
        them is that old. Counted in the archive, so every server process refuses the address alike
        and a restart does not forget it. Blocking (a database call): run it off the event loop."""
        tried, left = self.archive.attempts(LOGIN, client, LOGIN_WINDOW)
        return int(left) + 1 if tried >= LOGIN_TRIES else 0

    def login_failed(self, client: str) -> None:
        self.archive.add_attempt(LOGIN, client, LOGIN_WINDOW)

    def login_ok(self, client: str) -> None:
        self.archive.clear_attempts(LOGIN, client)

    def store_options(self, unit: str | None) -> dict[str, Any]:
        """``receive``'s limits: for a unit's link all of them, for the county's batch the per-file ones."""
        options: dict[str, Any] = {"refuse_codes": REFUSE_CODES, "max_bytes": self.quotas.file_bytes}
        if unit is not None:
            options["unit_bytes"] = self.quotas.unit_bytes
        return options


SLIM = (
    "填报表本身一般只有几十 KB：请在 Excel 或 WPS 中打开文件，删除粘贴进去的图片、照片、附件等表格以外的内容"
    "（或把填好的内容复制到本页“下载本单位的填报模板”得到的空白模板中），保存后在本页重新上传。"
)
QUEUE_RETRY_SECONDS = 60
QUEUE_FULL = (
    "本单位刚才上传的几份文件还在排队审核，这一份没有接收。请不要重复上传：约一分钟后刷新本页，"
    "看“记录”中的审核结果；需要时再上传最新的一份。"
)
LOGIN_TRIES, LOGIN_WINDOW = 5, 600  # wrong admin keys from one address, seconds
LOGIN, UPLOAD = "login", "upload"  # kinds of the archive's attempts


def too_big_message(limit: int, name: str = "", size: int = 0) -> str:
    what = f"文件“{name}”有 {mb(size)}，" if name else "上传的文件"
    return f"{what}超过每个文件 {mb(limit)} 的上限，没有接收。{SLIM}{CONTACT}"


def over_quota_message(used: int, adds: int, limit: int) -> str:
    return (
        f"本单位本年度已存入 {mb(used)} 的文件，再存这次上传的 {mb(adds)} 就超过每个单位每年 {mb(limit)} 的上限，"
        f"没有接收。请删除文件中的图片：{SLIM}确需存入更大的文件时，请联系县（旗、区）政务公开办。"
    )


def uploads_at_once(processes: int) -> int:
    """Uploads one server process checks and stores at a time: twice its share of the machine's cores
    (an upload waits on its checker and the database part of the time), at least 2. Checking is
    work for the cores: a hundred uploads side by side on two cores take longer, each of them and
    all together, than the same hundred a few at a time in the order they came."""
    import os

    return max(2, 2 * (os.cpu_count() or 1) // max(processes, 1))


def _count_attempt(archive: Any, unit: str) -> None:
    """An upload that stored no new version, counted. A database that fails just then must not turn
    the answer (a retry acknowledged, or the error being raised) into another error: the attempt is
    then not counted, and the log says so."""
    try:
        archive.add_attempt(UPLOAD, unit, HOUR)
    except Exception as e:  # noqa: BLE001 - logged; the upload's own answer stands
        import logging

        detail = (str(getattr(e, "orig", None) or e).strip().splitlines() or [type(e).__name__])[0]
        logging.getLogger("nianbao.web").warning("单位 %s 经链接的一次上传没有计入每小时次数（档案库没有写入：%s）", unit, detail)


def _hour_wait(used: Any, now: dt.datetime, limit: int) -> int:
    """Seconds until the hour's count is under the limit again (between a minute and an hour): when
    it is at the limit, until the oldest of its versions and attempts leaves the hour; when over it
    (newest files sent again, the county's own uploads), an hour."""
    if used.receipts + used.tried > limit:
        return 3600
    lefts = [used.tried_left] if used.tried else []
    if used.first_receipt:
        lefts.append(HOUR - (now - dt.datetime.fromisoformat(used.first_receipt).astimezone()).total_seconds())
    return max(60, min(3600, int(min(lefts, default=HOUR)) + 1))


def per_hour_message(limit: int, wait: int = 3600) -> str:
    minutes = max(1, -(-wait // 60))
    return (
        f"本单位一小时内已上传 {limit} 次，达到上限，这一份没有接收。请在 {minutes} 分钟后再上传"
        f"（最迟一小时后再试）；之前已收到的文件不受影响。急需时请联系县（旗、区）政务公开办。"
    )


def login_wait_message(wait: int) -> str:
    minutes = max(1, -(-wait // 60))
    return (
        f"管理密钥已连续输错 {LOGIN_TRIES} 次，这台电脑暂时不能登录。请 {minutes} 分钟后再试；"
        "忘记密钥时，请在运行 nianbao serve 的电脑上用 --new-admin-key 换一个新密钥。"
    )
