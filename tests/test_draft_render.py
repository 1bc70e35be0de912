"""Issue 17 acceptance with a real application: LibreOffice opens the .docx and renders it to
PDF (and PNG pages in tests/artifacts/render/, git-ignored), `nianbao import` reads every figure
back from that PDF without a 错误, and LibreOffice's own re-save keeps the official merges."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, SAMPLES, run_cli
from lo import require_libreoffice
from test_draft import SEED_RETURN, docx_grids, expected_grid, make_return, published_inputs

from toolkit.check import CheckOptions, check_report
from toolkit.draft import read_source
from toolkit.published.importer import read_published
from toolkit.spec import current_format

SECTIONS = current_format().sections

RENDER = ROOT / "tests" / "artifacts" / "render"


def soffice_convert(files: list[Path], target: str, outdir: Path, profile: Path) -> list[Path]:
    """`soffice --headless --convert-to` with a private profile; the whole process group is
    killed on timeout (soffice → oosplash → soffice.bin)."""
    outdir.mkdir(parents=True, exist_ok=True)
    cmd = [
        "soffice",
        f"-env:UserInstallation={profile.as_uri()}",
        "--headless",
        "--norestore",
        "--nolockcheck",
        "--convert-to",
        target,
        "--outdir",
        str(outdir),
        *map(str, files),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        _, errs = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        pytest.fail("LibreOffice 转换超时")
    ext = target.split(":")[0]
    produced = [outdir / f"{f.stem}.{ext}" for f in files]
    missing = [p.name for p in produced if not p.is_file()]
    assert proc.returncode == 0 and not missing, f"LibreOffice 未能转换 {missing}: {errs.decode('utf-8', 'replace')[-800:]}"
    return produced


@pytest.fixture(scope="session")
def drafts(tmp_path_factory):
    """The two acceptance drafts (the seed return and the samples' county summary), written by
    the CLI, then converted by LibreOffice: to PDF, and re-saved as .docx."""
    require_libreoffice()
    work = tmp_path_factory.mktemp("draft_render")
    summary = work / "锡林浩特市2025汇总.xlsx"
    r = run_cli("consolidate", SAMPLES / "returns", "--roster", SAMPLES / "roster.csv", "--year", "2025", "--out", summary)
    assert r.returncode == 0, r.stderr
    sources = {"seed": SEED_RETURN, "summary": summary}
    docx = {}
    for key, src in sources.items():
        docx[key] = work / f"draft-{key}.docx"
        r = run_cli("draft", src, "--out", docx[key])
        assert r.returncode == 0, r.stderr
    profile = work / "lo-profile"
    pdfs = soffice_convert(list(docx.values()), "pdf", work / "pdf", profile)
    resaved = soffice_convert(list(docx.values()), "docx:MS Word 2007 XML", work / "resaved", profile)
    return {
        key: {"source": sources[key], "docx": docx[key], "pdf": pdf, "resaved": again}
        for (key, pdf, again) in zip(docx, pdfs, resaved, strict=True)
    }


@pytest.mark.slow
@pytest.mark.parametrize("key", ["seed", "summary"])
def test_pdf_made_by_libreoffice_imports_every_figure(drafts, fmt, key):
    d = drafts[key]
    report = read_source(d["source"])
    back = check_report(read_published(d["pdf"]), CheckOptions())
    assert back.readable and not back.unknown
    assert {c: back.values[c] for c in published_inputs(fmt)} == {c: report.value(c) for c in published_inputs(fmt)}
    assert not [f for f in back.findings if f.severity == "错误"], [f.message for f in back.findings]
    assert not [f for f in back.findings if f.code in ("narrative-mismatch", "section-title", "format-hybrid")]


@pytest.mark.parametrize("key", ["seed", "summary"])
def test_rendered_pages_are_a4_and_show_every_section(drafts, key):
    if not shutil.which("pdftoppm"):
        pytest.skip("没有 pdftoppm（poppler-utils）")
    pdf = drafts[key]["pdf"]
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages:")))
    assert 3 <= pages <= 8
    size = next(line for line in info.splitlines() if line.startswith("Page size:"))
    assert size.endswith("(A4)"), size
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True, text=True, check=True).stdout
    flat = "".join(text.split())
    for heading in SECTIONS:
        assert heading in flat
    RENDER.mkdir(parents=True, exist_ok=True)
    for old in RENDER.glob(f"draft-{key}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-r", "70", "-png", str(pdf), str(RENDER / f"draft-{key}")], check=True, timeout=120)
    assert len(list(RENDER.glob(f"draft-{key}-*.png"))) == pages


@pytest.mark.parametrize("key", ["seed", "summary"])
def test_libreoffice_resave_keeps_the_official_layout(drafts, fmt, key):
    """What LibreOffice understood of the tables (its own re-save), compared with the format."""
    report = read_source(drafts[key]["source"])
    expected = [expected_grid(fmt, s, report) for s in fmt.sheets if s.published]
    assert docx_grids(drafts[key]["resaved"], sliver_twips=20) == expected  # 20 twips = 0.35 mm
    assert docx_grids(drafts[key]["docx"]) == expected


def test_last_years_pdf_gives_the_comparisons(drafts, fmt, tmp_path):
    """A published PDF as --prev (the seed's 2023 report, as LibreOffice printed it): its title is on one
    line, so its year is read from it (no "taken as last year's" note any more)."""
    cur = make_return(tmp_path / "2024.xlsx", fmt, {"t2.license.n": 150, "t2.penalty.n": 2}, year=2024)
    r = run_cli("draft", cur, "--prev", drafts["seed"]["pdf"], "--out", tmp_path / "a.docx", "--html", tmp_path / "a.html")
    assert r.returncode == 0, r.stderr
    assert "按2023年度的数据使用" not in r.stderr and "没有读到年度" not in r.stderr
    page = (tmp_path / "a.html").read_text(encoding="utf-8")
    assert "作出行政许可处理决定150件、行政处罚处理决定2件" in page
    assert "行政许可处理决定比上年增加4件、增长2.7%；行政处罚处理决定与上年持平。" in page
