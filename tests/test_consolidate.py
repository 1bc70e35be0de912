"""Issue 5: `nianbao consolidate` — the summary is exactly Σ of the accepted returns, is itself a
valid return one level up, and tells who has not reported."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import openpyxl
import pytest
from conftest import SAMPLES, sha256

from toolkit.check import CheckOptions, check_paths
from toolkit.roster import Unit, load_roster
from toolkit.synth import random_values
from toolkit.template import ReturnContent, file_name, write_return

COVER = {"filler": "王敏", "phone": "0479-0000101", "date": "2026-01-08"}


def write_roster(path: Path, units: list[Unit]) -> Path:
    lines = ["单位代码,单位名称,单位类型,上级代码"] + [f"{u.code},{u.name},{u.type},{u.parent}" for u in units]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def county(code: str, name: str, n_towns: int) -> list[Unit]:
    units = [Unit(code, name, "县级政府", code[:4])]
    units += [Unit(f"{code}{i:03d}", f"{name}第{i}镇", "镇", code) for i in range(1, n_towns + 1)]
    return units


def write_returns(fmt, folder: Path, units: list[Unit], rng: random.Random, year: int = 2025) -> dict[str, dict]:
    folder.mkdir(parents=True, exist_ok=True)
    values = {}
    for i, u in enumerate(units):
        v = random_values(fmt, rng, busy=(i == 0))
        values[u.code] = v
        write_return(folder / file_name(u, year), fmt, ReturnContent(unit=u, year=year, values=v, cover=dict(COVER)))
    return values


def read_summary(path: Path):
    (rep,) = check_paths([path], CheckOptions()).reports
    return rep


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_property_summary_is_exact_sum_and_passes_check(cli, fmt, tmp_path, seed):
    rng = random.Random(seed)
    units = county("152599", "测试县", rng.randint(3, 9))
    roster = write_roster(tmp_path / "roster.csv", units)
    values = write_returns(fmt, tmp_path / "returns", units, rng)
    out = tmp_path / "汇总.xlsx"
    r = cli("consolidate", tmp_path / "returns", "--roster", roster, "--year", "2025", "--out", out)
    assert r.returncode == 0, r.stderr
    summary = read_summary(out)
    for c in fmt.inputs:
        expected = sum(v[c.id] for v in values.values())
        assert summary.values[c.id] == pytest.approx(expected), c.id
    r = cli("check", out, "--roster", roster, "--year", "2025")
    assert r.returncode == 0, r.stderr
    # cached totals are the real numbers, not 0
    wb = openpyxl.load_workbook(out, data_only=True)
    for c in fmt.totals:
        assert wb[c.sheet_name][c.a1].value == pytest.approx(summary.values[c.id] or 0), c.id
    assert any(summary.values[c.id] for c in fmt.totals)
    assert summary.level == "县级汇总" and summary.unit_code == "152599"


def test_two_levels_city_equals_direct_sum(cli, fmt, tmp_path):
    rng = random.Random(7)
    city = Unit("1599", "测试市人民政府", "市级政府", "")
    counties = [county(f"1599{k}0", f"测试{k}县", 4) for k in range(1, 4)]
    all_values = {}
    summaries = tmp_path / "县级汇总"
    for units in counties:
        roster = write_roster(tmp_path / f"{units[0].code}.csv", units)
        all_values |= write_returns(fmt, tmp_path / units[0].code, units, rng)
        r = cli(
            "consolidate",
            tmp_path / units[0].code,
            "--roster",
            roster,
            "--year",
            "2025",
            "--out",
            summaries / f"{units[0].code}_汇总.xlsx",
        )
        assert r.returncode == 0, r.stderr
    assert len(all_values) == 15
    city_roster = write_roster(
        tmp_path / "city.csv", [city] + [Unit(u[0].code, u[0].name, "县级政府", city.code) for u in counties]
    )
    out = tmp_path / "市汇总.xlsx"
    r = cli("consolidate", summaries, "--roster", city_roster, "--year", "2025", "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["summary"]["level"] == "市级汇总"
    for c in fmt.inputs:
        assert data["summary"]["totals"][c.id] == pytest.approx(sum(v[c.id] for v in all_values.values())), c.id
    statuses = {u["unit_code"]: u["status"] for u in data["summary"]["units"]}
    assert statuses["1599"] == "未报送"  # the city's own 本级 return was not given

    # tamper one county summary's 表三 value: the parent-vs-children check catches it
    target = summaries / f"{counties[1][0].code}_汇总.xlsx"
    wb = openpyxl.load_workbook(target)
    cell = fmt.cells["t3.r3_1.np"]
    wb["表三"][cell.a1] = (wb["表三"][cell.a1].value or 0) + 5
    wb.save(target)
    rep = read_summary(target)
    mism = [f for f in rep.findings if f.code == "summary-mismatch"]
    assert [(f.cell_id, f.delta) for f in mism] == [("t3.r3_1.np", 5)]
    r = cli("consolidate", summaries, "--roster", city_roster, "--year", "2025", "--out", tmp_path / "x.xlsx")
    assert r.returncode == 1 and "有错误" in r.stderr and not (tmp_path / "x.xlsx").exists()


@pytest.fixture
def county_dir(tmp_path):
    shutil.copytree(SAMPLES / "returns", tmp_path / "returns")
    return tmp_path


def test_status_missing_duplicate_and_not_in_roster(cli, county_dir, fmt):
    d = county_dir / "returns"
    (d / "152502311_锡林浩特市审计局_2025年政府信息公开年报.xlsx").unlink()  # missing
    # a corrected second return of 宝力根苏木 with a later 填报日期
    u = load_roster(SAMPLES / "roster.csv").get("152502201")
    vals = {c.id: 0 for c in fmt.inputs} | {"t2.license.n": 153, "t2.penalty.n": 3}
    write_return(
        d / "宝力根苏木_最终版2.xlsx", fmt, ReturnContent(unit=u, year=2025, values=vals, cover=COVER | {"date": "2026-01-20"})
    )
    stranger = Unit("152599001", "外县某镇", "镇", "152599")
    write_return(d / "外县.xlsx", fmt, ReturnContent(unit=stranger, year=2025, values={c.id: 0 for c in fmt.inputs}, cover=COVER))
    out = county_dir / "汇总.xlsx"
    r = cli("consolidate", d, "--roster", SAMPLES / "roster.csv", "--year", "2025", "--out", out, "--json")
    # the stranger's return is not included (不在名册), so it does not block the summary,
    # but the exit code still says a file had an error
    assert r.returncode == 1 and out.exists(), r.stderr
    assert "未纳入汇总" in r.stderr
    data = json.loads(r.stdout)
    st = {x["unit_code"]: x for x in data["summary"]["units"]}
    assert st["152502311"]["status"] == "未报送"
    assert st["152502201"]["status"] == "重复" and st["152502201"]["file"].endswith("最终版2.xlsx")
    assert st["152502201"]["duplicates"] == ["returns/152502201_宝力根苏木_2025年政府信息公开年报.xlsx"]
    assert st["152599001"]["status"] == "不在名册"
    assert data["summary"]["totals"]["t2.license.n"] == 13169 - 152 + 153  # the newer duplicate is used
    ws = openpyxl.load_workbook(out)["报送情况"]
    rows = {r[1]: r[4] for r in ws.iter_rows(min_row=2, values_only=True)}
    assert rows["152502311"] == "未报送" and rows["152502201"] == "重复" and rows["152599001"] == "不在名册"
    assert "强制" not in str(openpyxl.load_workbook(out)["汇总说明"]["A3"].value or "")  # no errors among included


def test_refuse_force_and_strict(cli, county_dir):
    d = county_dir / "returns"
    shutil.copy(SAMPLES / "faulty" / "152502003_杭盖街道_2025年政府信息公开年报_有误.xlsx", county_dir / "bad.xlsx")
    (d / "152502003_杭盖街道_2025年政府信息公开年报.xlsx").unlink()
    out = county_dir / "汇总.xlsx"
    args = [d, county_dir / "bad.xlsx", "--roster", SAMPLES / "roster.csv", "--year", "2025", "--out", out]
    r = cli("consolidate", *args)
    assert r.returncode == 1 and "杭盖街道（152502003）" in r.stderr and "--force" in r.stderr
    assert not out.exists()
    r = cli("consolidate", *args, "--force")
    assert r.returncode == 1 and out.exists()
    banner = openpyxl.load_workbook(out)["汇总说明"]["A3"].value
    assert "强制" in banner and "杭盖街道" in banner
    shutil.copy(d / "152502201_宝力根苏木_2025年政府信息公开年报.xlsx", county_dir / "dup.xlsx")
    r = cli(
        "consolidate",
        d,
        county_dir / "dup.xlsx",
        "--roster",
        SAMPLES / "roster.csv",
        "--year",
        "2025",
        "--out",
        county_dir / "s.xlsx",
        "--strict",
    )
    assert r.returncode == 1 and "--strict" in r.stderr and not (county_dir / "s.xlsx").exists()


def test_select_and_node(cli, tmp_path):
    args = [SAMPLES / "returns", "--roster", SAMPLES / "roster.csv", "--year", "2025", "--json"]
    r = cli("consolidate", *args, "--out", tmp_path / "a.xlsx", "--units", "152502201,152502202")
    data = json.loads(r.stdout)
    assert [u["unit_code"] for u in data["summary"]["units"]] == ["152502201", "152502202"]
    assert data["summary"]["totals"]["t2.license.n"] == 152 + 64
    r = cli("consolidate", *args, "--out", tmp_path / "b.xlsx", "--exclude", "152502301")
    assert json.loads(r.stdout)["summary"]["totals"]["t2.license.n"] == 13169 - 8421
    r = cli("consolidate", *args, "--out", tmp_path / "c.xlsx", "--under", "152502201")
    data = json.loads(r.stdout)
    assert data["summary"]["unit_code"] == "152502201" and len(data["summary"]["units"]) == 1
    r = cli("consolidate", *args, "--out", tmp_path / "d.xlsx", "--units", "999")
    assert r.returncode == 2 and "不在名册中" in r.stderr


def test_manifest_and_determinism(cli, tmp_path, fmt):
    args = [SAMPLES / "returns", "--roster", SAMPLES / "roster.csv", "--year", "2025"]
    inputs = {p: sha256(p) for p in (SAMPLES / "returns").iterdir()}
    for name in ("one", "two"):
        r = cli("consolidate", *args, "--out", tmp_path / name / "汇总.xlsx")
        assert r.returncode == 0, r.stderr
    m1 = json.loads((tmp_path / "one" / "汇总.manifest.json").read_text(encoding="utf-8"))
    m2 = json.loads((tmp_path / "two" / "汇总.manifest.json").read_text(encoding="utf-8"))
    for m in (m1, m2):  # the timestamp, and so the workbook's bytes, differ
        m.pop("created"), m.pop("summary_sha256")
    assert m1 == m2
    assert len(m1["inputs"]) == 22 and all(i["used"] and len(i["sha256"]) == 64 for i in m1["inputs"])
    assert m1["totals"]["t2.license.n"] == 13169 and m1["format_id"] == "zfxxgk-2021"
    assert m1["rules_version"].startswith("zfxxgk-2021.toml sha256:")
    assert {p: sha256(p) for p in inputs} == inputs
    assert not [p for p in (tmp_path / "one").iterdir() if p.name.startswith(".~")]


def test_summary_sheets(tmp_path, cli, fmt):
    out = tmp_path / "汇总.xlsx"
    cli("consolidate", SAMPLES / "returns", "--roster", SAMPLES / "roster.csv", "--year", "2025", "--out", out)
    wb = openpyxl.load_workbook(out)
    assert wb.sheetnames[:2] == ["封面", "汇总说明"]
    for name in ("表二", "表三", "表四", "报送情况", "明细", "图表", "问题清单"):
        assert name in wb.sheetnames
    detail = wb["明细"]
    assert detail.auto_filter.ref and detail.freeze_panes == "C3"
    heads = [c.value for c in detail[1]]
    assert heads[:4] == ["单位代码", "单位名称", "单位类型", "报送状态"] and all(heads)
    assert heads[4] == "表二 规章 第二十条第（一）项 本年制发件数"
    ids = [c.value for c in detail[2]]
    assert ids[:4] == ["unit_code", "unit_name", "unit_type", "status"] and "t3.r1.np" in ids
    last = detail.max_row
    assert detail.cell(last, 1).value == "合计"
    col = ids.index("t2.license.n") + 1
    assert detail.cell(last, col).value.startswith("=SUM(")
    assert openpyxl.load_workbook(out, data_only=True)["明细"].cell(last, col).value == 13169
    assert len(wb["图表"]._charts) == 3
    assert wb["表三"].protection.sheet and wb.security.lockStructure
    unlocked = [
        c.coordinate
        for ws in wb.worksheets
        if ws.title in ("表二", "表三", "表四")
        for row in ws.iter_rows()
        for c in row
        if c.protection.locked is False
    ]
    assert unlocked == []  # a summary is not for filling in
    status = wb["报送情况"]
    head = [c.value for c in status[1]]
    notes = {r[1]: r[head.index("情况说明")] for r in status.iter_rows(min_row=2, values_only=True)}
    assert notes["152502002"] == "本年度未收到政府信息公开申请，无行政许可、行政处罚事项，各项均为0。"  # the clerk's, as written


def test_old_summary_among_returns_is_not_counted_twice(cli, tmp_path):
    first = tmp_path / "first.xlsx"
    args = ["--roster", SAMPLES / "roster.csv", "--year", "2025"]
    assert cli("consolidate", SAMPLES / "returns", *args, "--out", first).returncode == 0
    mixed = tmp_path / "mixed"
    shutil.copytree(SAMPLES / "returns", mixed)
    shutil.copy(first, mixed / "去年的汇总.xlsx")
    r = cli("consolidate", mixed, *args, "--out", tmp_path / "again.xlsx", "--json")
    data = json.loads(r.stdout)
    assert data["summary"]["totals"]["t2.license.n"] == 13169  # not doubled
    st = {u["file"]: u["status"] for u in data["summary"]["units"]}
    assert st["mixed/去年的汇总.xlsx"] == "汇总表（已忽略）"
    (ignored,) = [f for f in data["findings"] if f["code"] == "summary-ignored"]
    assert ignored["file"] == "mixed/去年的汇总.xlsx" and ignored["severity"] == "警告"
    assert r.returncode == 0


def test_consolidating_nothing_is_refused(cli, tmp_path):
    (tmp_path / "empty").mkdir()
    r = cli("consolidate", tmp_path / "empty", "--roster", SAMPLES / "roster.csv", "--year", "2025", "--out", tmp_path / "s.xlsx")
    assert r.returncode == 2 and "没有找到任何填报表" in r.stderr and not (tmp_path / "s.xlsx").exists()


def test_zipped_copy_does_not_beat_a_newer_loose_correction(cli, tmp_path, fmt):
    import os
    import zipfile

    u = load_roster(SAMPLES / "roster.csv").get("152502201")
    d = tmp_path / "in"
    d.mkdir()
    old = tmp_path / "old.xlsx"
    write_return(
        old,
        fmt,
        ReturnContent(unit=u, year=2025, values={c.id: 0 for c in fmt.inputs} | {"t2.license.n": 100}, cover=dict(COVER)),
    )
    with zipfile.ZipFile(d / "旧.zip", "w") as z:
        info = zipfile.ZipInfo("old.xlsx", date_time=(2026, 1, 5, 9, 0, 0))
        z.writestr(info, old.read_bytes())
    new = d / "更正.xlsx"
    write_return(
        new,
        fmt,
        ReturnContent(unit=u, year=2025, values={c.id: 0 for c in fmt.inputs} | {"t2.license.n": 146}, cover=dict(COVER)),
    )
    stamp = __import__("datetime").datetime(2026, 1, 9, 9, 0).timestamp()
    os.utime(new, (stamp, stamp))
    r = cli(
        "consolidate",
        d,
        "--roster",
        SAMPLES / "roster.csv",
        "--year",
        "2025",
        "--units",
        "152502201",
        "--out",
        tmp_path / "s.xlsx",
        "--json",
    )
    assert json.loads(r.stdout)["summary"]["totals"]["t2.license.n"] == 146
