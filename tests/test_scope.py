"""Issue 12.3, 12.4, 12.9, 12.10: a selection never passes for the whole county, a roster without
the county itself still consolidates, counts count what a reviewer counts, and a run is judged
on what it was asked to cover."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import openpyxl
import pytest
from conftest import SAMPLES

ROSTER = SAMPLES / "roster.csv"
ARGS = ["--roster", ROSTER, "--year", "2025"]


def _props(path: Path) -> dict[str, str]:
    return {p.name: p.value for p in openpyxl.load_workbook(path).custom_doc_props}


def test_selection_is_marked_and_warned_about_one_level_up(cli, tmp_path):
    out = tmp_path / "县" / "部分.xlsx"
    r = cli("consolidate", SAMPLES / "returns", *ARGS, "--exclude", "152502311,152502312", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout)["summary"]
    assert summary["scope"] == "选择汇总" and "锡林浩特市审计局（152502311）" in summary["scope_note"]
    assert "汇总范围：选择汇总" in r.stderr
    props = _props(out)
    assert props["nianbao_scope"] == "选择汇总" and "锡林浩特市审计局" in props["nianbao_scope_note"]
    wb = openpyxl.load_workbook(out)
    assert "选择汇总" in wb["汇总说明"]["A3"].value and "不是锡林浩特市人民政府的全部汇总" in wb["汇总说明"]["A3"].value
    assert "选择汇总" in wb["报送情况"]["A1"].value and wb["报送情况"]["B2"].value == "单位代码"
    # the city above: the county's partial summary is accepted, with a 警告 naming what is missing
    city = tmp_path / "city.csv"
    city.write_text(
        "单位代码,单位名称,单位类型,上级代码\n1525,锡林郭勒盟,市级政府,\n152502,锡林浩特市人民政府,县级政府,1525\n",
        encoding="utf-8",
    )
    r = cli("consolidate", out, "--roster", city, "--year", "2025", "--out", tmp_path / "盟.xlsx", "--json")
    data = json.loads(r.stdout)
    warn = [f for f in data["files"][0]["findings"] if f["code"] == "summary-partial"]
    assert warn and warn[0]["severity"] == "警告" and "锡林浩特市审计局" in warn[0]["message"]
    r = cli("check", out, "--year", "2025", "--json")
    assert "summary-partial" in {f["code"] for f in json.loads(r.stdout)["files"][0]["findings"]}


def test_whole_county_is_not_marked(cli, tmp_path):
    out = tmp_path / "全部.xlsx"
    r = cli("consolidate", SAMPLES / "returns", *ARGS, "--out", out, "--json")
    assert json.loads(r.stdout)["summary"]["scope"] == "全部"
    assert _props(out)["nianbao_scope"] == "全部"
    assert "选择汇总" not in str(openpyxl.load_workbook(out)["汇总说明"]["A3"].value)


def test_roster_without_the_county_itself(cli, tmp_path):
    lines = ROSTER.read_text(encoding="utf-8").splitlines()
    roster = tmp_path / "no_county.csv"
    roster.write_text("\n".join(x for x in lines if not x.startswith("152502,")) + "\n", encoding="utf-8")
    returns = tmp_path / "returns"
    shutil.copytree(SAMPLES / "returns", returns)
    (returns / "152502_锡林浩特市人民政府_2025年政府信息公开年报.xlsx").unlink()
    r = cli("consolidate", returns, "--roster", roster, "--year", "2025", "--out", tmp_path / "a.xlsx", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert (data["summary"]["unit_code"], data["summary"]["unit_name"]) == ("152502", "上级单位152502")
    assert data["summary"]["level"] == "县级汇总" and data["summary"]["counts"]["应报"] == 21
    hint = [f for f in data["findings"] if f["code"] == "summary-unit-missing"]
    assert hint and "--summary-name" in hint[0]["instruction"]
    assert "--summary-name" in r.stderr
    r = cli(
        "consolidate",
        returns,
        "--roster",
        roster,
        "--year",
        "2025",
        "--out",
        tmp_path / "b.xlsx",
        "--summary-name",
        "锡林浩特市人民政府",
        "--json",
    )
    assert json.loads(r.stdout)["summary"]["unit_name"] == "锡林浩特市人民政府"
    # --under the shared parent code works too (it is what the old message recommended)
    r = cli(
        "consolidate", returns, "--roster", roster, "--year", "2025", "--out", tmp_path / "c.xlsx", "--under", "152502", "--json"
    )
    assert r.returncode == 0 and json.loads(r.stdout)["summary"]["counts"]["应报"] == 21


def test_roster_of_two_counties_without_their_rows_recommends_what_works(cli, tmp_path):
    roster = tmp_path / "two.csv"
    roster.write_text(
        "单位代码,单位名称,单位类型,上级代码\n152502201,宝力根苏木,苏木,152502\n"
        "152502202,朝克乌拉苏木,苏木,152502\n152599001,外县某镇,镇,152599\n",
        encoding="utf-8",
    )
    two = [
        SAMPLES / "returns" / f"{c}_{n}_2025年政府信息公开年报.xlsx"
        for c, n in (("152502201", "宝力根苏木"), ("152502202", "朝克乌拉苏木"))
    ]
    r = cli("consolidate", *two, "--roster", roster, "--year", "2025", "--out", tmp_path / "x.xlsx")
    assert r.returncode == 2 and "--under 152502" in r.stderr
    r = cli(
        "consolidate", *two, "--roster", roster, "--year", "2025", "--out", tmp_path / "x.xlsx", "--under", "152502", "--json"
    )
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["summary"]["counts"]["已报送"] == 2


def test_counts_count_submissions_and_say_what_was_ignored(cli, tmp_path):
    returns = tmp_path / "returns"
    shutil.copytree(SAMPLES / "returns", returns)
    for name in ("152502003_杭盖街道", "152502004_楚古兰街道", "152502202_朝克乌拉苏木"):  # 错误, 错误, 警告
        (returns / f"{name}_2025年政府信息公开年报.xlsx").unlink()
        shutil.copy(SAMPLES / "faulty" / f"{name}_2025年政府信息公开年报_有误.xlsx", returns)
    first = tmp_path / "旧汇总.xlsx"
    cli("consolidate", SAMPLES / "returns", *ARGS, "--out", first)
    shutil.copy(first, returns / "旧汇总.xlsx")
    r = cli("consolidate", returns, *ARGS, "--out", tmp_path / "s.xlsx", "--force", "--json")
    counts = json.loads(r.stdout)["summary"]["counts"]
    assert counts["应报"] == 22 and counts["已报送"] == 22 and counts["未报送"] == 0  # 22, not 23
    assert counts["有错误"] == 2 and counts["有警告"] == 1 and counts["汇总表（已忽略）"] == 1
    assert "未纳入汇总：returns/旧汇总.xlsx（这是本单位以前的汇总表" in r.stderr
    text = openpyxl.load_workbook(tmp_path / "s.xlsx")["汇总说明"]
    rows = {row[0]: row[1] for row in text.iter_rows(values_only=True) if row[0]}
    assert rows["应报单位"] == "22个" and rows["已报送"].startswith("22个（有错误2个")


def test_a_run_is_judged_on_what_it_covers(cli, tmp_path):
    returns = tmp_path / "returns"
    shutil.copytree(SAMPLES / "returns", returns)
    shutil.copy(SAMPLES / "faulty" / "152502003_杭盖街道_2025年政府信息公开年报_有误.xlsx", returns)
    (returns / "152502003_杭盖街道_2025年政府信息公开年报.xlsx").unlink()
    r = cli("consolidate", returns, *ARGS, "--units", "152502201,152502202", "--out", tmp_path / "s.xlsx", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert [f["unit_code"] for f in data["files"]] == ["152502201", "152502202"]
    assert "另有 20 个文件属于本次汇总范围以外的单位" in r.stderr and "其中 1 个有错误" in r.stderr


def test_refusal_is_printed_as_json_too(cli, tmp_path):
    returns = tmp_path / "returns"
    shutil.copytree(SAMPLES / "returns", returns)
    shutil.copy(SAMPLES / "faulty" / "152502003_杭盖街道_2025年政府信息公开年报_有误.xlsx", returns)
    (returns / "152502003_杭盖街道_2025年政府信息公开年报.xlsx").unlink()
    r = cli("consolidate", returns, *ARGS, "--out", tmp_path / "s.xlsx", "--json")
    assert r.returncode == 1
    data = json.loads(r.stdout)
    assert data["ok"] is False and "杭盖街道（152502003）" in data["refused"]["reason"]
    assert any(f["findings"] for f in data["files"])


@pytest.mark.parametrize("where", ["folder", "zip"])
def test_check_with_roster_names_missing_and_duplicated_units(cli, tmp_path, where):
    d = tmp_path / "in"
    shutil.copytree(SAMPLES / "returns", d)
    (d / "152502311_锡林浩特市审计局_2025年政府信息公开年报.xlsx").unlink()
    shutil.copy(d / "152502301_锡林浩特市公安局_2025年政府信息公开年报.xlsx", d / "公安局(1).xlsx")
    target = d
    if where == "zip":
        shutil.make_archive(str(tmp_path / "in"), "zip", d)
        target = tmp_path / "in.zip"
    r = cli("check", target, *ARGS, "--json")
    data = json.loads(r.stdout)
    missing = [f for f in data["findings"] if f["code"] == "unit-missing"]
    assert [f["unit_code"] for f in missing] == ["152502311"]
    dups = [f for x in data["files"] for f in x["findings"] if f["code"] == "unit-duplicate-in-batch"]
    assert len(dups) == 2 and all(f["severity"] == "警告" for f in dups)
    assert "锡林浩特市审计局" in r.stderr.replace("\n", "")


def test_check_without_year_remarks_on_mixed_years(cli, tmp_path, fmt):
    from toolkit.roster import load_roster
    from toolkit.template import ReturnContent, file_name, write_return

    d = tmp_path / "in"
    shutil.copytree(SAMPLES / "returns", d)
    unit = load_roster(ROSTER).get("152502201")
    write_return(
        d / file_name(unit, 2024),
        fmt,
        ReturnContent(
            unit=unit, year=2024, values={c.id: 0 for c in fmt.inputs}, cover={"filler": "甲", "phone": "1", "date": "2025-01-05"}
        ),
    )
    r = cli("check", d, "--json")
    mixed = [f for f in json.loads(r.stdout)["findings"] if f["code"] == "year-mixed"]
    assert mixed and "2024年度1份" in mixed[0]["message"] and "2025年度22份" in mixed[0]["message"]
