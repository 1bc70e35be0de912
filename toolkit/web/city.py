"""The web pages of the tree (issue 31): a city's county-by-county overview, a county's own state
one level up, and the decisions on a county's summary — 上报 by the county's reviewer, 通过 and 退回
by the city's. Thin, like views.py: who asks (the signed-in ``Scope``), parse, call the archive's
level calls (toolkit/archive/tree.py), render. The archive decides what is allowed and says why."""

from __future__ import annotations

import tempfile
import urllib.parse
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from ..api import ArchiveError
from .views import Context, download, overview, scope_of


def _node(archive: Any, code: str | None, year: int) -> str | None:
    """The code of a node (a unit with units below it; None: the roster's top), or None when it is not one."""
    try:
        return archive.node_code(code, year)
    except ArchiveError:
        return None


def level_view(ctx: Context, scope: Any, root: str | None) -> dict[str, Any]:
    """What the overview of ``root`` (None: the scope's top) shows of the levels: the root's own state
    one level up (a county: 未上报/待审核/退回/已通过, the city's return reason, whether it may 上报),
    and the line of each county below it with the decisions the scope may take on it. Nothing for a
    roster without levels (one county's server: the overview stays as it was)."""
    archive, year = ctx.archive, ctx.config.year
    top = _node(archive, None, year)
    code = _node(archive, root, year) if root else top
    view: dict[str, Any] = {"node": None, "counties": [], "root_code": root or "", "own_codes": None}
    if code is None:
        return view
    view["root_code"] = code
    ros = archive.need_roster(year)
    unit = ros.get(code)
    view["root_name"] = unit.name if unit is not None else ""
    states = view["states"] = archive.status(year, None, code)  # once for the whole page (overview uses it too)
    if code != top:  # a county (or a lower node): its summary goes one level up
        view["node"] = archive.summary_state(code, year, states=states)
        view["node_decides"] = scope.can_decide_summary(code)
    counties = archive.summary_states(year, code, states=states)
    if counties:
        view["counties"] = [(c, scope.can_decide_summary(c.code)) for c in counties]
        # the root's own units (its own row, its children without units below them), as own_states
        # gives them — from the roster, without computing every unit's state once more
        nodes = {c.code for c in counties}
        view["own_codes"] = {u.code for u in ros.units if u.code == code or (u.parent == code and u.code not in nodes)}
    return view


async def home(ctx: Context, request: Request) -> Response:
    """The overview (/): the scope's units, and for a scope with counties the county-by-county table
    (a city's own units are listed below it; each county has its page)."""
    scope = scope_of(request)
    levels = await run_in_threadpool(level_view, ctx, scope, scope.root or None)
    return await overview(ctx, request, levels)


def _back(code: str, request: Request) -> str:
    """The page after a decision: the county's page, or the city's overview it was taken on."""
    return "/" if request.state.form.get("back") == "overview" else f"/county/{urllib.parse.quote(code, safe='')}"


async def county_page(ctx: Context, request: Request, error: str = "", status_code: int = 200) -> Response:
    """A county's page: what its reviewer sees (its units, its state one level up) — for the city too."""
    code = request.path_params["code"]
    if await run_in_threadpool(_node, ctx.archive, code, ctx.config.year) is None:
        raise HTTPException(404, f"{ctx.config.year}年度名册中没有汇总单位（县、市）{code}，或它不在您可以查看的范围内。")
    levels = await run_in_threadpool(level_view, ctx, scope_of(request), code)
    return await overview(ctx, request, levels, error, status_code)


def _excluded(text: str) -> dict[str, str]:
    """The 不纳入 lines of the 上报 form: one "代码：说明" (or 代码:说明) a line."""
    out = {}
    for line in text.replace("：", ":").splitlines():
        code, _, why = line.partition(":")
        if code.strip():
            if not why.strip():
                raise ArchiveError(f"不纳入的单位 {code.strip()} 没有写说明：每行写“单位代码：说明”。")
            out[code.strip()] = why.strip()
    return out


async def _level(ctx: Context, request: Request, call, *args: Any) -> Response:
    """One decision on a county's summary; the archive's refusal shown on the county's page (409)."""
    code = request.path_params["code"]
    try:
        await run_in_threadpool(call, code, ctx.config.year, *args, scope=scope_of(request))
    except ArchiveError as e:
        return await county_page(ctx, request, error=str(e), status_code=409)
    return RedirectResponse(_back(code, request), status_code=303)


async def submit(ctx: Context, request: Request) -> Response:
    """上报: the county's summary to the city (refused while a unit is not 已通过 and not excluded)."""
    form = request.state.form
    try:
        excluded = _excluded(str(form.get("excluded", "")))
    except ArchiveError as e:
        return await county_page(ctx, request, error=str(e), status_code=409)
    return await _level(ctx, request, ctx.archive.submit_summary, str(form.get("note", "")).strip(), excluded)


async def approve(ctx: Context, request: Request) -> Response:
    return await _level(ctx, request, ctx.archive.approve_summary, str(request.state.form.get("note", "")).strip())


async def send_back(ctx: Context, request: Request) -> Response:
    """退回 (the reason is required: the archive refuses an empty one)."""
    note = str(request.state.form.get("note", "")).strip()
    if not note:
        return await county_page(ctx, request, error="请填写退回原因：县里要根据原因修改后重新上报。", status_code=400)
    return await _level(ctx, request, ctx.archive.return_summary, note)


def _summary_bytes(archive: Any, year: int, code: str | None) -> tuple[bytes, str]:
    """A node's summary now (its approved units and approved lower nodes), as a workbook."""
    from ..api import write_summary

    summary = archive.node_summary(year, code)
    name = f"{summary.report.unit_name or '汇总'}_{year}年政府信息公开年报汇总.xlsx"
    with tempfile.TemporaryDirectory(prefix="nianbao-summary-") as tmp:
        path = write_summary(summary, Path(tmp) / "汇总.xlsx", options={"year": year, "under": code, "source": "逐级汇总"})[0]
        return path.read_bytes(), name


async def summary(ctx: Context, request: Request) -> Response:
    """The summary of a county (/county/{code}/summary.xlsx) or of the scope's top (/city/summary.xlsx)."""
    code = request.path_params.get("code") or scope_of(request).root or None
    data, name = await run_in_threadpool(_summary_bytes, ctx.archive, ctx.config.year, code)
    return download(data, name)


def routes(ctx: Context) -> list:
    from starlette.routing import Route

    return [
        Route("/", ctx.admin(home)),
        Route("/county/{code}", ctx.admin(county_page)),
        Route("/county/{code}/submit", ctx.admin(submit), methods=["POST"]),
        Route("/county/{code}/approve", ctx.admin(approve), methods=["POST"]),
        Route("/county/{code}/return", ctx.admin(send_back), methods=["POST"]),
        Route("/county/{code}/summary.xlsx", ctx.admin(summary)),
        Route("/city/summary.xlsx", ctx.admin(summary)),
    ]
