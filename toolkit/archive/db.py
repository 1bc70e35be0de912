"""Opening an archive: the URL, the engine (SQLite tuned for several processes at once, or
PostgreSQL through psycopg), and the schema brought to this version by Alembic.

Every failure to open becomes an ``ArchiveError`` in Chinese (exit code 2): a file that is not a
database, a database of another program, an archive from a newer nianbao, a server that does not
answer.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import NianbaoError
from ..fileio import create_owner_only

ENV = "NIANBAO_DB"
DEFAULT_FILE = "nianbao.db"
HERE = Path(__file__).resolve().parent
BUSY_MS = 60_000
PAGE_SIZE = 16384  # SQLite pages of a new archive; older archives keep theirs (4096)
SCHEMA_HEAD = "0007"  # the newest migration in migrations/versions (a test keeps them equal)


class ArchiveError(NianbaoError):
    """The archive cannot be opened or used (exit code 2)."""


def resolve_url(db: str | os.PathLike | None) -> str:
    """``--db``, else $NIANBAO_DB, else nianbao.db here; a plain path means a SQLite file."""
    raw = str(db) if db else os.environ.get(ENV) or DEFAULT_FILE
    if "://" in raw:
        if raw.startswith(("postgresql://", "postgres://")):
            return "postgresql+psycopg://" + raw.split("://", 1)[1]
        return raw
    return "sqlite:///" + str(Path(raw).expanduser().resolve())


def shown(url: str) -> str:
    """The archive as the user named it: a file path, or the URL without its password."""
    from sqlalchemy.engine import make_url

    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=True)


def _json(obj) -> str:  # type: ignore[no-untyped-def]
    import json

    if obj == [] and isinstance(obj, list):  # most receipts: no findings, no warnings
        return "[]"
    return json.dumps(obj, ensure_ascii=False, default=str, separators=(",", ":"))


def _sqlite_engine(url: str):
    from sqlalchemy import create_engine, event

    path = Path(url.removeprefix("sqlite:///"))
    if not path.parent.is_dir():
        raise ArchiveError(f"档案库所在的文件夹不存在：{path.parent}")
    # a new archive is readable by its owner only (it holds every unit's returns and the links'
    # digests); SQLite gives its -wal and -shm files the same mode. An existing one keeps its mode.
    create_owner_only(path)
    engine = create_engine(url, connect_args={"timeout": BUSY_MS / 1000}, json_serializer=_json)

    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn, _record):  # type: ignore[no-untyped-def]
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout = {BUSY_MS}")
        # takes effect only when the archive is created (a WAL database keeps its page size): a
        # received file of ~18 KB then fills 2 pages instead of 5, and storing 10,000 returns costs
        # about half the CPU in SQLite (benchmarks/README.md, "The archive")
        cur.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA synchronous = NORMAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn):  # type: ignore[no-untyped-def]
        # writers take the lock at once: two receive processes queue instead of failing
        read = conn.get_execution_options().get("nianbao_read")
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")

    return engine


POOL_SIZE = 15  # PostgreSQL connections a process may hold at once (SQLAlchemy's default: 5 kept + 10)


def make_engine(url: str, connections: int = POOL_SIZE):
    """``connections``: PostgreSQL connections a process may hold at once, three quarters of them
    kept open between uses. A server passes what its threads use at once: a connection opened for
    one request and closed after it costs PostgreSQL a new backend process, its catalogue read again
    and every statement planned anew — at 100 uploads at once that was half of the database's work."""
    from sqlalchemy import create_engine

    if url.startswith("sqlite"):
        return _sqlite_engine(url)
    if url.startswith("postgresql"):
        try:
            engine = create_engine(
                url,
                pool_size=max(1, connections * 3 // 4),
                max_overflow=connections - max(1, connections * 3 // 4),
                connect_args={"connect_timeout": 10},
                json_serializer=_json,
            )
        except ImportError as e:
            raise ArchiveError("使用 PostgreSQL 档案库需要安装 psycopg：pip install 'psycopg[binary]'") from e
        _ping_when_idle(engine)
        return engine
    raise ArchiveError(f"不支持的档案库地址：{url}。请用文件路径（SQLite）或 postgresql://用户@主机/库名。")


IDLE_PING_SECONDS = 5.0  # a pooled PostgreSQL connection unused this long is tried before it is used


def _ping_when_idle(engine) -> None:  # type: ignore[no-untyped-def]
    """A pooled connection left unused for a while (the database may have restarted since) is tried
    with a round trip before it is handed out, and replaced when it is dead (SQLAlchemy's own
    ``pool_pre_ping`` tries every one, every time: six round trips per upload). One used a moment ago
    is handed out as it is; should the database have gone in that moment, the statement fails, the
    pool drops every connection made before, and the page says 请稍后重试 once."""
    import time

    from sqlalchemy import event
    from sqlalchemy.exc import DisconnectionError

    @event.listens_for(engine, "checkin")
    def _used(dbapi_conn, record):  # type: ignore[no-untyped-def]
        record.info["used"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _try(dbapi_conn, record, proxy):  # type: ignore[no-untyped-def]
        if time.monotonic() - record.info.get("used", float("-inf")) < IDLE_PING_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_conn)  # the driver's own way (psycopg or psycopg2), outside a transaction
        except Exception as e:  # noqa: BLE001 - any failure: a connection not to hand out
            raise DisconnectionError(str(e)) from e  # the pool replaces it and tries again


def _alembic_config(connection):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(HERE / "migrations"))
    cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config(None)).get_current_head() or ""


def known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    return {s.revision for s in ScriptDirectory.from_config(_alembic_config(None)).walk_revisions()}


def _current(conn) -> tuple[str | None, set[str]]:
    """(schema revision or None, the tables there are)."""
    from sqlalchemy import inspect, text

    tables = set(inspect(conn).get_table_names())
    if "alembic_version" not in tables:
        return None, tables
    row = conn.execute(text("SELECT version_num FROM alembic_version")).first()
    return (row[0] if row else None), tables


def _judge(url: str, rev: str | None, tables: set[str]) -> bool:
    """Whether the schema must be created or upgraded; refuse what is not ours or too new."""
    if rev == SCHEMA_HEAD:  # the usual case, without loading Alembic
        return False
    if rev is None:
        if tables - {"alembic_version"}:
            raise ArchiveError(f"{shown(url)} 不是 nianbao 档案库（其中已有其他程序的数据表），未做任何改动。请换一个 --db。")
        return True
    if rev not in known_revisions():
        raise ArchiveError(
            f"档案库 {shown(url)} 由更新版本的 nianbao 创建（结构版本 {rev}），本版本无法打开。请升级 nianbao 后再使用。"
        )
    return rev != head_revision()


def migrate(engine, url: str) -> None:
    """Create or upgrade the schema, once, even when several processes open a new archive together.
    Alembic is loaded only when there is something to do (0.1 s on every command otherwise)."""
    with engine.connect().execution_options(nianbao_read=True) as conn:
        rev, tables = _current(conn)
        conn.rollback()
    if not _judge(url, rev, tables):
        return
    with engine.begin() as conn:  # BEGIN IMMEDIATE on SQLite; an advisory lock on PostgreSQL
        if conn.dialect.name == "postgresql":
            from sqlalchemy import text

            conn.execute(text("SELECT pg_advisory_xact_lock(7215001)"))
        rev, tables = _current(conn)
        if _judge(url, rev, tables):
            from alembic import command

            command.upgrade(_alembic_config(conn), "head")


def open_engine(db: str | os.PathLike | None, connections: int = POOL_SIZE):
    """(engine, url) of a usable archive; ArchiveError in Chinese otherwise."""
    from sqlalchemy.exc import DatabaseError, OperationalError

    url = resolve_url(db)
    engine = make_engine(url, connections)
    try:
        migrate(engine, url)
    except DatabaseError as e:  # OperationalError included
        engine.dispose()
        raise ArchiveError(_message(url, e, isinstance(e, OperationalError))) from None
    return engine, url


def _first_line(e: Exception) -> str:
    return str(getattr(e, "orig", e) or e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


def _message(url: str, e: Exception, operational: bool) -> str:
    msg = _first_line(e)
    if url.startswith("sqlite"):
        if "malformed" in msg:
            return f"档案库文件 {shown(url)} 已损坏（{msg}）。请用备份（nianbao backup 生成的文件）恢复。"
        if "not a database" in msg or not operational:
            return f"{shown(url)} 不是 nianbao 档案库，也不是可用的数据库文件（{msg}）。请检查 --db。"
        return f"无法打开档案库 {shown(url)}（{msg}）。请检查路径和权限。"
    if operational:
        return f"无法连接档案库数据库 {shown(url)}（{msg}）。请检查服务器是否运行、地址、用户名和密码。"
    return f"无法使用档案库数据库 {shown(url)}（{msg}）。请检查该用户是否有建表和写入的权限。"
