"""Issue 31 (first half): one archive for a city — two counties under 锡林郭勒盟 on one roster, reviewers'
keys scoped to a county, and approval up the tree (a county submits its summary, the city approves or
returns it), on SQLite and on a real PostgreSQL ($NIANBAO_TEST_PG)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from archive_util import cli_ok as _ok
from archive_util import write_return

from toolkit.archive import Archive
from toolkit.archive.db import ArchiveError
from toolkit.archive.tree import children_problems
from toolkit.spec import current_format

YEAR = 2025
CITY, A, B = "152500", "152502", "152522"  # 锡林郭勒盟, 锡林浩特市, 阿巴嘎旗
ROSTER = f"""单位代码,单位名称,单位类型,上级代码
{CITY},锡林郭勒盟行政公署,市级政府,
{A},锡林浩特市人民政府,县级政府,{CITY}
152502001,希日塔拉街道,街道,{A}
152502003,杭盖街道,街道,{A}
152502201,宝力根苏木,苏木,{A}
{B},阿巴嘎旗人民政府,县级政府,{CITY}
152522101,别力古台镇,镇,{B}
152522102,洪格尔高勒镇,镇,{B}
"""
UNITS_A = [A, "152502001", "152502003", "152502201"]
UNITS_B = [B, "152522101", "152522102"]


def _city(tmp_path: Path, db: str) -> Archive:
    """The city's archive: every unit's return received and approved (the city's own 本级 return too)."""
    roster = tmp_path / "名册.csv"
    roster.write_text(ROSTER, encoding="utf-8")
    returns = tmp_path / "returns"
    returns.mkdir()
    for code in [CITY, *UNITS_A, *UNITS_B]:
        write_return(returns / f"{code}.xlsx", code, YEAR, roster=roster)
    archive = Archive.open(db)
    archive.load_roster(roster, YEAR)
    archive.receive(returns, YEAR, workers=1)
    archive.approve_clean(YEAR)
    for s in archive.status(YEAR):  # a 警告 (random figures): approved with a 说明
        if s.status == "待审核":
            archive.approve(s.code, YEAR, "已电话核实，数字属实")
    assert {s.status for s in archive.status(YEAR)} == {"已通过"}
    return archive


def _again(archive: Archive, tmp_path: Path, code: str, roster: Path) -> None:
    """A new version of a unit (its figures changed): it awaits the county's review."""
    path = write_return(tmp_path / f"{code}_v2.xlsx", code, YEAR, {"t2.penalty.n": 7}, roster=roster)
    archive.receive([path], YEAR, workers=1)


@pytest.fixture
def city(tmp_path, db):
    archive = _city(tmp_path, db)
    yield archive
    archive.close()


def test_keys_are_shown_once_stored_hashed_scoped_and_revocable(city, db, cli):
    res = _ok(cli("keys", "add", "--under", A, "--label", "锡林浩特市政务公开办", "--db", db))
    key = res.stdout.strip()
    assert len(key) >= 24 and "锡林浩特市人民政府" in res.stderr and "只显示这一次" in res.stderr
    listed = _ok(cli("keys", "list", "--db", db, "--json"))
    assert key not in listed.stdout + listed.stderr
    (info,) = json.loads(listed.stdout)["keys"]
    assert (info["code"], info["name"], info["label"], info["revoked_at"]) == (
        A,
        "锡林浩特市人民政府",
        "锡林浩特市政务公开办",
        "",
    )
    from sqlalchemy import select

    from toolkit.archive import schema as T

    with city.engine.connect() as conn:
        rows = conn.execute(select(T.secrets)).all()
    assert hashlib.sha256(key.encode()).hexdigest() in {r.digest for r in rows}
    assert not any(key in str(tuple(r)) for r in rows)  # the key itself is nowhere

    scope = city.key_scope(key)
    assert scope is not None and scope.root == A and not scope.whole
    assert {u.code for u in scope.units(city.roster(YEAR))} == set(UNITS_A)
    assert scope.can_see("152502003") and not scope.can_see("152522101") and not scope.can_see(CITY)
    assert city.key_scope("not-a-key") is None
    used = json.loads(_ok(cli("keys", "list", "--db", db, "--json")).stdout)["keys"][0]
    assert used["used_at"]  # signed in once

    _ok(cli("keys", "revoke", str(info["id"]), "--db", db))
    assert city.key_scope(key) is None
    after = json.loads(_ok(cli("keys", "list", "--db", db, "--json")).stdout)["keys"][0]
    assert after["revoked_at"]
    res = cli("keys", "add", "--under", "999999", "--db", db)
    assert res.returncode == 2 and "名册中没有单位" in res.stderr and "Traceback" not in res.stderr


def test_a_county_key_sees_and_decides_only_its_county(city):
    _, key_a = city.add_key(A, "锡林浩特市")
    _, key_city = city.add_key(CITY, "盟政务公开办")
    a, whole = city.key_scope(key_a), city.key_scope(key_city)
    assert a is not None and whole is not None
    with pytest.raises(ArchiveError, match="不在其中"):
        city.decide_unit(a, "撤销通过", "152522101", YEAR, "核实")  # county B's unit
    assert city.state("152522101", YEAR).status == "已通过"
    st = city.decide_unit(a, "撤销通过", "152502001", YEAR, "数字与台账不符")
    assert st.status == "退回" and st.decided_by == f"审核密钥{a.key_id}"
    with pytest.raises(ArchiveError, match="上报"):
        city.submit_summary(B, YEAR, scope=a)  # not its county
    city.decide_unit(a, "通过", "152502001", YEAR)
    city.submit_summary(A, YEAR, scope=a)
    with pytest.raises(ArchiveError, match="只有其上级"):
        city.approve_summary(A, YEAR, scope=a)  # a county does not approve itself
    assert city.approve_summary(A, YEAR, scope=whole).status == "已通过"
    (item,) = [i for i in city.summary_history(A, YEAR) if i.kind == "通过"]
    assert "盟政务公开办" in item.actor


def test_county_cannot_submit_while_a_unit_awaits_review(city, tmp_path, db, cli):
    _again(city, tmp_path, "152502003", tmp_path / "名册.csv")
    assert city.state("152502003", YEAR).status == "待审核"
    res = cli("county", "submit", A, "--year", YEAR, "--db", db)
    assert res.returncode == 2 and "杭盖街道（152502003）待审核" in res.stderr and "Traceback" not in res.stderr
    assert city.summary_state(A, YEAR).status == "未报送"
    res = cli("county", "submit", A, "--year", YEAR, "--db", db, "--exclude", "152502003")
    assert res.returncode == 2 and "说明" in res.stderr
    # excluded with a 说明: the summary is a selection, and says so
    _ok(cli("county", "submit", A, "--year", YEAR, "--db", db, "--exclude", "152502003：更正件待核实，下次补报"))
    st = city.summary_state(A, YEAR)
    assert st.status == "待审核" and st.excluded == {"152502003": "更正件待核实，下次补报"}
    assert "152502003" not in {c["unit_code"] for c in city.submitted_report(A, YEAR).children}
    # B is ready; the overview says so, county by county
    over = {s.code: s for s in city.summary_states(YEAR)}
    assert set(over) == {A, B} and over[B].ready and over[B].counts["已通过"] == 3 and over[A].counts["待审核"] == 1


def test_city_returns_a_county_with_a_reason_and_it_reopens(city, tmp_path, db, cli):
    _ok(cli("county", "submit", A, "--year", YEAR, "--db", db, "--note", "全部审核完毕"))
    # submitted: the county's units are locked
    res = cli("reopen", "152502001", "--year", YEAR, "--db", db, "--note", "再核实")
    assert res.returncode == 2 and "已向上级上报" in res.stderr
    _again(city, tmp_path, "152502201", tmp_path / "名册.csv")
    assert [s.code for s in city.approve_clean(YEAR)] == []  # the new version waits: its county is locked
    res = cli("county", "return", A, "--year", YEAR, "--db", db)
    assert res.returncode == 2  # the reason is required
    _ok(cli("county", "return", A, "--year", YEAR, "--db", db, "--note", "宝力根苏木有新版本，请审核后重报"))
    st = city.summary_state(A, YEAR)
    assert (st.status, st.reason) == ("退回", "宝力根苏木有新版本，请审核后重报")
    res = _ok(cli("county", "status", "--year", YEAR, "--db", db, "--json"))
    row = next(n for n in json.loads(res.stdout)["nodes"] if n["code"] == A)
    assert row["status"] == "退回" and row["reason"] == "宝力根苏木有新版本，请审核后重报"
    assert "宝力根苏木有新版本" in res.stderr and "本级直属单位 1 个：" in res.stderr  # the city's own return
    assert [u["code"] for u in json.loads(res.stdout)["own"]] == [CITY]
    # reopened: the county reviewer decides again, then submits anew
    assert [s.code for s in city.approve_clean(YEAR)] == ["152502201"]
    _ok(cli("county", "submit", A, "--year", YEAR, "--db", db))
    assert city.summary_state(A, YEAR).version == 2
    history = _ok(cli("county", "history", A, "--year", YEAR, "--db", db)).stderr
    assert history.index("全部审核完毕") < history.index("请审核后重报") < history.index("第2次上报")
    states = json.loads(_ok(cli("status", "--year", YEAR, "--db", db, "--under", B, "--json")).stdout)["units"]
    assert [s["code"] for s in states] == UNITS_B
    # a county's part of the archive, through the library: export, links
    assert set(city.export_frame(YEAR, under=B)["单位代码"]) == set(UNITS_B)
    links, _ = city.issue_links(YEAR, under=B)
    assert [link.unit_code for link in links] == UNITS_B


def test_city_summary_equals_the_direct_sum_at_every_level(city, tmp_path, db, cli):
    fmt = current_format()
    for county in (A, B):
        city.submit_summary(county, YEAR)
    city.approve_summary(A, YEAR)
    partial = city.node_summary(YEAR)  # B not approved yet: its units are not in the city's sum
    assert {s.code: s.status for s in partial.statuses}[B] == "未报送"
    city.approve_summary(B, YEAR)

    level = city.node_summary(YEAR).report
    direct = city.consolidate(YEAR).report
    assert level.level == direct.level == "市级汇总"
    assert {cid: level.value(cid) for cid in fmt.cells} == {cid: direct.value(cid) for cid in fmt.cells}
    assert {c["unit_code"] for c in level.children} == {CITY, A, B}
    for county in (A, B):  # parent = Σ children at the county level and at the city's
        assert children_problems(city.submitted_report(county, YEAR), fmt) == []
    assert children_problems(level, fmt) == []
    county_a = city.submitted_report(A, YEAR)
    assert county_a.level == "县级汇总" and {c["unit_code"] for c in county_a.children} == set(UNITS_A)

    # the city's summary workbook passes `check` as a verified summary (its 明细 adds up)
    out = tmp_path / "盟汇总.xlsx"
    _ok(cli("county", "summary", "--year", YEAR, "--db", db, "--out", out))
    from toolkit.check import CheckOptions, check_paths

    (read,) = check_paths([out], CheckOptions()).reports
    assert read.level == "市级汇总" and not [f for f in read.findings if f.code.startswith("summary-")]

    # a stored county summary changed behind the archive's back is caught, naming the county
    from sqlalchemy import select

    from toolkit.archive import schema as T

    with city.engine.begin() as conn:
        sid, stored = conn.execute(select(T.summaries.c.id, T.summaries.c.report).where(T.summaries.c.unit_code == B)).one()
        stored = dict(stored)
        stored["values"] = {**stored["values"], "t2.penalty.n": (stored["values"].get("t2.penalty.n") or 0) + 5}
        conn.execute(T.summaries.update().where(T.summaries.c.id == sid).values(report=stored))
    with pytest.raises(ArchiveError, match="阿巴嘎旗人民政府（152522）已通过的汇总与其下级单位之和不符"):
        city.node_summary(YEAR)


def test_automatic_approval_waits_in_a_submitted_county_only(city, tmp_path, db, cli):
    """Clean versions approved at receipt: not in a county that has submitted (its units are locked,
    read in the storing transaction from the nodes above the stored unit), still in the other county."""
    roster = tmp_path / "名册.csv"
    city.load_roster(roster, YEAR, auto_approve=True)
    _ok(cli("county", "submit", A, "--year", YEAR, "--db", db, "--note", "全部审核完毕"))
    outcome = {}
    for code in [*UNITS_A[1:], *UNITS_B[1:]]:  # a new version, the same figures: clean if the first one was
        path = write_return(tmp_path / f"{code}_again.xlsx", code, YEAR, roster=roster, cover={"note": "补充说明"})
        (got,) = city.receive([path], YEAR, workers=1)
        outcome[code] = (got.auto, got.counts["警告"] + got.counts["错误"] == 0)
    assert all(auto == "" for code, (auto, _) in outcome.items() if code in UNITS_A)
    clean_b = [code for code in UNITS_B[1:] if outcome[code][1]]
    assert clean_b and all(outcome[code][0] == "通过" for code in clean_b), outcome
    assert city.locked_codes(YEAR) == set(UNITS_A)


def test_automatic_approval_waits_under_a_county_named_only_as_parent(tmp_path, db):
    """A roster may name its county only as the units' 上级代码 (no row of its own): once that county
    has submitted, a clean new version of its unit still waits for the reviewer."""
    roster = tmp_path / "名册.csv"
    units = ["152502001", "152502003", "152502201"]
    rows = {"152502001": "希日塔拉街道,街道", "152502003": "杭盖街道,街道", "152502201": "宝力根苏木,苏木"}
    lines = ["单位代码,单位名称,单位类型,上级代码"] + [f"{c},{rows[c]},{A}" for c in units]
    roster.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with Archive.open(db) as archive:
        archive.load_roster(roster, YEAR, auto_approve=True)
        clean = []
        for code in units:
            (got,) = archive.receive([write_return(tmp_path / f"{code}.xlsx", code, YEAR, roster=roster)], YEAR, workers=1)
            if got.auto == "通过":  # clean: a new version of the same figures would be approved at receipt too
                clean.append(code)
        for s in archive.status(YEAR):
            if s.status == "待审核":
                archive.approve(s.code, YEAR, "已电话核实，数字属实")
        archive.submit_summary(A, YEAR)
        assert clean and archive.locked_codes(YEAR) == set(units)
        again = write_return(tmp_path / "again.xlsx", clean[0], YEAR, roster=roster, cover={"note": "补充说明"})
        (got,) = archive.receive([again], YEAR, workers=1)
        assert got.auto == "" and archive.state(clean[0], YEAR).status == "待审核"
