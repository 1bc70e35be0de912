"""The Starlette application. Routes parse the request, call the archive or the library, render a
Jinja2 page; nothing here decides what a return's status is."""

from __future__ import annotations

import contextlib
import dataclasses
import ipaddress
import os
import re
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..api import Archive, ArchiveError, WorkerPool
from ..errors import NianbaoError
from . import city, form, keys, views
from .limits import Limits, Quotas, uploads_at_once

HERE = Path(__file__).parent
BASE_URL_SETTING = keys.BASE_URL_SETTING
MAX_UPLOAD = 20 * 1024 * 1024  # one request; a return is ~20 KB, a zip of a county's returns a few MB
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


@dataclass
class WebConfig:
    db: str | None  # as for --db: None = $NIANBAO_DB or nianbao.db
    year: int
    open_admin: bool = True  # served on loopback: the local user (on a loopback Host) is the county reviewer
    max_upload: int = MAX_UPLOAD
    tls: bool = False  # served over HTTPS: cookies are Secure
    base_url: str | None = None  # the address the units use (None: the one `nianbao links` stored)
    hosts: set[str] = field(default_factory=set)  # Host names answered besides the loopback names
    any_ip: bool = False  # any IP-literal Host (served on a wildcard address)
    origins: set[str] = field(default_factory=set)  # origins a form may come from besides the page's own
    quotas: Quotas = field(default_factory=Quotas)  # what one unit's link may take (serve --max-…)
    checkpoint_seconds: float = 60.0  # how often a SQLite archive's write-ahead log is moved into its file
    processes: int = 1  # server processes on the archive (serve --workers): they share the machine's checkers

    def allow(self, host: str, names: list[str] | tuple[str, ...] = ()) -> None:
        """Answer for the listening address (any IP literal when it is a wildcard) and ``names``
        (``--allow-host``, a port after a name is ignored)."""
        if host in WILDCARDS:
            self.any_ip = True
        else:
            self.hosts.add(host_name(host))
        self.hosts.update(host_name(n) for n in names if n.strip())

    def add_base_url(self, url: str) -> None:
        parts = urllib.parse.urlsplit(url.strip())
        if parts.scheme in ("http", "https") and parts.netloc:
            self.hosts.add(host_name(parts.netloc))
            self.origins.add(origin_of(url))

    def host_allowed(self, name: str) -> bool:
        if is_loopback(name) or name in self.hosts:
            return True
        return self.any_ip and is_ip(name)


WILDCARDS = ("0.0.0.0", "::", "")
# A Host header as browsers send it: a name or IPv4 address, or an [IPv6] address, and a port. A list
# ("127.0.0.1:8000, evil.example") or spaces are not a host: HostGuard refuses them.
HOST_FORM = re.compile(r"(?:[A-Za-z0-9._-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
LOOPBACK_HOST = views.LOOPBACK_HOST  # scope key: the request named a loopback host


def is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host.lower().rstrip(".") == "localhost"


def host_name(host: str) -> str:
    """The name of a Host header or --host value, lower case, without port or IPv6 brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host[1:]
    if host.count(":") == 1:
        host = host.split(":", 1)[0]
    return host.rstrip(".")


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL, lower case, the default port left out ("" if not a web URL)."""
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return ""
    netloc = parts.netloc.lower().rsplit("@", 1)[-1]
    default = ":80" if parts.scheme == "http" else ":443"
    return f"{parts.scheme}://{netloc.removesuffix(default)}"


class HostGuard:
    """DNS rebinding and cross-site forms: a request naming a Host this server does not serve gets
    400, a state-changing request whose Origin (or Referer) is not the page's own gets 403, on every
    route. Records whether the Host is a loopback name (only then is loopback's open admin open)."""

    def __init__(self, app, config: WebConfig, ctx: views.Context):
        self.app, self.config, self.ctx = app, config, ctx

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"] if k in (b"host", b"origin", b"referer")}
        server = scope.get("server") or ("", 0)
        host = headers.get("host") or f"{server[0]}:{server[1]}"
        name = host_name(host)
        problem = None
        if not self.config.host_allowed(name) or ("host" in headers and not HOST_FORM.fullmatch(host)):
            problem = (400, "网页地址不对：这台服务器不为这个地址提供服务。请使用县（旗、区）政务公开办发给您的链接。")
        elif scope["method"] not in SAFE_METHODS and not self._same_origin(scope, host, headers):
            problem = (403, "请求的来源不是本网页（可能是其他网站代发的请求），已拒绝。请在本网页上重新操作。")
        if problem:
            return await self.ctx.error_page(Request(scope), *problem)(scope, receive, send)
        scope[LOOPBACK_HOST] = is_loopback(name)
        return await self.app(scope, receive, send)

    def _same_origin(self, scope, host: str, headers: dict[str, str]) -> bool:
        given = headers.get("origin") or headers.get("referer") or ""
        got = origin_of(given) if given != "null" else ""
        own = origin_of(f"{scope.get('scheme', 'http')}://{host}")
        return bool(got) and (got == own or got in self.config.origins)


HSTS = "max-age=604800"  # a week, no preload: a county that gives up its certificate is not locked out for long


def security_headers(tls: bool) -> list[tuple[bytes, bytes]]:
    """CSP without inline script, no framing, no MIME sniffing, no referrer leaving the site (a unit's
    link stays private; same-origin forms keep their Origin, which HostGuard checks); under TLS,
    HSTS (the browser then never sends the links or the session in clear text to this name)."""
    pairs = [
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ]
    if tls:
        pairs.append(("strict-transport-security", HSTS))
    return [(k.encode(), v.encode()) for k, v in pairs]


class SecurityHeaders:
    """``security_headers`` on every answer."""

    def __init__(self, app, tls: bool = False):
        self.app, self.tls = app, tls

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = security_headers(self.tls or scope.get("scheme") == "https")

        async def with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", []).extend(headers)
            await send(message)

        return await self.app(scope, receive, with_headers)


class OneAnswer:
    """Each request is one answer of the archive (``Archive.answering``): what every step of it
    asks again, the year's row, is read once."""

    def __init__(self, app, archive: Archive):
        self.app, self.archive = app, archive

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        with self.archive.answering():
            return await self.app(scope, receive, send)


class _App(Starlette):
    """Starlette with the security headers and the Host/Origin guard outside everything, its own
    500 handler included: every answer, an error page too, carries them."""

    def build_middleware_stack(self):
        ctx = self.state.ctx
        inner = OneAnswer(super().build_middleware_stack(), ctx.archive)
        return SecurityHeaders(HostGuard(inner, ctx.config, ctx), ctx.config.tls)


async def _checkpoints(archive: Archive, every: float) -> None:
    """Every minute, move the write-ahead log into the archive file: otherwise, while the server runs,
    ``nianbao.db`` keeps its size of the day the roster was loaded and every upload lives in
    ``nianbao.db-wal`` — a plain copy of the file named in README would be an empty archive."""
    import asyncio

    from starlette.concurrency import run_in_threadpool

    while True:
        await asyncio.sleep(every)
        try:
            await run_in_threadpool(archive.checkpoint)
        except Exception as e:  # a busy or unavailable database: the next minute tries again
            views.log.warning("档案库检查点未完成（稍后重试）：%s", e)


def _lifespan(ctx: views.Context):
    """The server's life: the archive's log is checkpointed every minute and once at the end, the
    upload workers are stopped when it stops."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        import asyncio

        task = None  # PostgreSQL (serve --workers) has no log file to move
        if ctx.archive.wal_file() is not None:
            task = asyncio.create_task(_checkpoints(ctx.archive, ctx.config.checkpoint_seconds))
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            ctx.workers.close()
            ctx.limits.close()
            with contextlib.suppress(Exception):
                ctx.archive.checkpoint()

    return lifespan


def connections_per_process(processes: int) -> int:
    """PostgreSQL connections each server process may hold: enough for the requests it serves at
    once (up to 30), the processes together within 80 of PostgreSQL's 100 by default (the rest for
    the command line, backups and the county's other tools)."""
    return max(5, min(30, 80 // max(processes, 1)))


def create_app(config: WebConfig) -> Starlette:
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    config = dataclasses.replace(config, hosts=set(config.hosts), origins=set(config.origins))
    connections = connections_per_process(config.processes)
    archive = Archive.open(config.db, connections=connections)
    archive.need_roster(config.year)
    base = config.base_url or archive.setting(BASE_URL_SETTING)
    if base:
        config.add_base_url(base)
    pages = Jinja2Templates(directory=str(HERE / "templates"))
    workers = WorkerPool(max(1, (os.cpu_count() or 1) // config.processes))  # started on the first upload
    ctx = views.Context(archive, config, pages, workers, keys.web_key(archive))
    # its counts and locks are shared by every server process; the uploads at once leave a database
    # connection for the locks and one for a page
    at_once = max(1, min(uploads_at_once(config.processes), connections - 2))
    ctx.limits = Limits(config.quotas, archive=archive, at_once=at_once)
    routes = [
        Route("/login", views.login, methods=["GET", "POST"]),
        Route("/logout", views.logout, methods=["POST"]),
        Route("/unit/{code}", ctx.admin(views.unit_page)),
        Route("/unit/{code}/accept", ctx.admin(views.accept), methods=["POST"]),
        Route("/unit/{code}/reject", ctx.admin(views.reject), methods=["POST"]),
        Route("/unit/{code}/reopen", ctx.admin(views.reopen), methods=["POST"]),
        Route("/unit/{code}/link", ctx.admin(views.new_link), methods=["POST"]),
        Route("/links", ctx.admin(views.links_page)),
        Route("/upload", ctx.admin(views.bulk_upload), methods=["POST"]),
        Route("/submission/{sid:int}/original", ctx.admin(views.original)),
        Route("/submission/{sid:int}/annotated", ctx.admin(views.annotated)),
        Route("/template/{code}", ctx.admin(views.template_one)),
        Route("/templates.zip", ctx.admin(views.templates_zip)),
        Route("/consolidate", ctx.admin(views.consolidate), methods=["POST"]),
        Route("/audit", ctx.admin(views.audit_upload), methods=["POST"]),
        Route("/export.{kind:str}", ctx.admin(views.export)),
        Route("/u/{token}", ctx.clerk(views.clerk_page)),
        Route("/u/{token}/upload", ctx.limits.link_body(ctx.clerk(views.clerk_upload)), methods=["POST"]),
        Route("/u/{token}/template", ctx.clerk(views.clerk_template)),
        Route("/u/{token}/annotated", ctx.clerk(views.clerk_annotated)),
        *form.routes(ctx),  # 在线填写 (issue 30)
        *city.routes(ctx),  # the overview, a city's counties (issue 31)
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    handlers = {
        HTTPException: ctx.http_error,
        NianbaoError: ctx.user_error,
        ArchiveError: ctx.user_error,
        DBAPIError: ctx.failure,  # the database went away, is busy, or its disk is full: 503 / 507
        PoolTimeout: ctx.failure,
        OSError: ctx.failure,  # a full disk or temp folder: 507
        Exception: ctx.crash,  # anything else: a Chinese 500 page; the server logs the traceback
    }
    app = _App(routes=routes, exception_handlers=handlers, lifespan=_lifespan(ctx))
    app.state.ctx = ctx
    return app
