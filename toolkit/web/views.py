"""Page handlers. Each: check who asks (admin or a unit's link, and the CSRF token of a form),
call the archive or the library, render a template or send a file."""

from __future__ import annotations

import functools
import secrets as _random
import tempfile
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..archive import Archive
from ..fileio import safe_filename
from . import keys

STATUS_ORDER = ("未报送", "退回", "待说明", "已通过")
CSRF_COOKIE, ADMIN_COOKIE = "nb_csrf", "nb_admin"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Context:
    archive: Archive
    config: Any
    pages: Any
    workers: Any = None  # toolkit.check.WorkerPool: the uploads' long-lived worker processes

    # ------------------------------------------------------------ guards

    def admin(self, handler):
        @functools.wraps(handler)
        async def guarded(request: Request):
            if not self.config.open_admin and not keys.is_admin_key(self.archive, request.cookies.get(ADMIN_COOKIE, "")):
                if request.method == "GET":
                    return RedirectResponse("/login", status_code=303)
                raise HTTPException(403, "需要管理密钥。")
            await self._form(request)
            return await handler(self, request)

        return guarded

    def clerk(self, handler):
        @functools.wraps(handler)
        async def guarded(request: Request):
            found = keys.unit_of(self.archive, request.path_params["token"])
            if found is None or found[0] != self.config.year:
                raise HTTPException(404, "链接无效或已更换。请向县（旗、区）政务公开办索取新的链接。")
            request.state.unit_code = found[1]
            await self._form(request)
            return await handler(self, request)

        return guarded

    async def _form(self, request: Request) -> None:
        """Parse a POSTed form within the size limit and check its CSRF token (double-submit cookie)."""
        request.state.form = None
        if request.method != "POST":
            return
        length = request.headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > self.config.max_upload:
            limit = self.config.max_upload // (1024 * 1024)
            raise HTTPException(413, f"上传的内容超过 {limit} MB 的上限（或没有注明大小）。请分几次上传。")
        form = await request.form(max_files=500, max_fields=50)
        token, cookie = str(form.get("csrf", "")), request.cookies.get(CSRF_COOKIE, "")
        if not cookie or not _random.compare_digest(token, cookie):
            raise HTTPException(403, "表单已过期或来源不明（CSRF 校验未通过）。请刷新页面后重试。")
        request.state.form = form

    # ------------------------------------------------------------ rendering

    def render(self, request: Request, name: str, status_code: int = 200, **data: Any) -> Response:
        csrf = request.cookies.get(CSRF_COOKIE) or _random.token_urlsafe(24)
        data.setdefault("year", self.config.year)
        resp = self.pages.TemplateResponse(request, name, {"csrf": csrf, **data}, status_code=status_code)
        if request.cookies.get(CSRF_COOKIE) != csrf:
            resp.set_cookie(CSRF_COOKIE, csrf, httponly=True, samesite="strict")
        return resp

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        return self.render(request, "error.html", status_code=exc.status_code, message=exc.detail)

    async def user_error(self, request: Request, exc: Exception) -> Response:
        return self.render(request, "error.html", status_code=400, message=str(exc))


def download(data: bytes, name: str, media_type: str = XLSX) -> Response:
    quoted = urllib.parse.quote(name)
    disposition = f"attachment; filename=\"download{Path(name).suffix}\"; filename*=UTF-8''{quoted}"
    return Response(data, media_type=media_type, headers={"content-disposition": disposition})


def _unit(ctx: Context, code: str):
    ros = ctx.archive.need_roster(ctx.config.year)
    unit = ros.get(code)
    if unit is None:
        raise HTTPException(404, f"{ctx.config.year}年度名册中没有单位代码 {code}。")
    return unit


# ---------------------------------------------------------------- admin pages


def _sorted_states(states, status: str, sort: str):
    shown = [s for s in states if not status or s.status == status]
    keys_by = {
        "status": lambda s: (STATUS_ORDER.index(s.status) if s.status in STATUS_ORDER else 9, s.code),
        "time": lambda s: s.last_received or "",
        "name": lambda s: s.name,
    }
    return sorted(shown, key=keys_by.get(sort, lambda s: 0), reverse=sort == "time")


async def overview(ctx: Context, request: Request) -> Response:
    states = await run_in_threadpool(ctx.archive.status, ctx.config.year)
    tally = Counter(s.status for s in states)
    status, sort = request.query_params.get("status", ""), request.query_params.get("sort", "")
    bars = [(name, tally.get(name, 0)) for name in STATUS_ORDER]
    return ctx.render(
        request,
        "overview.html",
        states=_sorted_states(states, status, sort),
        total=len(states),
        bars=bars,
        late=sum(1 for s in states if s.late),
        status=status,
        sort=sort,
        statuses=STATUS_ORDER,
    )


def _unit_view(archive: Archive, code: str, year: int) -> dict[str, Any]:
    """What a unit's page shows, for the county and for the unit's own link alike."""
    state = archive.state(code, year)
    report = archive.report(state.submission_id) if state.submission_id else None
    findings = list(report.findings) if report is not None else []
    return {"state": state, "findings": findings, "history": archive.history(code, year)}


async def unit_page(ctx: Context, request: Request) -> Response:
    code = request.path_params["code"]
    unit = _unit(ctx, code)
    view = await run_in_threadpool(_unit_view, ctx.archive, code, ctx.config.year)
    return ctx.render(request, "unit.html", unit=unit, **view)


async def _decide(ctx: Context, request: Request, accept: bool) -> Response:
    code = request.path_params["code"]
    _unit(ctx, code)
    note = str(request.state.form.get("note", "")).strip()
    if not note:
        raise HTTPException(400, "请填写说明或退回理由。")
    if accept:
        await run_in_threadpool(ctx.archive.accept, code, ctx.config.year, note)
    else:
        await run_in_threadpool(ctx.archive.reject, code, ctx.config.year, note)
    return RedirectResponse(f"/unit/{urllib.parse.quote(code)}", status_code=303)


async def accept(ctx: Context, request: Request) -> Response:
    return await _decide(ctx, request, True)


async def reject(ctx: Context, request: Request) -> Response:
    return await _decide(ctx, request, False)


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
    with tempfile.TemporaryDirectory(prefix="nianbao-upload-") as tmp:
        paths = await _save_uploads(request.state.form, Path(tmp))
        received = await run_in_threadpool(ctx.archive.receive, paths, ctx.config.year)
    return ctx.render(request, "received.html", received=received)


async def _submission_report(ctx: Context, sid: int, only_unit: str | None = None):
    try:
        report = await run_in_threadpool(ctx.archive.report, sid)
    except Exception:  # no such submission
        raise HTTPException(404, "没有这份提交。") from None
    if only_unit is not None and report.unit_code != only_unit:
        raise HTTPException(404, "没有这份提交。")
    return report


async def original(ctx: Context, request: Request) -> Response:
    report = await _submission_report(ctx, request.path_params["sid"])
    data = await run_in_threadpool(ctx.archive.file_bytes, report.provenance.sha256)
    return download(data, report.provenance.name or "原件.xlsx")


def _annotated_bytes(report, year: int) -> bytes:
    from ..annotate import write_annotated

    with tempfile.TemporaryDirectory(prefix="nianbao-annotated-") as tmp:
        out = Path(tmp) / "审核意见.xlsx"
        if write_annotated(report, out, year=year) is None or not out.exists():
            raise HTTPException(404, "这份文件无法生成审核意见副本（文件无法读取或表格位置无法确定）。")
        return out.read_bytes()


def _annotated_name(report) -> str:
    from ..annotate import annotated_names

    return annotated_names([report.provenance.name or "填报表.xlsx"])[0]


async def annotated(ctx: Context, request: Request) -> Response:
    report = await _submission_report(ctx, request.path_params["sid"])
    data = await run_in_threadpool(_annotated_bytes, report, ctx.config.year)
    return download(data, _annotated_name(report))


def _templates(units, year: int) -> list[tuple[str, bytes]]:
    from ..api import write_template

    with tempfile.TemporaryDirectory(prefix="nianbao-template-") as tmp:
        return [(p.name, p.read_bytes()) for p in write_template(units, year, tmp)]


async def template_one(ctx: Context, request: Request) -> Response:
    unit = _unit(ctx, request.path_params["code"])
    ((name, data),) = await run_in_threadpool(_templates, [unit], ctx.config.year)
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
    ros = ctx.archive.need_roster(ctx.config.year)
    files = await run_in_threadpool(_templates, list(ros.units), ctx.config.year)
    return download(_zip(files), f"{ctx.config.year}年政府信息公开年报填报模板.zip", "application/zip")


def _summary_bytes(archive: Archive, year: int, force: bool) -> tuple[bytes, str]:
    from ..api import write_summary

    summary = archive.consolidate(year, force=force)
    name = f"{summary.report.unit_name or '汇总'}_{year}年政府信息公开年报汇总.xlsx"
    with tempfile.TemporaryDirectory(prefix="nianbao-summary-") as tmp:
        path = write_summary(summary, Path(tmp) / "汇总.xlsx")[0]
        return path.read_bytes(), name


async def consolidate(ctx: Context, request: Request) -> Response:
    from ..consolidate import Refused

    force = request.state.form.get("force") == "1"
    try:
        data, name = await run_in_threadpool(_summary_bytes, ctx.archive, ctx.config.year, force)
    except Refused as e:
        return ctx.render(request, "error.html", status_code=409, message=str(e))
    return download(data, name)


def _export_bytes(archive: Archive, year: int, kind: str) -> bytes:
    from ..archive.export import write_frame

    frame = archive.export_frame(year)
    with tempfile.TemporaryDirectory(prefix="nianbao-export-") as tmp:
        return write_frame(frame, Path(tmp) / f"明细.{kind}").read_bytes()


async def export(ctx: Context, request: Request) -> Response:
    kind = request.path_params["kind"]
    if kind not in ("csv", "xlsx"):
        raise HTTPException(404, "只能导出 CSV 或 XLSX。")
    data = await run_in_threadpool(_export_bytes, ctx.archive, ctx.config.year, kind)
    media = "text/csv; charset=utf-8" if kind == "csv" else XLSX
    return download(data, f"{ctx.config.year}年政府信息公开年报明细.{kind}", media)


def _audit(archive: Archive, paths: list[Path], year: int, store: bool) -> tuple[Any, bytes]:
    """Published reports through the same importer and checks as `nianbao audit`; with ``store``
    the readable ones are kept in the archive as their years' published figures."""
    from ..api import audit, write_audit

    result = audit(paths, archive.roster(year))
    if store:
        from ..archive.receive import store_imported

        known = [r for r in result.reports if r.readable and r.year and archive.roster(r.year) is not None]
        store_imported(archive, known)
    with tempfile.TemporaryDirectory(prefix="nianbao-audit-") as tmp:
        return result, write_audit(result, Path(tmp) / "审计.xlsx").read_bytes()


async def audit_upload(ctx: Context, request: Request) -> Response:
    form = request.state.form
    with tempfile.TemporaryDirectory(prefix="nianbao-upload-") as tmp:
        paths = await _save_uploads(form, Path(tmp))
        result, data = await run_in_threadpool(_audit, ctx.archive, paths, ctx.config.year, form.get("store") == "1")
    if form.get("download") == "1":
        return download(data, f"{ctx.config.year}年已发布年报审计.xlsx")
    return ctx.render(request, "audit.html", reports=result.reports)


async def login(request: Request) -> Response:
    ctx: Context = request.app.state.ctx
    if request.method == "POST":
        await ctx._form(request)
        key = str(request.state.form.get("key", "")).strip()
        if keys.is_admin_key(ctx.archive, key):
            resp = RedirectResponse("/", status_code=303)
            resp.set_cookie(ADMIN_COOKIE, key, httponly=True, samesite="strict")
            return resp
        return ctx.render(request, "login.html", status_code=403, wrong=True)
    return ctx.render(request, "login.html", wrong=False)


# ---------------------------------------------------------------- a unit's own page


async def clerk_page(ctx: Context, request: Request, received=None) -> Response:
    code = request.state.unit_code
    unit = _unit(ctx, code)
    view = await run_in_threadpool(_unit_view, ctx.archive, code, ctx.config.year)
    token = request.path_params["token"]
    return ctx.render(request, "clerk.html", unit=unit, token=token, received=received, **view)


async def clerk_upload(ctx: Context, request: Request) -> Response:
    code = request.state.unit_code
    with tempfile.TemporaryDirectory(prefix="nianbao-upload-") as tmp:
        paths = await _save_uploads(request.state.form, Path(tmp))
        received = await run_in_threadpool(
            ctx.archive.receive, paths, ctx.config.year, workers=1, only_unit=code, pool=ctx.workers
        )
    return await clerk_page(ctx, request, received=received)


async def clerk_template(ctx: Context, request: Request) -> Response:
    unit = _unit(ctx, request.state.unit_code)
    ((name, data),) = await run_in_threadpool(_templates, [unit], ctx.config.year)
    return download(data, name)


async def clerk_annotated(ctx: Context, request: Request) -> Response:
    code = request.state.unit_code
    state = await run_in_threadpool(ctx.archive.state, code, ctx.config.year)
    if not state.submission_id:
        raise HTTPException(404, "还没有收到本单位的填报表。")
    report = await _submission_report(ctx, state.submission_id, only_unit=code)
    data = await run_in_threadpool(_annotated_bytes, report, ctx.config.year)
    return download(data, _annotated_name(report))
