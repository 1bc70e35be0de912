"""Issue 31 item 1: on one archive for a city, every command that reads or changes a whole year works for
one county with ``--under CODE`` (or NIANBAO_UNDER): status, accept --all-clean, export, links,
consolidate --db, draft --db, template --db, and the commands on one unit refuse another county's unit.
Two counties under 锡林郭勒盟; county A's run leaves county B exactly as it was; without --under
every command behaves as before. SQLite, and the real PostgreSQL of $NIANBAO_TEST_PG for the first test."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from archive_util import cli_ok as _ok
from archive_util import write_return
from test_city import CITY, ROSTER, YEAR, A, B
from test_city import UNITS_A as CITY_UNITS_A
from test_city import UNITS_B as CITY_UNITS_B

from toolkit.archive import Archive

UNITS_A, UNITS_B = set(CITY_UNITS_A), set(CITY_UNITS_B)  # the city of tests/test_city.py
EVERY = {CITY} | UNITS_A | UNITS_B


@pytest.fixture(scope="module")
def returns(tmp_path_factory) -> Path:
    """The roster and one return per unit, written once for the module."""
    folder = tmp_path_factory.mktemp("city_cli")
    (folder / "名册.csv").write_text(ROSTER, encoding="utf-8")
    (folder / "returns").mkdir()
    for code in sorted(EVERY):
        write_return(folder / "returns" / f"{code}.xlsx", code, YEAR, roster=folder / "名册.csv")
    return folder


def _received(returns: Path, db: str) -> Archive:
    """The city's archive with every unit's return received, none decided yet."""
    archive = Archive.open(db)
    archive.load_roster(returns / "名册.csv", YEAR)
    archive.receive(returns / "returns", YEAR, workers=1)
    return archive


def _states(archive: Archive) -> dict[str, tuple[str, int | None]]:
    return {s.code: (s.status, s.approved_id) for s in archive.status(YEAR)}


def _approve_all(archive: Archive, codes: set[str]) -> None:
    for s in archive.status(YEAR):
        if s.code in codes and s.status == "待审核":
            archive.approve(s.code, YEAR, "已电话核实，数字属实")


def _status_codes(cli, db: str, *more: str) -> list[str]:
    res = _ok(cli("status", "--year", YEAR, "--db", db, "--json", *more))
    return [u["code"] for u in json.loads(res.stdout)["units"]]


def test_status_accept_export_consolidate_for_one_county(returns, db, cli, tmp_path):
    archive = _received(returns, db)
    try:
        assert set(_status_codes(cli, db)) == EVERY  # as before
        res = _ok(cli("status", "--year", YEAR, "--db", db, "--json", "--under", A))
        assert {u["code"] for u in json.loads(res.stdout)["units"]} == UNITS_A
        n = len(UNITS_A)
        assert f"锡林浩特市人民政府（152502）及其下级单位，共 {n} 个" in res.stderr and f"应报 {n} 个" in res.stderr

        before_b = {c: v for c, v in _states(archive).items() if c not in UNITS_A}
        res = _ok(cli("accept", "--all-clean", "--year", YEAR, "--db", db, "--under", A))
        after = _states(archive)
        assert {c: v for c, v in after.items() if c not in UNITS_A} == before_b  # B and the city untouched
        clean_a = {s.code for s in archive.status(YEAR) if s.code in UNITS_A and s.status == "已通过"}
        assert clean_a and all(after[c][0] in ("已通过", "待审核") for c in UNITS_A)
        _approve_all(archive, EVERY)

        out = tmp_path / "明细A.csv"
        _ok(cli("export", "--year", YEAR, "--db", db, "--under", A, "--out", out))
        with out.open(encoding="utf-8-sig") as f:
            assert {row["单位代码"] for row in csv.DictReader(f)} == UNITS_A
        whole = tmp_path / "明细.csv"
        _ok(cli("export", "--year", YEAR, "--db", db, "--out", whole))
        with whole.open(encoding="utf-8-sig") as f:
            assert {row["单位代码"] for row in csv.DictReader(f)} == EVERY

        summary = tmp_path / "锡林浩特市汇总.xlsx"
        res = _ok(cli("consolidate", "--db", db, "--year", YEAR, "--under", "锡林浩特市人民政府", "--out", summary, "--json"))
        data = json.loads(res.stdout)
        assert data["summary"]["unit_code"] == A
        assert {u["unit_code"] for u in data["summary"]["units"]} == UNITS_A
        assert f"已汇总 {len(UNITS_A)} 个单位（锡林浩特市人民政府" in res.stderr
        direct = archive.consolidate(YEAR, under=A)
        assert data["summary"] == json.loads(json.dumps(_totals(direct)))
    finally:
        archive.close()


def _totals(summary):  # type: ignore[no-untyped-def]
    from toolkit.consolidate import totals_json

    return totals_json(summary)


def test_unknown_code_and_another_countys_unit_are_refused(returns, tmp_path, cli):
    db = str(tmp_path / "archive.db")
    archive = _received(returns, db)
    try:
        before = _states(archive)
        for args in (
            ("status", "--year", YEAR),
            ("accept", "--all-clean", "--year", YEAR),
            ("export", "--year", YEAR, "--out", tmp_path / "x.csv"),
            ("links", "--year", YEAR, "--base-url", "http://127.0.0.1:8000"),
            ("consolidate", "--year", YEAR, "--out", tmp_path / "x.xlsx"),
            ("draft", "--year", YEAR, "--out", tmp_path / "x.docx"),
            ("template", "--year", YEAR, "--out", tmp_path / "模板"),
        ):
            res = cli(*args, "--db", db, "--under", "999999")
            assert res.returncode == 2, (args, res.stderr)
            assert "999999" in res.stderr and "名册中没有" in res.stderr and "Traceback" not in res.stderr
        assert not (tmp_path / "x.csv").exists() and not (tmp_path / "模板").exists()
        assert archive.links() == {}  # no link was made

        # a unit of county B, by a clerk of county A: refused, nothing decided
        for args in (
            ("accept", "152522101", "--year", YEAR, "--note", "核实"),
            ("reject", "152522101", "--year", YEAR, "--note", "请更正", "--out", tmp_path / "退回"),
            ("history", "152522101", "--year", YEAR),
            ("diff", "152522101", "--year", YEAR),
        ):
            res = cli(*args, "--db", db, "--under", A)
            assert res.returncode == 2, (args, res.stderr)
            assert "别力古台镇" not in res.stdout and "不在 --under 指定的锡林浩特市人民政府（152502）" in res.stderr
        assert _states(archive) == before
        # a unit of its own county: decided as without --under
        _ok(
            cli(
                "reject",
                "152502003",
                "--year",
                YEAR,
                "--note",
                "请更正表三",
                "--out",
                tmp_path / "退回",
                "--db",
                db,
                "--under",
                A,
            )
        )
        assert archive.state("152502003", YEAR).status == "退回"

        # a unit with no units below it: the command works on that one unit
        assert _status_codes(cli, db, "--under", "152522101") == ["152522101"]
        res = _ok(cli("accept", "--all-clean", "--year", YEAR, "--db", db, "--under", "152522101"))
        assert "只限别力古台镇（152522101）这一个单位" in res.stderr
        changed = {c for c, v in _states(archive).items() if v != before[c]}
        assert changed <= {"152502003", "152522101"}
    finally:
        archive.close()


def test_links_template_draft_for_one_county(returns, tmp_path, cli):
    db = str(tmp_path / "archive.db")
    archive = _received(returns, db)
    try:
        _approve_all(archive, EVERY)
        base = "http://127.0.0.1:8000"
        res = _ok(cli("links", "--year", YEAR, "--db", db, "--base-url", base, "--under", A))
        assert {line.split("\t")[0] for line in res.stdout.splitlines()} == UNITS_A
        assert set(archive.links()) == UNITS_A  # links made for county A's units only
        res = _ok(cli("links", "--year", YEAR, "--db", db))
        assert {line.split("\t")[0] for line in res.stdout.splitlines()} == EVERY  # as before
        old = archive.links()
        _ok(cli("links", "--year", YEAR, "--db", db, "--rotate", "全部", "--under", A))
        new = archive.links()
        assert all(new[c] != old[c] for c in UNITS_A) and all(new[c] == old[c] for c in EVERY - UNITS_A)
        res = cli("links", "--year", YEAR, "--db", db, "--rotate", "别力古台镇", "--under", A)
        assert res.returncode == 2 and "152522101" in res.stderr and archive.links() == new

        out = tmp_path / "模板"
        _ok(cli("template", "--year", YEAR, "--db", db, "--out", out, "--under", A))
        assert {p.name.split("_")[0] for p in out.iterdir()} == UNITS_A
        _ok(cli("template", "--year", YEAR, "--roster", returns / "名册.csv", "--out", tmp_path / "全部"))
        assert len(list((tmp_path / "全部").iterdir())) == len(EVERY)  # as before

        docx = tmp_path / "锡林浩特市年报.docx"
        res = _ok(cli("draft", "--db", db, "--year", YEAR, "--under", A, "--out", docx))
        assert docx.exists() and "锡林浩特市人民政府" in res.stderr
        res = _ok(cli("draft", "--db", db, "--year", YEAR, "--under", "152502001", "--out", tmp_path / "街道.docx"))
        assert "希日塔拉街道" in res.stderr and "锡林浩特市人民政府" not in res.stderr  # a unit: its own report
        res = cli("draft", "--db", db, "--year", YEAR, "--under", A, "--unit", "152522101", "--out", tmp_path / "b.docx")
        assert res.returncode == 2 and "不在 --under" in res.stderr and not (tmp_path / "b.docx").exists()
    finally:
        archive.close()


def test_the_clerks_own_scope_from_the_environment(returns, tmp_path, cli, monkeypatch):
    db = str(tmp_path / "archive.db")
    archive = _received(returns, db)
    try:
        monkeypatch.setenv("NIANBAO_UNDER", B)
        assert set(_status_codes(cli, db)) == UNITS_B
        assert set(_status_codes(cli, db, "--under", A)) == UNITS_A  # the option wins
        res = cli("accept", "152502001", "--year", YEAR, "--note", "核实", "--db", db)
        assert res.returncode == 2 and "阿巴嘎旗人民政府（152522）" in res.stderr
        monkeypatch.delenv("NIANBAO_UNDER")
        assert set(_status_codes(cli, db)) == EVERY
    finally:
        archive.close()
