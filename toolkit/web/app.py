"""The Starlette application. Routes parse the request, call the archive or the library, render a
Jinja2 page; nothing here decides what a return's status is."""

from __future__ import annotations

import contextlib
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from ..archive import Archive, ArchiveError
from ..check import WorkerPool
from ..errors import NianbaoError
from . import views

HERE = Path(__file__).parent
MAX_UPLOAD = 20 * 1024 * 1024  # one request; a return is ~20 KB, a zip of a county's returns a few MB
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)


@dataclass
class WebConfig:
    db: str | None  # as for --db: None = $NIANBAO_DB or nianbao.db
    year: int
    open_admin: bool = True  # served on loopback: the local user is the county reviewer
    max_upload: int = MAX_UPLOAD


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


class SecurityHeaders:
    """CSP without inline script, no framing, no MIME sniffing, no referrer leaking a unit's link."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                headers = message.setdefault("headers", [])
                for k, v in (
                    ("content-security-policy", CSP),
                    ("x-content-type-options", "nosniff"),
                    ("x-frame-options", "DENY"),
                    ("referrer-policy", "no-referrer"),
                    ("cache-control", "no-store"),
                ):
                    headers.append((k.encode(), v.encode()))
            await send(message)

        return await self.app(scope, receive, with_headers)


def _lifespan(ctx: views.Context):
    """The server's life: the upload workers are stopped when it stops."""

    @contextlib.asynccontextmanager
    async def lifespan(app):
        try:
            yield
        finally:
            ctx.workers.close()

    return lifespan


def create_app(config: WebConfig) -> Starlette:
    archive = Archive.open(config.db)
    archive.need_roster(config.year)
    pages = Jinja2Templates(directory=str(HERE / "templates"))
    ctx = views.Context(archive, config, pages, WorkerPool(os.cpu_count() or 1))  # started on the first upload
    routes = [
        Route("/", ctx.admin(views.overview)),
        Route("/login", views.login, methods=["GET", "POST"]),
        Route("/unit/{code}", ctx.admin(views.unit_page)),
        Route("/unit/{code}/accept", ctx.admin(views.accept), methods=["POST"]),
        Route("/unit/{code}/reject", ctx.admin(views.reject), methods=["POST"]),
        Route("/upload", ctx.admin(views.bulk_upload), methods=["POST"]),
        Route("/submission/{sid:int}/original", ctx.admin(views.original)),
        Route("/submission/{sid:int}/annotated", ctx.admin(views.annotated)),
        Route("/template/{code}", ctx.admin(views.template_one)),
        Route("/templates.zip", ctx.admin(views.templates_zip)),
        Route("/consolidate", ctx.admin(views.consolidate), methods=["POST"]),
        Route("/audit", ctx.admin(views.audit_upload), methods=["POST"]),
        Route("/export.{kind:str}", ctx.admin(views.export)),
        Route("/u/{token}", ctx.clerk(views.clerk_page)),
        Route("/u/{token}/upload", ctx.clerk(views.clerk_upload), methods=["POST"]),
        Route("/u/{token}/template", ctx.clerk(views.clerk_template)),
        Route("/u/{token}/annotated", ctx.clerk(views.clerk_annotated)),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]
    app = Starlette(
        routes=routes,
        middleware=[Middleware(SecurityHeaders)],
        exception_handlers={HTTPException: ctx.http_error, NianbaoError: ctx.user_error, ArchiveError: ctx.user_error},
        lifespan=_lifespan(ctx),
    )
    app.state.ctx = ctx
    return app
