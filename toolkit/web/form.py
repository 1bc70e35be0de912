"""在线填写 (issue 30): the unit's form through its private link (/u/{token}/form) and the same form
for the county's reviewer (/unit/{code}/form). Thin: who asks, parse, call the library (``api``:
the form model, the check of the typed values, the workbook ``template`` writes), answer.

Every change is posted as JSON to …/form/check, which saves the draft in the archive and answers the
findings ``check`` would give; 提交 posts the whole form, which becomes the return workbook and is
stored through the same path as an upload (quotas, the unit's turn, states, history).
"""

from __future__ import annotations

import functools
import json
import re
import tempfile
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from .. import api
from ..errors import NianbaoError
from . import keys
from .views import Context, _unit, download

APPROVED = "已通过"
BODY_LIMIT = 256 * 1024 + 16 * 1024  # a draft's limit (online.MAX_DRAFT_BYTES) and the JSON around it
MAX_FIELDS = 2000  # the form's fields: a few hundred cells, the cover, the token
BAD_JSON = "提交的内容格式不对。请刷新页面后重试。"
LOCKED_CLERK = (
    "县里已审核通过本单位的第{version}版填报表，在线填写已锁定，不能再修改。如需更正，请联系县（旗、区）政务公开办先撤销通过。"
)
LOCKED_REVIEWER = "该单位的第{version}版已审核通过，在线填写已锁定。如需更正，请先在单位页面撤销通过。"
_ISO = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Who:
    """Who fills the form: the unit's clerk (through its link) or the county's reviewer."""

    code: str
    reviewer: bool
    base: str  # the unit's page, for the clerk /u/{token}, for the reviewer /unit/{code}

    @property
    def source(self) -> str:
        return (api.ONLINE_REVIEWER if self.reviewer else api.ONLINE_CLERK)[0]

    @property
    def author(self) -> str:
        return (api.ONLINE_REVIEWER if self.reviewer else api.ONLINE_CLERK)[1]


def _who(request: Request, reviewer: bool) -> Who:
    if reviewer:
        code = request.path_params["code"]
        return Who(code, True, f"/unit/{urllib.parse.quote(code, safe='')}")
    token = urllib.parse.quote(request.path_params["token"], safe="")
    return Who(request.state.unit_code, False, f"/u/{token}")


def _model(request: Request) -> Any:
    """The form of the current format, derived once per application (kept on its state)."""
    state = request.app.state
    model = getattr(state, "form_model", None)
    if model is None:
        model = state.form_model = api.form_model()
    return model


# ---------------------------------------------------------------- guards of the POSTs


async def _allowed(ctx: Context, request: Request, reviewer: bool) -> None:
    """The reviewer signed in (or loopback's open admin), or a live link of a roster unit."""
    if reviewer:
        if not await run_in_threadpool(ctx.is_admin, request):
            raise HTTPException(403, "需要管理员登录：请先在登录页面输入管理密钥。")
        ctx.in_scope(request)  # a county's reviewer: its own units only (issue 31)
        return
    code = await run_in_threadpool(ctx.link_unit, request.path_params["token"])
    if code is None:
        raise HTTPException(404, "链接无效或已更换。请向县（旗、区）政务公开办索取新的链接。")
    request.state.unit_code = code


async def _bounded_body(ctx: Context, request: Request, limit: int) -> bytes:
    """The body within ``limit`` bytes: its Content-Length first, then as it streams."""
    ctx.sized(request)
    if int(request.headers["content-length"]) > limit:
        raise HTTPException(413, f"提交的内容超过 {limit // 1024} KB 的上限，没有保存。请删去过长的文字（如情况说明）后重试。")
    chunks, seen = [], 0
    async for chunk in request.stream():
        seen += len(chunk)
        if seen > limit:
            raise HTTPException(413, f"提交的内容超过 {limit // 1024} KB 的上限，没有保存。")
        chunks.append(chunk)
    body = request._body = b"".join(chunks)  # what request.form() then parses, without reading again
    return body


def json_route(ctx: Context, handler, reviewer: bool):
    """The check endpoint: who asks, the CSRF token in X-CSRF-Token (a JSON body has no form field),
    a bounded JSON body; every refusal as JSON ``{"error": 中文}``."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        try:
            await _allowed(ctx, request, reviewer)
            if not keys.token_ok(request.headers.get("x-csrf-token", ""), ctx.csrf_expected(request)):
                raise HTTPException(
                    403, "页面已过期或来源不明（CSRF 校验未通过）。请刷新页面后重试；已填的内容已保存到上次保存时。"
                )
            raw = await _bounded_body(ctx, request, BODY_LIMIT)
            try:
                request.state.body = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):  # also 100,000 "[" and a 5,000-digit integer
                raise HTTPException(400, BAD_JSON) from None
            return await handler(ctx, request, _who(request, reviewer))
        except HTTPException as e:
            return JSONResponse({"error": e.detail}, status_code=e.status_code, headers=dict(e.headers or {}))
        except NianbaoError as e:
            return JSONResponse({"error": str(e)}, status_code=400)

    return guarded


def form_route(ctx: Context, handler, reviewer: bool):
    """提交: who asks, then the whole form (a few hundred fields: more than the other forms take) and
    its CSRF field."""

    @functools.wraps(handler)
    async def guarded(request: Request) -> Response:
        await _allowed(ctx, request, reviewer)
        await _bounded_body(ctx, request, BODY_LIMIT * 2)  # read once; request.form() parses the cached body
        form = await request.form(max_files=0, max_fields=MAX_FIELDS)
        if not keys.token_ok(str(form.get("csrf", "")), ctx.csrf_expected(request)):
            raise HTTPException(403, "表单已过期或来源不明（CSRF 校验未通过）。请刷新页面后重试。")
        request.state.form = form
        return await handler(ctx, request, _who(request, reviewer))

    return guarded


def page_route(ctx: Context, handler, reviewer: bool):
    """The GET pages through the usual guards (the reviewer's login, the unit's link)."""

    async def page(ctx: Context, request: Request) -> Response:
        return await handler(ctx, request, _who(request, reviewer))

    page.__name__ = handler.__name__
    return ctx.admin(page) if reviewer else ctx.clerk(page)


# ---------------------------------------------------------------- the page


def _locked(archive: Any, who: Who, year: int) -> tuple[Any, str]:
    """(the unit's state, the read-only notice when its year is approved, else "")."""
    state = archive.state(who.code, year)
    if state.status != APPROVED:
        return state, ""
    text = LOCKED_REVIEWER if who.reviewer else LOCKED_CLERK
    return state, text.format(version=state.approved_version or state.version)


def _start(archive: Any, model: Any, who: Who, year: int, state: Any, locked: str) -> tuple[dict, str]:
    """What the form shows first: the approved figures (locked), the draft, the newest version sent,
    else last year's carry-over (``template --db``); with when the draft was saved."""
    if locked:
        return api.form_start(model, archive.report(state.approved_id or state.submission_id)), ""
    draft = archive.draft(who.code, year, who.author)
    newer = state.submission_id and (state.last_received or "") > (draft[1] if draft else "")  # a file uploaded since
    if draft is not None and not newer:
        return draft[0], draft[1][11:19]
    if state.submission_id:
        return api.form_start(model, archive.report(state.submission_id)), ""
    carried = archive.carryover(year, who.code).get(who.code)
    return api.form_start(model, None, carried), ""


def _view(ctx: Context, model: Any, who: Who, unit: Any, start: dict | None = None, error: str = "") -> dict[str, Any]:
    year, archive = ctx.config.year, ctx.archive
    state, locked = _locked(archive, who, year)
    saved = ""
    if start is None:
        start, saved = _start(archive, model, who, year, state, locked)
    values, cover = start.get("values", {}), start.get("cover", {})
    ev = _evaluate(archive, model, unit, year, values, cover)
    return dict(
        unit=unit,
        model=model,
        reviewer=who.reviewer,
        back=who.base,
        submit_url=f"{who.base}/form/submit",
        check_url=f"{who.base}/form/check",
        locked=locked,
        error=error,
        saved_at=saved,
        values=values,
        cover=cover,
        identity={"unit_name": unit.name, "unit_code": unit.code, "year": year},
        totals=ev.totals,
        selfcheck=ev.selfcheck,
        selfsums=ev.selfsums,
        hints=ev.hints,
        findings=_shown(model, ev, who),
        num=_num,
        iso_day=lambda s: bool(_ISO.fullmatch(str(s))),
    )


def _num(v: Any) -> str:
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    return "" if v is None else str(v)


def _evaluate(archive: Any, model: Any, unit: Any, year: int, values: dict, cover: dict) -> Any:
    """The check of the typed values, with the roster and last year's approved return (as ``receive``)."""
    roster = archive.need_roster(year)
    previous = archive.previous_reports(year - 1, unit.code).get(unit.code)
    return api.evaluate_form(model, unit, year, values, cover, roster, previous)


def _shown(model: Any, ev: Any, who: Who) -> list[dict[str, Any]]:
    """The findings the page lists: all for the reviewer, without the county's own notes for a clerk."""
    findings = [f for f in ev.report.findings if who.reviewer or not f.county_only]
    return api.form_findings(model, findings)


async def form_page(
    ctx: Context, request: Request, who: Who, start: dict | None = None, error: str = "", status: int = 200
) -> Response:
    unit = _unit(ctx, who.code)
    view = await run_in_threadpool(_view, ctx, _model(request), who, unit, start, error)
    return ctx.render(request, "form.html", status_code=status, **view)


# ---------------------------------------------------------------- check as they type


def _check_and_save(ctx: Context, model: Any, who: Who, unit: Any, draft: dict) -> dict[str, Any]:
    year = ctx.config.year
    _, locked = _locked(ctx.archive, who, year)
    if locked:
        raise HTTPException(409, locked)
    ev = _evaluate(ctx.archive, model, unit, year, draft["values"], draft["cover"])
    at = ctx.archive.save_draft(who.code, year, who.author, draft)
    return {
        "saved_at": at[11:19],
        "totals": ev.totals,
        "selfcheck": ev.selfcheck,
        "selfsums": ev.selfsums,
        "hints": ev.hints,
        "findings": _shown(model, ev, who),
    }


async def form_check(ctx: Context, request: Request, who: Who) -> Response:
    """A change: the draft saved, the findings, totals, self-check texts and hints of the form as it is."""
    model = _model(request)
    draft = api.form_draft(model, request.state.body)
    unit = _unit(ctx, who.code)
    async with ctx.limits.turn(f"form:{who.code}:{who.author}"):
        answer = await ctx.limits.run(_check_and_save, ctx, model, who, unit, draft)
    return JSONResponse(answer)


# ---------------------------------------------------------------- 提交


def _posted(form: Any) -> dict[str, dict[str, str]]:
    cover = {k.removeprefix("cover:"): str(v) for k, v in form.multi_items() if k.startswith("cover:")}
    values = {k.removeprefix("v:"): str(v) for k, v in form.multi_items() if k.startswith("v:")}
    return {"cover": cover, "values": values}


class Locked(Exception):
    """The unit was approved while its form was being submitted (the notice is the message)."""


def _store(ctx: Context, model: Any, who: Who, unit: Any, draft: dict, folder: Path) -> list:
    """The draft saved (nothing typed is lost if storing fails), the workbook written, then stored
    as an upload of the unit is; the draft dropped once a version holds it."""
    year, archive = ctx.config.year, ctx.archive
    archive.save_draft(who.code, year, who.author, draft)
    _, locked = _locked(archive, who, year)  # again, in the unit's turn: approved since the page was checked
    if locked:
        raise Locked(locked)
    path = api.write_form_return(model, unit, year, draft["values"], draft["cover"], folder)
    if who.reviewer:
        options = ctx.limits.store_options(None)
        received = archive.receive([path], year, only_unit=who.code, workers=1, pool=ctx.workers, source=who.source, **options)
    else:
        received = ctx.limits.receive(archive, who.code, year, [path], workers=1, pool=ctx.workers, source=who.source)
    if received and received[0].submission_id is not None:
        archive.drop_draft(who.code, year, who.author)
    return received


async def form_submit(ctx: Context, request: Request, who: Who) -> Response:
    model = _model(request)
    try:
        draft = api.form_draft(model, _posted(request.state.form))
    except NianbaoError as e:
        return await form_page(ctx, request, who, None, str(e), 400)
    unit = _unit(ctx, who.code)
    _, locked = await run_in_threadpool(_locked, ctx.archive, who, ctx.config.year)
    if locked:
        return await form_page(ctx, request, who, None, locked, 409)
    try:
        async with ctx.limits.turn(who.code):
            with tempfile.TemporaryDirectory(prefix="nianbao-form-") as tmp:
                received = await ctx.limits.run(_store, ctx, model, who, unit, draft, Path(tmp))
    except Locked as e:
        return await form_page(ctx, request, who, None, str(e), 409)
    got = received[0] if received else None
    if got is None or got.submission_id is None:
        reason = (got.reason or got.outcome) if got is not None else "没有保存。"
        return await form_page(ctx, request, who, draft, f"提交没有成功：{reason}", 409)
    return RedirectResponse(f"{who.base}#received", status_code=303)


# ---------------------------------------------------------------- the stored workbook


async def clerk_original(ctx: Context, request: Request) -> Response:
    """The unit's newest stored return, the file as stored (also one its clerk filled in online)."""
    code = request.state.unit_code
    state = await run_in_threadpool(ctx.archive.state, code, ctx.config.year)
    if not state.submission_id:
        raise HTTPException(404, "还没有收到本单位的填报表。")
    report = await run_in_threadpool(ctx.archive.report, state.submission_id)
    if report.unit_code != code:
        raise HTTPException(404, "没有这份提交。")
    data = await run_in_threadpool(ctx.archive.file_bytes, report.provenance.sha256)
    return download(data, report.provenance.name or "填报表.xlsx")


def routes(ctx: Context) -> list:
    """The form's routes, for app.create_app."""
    from starlette.routing import Route

    return [
        Route("/u/{token}/form", page_route(ctx, form_page, False)),
        Route("/u/{token}/form/check", json_route(ctx, form_check, False), methods=["POST"]),
        Route("/u/{token}/form/submit", form_route(ctx, form_submit, False), methods=["POST"]),
        Route("/u/{token}/original", ctx.clerk(clerk_original)),
        Route("/unit/{code}/form", page_route(ctx, form_page, True)),
        Route("/unit/{code}/form/check", json_route(ctx, form_check, True), methods=["POST"]),
        Route("/unit/{code}/form/submit", form_route(ctx, form_submit, True), methods=["POST"]),
    ]
