"""Issue 4: `nianbao check` on the bundled samples, the annotated copy, JSON, batches of bad files."""

from __future__ import annotations

import json
import shutil
import tomllib
import zipfile
from pathlib import Path

import jsonschema
import openpyxl
import pytest
from conftest import ROOT, SAMPLES, sha256

from toolkit.check import CheckOptions, check_paths
from toolkit.jsonout import SCHEMA
from toolkit.roster import load_roster
from toolkit.spec import current_format, tagged

REPAIRED_BY_REBUILD = tagged("repaired-by-rebuild")

ROSTER = SAMPLES / "roster.csv"


def _sample_source():
    return tomllib.loads((SAMPLES / "returns.toml").read_text(encoding="utf-8"))


def test_samples_are_up_to_date_with_their_source(tmp_path, fmt):
    """The committed workbooks hold exactly the values of samples/returns.toml."""
    src = _sample_source()
    result = check_paths([SAMPLES / "returns"], CheckOptions())
    by_code = {r.unit_code: r for r in result.reports}
    assert set(by_code) == {e["code"] for e in src["returns"]} == {u.code for u in load_roster(ROSTER).units}
    for e in src["returns"]:
        rep = by_code[e["code"]]
        for c in fmt.inputs:
            assert rep.values[c.id] == e["values"].get(c.id, 0), (e["code"], c.id)
        assert rep.cover["filler"] == e["cover"]["filler"]


def test_check_sample_returns_is_clean(cli):
    r = cli("check", SAMPLES / "returns", "--roster", ROSTER, "--year", "2025")
    assert r.returncode == 0, r.stderr
    assert "共 22 个文件：错误 0 个，警告 0 个，提示 0 个。" in r.stderr.replace("\n", "")


def test_check_faulty_reports_exactly_the_planted_mistakes(cli, fmt):
    r = cli("check", SAMPLES / "faulty", "--roster", ROSTER, "--year", "2025", "--json")
    assert r.returncode == 1
    report = json.loads(r.stdout)
    got = sorted((f["unit_code"], f["code"], f["cell_id"] or f["sheet"]) for x in report["files"] for f in x["findings"])
    expected = sorted(
        (e["code"], x["code"], x.get("cell_id") or x.get("sheet")) for e in _sample_source()["faulty"] for x in e["expect"]
    )
    assert got == expected
    cells = {f["cell_id"]: f["cell"] for x in report["files"] for f in x["findings"] if f["cell_id"]}
    for cid, addr in cells.items():
        assert fmt.cells[cid].a1 == addr


def test_json_schema(cli):
    r = cli("check", SAMPLES / "faulty" / "152502003_杭盖街道_2025年政府信息公开年报_有误.xlsx", "--json")
    data = json.loads(r.stdout)
    jsonschema.validate(data, SCHEMA)
    assert (data["schema"], data["schema_version"], data["command"]) == ("nianbao.result", 1, "check")
    f = data["files"][0]
    assert {"file", "path", "sha256", "readable", "format_id", "unit_code", "unit_name", "counts", "findings"} <= set(f)
    assert len(f["values"]) == len(current_format().cells) and f["values"]["t3.r1.np"] == 3
    finding = f["findings"][0]
    for key in (
        "code",
        "severity",
        "title",
        "message",
        "instruction",
        "file",
        "unit_code",
        "unit_name",
        "sheet",
        "cell",
        "cell_id",
        "row_label",
        "col_label",
        "expected",
        "found",
        "delta",
        "fingerprint",
    ):
        assert key in finding
    # pinned to （七）总计: what that cell shows and what it would have to be
    assert finding["code"] == "O1" and finding["delta"] == -1 and finding["col_label"].endswith("自然人")
    assert data["ok"] is False and data["counts"]["错误"] == 1


def test_annotated_copy(cli, tmp_path, fmt):
    faulty = tmp_path / "faulty"
    shutil.copytree(SAMPLES / "faulty", faulty)
    before = {p.name: sha256(p) for p in faulty.iterdir()}
    out = tmp_path / "退回"
    r = cli("check", faulty, "--roster", ROSTER, "--year", "2025", "--annotate", out)
    assert r.returncode == 1
    assert {p.name: sha256(p) for p in faulty.iterdir()} == before  # inputs untouched
    copies = sorted(out.iterdir())
    assert len(copies) == 6
    hg = out / "152502003_杭盖街道_2025年政府信息公开年报_有误_审核意见.xlsx"
    wb = openpyxl.load_workbook(hg)
    ws = wb["表三"]
    cell = ws[fmt.cells["t3.r3_7.np"].a1]
    assert cell.fill.fgColor.rgb.endswith("FF9999")
    assert "第一项＋第二项 = 3" in cell.comment.text
    assert ws.protection.sheet and wb.security.lockStructure
    assert ws["D7"].protection.locked is False and ws["D7"].value == 3  # still fillable, clerk's values kept
    assert "问题清单" in wb.sheetnames
    heads = [c.value for c in wb["问题清单"][1]]
    assert wb["问题清单"].cell(2, heads.index("代码") + 1).value == "O1"

    original = check_paths([faulty], CheckOptions(year=2025, roster=load_roster(ROSTER)))
    again = check_paths([out], CheckOptions(year=2025, roster=load_roster(ROSTER)))

    def fp(res):
        return sorted(
            (r.unit_code, f.code, f.fingerprint) for r in res.reports for f in r.findings if f.code not in REPAIRED_BY_REBUILD
        )

    assert fp(again) == fp(original) and fp(original)


def test_batch_with_bad_files_goes_on(cli, tmp_path):
    good = SAMPLES / "returns" / "152502201_宝力根苏木_2025年政府信息公开年报.xlsx"
    shutil.copy(good, tmp_path / "a_good.xlsx")
    (tmp_path / "b_empty.xlsx").write_bytes(b"")
    (tmp_path / "c_old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1000)
    data = good.read_bytes()
    (tmp_path / "d_corrupt.xlsx").write_bytes(data[:3000])
    with zipfile.ZipFile(tmp_path / "e_word.xlsx", "w") as z:
        z.writestr("word/document.xml", "<w:document/>")
    before = {p.name: sha256(p) for p in tmp_path.iterdir()}
    r = cli("check", tmp_path, "--json")
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    files = {Path(f["file"]).name: [x["code"] for x in f["findings"]] for f in json.loads(r.stdout)["files"]}
    assert files == {
        "a_good.xlsx": [],
        "b_empty.xlsx": ["file-empty"],
        "c_old.xls": ["file-xls"],
        "d_corrupt.xlsx": ["file-unreadable"],
        "e_word.xlsx": ["file-not-workbook"],
    }
    assert {p.name: sha256(p) for p in tmp_path.iterdir()} == before


def test_zip_archive_with_gbk_names(cli, tmp_path):
    archive = tmp_path / "回收.zip"
    swaps = []
    with zipfile.ZipFile(archive, "w") as z:
        for i, p in enumerate(sorted((SAMPLES / "returns").iterdir())[:3]):
            raw = p.name.encode("gbk")  # as Chinese Windows writes it: GBK bytes, no UTF-8 flag
            placeholder = (f"{i}" * len(raw)).encode()
            z.writestr(placeholder.decode(), p.read_bytes())
            swaps.append((placeholder, raw))
    data = archive.read_bytes()
    for placeholder, raw in swaps:
        data = data.replace(placeholder, raw)
    archive.write_bytes(data)
    r = cli("check", archive, "--json")
    assert r.returncode == 0, r.stderr
    names = [f["file"] for f in json.loads(r.stdout)["files"]]
    assert names[0] == "回收.zip/152502001_希日塔拉街道_2025年政府信息公开年报.xlsx"


def test_nothing_to_check(cli, tmp_path):
    r = cli("check", tmp_path)
    assert r.returncode == 2 and "没有找到任何填报表" in r.stderr
    r = cli("check", tmp_path / "nope")
    assert r.returncode == 2 and "找不到文件或文件夹" in r.stderr


def test_explain(cli):
    r = cli("explain", "O1")
    assert r.returncode == 0 and "勾稽关系" in r.stdout and "处理办法" in r.stdout
    r = cli("explain", "formula-overwritten")
    assert r.returncode == 0 and "总计公式被改写为数字" in r.stdout
    assert cli("explain", "ZZZ").returncode == 2


def test_rule_catalogue_in_sync():
    """docs/rules.md's table is the catalogue, and README links to it."""
    from toolkit.catalogue import END, START, markdown

    text = (ROOT / "docs" / "rules.md").read_text(encoding="utf-8")
    section = text.split(START, 1)[1].split(END, 1)[0].strip()
    assert section == markdown(), "docs/rules.md 的规则目录已过期：运行 python -m toolkit.catalogue docs/rules.md"
    assert "(docs/rules.md)" in (ROOT / "README.md").read_text(encoding="utf-8")


@pytest.mark.parametrize("sample", ["seed-2023"])
def test_seed_reproduces_published_values(sample, fmt):
    res = check_paths([SAMPLES / sample], CheckOptions(year=2023, roster=load_roster(ROSTER)))
    (rep,) = res.reports
    assert rep.unit_name == "宝力根苏木" and rep.year == 2023 and rep.findings == []
    nonzero = {k: v for k, v in rep.values.items() if v and not fmt.cells[k].is_total}
    assert nonzero == {"t2.license.n": 146, "t2.penalty.n": 2}


# ---------------------------------------------------------------- issue 27.12: the small items


def _libreoffice_saved(path: Path) -> Path:
    """``path`` as LibreOffice saves it: no workbook structure protection, its name in docProps."""
    import io
    import re

    src = zipfile.ZipFile(io.BytesIO(path.read_bytes()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            b = src.read(item.filename)
            if item.filename == "xl/workbook.xml":
                b = re.sub(rb"<workbookProtection[^>]*/>", b"", b)
            if item.filename == "docProps/app.xml":
                b = re.sub(
                    rb"<Application>[^<]*</Application>", b"<Application>LibreOffice/7.4.7.2$Linux_X86_64</Application>", b
                )
            if item.filename == "docProps/custom.xml":  # LibreOffice writes integer properties as r8
                b = re.sub(rb"<vt:i4>(\d+)</vt:i4>", rb"<vt:r8>\1.0</vt:r8>", b)
            dst.writestr(item, b)
    path.write_bytes(out.getvalue())
    return path


def _fee_in_yuan(folder: Path) -> Path:
    """希日塔拉街道's return with 35000 (元) in the 万元 cell, saved by LibreOffice."""
    from archive_util import write_return

    folder.mkdir(exist_ok=True)
    return _libreoffice_saved(write_return(folder / "152502001_希日塔拉街道.xlsx", "152502001", 2025, {"t2.fees.amt": 35000}))


def test_libreoffice_note_is_kept_for_the_county_only(cli, tmp_path):
    """The 提示 "该文件由 LibreOffice 7.4 保存…无需处理" stays in the JSON, but neither the annotated copy's
    nor the summary's 问题清单 lists it (the catalogue's ``county-only`` tag)."""
    ret = _fee_in_yuan(tmp_path / "in")
    r = cli("check", ret, "--year", "2025", "--json", "--annotate", tmp_path / "退回")
    codes = [f["code"] for f in json.loads(r.stdout)["files"][0]["findings"]]
    assert sorted(codes) == ["I5-wan-town", "structure-unprotected-lo"]
    (copy,) = (tmp_path / "退回").iterdir()
    listed = [row[0] for row in openpyxl.load_workbook(copy)["问题清单"].iter_rows(min_row=2, values_only=True)]
    assert len(listed) == 1 and "LibreOffice" not in str(listed)
    heads = [c.value for c in openpyxl.load_workbook(copy)["问题清单"][1]]
    assert openpyxl.load_workbook(copy)["问题清单"].cell(2, heads.index("代码") + 1).value == "I5-wan-town"

    for f in (SAMPLES / "returns").glob("*.xlsx"):
        if not f.name.startswith("152502001"):
            shutil.copy(f, tmp_path / "in" / f.name)
    r = cli("consolidate", tmp_path / "in", "-r", ROSTER, "--year", "2025", "--out", tmp_path / "汇总.xlsx")
    assert r.returncode == 0, r.stderr
    sheet = openpyxl.load_workbook(tmp_path / "汇总.xlsx")["问题清单"]
    text = " ".join(str(c.value) for row in sheet.iter_rows() for c in row)
    assert "I5-wan-town" in text and "LibreOffice" not in text and "structure-unprotected-lo" not in text


def test_fee_in_yuan_shows_the_likely_value_in_wan(cli, tmp_path):
    """35000 entered in the 万元 cell: 应为 is 3.5 (what the clerk meant), not the bound 1000."""
    r = cli("check", _fee_in_yuan(tmp_path / "in"), "--year", "2025", "--json")
    (f,) = [f for f in json.loads(r.stdout)["files"][0]["findings"] if f["code"] == "I5-wan-town"]
    assert (f["expected"], f["found"]) == (3.5, 35000)
    assert "可能应为3.5（万元）" in f["message"]


def test_web_clerk_page_hides_the_libreoffice_note(tmp_path):
    pytest.importorskip("httpx")
    from web_util import new_archive, page_csrf, web_client

    from toolkit.web import WebConfig, create_app

    ret = _fee_in_yuan(tmp_path / "in")
    tokens = new_archive(tmp_path / "nianbao.db")
    client = web_client(create_app(WebConfig(db=str(tmp_path / "nianbao.db"), year=2025)))
    link = f"/u/{tokens['152502001']}"
    csrf = page_csrf(client.get(link).text)
    page = client.post(link + "/upload", data={"csrf": csrf}, files=[("files", (ret.name, ret.read_bytes()))]).text
    assert "是否误用元为单位" in page and "LibreOffice" not in page
    assert "LibreOffice" not in client.get(link).text
    assert "LibreOffice 7.4" in client.get("/unit/152502001").text  # the county still sees it


def test_no_arguments_say_what_is_missing(cli):
    r = cli("check")
    assert r.returncode == 2 and "缺少参数：填报表文件、文件夹或 zip 压缩包" in r.stderr and "示例" in r.stdout
    r = cli("receive")
    assert r.returncode == 2 and "--year（报告年度）" in r.stderr
    r = cli("roster")
    assert r.returncode == 2 and "缺少命令" in r.stderr and "nianbao roster load --help" in r.stderr
    assert "参数有误：（" not in cli("export").stderr


def test_backup_and_verify_help_examples_run(cli, tmp_path):
    """The examples of `backup --help` and `verify --help` work as written, in an empty folder."""
    import re

    from toolkit.archive import Archive

    (tmp_path / "输出").mkdir()
    for db in (tmp_path / "nianbao.db", tmp_path / "输出" / "nianbao.db"):  # the examples' two archives
        with Archive.open(str(db)) as archive:
            archive.load_roster(ROSTER, 2025)
    for command in ("backup", "verify"):
        help_text = cli(command, "--help").stdout
        examples = re.findall(rf"(nianbao {command} --\S.*?)\s*$", help_text, re.M)
        assert examples, help_text
        for line in examples:
            args = line.split()[1:]
            r = cli(*args, cwd=tmp_path)
            assert r.returncode == 0, (line, r.stderr)
    assert (tmp_path / "备份").is_dir() and list((tmp_path / "备份").glob("nianbao-*.db"))


def _big_batch(folder: Path, copies: int = 6) -> Path:
    """Ten units sent `copies` times each (distinct names), one return with an error, one empty file:
    above the threshold of the compact console view."""
    from toolkit.cli.batch_view import THRESHOLD

    folder.mkdir()
    units = sorted((SAMPLES / "returns").glob("*.xlsx"))[:10]
    for i in range(copies):
        for f in units:
            shutil.copy(f, folder / f"{f.stem}_{i}.xlsx")
    (bad,) = (SAMPLES / "faulty").glob("152502003_*.xlsx")
    shutil.copy(bad, folder / "zz_有错误.xlsx")
    (folder / "zz_空文件.xlsx").write_bytes(b"")
    assert len(list(folder.iterdir())) > THRESHOLD
    return folder


def test_large_batch_console_shows_counts_action_and_one_line_per_duplicated_unit(cli, tmp_path):
    """Issue 29: at hundreds of files the console shows counts, the files that need action (errors
    first) and duplicates one line per unit; --verbose lists every file as for a small batch."""
    pile = _big_batch(tmp_path / "pile")
    r = cli("check", pile, "--roster", ROSTER, "--year", "2025")
    assert r.returncode == 1
    err = r.stderr
    assert "共 62 个文件：通过 0 个，有错误 1 个，有警告 0 个，无法读取 1 个，仅因重复报送需确认 60 个" in err
    assert "10 个单位重复报送，共 61 份文件" in err
    assert "需要处理的文件" in err and "zz_有错误.xlsx" in err and "zz_空文件.xlsx" in err
    assert "重复报送：152502201 宝力根苏木：6份相同的文件。" in err
    assert "重复报送：152502003 杭盖街道：7份文件（2种不同内容）。" in err
    assert err.count("宝力根苏木_2025年政府信息公开年报_") == 0  # the copies are not listed one by one
    assert "共 62 个文件：错误" in err  # the totals line as for a small batch
    full = cli("check", pile, "--roster", ROSTER, "--year", "2025", "--verbose").stderr
    assert full.count("宝力根苏木_2025年政府信息公开年报_") >= 6 and "问题清单" in full
    assert len(full.splitlines()) > 3 * len(err.splitlines())


def test_large_batch_receive_lists_what_needs_action_and_summarises_repeats(cli, tmp_path):
    """Issue 29, receive: counts, the files that need action, files the archive already had one line per unit."""
    pile = _big_batch(tmp_path / "pile")
    for db in ("a.db", "b.db"):
        assert cli("roster", "load", ROSTER, "--year", "2025", "--db", tmp_path / db).returncode == 0
    r = cli("receive", pile, "--year", "2025", "--db", tmp_path / "a.db")
    assert r.returncode == 1
    err = r.stderr
    assert "共 62 个文件：需要处理 2 个（其中有错误或无法读取 2 个），与最新版本相同 50 个。" in err
    assert "zz_有错误.xlsx" in err and "zz_空文件.xlsx" in err
    assert "与最新版本相同：152502201 宝力根苏木：5份相同的文件，已记录，未存为新版本。" in err
    assert err.count("宝力根苏木_2025年政府信息公开年报_") == 0
    full = cli("receive", pile, "--year", "2025", "--db", tmp_path / "b.db", "--verbose").stderr
    assert full.count("宝力根苏木_2025年政府信息公开年报_") == 6


def test_large_batch_lists_at_most_action_rows_and_says_how_many_more(cli, tmp_path):
    """Errors first, at most ACTION_ROWS files, then how many more and how to see them."""
    from toolkit.cli.batch_view import ACTION_ROWS

    pile = tmp_path / "pile"
    pile.mkdir()
    faulty = sorted((SAMPLES / "faulty").glob("*.xlsx"))
    for i in range(9):
        for f in faulty:
            shutil.copy(f, pile / f"{f.stem}_{i}.xlsx")
    n = len(faulty) * 9
    err = cli("check", pile, "--year", "2025").stderr
    assert f"另有 {n - ACTION_ROWS} 个需要处理的文件未列出；全部列出请加 --verbose" in err
    listed = [line for line in err.splitlines() if "_有误_" in line]
    assert len(listed) == ACTION_ROWS
    has_errors = [line.split("│")[3].strip() != "0" for line in listed]  # the 错误 column
    assert has_errors[0] and has_errors == sorted(has_errors, reverse=True)
