"""What several server processes of one archive (``serve --workers``) must agree on besides the
archive's own rows: who holds a unit's turn at the checker and its places in the queue, and the
attempts counted per window (wrong admin keys per address, uploads per unit's link).

The turns are PostgreSQL advisory locks held by one connection per process: a killed or hung-up
process's connection closes and the database releases every lock it held at once, so a crashed
worker never leaves a unit blocked (a lease row would, until its expiry). A SQLite archive is served
by one process only, and its locks are this process's memory (``LocalLocks``, the same interface).
The attempts are rows of ``attempts`` (schema 0007), on both databases.
"""

from __future__ import annotations

import functools
import hashlib
import threading
import time
from typing import Any

from . import schema as T
from .records import attempted


def lock_id(name: str) -> int:
    """A lock's name as PostgreSQL's advisory lock key (a signed 64-bit integer)."""
    return int.from_bytes(hashlib.sha256(f"nianbao-lock\0{name}".encode()).digest()[:8], "big", signed=True)


class LocalLocks:
    """Named locks of this process (a SQLite archive: one server process). Not re-entrant: a name
    held is refused to every other holder, in this process too."""

    def __init__(self) -> None:
        self._held: set[str] = set()
        self._mutex = threading.Lock()

    def take_first(self, names: list[str]) -> str | None:
        """The first of ``names`` that was free, now held; None when every one is held."""
        return self.take_first_with(names, None)[0]

    def take_first_with(self, names: list[str], also: str | None) -> tuple[str | None, bool]:
        """``take_first``, and with the name taken also ``also`` when that is free: a place in a
        unit's queue and, when nobody is being checked, the turn too, in one round trip. Never
        ``also`` without one of ``names``."""
        with self._mutex:
            for name in names:
                if name in self._held:
                    continue
                got, with_also = self._acquire_with(name, None if also in self._held else also)
                if got:
                    self._held.update([name, also] if with_also else [name])
                    return name, with_also
        return None, False

    def release(self, *names: str) -> None:
        """Let go of ``names`` (those held), together."""
        with self._mutex:
            held = [n for n in names if n in self._held]
            self._held.difference_update(held)
            if held:
                self._free(held)

    def _acquire(self, name: str) -> bool:
        return True

    def _acquire_with(self, name: str, also: str | None) -> tuple[bool, bool]:
        got = self._acquire(name)
        return got, got and also is not None and self._acquire(also)

    def _free(self, names: list[str]) -> None:
        pass

    def close(self) -> None:
        with self._mutex:
            self._held.clear()


class AdvisoryLocks(LocalLocks):
    """Named locks shared by every process of a PostgreSQL archive: session advisory locks on one
    autocommit connection of this process (re-entrant in PostgreSQL, hence the names held here are
    also kept in memory and never asked for twice)."""

    def __init__(self, engine: Any) -> None:
        super().__init__()
        self.engine = engine
        self._conn: Any = None

    def _connection(self) -> Any:
        if self._conn is None:
            self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        return self._conn

    def _acquire(self, name: str) -> bool:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        try:
            return bool(self._connection().execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": lock_id(name)}).scalar())
        except DBAPIError:
            self._drop()  # the database went away: every lock of this process went with the connection
            raise

    def _acquire_with(self, name: str, also: str | None) -> tuple[bool, bool]:
        if also is None:
            return self._acquire(name), False
        from sqlalchemy.exc import DBAPIError

        try:
            row = self._connection().execute(_both_statement(), {"k": lock_id(name), "also": lock_id(also)}).one()
        except DBAPIError:
            self._drop()
            raise
        return bool(row[0]), bool(row[1])

    def _free(self, names: list[str]) -> None:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        unlocks = ", ".join(f"pg_advisory_unlock(:k{n})" for n in range(len(names)))  # one round trip
        try:
            self._connection().execute(text(f"SELECT {unlocks}"), {f"k{n}": lock_id(name) for n, name in enumerate(names)})
        except DBAPIError:
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        self._held.clear()
        if conn is not None:
            try:
                conn.invalidate()
            except Exception:  # already broken: nothing left to release
                pass

    def close(self) -> None:
        with self._mutex:
            conn, self._conn = self._conn, None
            self._held.clear()
            if conn is not None:
                conn.close()  # the session ends: PostgreSQL releases its locks


@functools.cache
def _both_statement() -> Any:
    """One lock and, only when it was taken, a second: ``OFFSET 0`` keeps the first call in its own
    subquery (evaluated once, first) and CASE evaluates the second call only for a lock taken."""
    from sqlalchemy import text

    return text(
        "SELECT first.held, CASE WHEN first.held THEN pg_try_advisory_lock(:also) ELSE false END"
        " FROM (SELECT pg_try_advisory_lock(:k) AS held OFFSET 0) AS first"
    )


def process_locks(engine: Any) -> LocalLocks:
    """The locks of this server process: shared through PostgreSQL, or this process's own (SQLite)."""
    return AdvisoryLocks(engine) if engine.dialect.name == "postgresql" else LocalLocks()


# ---------------------------------------------------------------- attempts counted per window


def add_attempt(engine: Any, kind: str, subject: str, window: float, prune: bool = True) -> None:
    """One attempt now; with ``prune``, the kind's attempts older than ``window`` seconds are dropped
    on the way."""
    now = time.time()
    A = T.attempts
    with _autocommit(engine) as conn:  # each statement whole on its own: no BEGIN and COMMIT round trips
        if prune:
            conn.execute(A.delete().where(A.c.kind == kind, A.c.at < now - window))
        conn.execute(A.insert(), {"kind": kind, "subject": subject[:128], "at": now})


def _autocommit(engine: Any) -> Any:
    """A connection whose statements each commit by themselves (PostgreSQL); SQLite's writers keep
    their BEGIN IMMEDIATE (db.py), so there a transaction as before."""
    if engine.dialect.name == "postgresql":
        return engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    return engine.begin()


def attempts(conn: Any, kind: str, subject: str, window: float) -> tuple[int, float]:
    """(attempts within the last ``window`` seconds, seconds until the oldest of them leaves it)."""
    now = time.time()
    params = {"kind": kind, "subject": subject[:128], "since": now - window}
    count, oldest = conn.execute(_attempts_statement(), params).one()
    return int(count), (oldest + window - now) if oldest is not None else 0.0


@functools.cache
def _attempts_statement() -> Any:
    """Count and oldest of a subject's attempts since ``:since``: every login asks, built once."""
    from sqlalchemy import func, select

    where = attempted("since")
    return select(func.count(), func.min(T.attempts.c.at)).where(where)


def clear_attempts(engine: Any, kind: str, subject: str) -> None:
    A = T.attempts
    with engine.begin() as conn:
        conn.execute(A.delete().where(A.c.kind == kind, A.c.subject == subject[:128]))
