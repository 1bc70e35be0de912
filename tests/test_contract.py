"""What the library promises, tested where nothing else does: identity checks of a return
(template version, unknown format, empty cover fields), cross-year rules on complete reports,
fingerprints unique per unit/year/cell, complete values from the API, and one JSON shape for
check, consolidate and import."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import jsonschema
import openpyxl
import pytest
from conftest import SAMPLES

import nianbao
from toolkit.check import _version
from toolkit.jsonout import SCHEMA
from toolkit.report import Report, blank_values
from toolkit.spec import conventions, current_format
from toolkit.years import cross_year

BAOLIGEN = next((SAMPLES / "returns").glob("152502201_*.xlsx"))
ROSTER = SAMPLES / "roster.csv"


def _with_property(src: Path, dst: Path, name: str, value: str) -> Path:
    """A copy of a return whose custom property ``name`` says ``value`` (as a clerk's tool might leave it)."""
    prefix = conventions().prefix
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            body = zin.read(item.filename)
            if item.filename == "docProps/custom.xml":
                text = body.decode("utf-8")
                head, rest = text.split(f'name="{prefix}{name}">', 1)
                old_value = rest.split(">", 1)[1].split("<", 1)[0]
                rest = rest.replace(f">{old_value}<", f">{value}<", 1)
                body = (head + f'name="{prefix}{name}">' + rest).encode("utf-8")
            zout.writestr(item, body)
    return dst


def _codes(cli, *args) -> tuple[int, list[dict]]:
    r = cli("check", *args, "--json")
    data = json.loads(r.stdout)
    return r.returncode, [f for file in data["files"] for f in file["findings"]]


def test_template_versions_compare_as_numbers():
    assert _version("1.10") > _version("1.9") > _version("1") > _version("0.9")
    assert _version("") == _version("不是版本号") > _version("99")  # unknown counts as current


def test_template_outdated(cli, tmp_path):
    old = _with_property(BAOLIGEN, tmp_path / "旧模板.xlsx", "template_version", "0.9")
    code, findings = _codes(cli, old)
    hit = [f for f in findings if f["code"] == "template-outdated"]
    assert len(hit) == 1 and hit[0]["found"] == "0.9" and hit[0]["expected"] == current_format().template_version
    assert code == 0  # an older template is worth saying, not an error in the figures
    newer = _with_property(BAOLIGEN, tmp_path / "新模板.xlsx", "template_version", "1.10")
    assert "template-outdated" not in {f["code"] for f in _codes(cli, newer)[1]}


def test_format_unknown(cli, tmp_path):
    alien = _with_property(BAOLIGEN, tmp_path / "未知格式.xlsx", "format_id", "zfxxgk-2099")
    r = cli("check", alien, "--json")
    data = json.loads(r.stdout)
    (f,) = data["files"]
    assert [x["code"] for x in f["findings"]] == ["format-unknown"] and "zfxxgk-2099" in f["findings"][0]["message"]
    assert f["readable"] is False and r.returncode == 1


def test_cover_field_empty(cli, tmp_path):
    fmt = current_format()
    field = next(x for x in fmt.cover.fields if x.required and x.id == "filler")
    wb = openpyxl.load_workbook(BAOLIGEN)
    wb[fmt.cover.sheet_name].cell(field.row, conventions().cover_value_col).value = None
    wb.save(tmp_path / "无填报人.xlsx")
    _, findings = _codes(cli, tmp_path / "无填报人.xlsx")
    hit = [f for f in findings if f["code"] == "cover-field-empty"]
    assert len(hit) == 1 and hit[0]["sheet"] == fmt.cover.sheet_name and field.label in hit[0]["message"]


def _report(code: str, name: str, year: int, **values) -> Report:
    fmt = current_format()
    v = blank_values(fmt)
    v.update({k: 0 for k in v})
    v.update(values)
    return Report(format_id=fmt.id, year=year, unit_code=code, unit_name=name, values=v)


def test_valid_continuity_and_carryover_name_both_years():
    last = _report("152502201", "宝力根苏木", 2024, **{"t2.norm.valid": 20, "t3.r4.tot": 2})
    this = _report("152502201", "宝力根苏木", 2025, **{"t2.norm.made": 3, "t2.norm.repealed": 1, "t2.norm.valid": 25})
    findings = cross_year([last, this])
    by_code = {f.code: f for f in findings}
    assert set(by_code) >= {"valid-continuity", "carryover-mismatch"}
    cont = by_code["valid-continuity"]
    assert (cont.found, cont.expected) == (25, 22) and "2024" in cont.message and "2025" in cont.message
    # an error that a written 说明 may explain (机构调整): the reviewer can accept it, unlike O1
    assert (by_code["carryover-mismatch"].severity, by_code["carryover-mismatch"].kind) == ("错误", "核实性")
    assert cont.kind == "核实性"
    right = _report("152502201", "宝力根苏木", 2025, **{"t2.norm.made": 3, "t2.norm.repealed": 1, "t2.norm.valid": 22})
    right.values["t3.r2.tot"] = 2
    assert cross_year([last, right]) == []


def test_fingerprints_unique_per_unit_and_year():
    reports = []
    for code, name in (("152502201", "宝力根苏木"), ("152502202", "朝克乌拉苏木")):
        reports.append(_report(code, name, 2024, **{"t3.r4.tot": 5}))
        reports.append(_report(code, name, 2025))
    findings = cross_year(reports)
    assert len(findings) >= 2
    prints = [f.fingerprint for f in findings]
    assert all(prints) and len(set(prints)) == len(prints)


def test_fingerprints_of_unreadable_imports_are_not_empty(tmp_path):
    (tmp_path / "空.txt").write_text("这不是年报", encoding="utf-8")
    (tmp_path / "乱.html").write_text("<html><body>无表格</body></html>", encoding="utf-8")
    reports = nianbao.import_published([tmp_path / "空.txt", tmp_path / "乱.html"])
    prints = [f.fingerprint for r in reports for f in r.findings]
    assert prints and all(prints) and len(set(prints)) == len(prints)


def test_api_reports_are_complete_and_tidy():
    fmt = current_format()
    reports = nianbao.check([SAMPLES / "returns"], roster=ROSTER, year=2025)
    assert len(reports) == 22
    assert all(set(r.values) == set(fmt.cells) for r in reports)
    df = nianbao.to_dataframe(reports)
    assert len(df) == 22 * len(fmt.cells)
    assert df.groupby("unit_code").size().eq(len(fmt.cells)).all()
    applications = df[df.cell_id == "t3.r1.tot"]["value"].sum()
    summary = nianbao.consolidate(reports, ROSTER, 2025)
    assert summary.report.values["t3.r1.tot"] == applications


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    d = tmp_path_factory.mktemp("pub")
    for p in (SAMPLES / "published").iterdir():
        shutil.copy(p, d / p.name)
    return d


def test_one_json_shape_for_all_commands(cli, tmp_path, published):
    runs = {
        "check": cli("check", SAMPLES / "faulty", "--json"),
        "consolidate": cli(
            "consolidate", SAMPLES / "returns", "--roster", ROSTER, "--year", "2025", "--out", tmp_path / "s.xlsx", "--json"
        ),
        "import": cli("import", published, "--out", tmp_path / "导入", "--json"),
    }
    shapes = {}
    for command, r in runs.items():
        data = json.loads(r.stdout)
        jsonschema.validate(data, SCHEMA)
        assert data["command"] == command and data["schema"] == "nianbao.result"
        kinds = {(f["severity"], f["kind"]) for x in data["files"] for f in x["findings"]}
        assert all(k in ("强制性", "核实性") for _, k in kinds), kinds
        assert data["files"], command
        shapes[command] = set(data["files"][0]) - {"values"}
    assert runs["check"].returncode == 1 and runs["consolidate"].returncode == 0
    checked = [f for x in json.loads(runs["check"].stdout)["files"] for f in x["findings"]]
    assert {f["kind"] for f in checked if f["code"] == "O1"} == {"强制性"}
    assert shapes["check"] == shapes["consolidate"] == shapes["import"]
    assert json.loads(runs["consolidate"].stdout)["summary"]["totals"]
