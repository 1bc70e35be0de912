"""Issues 12/13: imported reports meet a roster, keep the published figures, and their output
files never overwrite each other, an input, or (without --overwrite) anything already there."""

from __future__ import annotations

import json
import re

import pytest
from conftest import SAMPLES, run_cli, sha256
from published_text import flat_text

from toolkit.published.identity import match_roster, name_variants
from toolkit.published.importer import import_published
from toolkit.published.writer import MAX_NAME_BYTES, OutputNames
from toolkit.report import Report
from toolkit.roster import load_roster

ROSTER = SAMPLES / "roster.csv"


@pytest.mark.parametrize(
    "published,code",
    [
        ("宝力根苏木", "152502201"),
        ("锡林浩特市宝力根苏木人民政府", "152502201"),
        ("宝力根苏木人民政府", "152502201"),
        ("锡林浩特市自然资源局", "152502306"),
        ("市自然资源局", "152502306"),
        ("自然资源局", "152502306"),
        ("锡林浩特市人民政府", "152502"),
        ("宝力根街道办事处", "152502002"),
    ],
)
def test_roster_match_by_name_variants(published, code):
    unit, _ = match_roster(published, load_roster(ROSTER))
    assert unit is not None and unit.code == code


def test_roster_match_refuses_to_guess_between_equals(tmp_path):
    p = tmp_path / "r.csv"
    p.write_text("单位代码,单位名称,单位类型,上级代码\n1,甲县城关镇,乡镇,\n2,乙县城关镇,乡镇,\n", encoding="utf-8")
    unit, candidates = match_roster("城关镇人民政府", load_roster(p))
    assert unit is None and {u.code for u in candidates} == {"1", "2"}
    assert match_roster("甲县城关镇人民政府", load_roster(p))[0].code == "1"
    assert name_variants("甲县城关镇人民政府") == ["甲县城关镇人民政府", "甲县城关镇", "城关镇"]


def test_import_with_roster_then_check_with_the_same_roster(tmp_path, fmt):
    """The issue: imported returns got invented codes and `check -r` said 不在本次名册中."""
    src = tmp_path / "年报.txt"
    src.write_text(flat_text(fmt, {"t2.license.n": 12}, unit="锡林浩特市宝力根苏木人民政府", year=2025), encoding="utf-8")
    out = tmp_path / "out"
    r = run_cli("import", src, "-r", ROSTER, "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    (data,) = json.loads(r.stdout)["files"]
    assert (data["unit_code"], data["unit_name"], data["unit_type"]) == ("152502201", "宝力根苏木", "苏木")
    assert data["cover"]["published_name"] == "锡林浩特市宝力根苏木人民政府"
    (xlsx,) = out.glob("*.xlsx")
    r = run_cli("check", xlsx, "-r", ROSTER, "--year", "2025")
    assert r.returncode == 0, r.stderr
    assert "不在本次名册中" not in r.stderr


def test_unit_not_in_roster_and_unit_code_option(tmp_path, fmt):
    src = tmp_path / "x.txt"
    src.write_text(flat_text(fmt, {}, unit="某某乡", year=2025), encoding="utf-8")
    (rep,) = import_published([src], roster=load_roster(ROSTER))
    assert "unit-not-in-roster" in {f.code for f in rep.findings}
    (rep,) = import_published([src], roster=load_roster(ROSTER), unit_code="152502202")
    assert (rep.unit_code, rep.unit_name, rep.unit_type) == ("152502202", "朝克乌拉苏木", "苏木")
    assert "unit-not-in-roster" not in {f.code for f in rep.findings}
    (rep,) = import_published([src], unit_code="ABC-1")
    assert rep.unit_code == "ABC-1" and rep.unit_name == "某某乡"


def test_json_keeps_the_published_total(tmp_path, fmt):
    """A printed total that its parts contradict stays as printed; the recomputed sum is in the finding."""
    vals = {"t3.r1.np": 2, "t3.r1.tot": 3, "t3.r3_1.np": 2, "t3.r3_1.tot": 2, "t3.r3_7.np": 2, "t3.r3_7.tot": 2}
    src = tmp_path / "x.txt"
    src.write_text(flat_text(fmt, vals, received=2), encoding="utf-8")
    r = run_cli("import", src, "--json")
    assert r.returncode == 1
    (data,) = json.loads(r.stdout)["files"]
    assert data["values"]["t3.r1.tot"] == 3 and data["values"]["t3.r1.np"] == 2
    (i2,) = [f for f in data["findings"] if f["code"] == "I2" and f["cell_id"] == "t3.r1.tot"]
    assert (i2["found"], i2["expected"]) == (3, 2)


def test_json_marks_unknown_cells(tmp_path, fmt):
    text = flat_text(fmt, {"t2.license.n": 7})
    src = tmp_path / "cut.txt"
    src.write_text(text[: text.index("三、收到和处理政府信息公开申请情况")], encoding="utf-8")
    r = run_cli("import", src, "--json")
    (data,) = json.loads(r.stdout)["files"]
    assert data["values"]["t2.license.n"] == 7
    assert data["values"]["t3.r1.np"] is None and "t3.r1.np" in data["unknown"]
    assert data["values"]["t3.r3_7.tot"] is None and "t3.r3_7.tot" in data["unknown"]


def test_two_reports_of_one_unit_and_year_never_overwrite(tmp_path, fmt):
    a, b = tmp_path / "a" / "年报.txt", tmp_path / "b" / "年报.txt"
    for p, n in ((a, 5), (b, 6)):
        p.parent.mkdir()
        p.write_text(flat_text(fmt, {"t2.license.n": n}, unit="某某镇", year=2024), encoding="utf-8")
    out = tmp_path / "out"
    r = run_cli("import", a, b, "--out", out)
    assert r.returncode == 0, r.stderr
    js = sorted(out.glob("*.json"))
    assert [p.name for p in js] == ["某某镇_2024年_导入.json", "某某镇_2024年_导入_2.json"]
    assert sorted(json.loads(p.read_text(encoding="utf-8"))["values"]["t2.license.n"] for p in js) == [5, 6]
    assert "已写出 2 份" in r.stderr
    before = {p.name: sha256(p) for p in out.iterdir()}
    r = run_cli("import", a, "--out", out)  # again: a new name, nothing replaced
    assert r.returncode == 0
    assert {p.name: sha256(p) for p in out.iterdir() if p.name in before} == before
    assert (out / "某某镇_2024年_导入_3.json").exists()
    r = run_cli("import", a, "--out", out, "--overwrite")
    assert r.returncode == 0
    assert len(list(out.glob("*.json"))) == 3


def test_output_never_replaces_an_input(tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    victim = out / "某某镇_2024年_导入.json"
    victim.write_text("{}", encoding="utf-8")
    names = OutputNames(out, inputs=[victim], overwrite=True)
    xlsx, js = names.pair(Report(unit_name="某某镇", year=2024))
    assert js != victim and js.name == "某某镇_2024年_导入_2.json"


def test_long_chinese_names_fit_255_bytes(tmp_path, fmt):
    unit = "内蒙古自治区锡林郭勒盟锡林浩特市" + "某某" * 40 + "综合行政执法局"
    src = tmp_path / "long.txt"
    src.write_text(flat_text(fmt, {}, unit=unit, year=2024), encoding="utf-8")
    out = tmp_path / "out"
    r = run_cli("import", src, "--out", out, "--unit", unit)
    assert r.returncode == 0, r.stderr
    names = [p.name for p in out.iterdir()]
    assert len(names) == 2 and all(len(n.encode("utf-8")) <= MAX_NAME_BYTES for n in names)
    assert all(n.startswith("内蒙古自治区") and re.search(r"_2024年_导入\.(xlsx|json)$", n) for n in names)
    names2 = OutputNames(out).pair(Report(unit_name=unit, year=2024))
    assert all(len(p.name.encode("utf-8")) <= MAX_NAME_BYTES for p in names2) and names2[0].name.endswith("_2.xlsx")


def test_cross_year_pairs_units_not_file_names(tmp_path, fmt):
    y1 = {
        "t3.r1.np": 3,
        "t3.r3_1.np": 1,
        "t3.r4.np": 2,
        "t3.r1.tot": 3,
        "t3.r3_1.tot": 1,
        "t3.r4.tot": 2,
        "t3.r3_7.np": 1,
        "t3.r3_7.tot": 1,
    }
    y2 = {"t3.r2.np": 1, "t3.r3_1.np": 1, "t3.r2.tot": 1, "t3.r3_1.tot": 1, "t3.r3_7.np": 1, "t3.r3_7.tot": 1}
    files = []
    for d, vals, unit, year in (("a", y1, "某某镇人民政府", 2022), ("b", y2, "某某镇", 2023), ("c", y1, "另一镇", 2022)):
        p = tmp_path / d / "年报.txt"  # the same file name everywhere
        p.parent.mkdir()
        p.write_text(flat_text(fmt, vals, unit=unit, year=year), encoding="utf-8")
        files.append(p)
    reports = import_published(files)
    found = [(i, f.code, f.cell_id) for i, r in enumerate(reports) for f in r.findings if f.code == "carryover-mismatch"]
    assert found == [(1, "carryover-mismatch", "t3.r2.np")]


def test_help_example_points_inside_the_project():
    r = run_cli("import", "--help")
    assert "samples/published/" in r.stdout and "../shared" not in r.stdout
    example = re.search(r"nianbao import (samples/published/\S+\.txt)", r.stdout).group(1)
    assert run_cli("import", example).returncode == 0


def test_import_a_folder_and_roster_type_drives_the_rules(tmp_path, fmt):
    """A folder stands for the reports in it; the roster's unit type decides I10 (规章 of a 苏木)."""
    folder = tmp_path / "年报"
    folder.mkdir()
    (folder / "a.txt").write_text(flat_text(fmt, {"t2.reg.valid": 2}, unit="宝力根苏木人民政府", year=2025), encoding="utf-8")
    (folder / "说明.docx").write_bytes(b"not a report")  # not a report type: not read
    r = run_cli("import", folder, "-r", ROSTER, "--json")
    (data,) = json.loads(r.stdout)["files"]
    assert data["unit_type"] == "苏木" and "I10" in {f["code"] for f in data["findings"]}


def test_a_report_naming_no_unit_gets_a_readable_name(tmp_path, fmt):
    """Issue 27.12: a text that names no unit was shown as "X02f00e37"; now 未识别单位（file name）, and
    the stable invented code (used to pair years) is never shown in the results table."""
    text = flat_text(fmt, {"t2.license.n": 3}, year=2025).split("\n", 1)[1]  # without the sentence naming the unit
    src = tmp_path / "某局年报.txt"
    src.write_text("我们今年做了很多工作。\n" + text, encoding="utf-8")
    (rep,) = import_published([src])
    assert rep.unit_name == "未识别单位（某局年报）" and rep.unit_code.startswith("X")
    r = run_cli("import", src)
    assert "未识别单位（某局年报）" in r.stderr and rep.unit_code not in r.stderr
    # with a roster: 单位不在名册中, naming the unit as people know it, never the invented key
    with_roster = run_cli("import", src, "-r", ROSTER)
    assert "未识别单位（某局年报）" in with_roster.stderr and "单位代码（无）" in with_roster.stderr
    assert rep.unit_code not in with_roster.stderr
