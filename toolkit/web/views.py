"""Page handlers. Each: check who asks (admin or a unit's link, and the CSRF token of a form),
call the archive or the library, render a template or send a file."""

from __future__ import annotations

import functools
import logging
import re
import tempfile
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..api import STATUSES, Archive, safe_filename
from . import keys
from .limits import login_wait_message

STATUS_ORDER = STATUSES
SESSION_COOKIE, ADMIN_COOKIE = "nb_session", "nb_admin"  # a signed visitor id; a signed-in admin's session id
LOOPBACK_HOST = "nianbao.loopback_host"  # set by app.HostGuard
log = logging.getLogger("nianbao.web")
FORCE_BOX = "有错误时也汇总"  # the consolidate form's checkbox (overview.html)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Context:
    archive: Archive
    config: Any
    pages: Any
    workers: Any = None  # toolkit.check.WorkerPool: the uploads' long-lived worker processes
    key: bytes = b""  # the archive's HMAC key of visitor ids and CSRF tokens (keys.web_key)
    limits: Any = field(default=None, kw_only=True)  # web.limits.Limits: what one unit's link may take of the machine

    # ------------------------------------------------------------ guards

    def admin(self, handler):
        @functools.wraps(handler)
        async def guarded(request: Request):
            if not await run_in_threadpool(self.is_admin, request):
                if request.method == "GET":
                    return RedirectResponse("/login", status_code=303)
                raise HTTPException(403, "需要管理员登录：请先在登录页面输入管理密钥或本县（市）的审核密钥。")
            self.in_scope(request)
            await self._form(request)
            return await handler(self, request)

        return guarded

    def is_admin(self, request: Request) -> bool:
        """Loopback's open admin only for a loopback Host (HostGuard has checked the Origin of a form);
        otherwise a live session signed in with the admin key or a reviewer's key. Either way the
        request's scope (``request.state.scope``: what its holder may see and decide) is set here."""
        if self.config.open_admin and request.scope.get(LOOPBACK_HOST):
            request.state.scope = self.archive.scope(self.config.year)
            return True
        scope = self.archive.session_scope(self.cookie(request, ADMIN_COOKIE), self.config.year)
        request.state.signed_in, request.state.scope = scope is not None, scope
        return request.state.signed_in

    def in_scope(self, request: Request) -> None:
        """A route naming a unit (``{code}``) outside the signed-in scope answers as an unknown unit:
        a county's reviewer learns nothing of another county's units, not even that they exist."""
        code = request.path_params.get("code")
        if code is not None and not request.state.scope.can_see(code):
            raise HTTPException(404, NO_UNIT.format(year=self.config.year, code=code))

    def clerk(self, handler):
        @functools.wraps(handler)
        async def guarded(request: Request):
            code = await run_in_threadpool(self.link_unit, request.path_params["token"])
            if code is None:
                raise HTTPException(404, "链接无效或已更换。请向县（旗、区）政务公开办索取新的链接。")
            request.state.unit_code = code
            await self._form(request)
            return await handler(self, request)

        return guarded

    def link_unit(self, token: str) -> str | None:
        """The unit of a live link when it is in the server's year's roster (a link serves its unit in
        every year, until it is re-issued)."""
        return self.archive.link_unit(token, self.config.year)

    async def _form(self, request: Request) -> None:
        """Parse a POSTed form within the size limit and check its CSRF token (``csrf_expected``), so
        neither a cookie nor a token the client made up passes."""
        request.state.form = None
        if request.method != "POST":
            return
        self.sized(request)
        form = await request.form(max_files=500, max_fields=50)
        if not keys.token_ok(str(form.get("csrf", "")), self.csrf_expected(request)):
            raise HTTPException(403, "表单已过期或来源不明（CSRF 校验未通过）。请刷新页面后重试。")
        request.state.form = form

    def sized(self, request: Request) -> None:
        """A POST must say its size (every browser does) and stay within the limit, before anything is read."""
        length = request.headers.get("content-length")
        if length is None:
            raise HTTPException(411, NO_LENGTH)
        if not length.isdigit() or int(length) > self.config.max_upload:
            limit = self.config.max_upload // (1024 * 1024)
            raise HTTPException(413, f"上传的内容超过 {limit} MB 的上限。请分几次上传，每次少选几个文件。")

    def csrf_expected(self, request: Request) -> str | None:
        """The token of this request's forms: a signed-in admin's is bound to the session (a visitor
        cookie planted from another port of this host, with its token, must not ride the admin's
        session cookie); anyone else's to the signed visitor id (a clerk's link is the credential)."""
        if getattr(request.state, "signed_in", False):
            return keys.session_csrf_token(self.key, self.cookie(request, ADMIN_COOKIE))
        visitor = keys.visitor_of(self.key, self.cookie(request, SESSION_COOKIE))
        return keys.csrf_token(self.key, visitor) if visitor else None

    # ------------------------------------------------------------ rendering

    def secure(self, request: Request) -> bool:
        return self.config.tls or request.url.scheme == "https"

    def cookie_name(self, request: Request, name: str) -> str:
        """Under TLS the cookies are ``__Host-`` cookies: Secure, Path=/, no Domain, so that no other
        name or plain-http page of the host can set or shadow them."""
        return f"__Host-{name}" if self.secure(request) else name

    def cookie(self, request: Request, name: str) -> str:
        return request.cookies.get(self.cookie_name(request, name), "")

    def set_cookie(self, resp: Response, request: Request, name: str, value: str, **kw: Any) -> None:
        secure = self.secure(request)
        resp.set_cookie(self.cookie_name(request, name), value, path="/", httponly=True, samesite="strict", secure=secure, **kw)

    def render(self, request: Request, name: str, status_code: int = 200, **data: Any) -> Response:
        """A page; a visitor without a (valid) signed id gets one, and every form its CSRF token."""
        visitor = keys.visitor_of(self.key, self.cookie(request, SESSION_COOKIE))
        cookie = None
        if visitor is None:
            visitor, cookie = keys.new_visitor(self.key)
        data.setdefault("year", self.config.year)
        data.setdefault("signed_in", getattr(request.state, "signed_in", False))
        csrf = self.csrf_expected(request) or keys.csrf_token(self.key, visitor)
        resp = self.pages.TemplateResponse(request, name, {"csrf": csrf, **data}, status_code=status_code)
        if cookie:
            self.set_cookie(resp, request, SESSION_COOKIE, cookie)
        return resp

    def error_page(self, request: Request, status: int, message: str, headers: dict[str, str] | None = None) -> Response:
        """An error as a Chinese page (no cookie set, nothing read from the archive). Reached through
        a unit's link, its way back is that link's page, not the county's login."""
        data = {"year": self.config.year, "message": message, "status": status, "home": _home(request, status)}
        return self.pages.TemplateResponse(request, "error.html", data, status_code=status, headers=headers)

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        """Ours carry a Chinese message; Starlette's own (an unknown route, a malformed form) are English
        and get a Chinese one by status."""
        message = exc.detail if exc.detail and not exc.detail.isascii() else ""
        message = message or HTTP_MESSAGES.get(exc.status_code, "无法完成这个请求。")
        return self.error_page(request, exc.status_code, message, dict(exc.headers or {}))  # Allow, Retry-After …

    async def user_error(self, request: Request, exc: Exception) -> Response:
        return self.error_page(request, 400, str(exc))

    async def failure(self, request: Request, exc: Exception) -> Response:
        """The database or the disk failed: 503 (try again soon) or 507 (full), logged in one line;
        anything else a 500 with its traceback logged once."""
        status, message = failure_kind(exc)
        if status == 500:
            log.error("内部错误：%s %s", request.method, _logged_path(request), exc_info=exc)
        else:
            log.warning("%s %s → %d：%s", request.method, _logged_path(request), status, _first_line(exc))
        return self.error_page(request, status, message, {"retry-after": "30"} if status in (503, 507) else None)

    async def crash(self, request: Request, exc: Exception) -> Response:
        """Starlette's last resort (the server logs the traceback after this page is sent)."""
        status, message = failure_kind(exc)
        return self.error_page(request, status, message, {"retry-after": "30"} if status in (503, 507) else None)


HTTP_MESSAGES = {
    400: "请求的内容不完整或格式不对。",
    403: "没有权限访问这个页面。",
    404: "没有这个页面。请检查网址，或从首页（县里）或本单位的专用链接进入。",
    405: "这个网址不接受这种请求。请从网页上的按钮操作。",
    413: "上传的内容太大。请分几次上传。",
}
NO_UNIT = "{year}年度名册中没有单位代码 {code}，或该单位不在您可以查看的范围内。"
NO_LENGTH = "请求没有注明内容大小（Content-Length），无法接收。请在本网页上重新操作；一直如此时请换用常用的浏览器。"
UNAVAILABLE = "档案库暂时无法访问，请稍后重试。这次操作没有完成，也没有保存任何半截的内容。"
FULL = "服务器的磁盘已满，这次上传没有保存（以前收到的文件不受影响）。请过一会儿再试；一直如此时请告诉县（旗、区）政务公开办。"
BROKEN = "服务器内部出错，这次操作没有完成。请稍后重试；如果一直如此，请告诉县（旗、区）政务公开办。"


def _home(request: Request, status: int) -> str:
    """The page an error page leads back to: the unit's own page for an error under its link (not for
    a link that is not valid), else the county's."""
    token = request.scope.get("path_params", {}).get("token") if request.url.path.startswith("/u/") else None
    if not token or (status == 404 and getattr(request.state, "unit_code", None) is None):
        return "/"
    return f"/u/{urllib.parse.quote(str(token), safe='')}"


def _logged_path(request: Request) -> str:
    """The path without a unit's private link (logs are read by more people than the links)."""
    head, _, rest = request.url.path.partition("/u/")
    return f"{head}/u/…/{rest.partition('/')[2]}" if _ else request.url.path


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _chain(exc: BaseException):
    seen = 0
    while exc is not None and seen < 8:
        yield exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1


def failure_kind(exc: BaseException) -> tuple[int, str]:
    """(status, Chinese message) of an unexpected failure: a full disk 507, a database that cannot be
    reached or stays busy 503, anything else 500."""
    from sqlalchemy.exc import InterfaceError, OperationalError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    chain = list(_chain(exc))
    if any(_disk_full(e) for e in chain):
        return 507, FULL
    if any(isinstance(e, OperationalError | InterfaceError | PoolTimeout) for e in chain):
        return 503, UNAVAILABLE
    if any(getattr(e, "connection_invalidated", False) for e in chain):
        return 503, UNAVAILABLE
    return 500, BROKEN


def _disk_full(e: BaseException) -> bool:
    """SQLite's "database or disk is full", PostgreSQL's disk_full (53100), ENOSPC, a size or quota limit."""
    import errno

    if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return True
    orig = getattr(e, "orig", None)
    text = str(orig or e).lower()
    return "database or disk is full" in text or "no space left" in text or getattr(orig, "sqlstate", "") == "53100"


def download(data: bytes, name: str, media_type: str = XLSX) -> Response:
    quoted = urllib.parse.quote(name)
    suffix = Path(name).suffix if re.fullmatch(r"\.[A-Za-z0-9]{1,8}", Path(name).suffix) else ".xlsx"  # the header is ASCII
    disposition = f"attachment; filename=\"download{suffix}\"; filename*=UTF-8''{quoted}"
    return Response(data, media_type=media_type, headers={"content-disposition": disposition})


def _unit(ctx: Context, code: str, request: Request | None = None):
    """The roster unit of a code — within the request's scope when one is given (404 otherwise)."""
    ros = ctx.archive.need_roster(ctx.config.year)
    unit = ros.get(code)
    scope = getattr(request.state, "scope", None) if request is not None else None
    if unit is None or (scope is not None and not scope.can_see(code)):
        raise HTTPException(404, NO_UNIT.format(year=ctx.config.year, code=code))
    return unit


def scope_of(request: Request):
    """The signed-in scope (set by ``Context.admin``): what this reviewer may see and decide."""
    return request.state.scope


def _under(request: Request) -> str | None:
    """The scope's root as ``--under`` (None for the whole archive)."""
    scope = scope_of(request)
    return None if scope.whole else scope.root


# ---------------------------------------------------------------- admin pages


def _sorted_states(states, status: str, sort: str):
    shown = [s for s in states if not status or s.status == status]
    keys_by = {
        "status": lambda s: (STATUS_ORDER.index(s.status) if s.status in STATUS_ORDER else 9, s.code),
        "time": lambda s: s.last_received or "",
        "name": lambda s: s.name,
    }
    return sorted(shown, key=keys_by.get(sort, lambda s: 0), reverse=sort == "time")


async def overview(
    ctx: Context, request: Request, levels: dict[str, Any] | None = None, error: str = "", status_code: int = 200
) -> Response:
    """报送情况 of the scope's units (``levels``: what city.py adds for a roster with counties — the
    root it shows, its state one level up, its counties' lines, and which units the table lists)."""
    levels = dict(levels or {})
    root = levels.get("root_code") or _under(request)
    states = levels.pop("states", None)  # city.py computed them for the counties' lines
    if states is None:
        states = await run_in_threadpool(ctx.archive.status, ctx.config.year, None, root or None)
    own = levels.get("own_codes")
    states = states if own is None else [s for s in states if s.code in own]
    deadline = await run_in_threadpool(ctx.archive.deadline, ctx.config.year)
    tally = Counter(s.status for s in states)
    status, sort = request.query_params.get("status", ""), request.query_params.get("sort", "")
    bars = [(name, tally.get(name, 0)) for name in STATUS_ORDER]
    return ctx.render(
        request,
        "overview.html",
        status_code=status_code,
        error=error,
        states=_sorted_states(states, status, sort),
        total=len(states),
        bars=bars,
        late=sum(1 for s in states if s.late),  # past the deadline and not yet approved
        deadline=deadline,
        status=status,
        sort=sort,
        statuses=STATUS_ORDER,
        **levels,
    )


def _days_left(deadline, today=None) -> int | None:
    import datetime as dt

    return (deadline - (today or dt.date.today())).days if deadline else None


def _unit_view(archive: Archive, code: str, year: int, received=None) -> dict[str, Any]:
    """What a unit's page shows, for the county and for the unit's own link alike: the state, the
    newest version's findings (once), its versions and the unit's history, the deadline — read on one
    connection (``Archive.reading``). ``received``: what this answer just stored — when the newest
    version is among them, its findings are those in hand, not read back."""
    with archive.reading():
        state, history = archive.unit_page(code, year)
        report = _stored_report(archive, state.submission_id, received)
        deadline = archive.deadline(year)
    return {
        "state": state,
        "findings": list(report.findings) if report is not None else [],
        "history": history,
        "deadline": deadline,
        "days_left": _days_left(deadline),
    }


def _stored_report(archive: Archive, sid: int | None, received=None):
    """The version ``sid``'s report: the one just stored when ``received`` holds it, else the archive's."""
    if not sid:
        return None
    just = next((r.report for r in received or () if r.submission_id == sid and not r.previous_at and r.report is not None), None)
    return just if just is not None else archive.report(sid)


def _change_rows(changes) -> list[dict[str, str]]:
    """A cell difference as the page's table shows it (labels from the format, values as read)."""
    from ..api import shown_value as shown

    return [dict(sheet=c.sheet, row=c.row_label, col=c.col_label, ref=c.ref, old=shown(c.old), new=shown(c.new)) for c in changes]


def _review_view(archive: Archive, code: str, year: int, state, findings: list) -> dict[str, Any]:
    """What the reviewer needs to decide on the newest version: its versions, which errors may be
    explained and which must be corrected, and what changed against the version that counts (or the
    one before) and against last year's approved return."""
    from ..api import ArchiveError, explainable_errors, mandatory_errors

    view: dict[str, Any] = {"versions": [], "base": None, "changes": None, "last_year": None, "last_year_note": ""}
    if not state.submission_id:
        return view
    versions = archive.versions(code, year)
    view["versions"] = list(reversed(versions))  # newest first
    if len(versions) > 1:
        base_id = state.approved_id if state.approved_id and state.approved_id != state.submission_id else versions[-2].id
        view["base"] = next(v for v in versions if v.id == base_id)
        view["changes"] = _change_rows(archive.diff(code, year, base_id, state.submission_id))
    try:
        view["last_year"] = _change_rows([c for c in archive.diff_last_year(code, year) if not c.is_cover])
    except ArchiveError as e:
        view["last_year_note"] = str(e)
    view["mandatory"] = mandatory_errors(findings)
    view["explainable"] = explainable_errors(findings)
    view["needs_note"] = bool(view["explainable"] or state.warnings)
    return view


async def unit_page(ctx: Context, request: Request, error: str = "", status_code: int = 200) -> Response:
    code = request.path_params["code"]
    unit = _unit(ctx, code, request)
    view = await run_in_threadpool(_unit_view, ctx.archive, code, ctx.config.year)
    view |= await run_in_threadpool(_review_view, ctx.archive, code, ctx.config.year, view["state"], view["findings"])
    view |= await run_in_threadpool(_links_view, ctx, request, [unit])
    view["locked"] = await run_in_threadpool(_locked_note, ctx.archive, code, ctx.config.year)
    return ctx.render(request, "unit.html", status_code=status_code, unit=unit, error=error, **view)


def _locked_note(archive: Archive, code: str, year: int) -> str:
    """Why no decision can be taken on the unit now — its county has submitted to the city or been
    approved (the archive's own words) — or ""."""
    from ..api import ArchiveError

    try:
        archive.check_unit_open(code, year)
    except ArchiveError as e:
        return str(e)
    return ""


async def _decide(ctx: Context, request: Request, kind: str) -> Response:
    """通过 / 退回 / 撤销通过 of the version the reviewer saw (the form's hidden submission id): a
    version that is no longer the newest, or one the archive refuses, gives the unit's page again
    with the archive's Chinese reason on top."""
    from ..api import ArchiveError

    code = request.path_params["code"]
    _unit(ctx, code, request)
    note = str(request.state.form.get("note", "")).strip()
    if not note and kind != "通过":
        raise HTTPException(400, "请填写退回理由或撤销通过的原因。")
    raw_sid = str(request.state.form.get("submission_id", "")).strip()
    sid = int(raw_sid) if raw_sid.isdigit() else None  # the version the reviewer saw (None: the newest)
    try:
        await run_in_threadpool(ctx.archive.decide_unit, scope_of(request), kind, code, ctx.config.year, note, sid)
    except ArchiveError as e:
        return await unit_page(ctx, request, error=str(e), status_code=409)
    return RedirectResponse(f"/unit/{urllib.parse.quote(code)}", status_code=303)


async def accept(ctx: Context, request: Request) -> Response:
    return await _decide(ctx, request, "通过")


async def reject(ctx: Context, request: Request) -> Response:
    return await _decide(ctx, request, "退回")


async def reopen(ctx: Context, request: Request) -> Response:
    return await _decide(ctx, request, "撤销通过")


# ---------------------------------------------------------------- the units' links


def _links_view(ctx: Context, request: Request, units) -> dict[str, Any]:
    """Each unit's link as the county sends it: the base URL `nianbao links` stored (or --base-url),
    else this page's own address (then the page says so)."""
    base = ctx.config.base_url or ctx.archive.setting(keys.BASE_URL_SETTING)
    tokens = keys.links_of(ctx.archive, [u.code for u in units])
    root = (base or str(request.base_url)).rstrip("/")
    links = {code: {"url": f"{root}/u/{t}" if t else "", "old": t is None} for code, t in tokens.items()}
    return {"links": links, "base_known": bool(base)}


async def links_page(ctx: Context, request: Request) -> Response:
    units = scope_of(request).units(ctx.archive.need_roster(ctx.config.year))
    view = await run_in_threadpool(_links_view, ctx, request, units)
    return ctx.render(request, "links.html", units=units, **view)


async def new_link(ctx: Context, request: Request) -> Response:
    """重新生成: the unit's new link, its old one stops working at once (also its first link)."""
    code = _unit(ctx, request.path_params["code"], request).code
    await run_in_threadpool(keys.rotate_link, ctx.archive, code)
    back = "/links" if request.state.form.get("back") == "links" else f"/unit/{urllib.parse.quote(code)}"
    return RedirectResponse(f"{back}#link-{urllib.parse.quote(code)}", status_code=303)


async def _save_uploads(form, folder: Path) -> list[Path]:
    paths = []
    for n, item in enumerate(form.getlist("files")):
        if not hasattr(item, "read"):
            continue
        name = safe_filename(Path(item.filename or f"上传{n + 1}.xlsx").name) or f"上传{n + 1}.xlsx"
        target = folder / f"{n:04d}" / name  # a folder each: two uploads of one name never collide
        target.parent.mkdir()
        target.write_bytes(await item.read())
        paths.append(target)
    if not paths:
        raise HTTPException(400, "没有选择文件。")
    return paths


async def bulk_upload(ctx: Context, request: Request) -> Response:
    """The county's own batch: each file (and each file of a zip) within the per-file limit, pictures
    refused; no unit quota (the county decides what it stores)."""
    with tempfile.TemporaryDirectory(prefix="nianbao-upload-") as tmp:
        paths = await _save_uploads(request.state.form, Path(tmp))
        options = ctx.limits.store_options(None)
        scope = scope_of(request)
        if not scope.whole:  # a county's reviewer stores its own units' returns only
            options["only_codes"] = scope.codes
        received = await ctx.limits.run(ctx.archive.receive, paths, ctx.config.year, source="管理页面", **options)
    return ctx.render(request, "received.html", received=received)


async def _submission_report(ctx: Context, sid: int, only_unit: str | None = None, scope=None):
    """A stored version — of ``only_unit`` (a unit's link) or within ``scope`` (a reviewer) only."""
    try:
        report = await run_in_threadpool(ctx.archive.report, sid)
    except Exception:  # no such submission
        raise HTTPException(404, "没有这份提交。") from None
    if only_unit is not None and report.unit_code != only_unit:
        raise HTTPException(404, "没有这份提交。")
    if scope is not None and not scope.can_see(report.unit_code):
        raise HTTPException(404, "没有这份提交。")
    return report


async def original(ctx: Context, request: Request) -> Response:
    report = await _submission_report(ctx, request.path_params["sid"], scope=scope_of(request))
    data = await run_in_threadpool(ctx.archive.file_bytes, report.provenance.sha256)
    return download(data, report.provenance.name or "原件.xlsx")


def _annotated_bytes(report, year: int) -> bytes:
    from ..api import write_annotated_copy as write_annotated

    with tempfile.TemporaryDirectory(prefix="nianbao-annotated-") as tmp:
        out = Path(tmp) / "审核意见.xlsx"
        if write_annotated(report, out, year=year) is None or not out.exists():
            raise HTTPException(404, "这份文件无法生成审核意见副本（文件无法读取或表格位置无法确定）。")
        return out.read_bytes()


def _annotated_name(report) -> str:
    from ..api import annotated_names

    return annotated_names([report.provenance.name or "填报表.xlsx"])[0]


async def annotated(ctx: Context, request: Request) -> Response:
    report = await _submission_report(ctx, request.path_params["sid"], scope=scope_of(request))
    data = await run_in_threadpool(_annotated_bytes, report, ctx.config.year)
    return download(data, _annotated_name(report))


def _templates(archive: Archive, units, year: int) -> list[tuple[str, bytes]]:
    """Templates as `nianbao template --db` makes them: 上年结转 prefilled from last year's archive."""
    from ..api import write_template

    prefill = archive.carryover(year, units[0].code if len(units) == 1 else None)
    with tempfile.TemporaryDirectory(prefix="nianbao-template-") as tmp:
        return [(p.name, p.read_bytes()) for p in write_template(units, year, tmp, prefill=prefill)]


async def template_one(ctx: Context, request: Request) -> Response:
    unit = _unit(ctx, request.path_params["code"], request)
    ((name, data),) = await run_in_threadpool(_templates, ctx.archive, [unit], ctx.config.year)
    return download(data, name)


def _zip(files: list[tuple[str, bytes]]) -> bytes:
    import io
    import zipfile

    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files:
            z.writestr(name, data)
    return buf.getvalue()


async def templates_zip(ctx: Context, request: Request) -> Response:
    units = scope_of(request).units(ctx.archive.need_roster(ctx.config.year))
    files = await run_in_threadpool(_templates, ctx.archive, units, ctx.config.year)
    return download(_zip(files), f"{ctx.config.year}年政府信息公开年报填报模板.zip", "application/zip")


def _summary_bytes(archive: Archive, year: int, force: bool, under: str | None = None) -> tuple[bytes, str]:
    from ..api import write_summary

    summary = archive.consolidate(year, force=force, under=under)
    name = f"{summary.report.unit_name or '汇总'}_{year}年政府信息公开年报汇总.xlsx"
    with tempfile.TemporaryDirectory(prefix="nianbao-summary-") as tmp:
        path = write_summary(summary, Path(tmp) / "汇总.xlsx")[0]
        return path.read_bytes(), name


async def consolidate(ctx: Context, request: Request) -> Response:
    from ..api import Refused

    force = request.state.form.get("force") == "1"
    try:
        data, name = await run_in_threadpool(_summary_bytes, ctx.archive, ctx.config.year, force, _under(request))
    except Refused as e:  # the command line's advice, said as this page's checkbox
        message = str(e).replace("加 --force 强制汇总", f"勾选“{FORCE_BOX}”后再点“汇总并下载汇总表”")
        return ctx.render(request, "error.html", status_code=409, message=message.replace("--force", f"勾选“{FORCE_BOX}”"))
    return download(data, name)


def _export_bytes(archive: Archive, year: int, kind: str, wide: bool = False, under: str | None = None) -> bytes:
    from ..api import write_frame

    frame = archive.export_frame(year, wide=wide, under=under)
    with tempfile.TemporaryDirectory(prefix="nianbao-export-") as tmp:
        return write_frame(frame, Path(tmp) / f"明细.{kind}").read_bytes()


async def export(ctx: Context, request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind not in ("csv", "xlsx"):
        raise HTTPException(404, "只能导出 CSV 或 XLSX。")
    wide = request.query_params.get("form") == "wide"  # one row per unit (明细), else one per unit and cell
    data = await run_in_threadpool(_export_bytes, ctx.archive, ctx.config.year, kind, wide, _under(request))
    media = "text/csv; charset=utf-8" if kind == "csv" else XLSX
    form = "宽表" if wide else "明细"
    return download(data, f"{ctx.config.year}年政府信息公开年报{form}.{kind}", media)


def _audit(archive: Archive, paths: list[Path], year: int, store: bool, scope) -> tuple[Any, bytes]:
    """Published reports through the same importer and checks as `nianbao audit`; with ``store``
    the readable ones are kept in the archive as their years' published figures. A county's reviewer
    matches them against its own units only, and stores only theirs."""
    from ..api import Roster, audit, write_audit

    ros = archive.roster(year)
    if ros is not None and not scope.whole:
        ros = Roster(tuple(scope.units(ros)), ros.source)
    result = audit(paths, ros)
    if store:
        known = [r for r in result.reports if r.readable and r.year and archive.roster(r.year) is not None]
        known = [r for r in known if scope.can_see(r.unit_code)]
        archive.store_imported(known)
    with tempfile.TemporaryDirectory(prefix="nianbao-audit-") as tmp:
        return result, write_audit(result, Path(tmp) / "审计.xlsx").read_bytes()


async def audit_upload(ctx: Context, request: Request) -> Response:
    form = request.state.form
    with tempfile.TemporaryDirectory(prefix="nianbao-upload-") as tmp:
        paths = await _save_uploads(form, Path(tmp))
        store = form.get("store") == "1"
        result, data = await run_in_threadpool(_audit, ctx.archive, paths, ctx.config.year, store, scope_of(request))
    if form.get("download") == "1":
        return download(data, f"{ctx.config.year}年已发布年报审计.xlsx")
    return ctx.render(request, "audit.html", reports=result.reports)


async def login(request: Request) -> Response:
    """The admin key or a reviewer's key (``keys add --under``), once: the browser then holds a random
    session id (never the key), stored as its digest with the key's scope and ended by 退出, after
    keys.SESSION_HOURS hours, or when the reviewer's key is revoked."""
    ctx: Context = request.app.state.ctx
    if request.method == "POST":
        await ctx._form(request)
        client = request.client.host if request.client else ""
        wait = await run_in_threadpool(ctx.limits.login_wait, client)  # a few wrong keys per address and ten minutes
        if wait:
            raise HTTPException(429, login_wait_message(wait), headers={"retry-after": str(wait)})
        key = str(request.state.form.get("key", "")).strip()
        scope = await run_in_threadpool(ctx.archive.key_scope, key, ctx.config.year)  # the admin key or a reviewer's
        if scope is not None:
            await run_in_threadpool(ctx.limits.login_ok, client)
            session = await run_in_threadpool(ctx.archive.new_scoped_session, scope)
            resp = RedirectResponse("/", status_code=303)
            ctx.set_cookie(resp, request, ADMIN_COOKIE, session, max_age=keys.SESSION_HOURS * 3600)
            return resp
        await run_in_threadpool(ctx.limits.login_failed, client)
        return ctx.render(request, "login.html", status_code=403, wrong=True)
    return ctx.render(request, "login.html", wrong=False)


async def logout(request: Request) -> Response:
    """退出: the session ends in the archive (every server process refuses it at once). Its form
    carries the session's token; without a live session there is nothing to end."""
    ctx: Context = request.app.state.ctx
    ctx.sized(request)
    session = ctx.cookie(request, ADMIN_COOKIE)
    request.state.signed_in = await run_in_threadpool(keys.is_session, ctx.archive, session)
    if request.state.signed_in:
        await ctx._form(request)
        await run_in_threadpool(keys.end_session, ctx.archive, session)
    resp = RedirectResponse("/login", status_code=303)
    name = ctx.cookie_name(request, ADMIN_COOKIE)
    resp.delete_cookie(name, path="/", httponly=True, samesite="strict", secure=ctx.secure(request))
    return resp


# ---------------------------------------------------------------- a unit's own page


def _clerk_view(ctx: Context, code: str, received=None) -> dict[str, Any]:
    """The unit and what its page shows, read on one connection in a thread (never on the event loop)."""
    with ctx.archive.reading():
        return {"unit": _unit(ctx, code), **_unit_view(ctx.archive, code, ctx.config.year, received)}


async def clerk_page(ctx: Context, request: Request, received=None, view=None) -> Response:
    """The unit's page (``view``: what it shows, when the caller read it already)."""
    if view is None:
        view = await run_in_threadpool(_clerk_view, ctx, request.state.unit_code, received)
    token = request.path_params["token"]
    return ctx.render(request, "clerk.html", token=token, received=received, **view)


def _received_and_view(ctx: Context, code: str, paths: list[Path], held: Any) -> tuple[list, dict[str, Any]]:
    """A link's upload stored (``Limits.receive``), the page that answers it read, and the unit's
    turn let go (``held``) in the same thread: one hand-over to a thread instead of three. The turn
    is held until the page is read, so that no other process stores a newer version of the unit in
    between and the page shows this one's findings."""
    received = ctx.limits.receive(ctx.archive, code, ctx.config.year, paths, workers=1, pool=ctx.workers, source="链接")
    view = _clerk_view(ctx, code, received)
    held.release()
    return received, view


async def clerk_upload(ctx: Context, request: Request) -> Response:
    """A unit's upload: its turn at the checker (one at a time per unit, waiting on the event loop),
    its quotas, then checked on the long-lived workers and stored unless refused."""
    code, limits = request.state.unit_code, ctx.limits
    async with limits.turn(code) as held:
        with tempfile.TemporaryDirectory(prefix="nianbao-upload-") as tmp:
            paths = await _save_uploads(request.state.form, Path(tmp))
            received, view = await limits.run(_received_and_view, ctx, code, paths, held)
    return await clerk_page(ctx, request, received=received, view=view)


async def clerk_template(ctx: Context, request: Request) -> Response:
    unit = _unit(ctx, request.state.unit_code)
    ((name, data),) = await run_in_threadpool(_templates, ctx.archive, [unit], ctx.config.year)
    return download(data, name)


async def clerk_annotated(ctx: Context, request: Request) -> Response:
    code = request.state.unit_code
    state = await run_in_threadpool(ctx.archive.state, code, ctx.config.year)
    if not state.submission_id:
        raise HTTPException(404, "还没有收到本单位的填报表。")
    report = await _submission_report(ctx, state.submission_id, only_unit=code)
    data = await run_in_threadpool(_annotated_bytes, report, ctx.config.year)
    return download(data, _annotated_name(report))
