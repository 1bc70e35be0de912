"""Issue 9: `nianbao import` — published web text, HTML and PDF → data → the same checks."""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import openpyxl
import pytest
from conftest import ROOT, SAMPLES, SUMMARY_TABLES, run_cli
from published_text import flat_text, html_page

from toolkit.check import CheckOptions, check_paths, check_report
from toolkit.published.importer import cross_year, read_published
from toolkit.spec import formats

SEED = SAMPLES / "published" / "宝力根苏木2023年政府信息公开工作年度报告.txt"  # = shared/seeds/000_f97d988c963e3b8a.txt
SHARED_SEED = ROOT.parent / "shared" / "seeds" / "000_f97d988c963e3b8a.txt"
PUBLISHED = ROOT / "tests" / "published"


def imported(path: Path, **kw):
    return check_report(read_published(path, **kw), CheckOptions())


def codes(rep):
    return sorted(f.code for f in rep.findings)


def nonzero(rep, fmt):
    return {k: v for k, v in rep.values.items() if v and not fmt.cells[k].is_total}


def test_seed_imports_exactly(fmt, tmp_path):
    if SHARED_SEED.exists():
        assert SEED.read_bytes() == SHARED_SEED.read_bytes()
    rep = imported(SEED)
    assert (rep.unit_name, rep.year, rep.format_id, rep.unit_type) == ("宝力根苏木", 2023, "zfxxgk-2021", "苏木")
    assert nonzero(rep, fmt) == {"t2.license.n": 146, "t2.penalty.n": 2}
    published = [c for s in fmt.sheets if s.published for c in s.cells]
    assert all(rep.values[c.id] is not None for c in published if not c.is_total)
    assert all(rep.cached[c.id] == 0 for c in published if c.is_total)  # the printed totals were read too
    assert not [f for f in rep.findings if f.severity == "错误"]
    assert codes(rep) == ["section-title"]  # the seed titles section 五 “存在的问题改进情况”


def test_cli_import_writes_checkable_workbook(tmp_path, fmt):
    src = tmp_path / "宝力根苏木2023年报.txt"
    src.write_text(flat_text(fmt, {"t2.license.n": 146, "t2.penalty.n": 2}), encoding="utf-8")
    out = tmp_path / "导入"
    r = run_cli("import", src, "--out", out, "--json")
    assert r.returncode == 0, r.stderr
    (data,) = json.loads(r.stdout)["files"]
    assert data["values"]["t2.license.n"] == 146 and data["unit_name"] == "宝力根苏木"
    xlsx = next(out.glob("*.xlsx"))
    assert json.loads(next(out.glob("*.json")).read_text(encoding="utf-8"))["year"] == 2023
    (rep,) = check_paths([xlsx], CheckOptions(year=2023)).reports
    assert rep.values["t2.license.n"] == 146 and not [f for f in rep.findings if f.severity == "错误"]
    assert run_cli("check", xlsx).returncode == 0


def test_full_width_punctuation_typos_and_broken_labels(tmp_path, fmt):
    vals = {
        "t3.r1.np": 5,
        "t3.r3_1.np": 3,
        "t3.r3_3_2.np": 1,
        "t3.r4.np": 1,
        "t3.r1.tot": 5,
        "t3.r3_1.tot": 3,
        "t3.r3_3_2.tot": 1,
        "t3.r4.tot": 1,
        "t3.r3_7.np": 4,
        "t3.r3_7.tot": 4,
    }
    text = flat_text(fmt, vals)
    text = text.replace("（", "(").replace("）", ")").replace("：", ":")  # full-width became ASCII
    text = text.replace("2.其他法律行政法规禁止公开", "2.其他法律行政止公开")  # typo seen in 洪泽 2023
    text = text.replace("法律服务机构 |", "法律服务\n机构 |").replace("商业企业 |", "商业 企业 |")
    p = tmp_path / "a.txt"
    p.write_text(text, encoding="utf-8")
    rep = imported(p)
    assert {k: rep.values[k] for k in ("t3.r1.np", "t3.r3_3_2.np", "t3.r4.np")} == {
        "t3.r1.np": 5,
        "t3.r3_3_2.np": 1,
        "t3.r4.np": 1,
    }
    assert not [f for f in rep.findings if f.severity == "错误"]


def test_numbers_run_together_are_split_by_the_row_total(tmp_path, fmt):
    vals = {
        "t3.r1.np": 12,
        "t3.r1.biz": 3,
        "t3.r1.tot": 15,
        "t3.r3_1.np": 12,
        "t3.r3_1.biz": 3,
        "t3.r3_1.tot": 15,
        "t3.r3_7.np": 12,
        "t3.r3_7.biz": 3,
        "t3.r3_7.tot": 15,
    }
    text = flat_text(fmt, vals)
    first = "一、本年新收政府信息公开申请数量 |\n12 |\n3 |\n0 |\n0 |\n0 |\n0 |\n15 |\n"
    assert first in text
    text = text.replace(first, "一、本年新收政府信息公开申请数量 |\n123000015 |\n")
    p = tmp_path / "run.txt"
    p.write_text(text, encoding="utf-8")
    rep = imported(p)
    assert [rep.values[f"t3.r1.{c}"] for c in ("np", "biz", "res", "ngo", "law", "oth")] == [12, 3, 0, 0, 0, 0]
    assert not [f for f in rep.findings if f.severity == "错误"]


def test_blank_cells_stay_missing_not_zero(tmp_path, fmt):
    p = tmp_path / "blank.html"
    p.write_text(html_page(fmt, {"t2.penalty.n": None}), encoding="utf-8")  # an empty <td>
    rep = imported(p)
    assert rep.values["t2.penalty.n"] is None and rep.values["t2.license.n"] == 0
    assert [f.cell_id for f in rep.findings if f.code == "value-missing"] == ["t2.penalty.n"]
    # in the one-cell-per-line shape ('cell |' lines) a lone '|' line is an empty cell (as in
    # tests/published/45): missing and reported, never silently 0, and the next rows still read
    text = flat_text(fmt, {}).replace("行政处罚 |\n0 |", "行政处罚 |\n |", 1)
    p = tmp_path / "blank.txt"
    p.write_text(text, encoding="utf-8")
    rep = imported(p)
    assert rep.values["t2.penalty.n"] is None and rep.values["t2.coercion.n"] == 0
    assert [f.cell_id for f in rep.findings if f.code == "value-missing"] == ["t2.penalty.n"]


def test_html_page_with_rowspan_and_colspan(tmp_path, fmt):
    vals = {
        "t2.license.n": 356,
        "t2.fees.amt": 86.35,
        "t2.norm.made": 1,
        "t2.norm.valid": 4,
        "t3.r1.np": 9,
        "t3.r1.biz": 2,
        "t3.r1.tot": 11,
        "t3.r3_1.np": 9,
        "t3.r3_1.biz": 2,
        "t3.r3_1.tot": 11,
        "t3.r3_7.np": 9,
        "t3.r3_7.biz": 2,
        "t3.r3_7.tot": 11,
        "t4.r1.rv_main": 1,
        "t4.r1.rv_tot": 1,
    }
    p = tmp_path / "page.html"
    p.write_text(html_page(fmt, vals, unit="某县自然资源局", year=2024), encoding="utf-8")
    rep = imported(p)
    assert (rep.unit_name, rep.year, rep.unit_type) == ("某县自然资源局", 2024, "县级部门")
    for k, v in vals.items():
        got = rep.cached[k] if fmt.cells[k].is_total else rep.values[k]
        assert got == v, k
    assert not [f for f in rep.findings if f.severity != "提示"]


@pytest.mark.skipif(not shutil.which("soffice") or not shutil.which("pdftotext"), reason="需要 LibreOffice 和 pdftotext")
def test_pdf_via_pdftotext_layout(tmp_path):
    """A real PDF: our filled sample return rendered by LibreOffice, read back with pdftotext -layout."""
    import subprocess

    src = SAMPLES / "returns" / "152502306_锡林浩特市自然资源局_2025年政府信息公开年报.xlsx"
    subprocess.run(
        [
            "soffice",
            "--headless",
            f"-env:UserInstallation=file://{tmp_path}/prof",
            "--convert-to",
            "pdf",
            "--outdir",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        timeout=180,
        check=True,
    )
    pdf = next(tmp_path.glob("*.pdf"))
    rep = imported(pdf, unit="锡林浩特市自然资源局", year=2025, unit_type="县级部门")
    (orig,) = check_paths([src], CheckOptions()).reports
    fmt = formats()["zfxxgk-2021"]
    for c in fmt.inputs:
        if fmt.sheet(c.sheet_id).published:
            assert rep.values[c.id] == orig.values[c.id], c.id
    assert not [f for f in rep.findings if f.severity == "错误"]


def test_2019_trial_layout_is_read_and_flagged(tmp_path):
    old = formats()["zfxxgk-2019"]
    p = tmp_path / "trial.txt"
    p.write_text(flat_text(old, {"t2.license.n": 40, "t2.procurement.n": 2}, unit="某某镇", year=2022), encoding="utf-8")
    rep = imported(p)
    assert rep.format_id == "zfxxgk-2019" and rep.values["t2.license.n"] == 40
    assert "format-outdated" in codes(rep)


def test_hybrid_layout_is_flagged(tmp_path, fmt):
    text = flat_text(fmt, {})
    start = text.index("（六）其他处理 |")
    end = text.index("（七）总计 |")
    text = text[:start] + "（六）其他处理 |\n0 |\n0 |\n0 |\n0 |\n0 |\n0 |\n0 |\n||\n" + text[end:]
    p = tmp_path / "hybrid.txt"
    p.write_text(text, encoding="utf-8")
    rep = imported(p)
    assert "format-hybrid" in codes(rep)
    assert [f for f in rep.findings if f.code == "table-unreadable"]  # the missing sub-items are named


def test_narrative_disagrees_with_table(tmp_path, fmt):
    p = tmp_path / "n.txt"
    p.write_text(flat_text(fmt, {}, received=3), encoding="utf-8")
    rep = imported(p)
    f = next(f for f in rep.findings if f.code == "narrative-mismatch")
    assert f.severity == "警告" and f.found == 3 and f.expected == 0 and "收到和处理政府信息公开申请3件" in f.message


def test_cross_year_carry_over(tmp_path, fmt):
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
    a, b = tmp_path / "2022.txt", tmp_path / "2023.txt"
    a.write_text(flat_text(fmt, y1, unit="某某镇", year=2022), encoding="utf-8")
    b.write_text(flat_text(fmt, y2, unit="某某镇", year=2023), encoding="utf-8")
    found = cross_year([imported(a), imported(b)])
    assert [(f.code, f.cell_id, f.found, f.expected) for f in found] == [("carryover-mismatch", "t3.r2.np", 1, 2)]
    r = run_cli("import", a, b)
    assert r.returncode == 1 and "上年结转" in r.stderr


def test_unparseable_and_partial(tmp_path, fmt):
    p = tmp_path / "prose.txt"
    p.write_text("某某镇2023年政府信息公开工作年度报告\n本年度工作扎实推进。\n", encoding="utf-8")
    r = run_cli("import", p, "--json")
    assert r.returncode == 1 and "没有找到任何官方表格" in r.stdout and "Traceback" not in r.stderr
    text = flat_text(fmt, {"t2.license.n": 7})
    p = tmp_path / "partial.txt"
    p.write_text(text[: text.index("三、收到和处理政府信息公开申请情况")], encoding="utf-8")
    rep = imported(p)
    assert rep.values["t2.license.n"] == 7 and rep.values["t3.r1.np"] is None  # missing, not zero
    bad = [f for f in rep.findings if f.code == "table-unreadable"]
    assert bad and bad[0].sheet == "表三" and "本年新收" in bad[0].message
    r = run_cli("import", tmp_path / "nope.txt")
    assert r.returncode == 2


# ---------------------------------------------------------------- the corpus of real published reports

CORPUS = sorted(PUBLISHED.glob("*.toml")) if PUBLISHED.exists() else []


@pytest.mark.parametrize("spec", CORPUS, ids=[p.stem for p in CORPUS])
def test_real_published_report(spec):
    exp = tomllib.loads(spec.read_text(encoding="utf-8"))
    src = spec.with_suffix(".source.txt")
    if not src.exists():
        src = next(spec.parent.glob(spec.stem + ".source.*"))
    rep = imported(src, unit=exp.get("unit"), year=exp.get("year"), unit_type=exp.get("level"))
    fmt = formats()[rep.format_id]
    missed = []
    for cid, v in exp.get("values", {}).items():
        if cid not in fmt.cells:
            continue
        got = rep.cached.get(cid) if fmt.cells[cid].is_total else rep.values.get(cid)
        if got != v:
            missed.append((cid, v, got))
    assert not missed, missed
    # cells the text shows only in part (a number cut by the end of the page): unknown, never a guess
    guessed = [(cid, rep.values.get(cid)) for cid in exp.get("unknown", []) if cid not in rep.unknown]
    assert not guessed, guessed
    want = {(d["rule"], d.get("cell_id", "")) for d in exp.get("defects", [])}
    got_codes = {f.code for f in rep.findings}
    for rule, cid in want:
        assert rule in got_codes, (rule, cid)
    # no false 错误: besides the planted/known defects, only rows missing from the (often cut) text
    visible = set(exp.get("values", {}))
    false_errors = [
        f.message
        for f in rep.findings
        if f.severity == "错误"
        and f.code not in {r for r, _ in want}
        and not (f.code == "table-unreadable" and ("截断" in f.message or not (_row_cells(fmt, f) & visible)))
    ]
    assert not false_errors, false_errors
    SUMMARY_TABLES.append((f"published {spec.stem}", [f"{len(exp.get('values', {}))} cells, defects {sorted(want)}"]))


def _row_cells(fmt, finding) -> set[str]:
    """Cell ids of the table row a table-unreadable finding names."""
    sheet = next((sh for sh in fmt.sheets if sh.name == finding.sheet), None)
    if sheet is None:
        return set()
    row = next((c.row for c in sheet.cells if c.a1 == finding.cell), None)
    return {c.id for c in sheet.cells if c.row == row}


def test_corpus_is_documented():
    if not CORPUS:
        pytest.skip("tests/published 尚无语料")
    assert (PUBLISHED / "README.md").exists()
    for spec in CORPUS:
        exp = tomllib.loads(spec.read_text(encoding="utf-8"))
        assert exp.get("origin") and exp.get("unit") and exp.get("year")


def test_import_then_annotate_and_consolidate(tmp_path, fmt):
    src = tmp_path / "x.txt"
    src.write_text(flat_text(fmt, {"t2.reg.valid": 6}, unit="某某镇", year=2023), encoding="utf-8")
    out = tmp_path / "o"
    r = run_cli("import", src, "--out", out)
    assert r.returncode == 0  # I10 is a 警告
    xlsx = next(out.glob("*.xlsx"))
    ann = tmp_path / "ann"
    run_cli("check", xlsx, "--annotate", ann)
    copy = next(ann.glob("*.xlsx"))
    assert openpyxl.load_workbook(copy)["表二"][fmt.cells["t2.reg.valid"].a1].comment is not None


def test_html_without_charset_and_blank_first_cell_of_table4(tmp_path, fmt):
    page = html_page(fmt, {"t4.r1.rv_main": None, "t4.r1.rv_corr": 2, "t4.r1.rv_tot": 2}).replace("<meta charset='utf-8'>", "")
    p = tmp_path / "nocharset.html"
    p.write_bytes(page.encode("utf-8"))
    rep = imported(p)
    assert rep.unit_name == "宝力根苏木" and rep.values["t4.r1.rv_main"] is None and rep.values["t4.r1.rv_corr"] == 2
    p.write_bytes(page.encode("gb18030"))
    assert imported(p).values["t4.r1.rv_corr"] == 2


def test_review_sentences_are_not_applications(tmp_path, fmt):
    text = flat_text(
        fmt, {"t3.r1.np": 3, "t3.r3_1.np": 3, "t3.r1.tot": 3, "t3.r3_1.tot": 3, "t3.r3_7.np": 3, "t3.r3_7.tot": 3}, received=3
    )
    text = text.replace("（二）依申请公开情况\n", "（二）依申请公开情况\n本年度收到行政复议申请1件，已办结。\n")
    p = tmp_path / "r.txt"
    p.write_text(text, encoding="utf-8")
    assert "narrative-mismatch" not in codes(imported(p))


@pytest.mark.parametrize(
    "name,level",
    [
        ("某某镇人民政府", "乡镇"),
        ("某某街道办事处", "街道"),
        ("某县人民政府", "县级政府"),
        ("某县自然资源局", "县级部门"),
        ("某市生态环境局", "市级部门"),
        ("呼和浩特市人民政府", "其他"),
        ("上海市人民政府", "其他"),
        ("国家统计局", "国务院部门"),
        ("某省教育厅", "其他"),
    ],
)
def test_level_is_guessed_only_when_certain(name, level):
    from toolkit.published.importer import level_of

    assert level_of(name) == level


def test_ambiguous_run_is_settled_by_the_column_sums(tmp_path, fmt):
    """'001100011' splits as (0,0,11,0,0,0,11) or (0,0,1,10,0,0,11): both keep the row total;
    only the first keeps （七）总计 and O1 right in every column."""
    vals = {"t3.r1.res": 11, "t3.r1.tot": 11, "t3.r3_1.res": 11, "t3.r3_1.tot": 11, "t3.r3_7.res": 11, "t3.r3_7.tot": 11}
    text = flat_text(fmt, vals)
    row = "（一）予以公开 |\n0 |\n0 |\n11 |\n0 |\n0 |\n0 |\n11 |\n"
    assert row in text
    text = text.replace(row, "（一）予以公开 |\n001100011 |\n")
    p = tmp_path / "amb.txt"
    p.write_text(text, encoding="utf-8")
    from toolkit.published.tokens import Tok
    from toolkit.published.walk import split_row

    row_cells = [c for c in fmt.sheet("t3").cells if c.row_id == "r3_1"]
    assert len(split_row(row_cells, [Tok("001100011", 1)], fmt)) > 1  # ambiguous by the row alone
    rep = imported(p)
    assert [rep.values[f"t3.r3_1.{c}"] for c in ("np", "biz", "res", "ngo", "law", "oth")] == [0, 0, 11, 0, 0, 0]
    assert not [f for f in rep.findings if f.severity == "错误"]
