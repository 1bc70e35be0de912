"""Issue 26, the reading side: numbers a workbook cannot hold, parts and cells a return does not need,
DTDs outside the worksheets, and thousands of duplicates — each a Chinese finding, on the fast and the
careful path alike (``test_read_paths`` compares the two on this corpus), in memory linear in the batch."""

from __future__ import annotations

import json
import re
import shutil
import zipfile

import corpus_beyond_limits as beyond
import corpus_disguised_files as disguised
import pytest
from conftest import SAMPLES, SUMMARY_TABLES

from toolkit import inputs
from toolkit.annotate import write_annotated
from toolkit.jsonout import dumps
from toolkit.reader import read_bytes
from toolkit.xlsx import MAX_CELL_ELEMENTS, MAX_FILLED, Filled, ProbeProblem, tool_sheets

ROSTER = SAMPLES / "roster.csv"
GOOD = sorted((SAMPLES / "returns").glob("*.xlsx"))


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corpus_beyond_limits")
    return d, beyond.build(d)


def test_every_kind_gets_its_chinese_finding(corpus, cli):
    d, kinds = corpus
    r = cli("check", d, "--roster", ROSTER, "--year", "2025", "--json")
    assert r.returncode == 1 and "Traceback" not in r.stderr and "内部错误" not in r.stderr, r.stderr[-2000:]
    files = {f["file"].split("/", 1)[1]: f for f in json.loads(r.stdout, parse_constant=_no_constant)["files"]}
    table, failures = [], []
    for k in kinds:
        got = [f for f in files[k.file]["findings"] if f["code"] in k.codes]
        table.append(f"{k.name:<40} {','.join(sorted({f['code'] for f in got})) or '—'}")
        if not got or not all(f["severity"] == "错误" and re.search(r"[\u4e00-\u9fff]", f["message"]) for f in got):
            failures.append(f"{k.name}: expected {sorted(k.codes)}, got {[f['code'] for f in files[k.file]['findings']]}")
    SUMMARY_TABLES.append((f"hostile corpus 3: {len(kinds)} kinds", table))
    assert not failures, "\n".join(failures)
    json.loads(r.stdout, parse_constant=_no_constant)  # no NaN or Infinity, which JSON does not have


def _no_constant(name: str):
    raise AssertionError(f"{name} in the JSON output")


@pytest.mark.parametrize("name", sorted(beyond.NOT_FINITE))
def test_a_number_that_is_not_finite_is_unreadable_never_summed(name):
    rep = read_bytes(beyond.with_value(beyond.NOT_FINITE[name]), "x.xlsx")
    found = [f for f in rep.findings if f.code == "value-not-finite"]
    assert len(found) == 1 and found[0].cell == beyond._input("t2.license.n") and found[0].severity == "错误"
    assert len(found[0].message) < 200  # 100,000 digits are quoted by their start and length
    typed = beyond.NOT_FINITE[name].decode()
    quoted = typed if len(typed) < 40 else f"{typed[:40]}…（共{len(typed):,}个字符）".replace(",", "")
    assert f"“{quoted}”" in found[0].message, found[0].message  # what the clerk typed, not INF
    assert rep.values["t2.license.n"] is None
    assert all(v is None or abs(v) < 1e12 for v in rep.values.values())


def test_the_annotated_copy_writes_such_a_cell_as_text(tmp_path):
    rep = read_bytes(beyond.with_value(b"1e309"), "x.xlsx")
    out = write_annotated(rep, tmp_path / "x_审核意见.xlsx")
    assert out is not None
    import openpyxl

    cell = openpyxl.load_workbook(out)["表二"][beyond._input("t2.license.n")]
    assert cell.value == "1e309" and cell.data_type == "s"  # as typed


@pytest.mark.parametrize("value", ["1e309", "-1E+400", "NaN"])
def test_an_ods_value_that_is_not_finite_is_quoted_as_typed(value):
    rep = read_bytes(beyond.ods_not_finite(value), "x.ods")
    found = [f for f in rep.findings if f.code == "value-not-finite"]
    assert len(found) == 1 and f"“{value}”" in found[0].message, [f.message for f in rep.findings]
    assert rep.raw["t2.license.n"] == value


def test_check_annotate_of_a_batch_with_inf_cells_writes_every_copy(tmp_path, cli):
    d = tmp_path / "收件"
    d.mkdir()
    for i, text in enumerate((b"1e309", b"NaN", b"-inf")):
        (d / f"inf{i}.xlsx").write_bytes(beyond.with_value(text))
    (d / "ods.ods").write_bytes(beyond.ods_not_finite())
    for p in sorted((SAMPLES / "faulty").glob("*.xlsx"))[:2]:
        shutil.copy(p, d / p.name)
    out = tmp_path / "退回"
    r = cli("check", d, "--roster", ROSTER, "--year", "2025", "--annotate", out)
    assert r.returncode == 1 and "内部错误" not in r.stderr + r.stdout, r.stderr[-2000:]
    written = sorted(p.name for p in out.iterdir())
    assert len(written) == 6 and {"inf0_审核意见.xlsx", "ods_审核意见.xlsx"} <= set(written), written


def test_json_never_holds_nan_or_infinity():
    text = dumps({"a": float("nan"), "b": [float("inf"), 1.5], "c": {"d": -float("inf")}})
    assert json.loads(text) == {"a": "nan", "b": ["inf", 1.5], "c": {"d": "-inf"}}


def test_published_text_with_a_100000_digit_number(tmp_path, cli):
    src = next((SAMPLES / "published").glob("*.txt")).read_text(encoding="utf-8")
    m = re.search(r"(?m)^(.*\|\s*)(\d+)(\s*\|)", src)
    assert m
    (tmp_path / "r.txt").write_text(src[: m.start(2)] + "9" * 100_000 + src[m.end(2) :], encoding="utf-8")
    r = cli("import", tmp_path / "r.txt", "--json")
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr
    assert "inf件" not in r.stdout
    json.loads(r.stdout, parse_constant=_no_constant)


# ---------------------------------------------------------------- reader bounds


def test_filled_cells_are_counted_outside_the_tools_own_sheets():
    assert tool_sheets({}) == frozenset() == tool_sheets({"nianbao_level": "填报单位"})  # an ordinary return: every sheet
    assert "明细" in tool_sheets({"nianbao_level": "县级汇总"})
    count = Filled(tool_sheets())
    count.add("明细", 50 * MAX_FILLED)  # a summary's 明细 of many units
    count.add("表四", MAX_FILLED)
    with pytest.raises(ProbeProblem) as e:
        count.add("表二", 1)
    assert e.value.code == "cells-outside-tables" and "表二" in e.value.detail


def test_cell_elements_are_counted_filled_or_not():
    """Issue 26 review 4: the work bound counts every cell element, styled empty ones too."""
    count = Filled(tool_sheets({"nianbao_level": "县级汇总"}))
    count.touch("明细", 50 * MAX_CELL_ELEMENTS)
    count.touch("表四", MAX_CELL_ELEMENTS)
    with pytest.raises(ProbeProblem) as e:
        count.touch("表二", 1)
    assert e.value.code == "cells-outside-tables" and "表二" in e.value.detail and "空单元格" in e.value.detail


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(lambda: beyond.styled_empty(10_000), id="fast"),
        pytest.param(lambda: beyond.styled_empty(200_000, r=False), id="stream-0.6MB"),
        pytest.param(
            lambda: beyond.ods_return({("表四", 1, 1): '<table:table-cell table:style-name="ce1"/>' * 120_000}), id="ods"
        ),
    ],
)
def test_styled_empty_cells_by_the_hundred_thousand_are_a_finding(body):
    """200,000 styled empty rows × 12 columns (0.6 MB zipped) took 3.7 s to read and said nothing:
    now the reading stops at the bound with an 错误 that says what to delete."""
    rep = read_bytes(body(), "x.xlsx")
    found = [f for f in rep.findings if f.code == "cells-outside-tables"]
    assert len(found) == 1 and found[0].severity == "错误" and "空单元格" in found[0].message, rep.findings


def test_a_formatted_area_below_the_tables_is_allowed():
    """Someone who put borders on A60:L4000 (47,000 styled empty cells) is well under the bound."""
    rep = read_bytes(beyond.styled_empty(3_940), "x.xlsx")
    assert not [f for f in rep.findings if f.code == "cells-outside-tables"]
    assert rep.readable and rep.values["t2.license.n"] is not None


def test_a_return_and_a_summary_are_far_from_the_bounds(tmp_path, cli):
    """The bounds leave real files alone: the samples and a summary of them read without a word."""
    for p in GOOD[:3]:
        assert read_bytes(p.read_bytes(), p.name).findings == []
    out = tmp_path / "汇总.xlsx"
    assert cli("consolidate", SAMPLES / "returns", "--roster", ROSTER, "--year", "2025", "--out", out).returncode == 0
    codes = {f.code for f in read_bytes(out.read_bytes(), out.name).findings}
    assert not codes & {"cells-outside-tables", "unexpected-large-part", "file-malicious"}, codes


def test_a_summarys_detail_of_many_units_is_not_counted(tmp_path, cli, fmt, monkeypatch):
    """A summary's 明细 holds a row per unit (14,000 in a province): it claims to be a summary, so the
    sheets this tool writes into one are not counted; the same cells in an ordinary return are.
    (Shown with the limit lowered to 1,000, so that 30 units are enough.)"""
    import random

    from test_consolidate import county, write_returns, write_roster

    from toolkit.xlsx import guard as probe

    units = county("152599", "测试县", 30)
    roster = write_roster(tmp_path / "roster.csv", units)
    write_returns(fmt, tmp_path / "returns", units, random.Random(26))
    out = tmp_path / "汇总.xlsx"
    assert cli("consolidate", tmp_path / "returns", "--roster", roster, "--year", "2025", "--out", out).returncode == 0
    monkeypatch.setattr(probe, "MAX_FILLED", 1_000)
    rep = read_bytes(out.read_bytes(), out.name)
    assert rep.readable and rep.level != "填报单位"
    assert not {f.code for f in rep.findings} & {"cells-outside-tables", "unexpected-large-part"}
    plain = disguised.parts_of(out.read_bytes())
    plain["docProps/custom.xml"] = re.sub(
        rb'(name="nianbao_level"><vt:lpwstr>)[^<]*', lambda m: m.group(1) + "填报单位".encode(), plain["docProps/custom.xml"]
    )
    assert "cells-outside-tables" in {f.code for f in read_bytes(disguised.pack(plain), "x.xlsx").findings}


def test_a_small_picture_passes_a_large_one_is_named_with_its_size():
    assert read_bytes(beyond.large_part(size=200_000), "x.xlsx").findings == []
    f = [f for f in read_bytes(beyond.large_part(), "x.xlsx").findings if f.code == "unexpected-large-part"]
    assert len(f) == 1 and "xl/media/image1.png（18.6MB）" in f[0].message and "theme" not in f[0].message


# ---------------------------------------------------------------- duplicates and nested archives


def test_a_duplicates_message_names_a_few_and_the_count(tmp_path, cli):
    d = tmp_path / "收件"
    d.mkdir()
    for i in range(40):
        shutil.copy(disguised.GOOD, d / f"{i:02d}.xlsx")
    r = cli("check", d, "--json")
    files = json.loads(r.stdout)["files"]
    dups = [f for x in files for f in x["findings"] if f["code"] == "unit-duplicate-in-batch"]
    assert len(dups) == 40
    for f in dups:
        named = re.findall(r"收件/\d\d\.xlsx", f["message"])
        assert len(named) == 3 and f["file"] not in named and "在本批中有40份文件" in f["message"] and "等39份" in f["message"]
    out = tmp_path / "汇总.xlsx"
    r = cli("consolidate", d, "--roster", ROSTER, "--year", "2025", "--out", out, "--force", "--json")
    dup = [f for f in json.loads(r.stdout)["findings"] if f["code"] == "duplicate-return"]
    assert len(dup) == 1 and "等39份" in dup[0]["message"] and len(re.findall(r"收件/\d\d\.xlsx", dup[0]["message"])) == 4


def _listed(path):
    return list(inputs.collect([path]))


def test_nested_archives_count_toward_the_member_limit_of_a_flat_one(tmp_path):
    good = disguised.GOOD.read_bytes()
    limit = inputs.MAX_ARCHIVE_MEMBERS
    per = (limit - 40) // 40  # 40 nested zips and their members: exactly the limit
    (tmp_path / "at_limit.zip").write_bytes(beyond.nested_copies(40, per, good))
    (tmp_path / "over.zip").write_bytes(beyond.nested_copies(40, per + 1, good))
    (tmp_path / "flat_over.zip").write_bytes(disguised.pack([(f"{i}.xlsx", b"x") for i in range(limit + 1)], zipfile.ZIP_STORED))
    assert len(_listed(tmp_path / "at_limit.zip")) == 40 * per
    for name in ("over.zip", "flat_over.zip"):
        (only,) = _listed(tmp_path / name)
        assert only.problem is not None and only.problem.code == "file-too-large" and str(limit) in only.problem.detail


def test_check_json_written_file_by_file_is_the_same_text():
    import io

    from toolkit.check import CheckOptions, check_paths
    from toolkit.jsonout import result_json, write_result

    res = check_paths([SAMPLES / "faulty"], CheckOptions(year=2025))
    for reports in (res.reports, res.reports[:1], []):
        out = io.StringIO()
        write_result("check", reports, stream=out, year=2025, batch=res.batch)
        assert out.getvalue() == dumps(result_json("check", reports, year=2025, batch=res.batch)) + "\n"


@pytest.mark.parametrize("code", ["value-not-finite", "unexpected-large-part", "cells-outside-tables"])
def test_the_new_codes_are_explained(code, cli):
    r = cli("explain", code)
    assert r.returncode == 0 and code in r.stdout and "错误" in r.stdout, r.stdout + r.stderr


# ---------------------------------------------------------------- the archive: the file is the truth


def test_verify_is_not_fooled_by_a_recomputed_digest(tmp_path, cli):
    """Issue 26 review 2: a stored figure changed with SQL and the receipt's digest recomputed with
    ``store.row_digest`` (a plain sha256 anyone can compute): export shows the change, and verify still
    names the unit, the year and the cell, because it reads the stored original again."""
    from sqlalchemy import select, text

    from toolkit.archive import schema as T
    from toolkit.archive.db import make_engine, resolve_url
    from toolkit.archive.store import DIGESTED, row_digest
    from toolkit.spec import current_format

    db = str(tmp_path / "archive.db")
    assert cli("roster", "load", ROSTER, "--year", "2025", "--db", db).returncode == 0
    assert cli("receive", SAMPLES / "returns", "--year", "2025", "--db", db).returncode in (0, 1)
    assert cli("verify", "--db", db).returncode == 0
    cell = current_format().cells["t3.r1.np"]
    engine = make_engine(resolve_url(db))
    try:
        with engine.begin() as conn:
            S = T.submissions
            row = conn.execute(select(S).where(S.c.unit_code == "152502001")).mappings().first()
            report = json.loads(row["report"]) if isinstance(row["report"], str) else dict(row["report"])
            was = report["values"].get("t3.r1.np", 0)
            report["values"]["t3.r1.np"] = was + 20
            forged = dict(row) | {"report": report}
            for k in ("warning_fps", "findings"):
                forged[k] = json.loads(row[k]) if isinstance(row[k], str) else row[k]
            digest = row_digest({k: forged[k] for k in DIGESTED})
            conn.execute(
                text("UPDATE submissions SET report = :report, digest = :digest WHERE id = :id"),
                {"report": json.dumps(report, ensure_ascii=False), "digest": digest, "id": row["id"]},
            )
    finally:
        engine.dispose()
    r = cli("verify", "--db", db)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.startswith("不一致")]
    assert len(lines) == 1, r.stderr
    assert "（152502001）2025年度" in lines[0] and f"{cell.where}存档为 {was + 20}，原文件为 {was}" in lines[0], lines[0]
