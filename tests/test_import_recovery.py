"""Issue 18: how much of every real published report the importer recovers — on the text as
obtained and on rough variants derived from it by code (all whitespace and cell separators
removed; each table joined onto one line with single spaces; traditional characters).

A cell counts as recovered only when its value equals the hand-checked one; a cell the
importer is unsure of must be unknown, never a wrong number. The table of figures is
printed in the CI log (SUMMARY_TABLES).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT, SUMMARY_TABLES

from toolkit.check import CheckOptions, check_report
from toolkit.published.importer import read_published
from toolkit.spec import formats

PUBLISHED = ROOT / "tests" / "published"
CORPUS = sorted(PUBLISHED.glob("*.toml")) if PUBLISHED.exists() else []
READING = {"table-unreadable", "value-missing"}  # findings about the reading, not claims about the report


# ---------------------------------------------------------------- rough variants, derived by code


def no_space(text: str) -> str:
    """Every space, line break and '|' cell separator removed: labels and digits run together."""
    return re.sub(r"[\s|\u3000]+", "", text)


def tables_on_one_line(text: str) -> str:
    """Each table (a block of '|'-separated lines) joined onto one line, cells separated by single spaces."""
    out: list[str] = []
    block: list[str] = []

    def flush() -> None:
        if block:
            out.append(" ".join(" ".join(block).replace("|", " ").split()))
            block.clear()

    for line in text.splitlines():
        if "|" in line:
            block.append(line)
        else:
            flush()
            out.append(line)
    flush()
    return "\n".join(out) + "\n"


def traditional(text: str) -> str:
    """The text in traditional characters, as mirror sites republish mainland pages (OpenCC s2t)."""
    import opencc

    return opencc.OpenCC("s2t").convert(text)


VARIANTS = {
    "原文": lambda t: t,
    "去掉全部空白和分隔符": no_space,
    "每表一行（单空格）": tables_on_one_line,
    "繁体字": traditional,
}
# The rough variants: 0.98 (issue 18). The cells still unknown with every space AND separator gone lost
# their blank cells, or split several ways that all keep the format's equalities and bounds
# (tests/published/IMPORTER-GAPS.md lists each).
THRESHOLD = {"原文": 0.99}


# ---------------------------------------------------------------- measuring


@dataclass
class Tally:
    reports: int = 0
    cells: int = 0
    exact: int = 0
    unknown: int = 0
    wrong: list[str] = field(default_factory=list)
    missed_defects: list[str] = field(default_factory=list)
    false_errors: list[str] = field(default_factory=list)

    def rate(self) -> float:
        return self.exact / self.cells if self.cells else 1.0


def measure(spec: Path, text: str, tmp: Path, tally: Tally) -> None:
    exp = tomllib.loads(spec.read_text(encoding="utf-8"))
    src = tmp / (spec.stem + ".txt")
    src.write_text(text, encoding="utf-8")
    rep = check_report(
        read_published(src, unit=exp.get("unit"), year=exp.get("year"), unit_type=exp.get("level")), CheckOptions()
    )
    fmt = formats()[rep.format_id]
    tally.reports += 1
    for cid, want in exp.get("values", {}).items():
        if cid not in fmt.cells:
            continue
        tally.cells += 1
        got = rep.cached.get(cid) if fmt.cells[cid].is_total else rep.values.get(cid)
        if cid in rep.unknown:
            tally.unknown += 1
        elif got == want:
            tally.exact += 1
        else:
            tally.wrong.append(f"{spec.stem} {cid}: {got} ≠ {want}")
    for cid in exp.get("unknown", []):  # shown only in part (cut by the end of the text): must stay unknown
        if cid not in rep.unknown:
            tally.wrong.append(f"{spec.stem} {cid}: {rep.values.get(cid)} ≠ 未知")
    codes = {f.code for f in rep.findings}
    known = {d["rule"] for d in exp.get("defects", [])}
    tally.missed_defects += [f"{spec.stem} {r}" for r in known - codes]
    tally.false_errors += [
        f"{spec.stem} {f.code} {f.message}" for f in rep.findings if f.severity == "错误" and f.code not in known | READING
    ]


@pytest.fixture(scope="module")
def tallies(tmp_path_factory) -> dict[str, Tally]:
    if not CORPUS:
        pytest.skip("tests/published 尚无语料")
    out = {}
    for name, derive in VARIANTS.items():
        tally = Tally()
        tmp = tmp_path_factory.mktemp("variant")
        for spec in CORPUS:
            measure(spec, derive(spec.with_suffix(".source.txt").read_text(encoding="utf-8")), tmp, tally)
        out[name] = tally
    lines = [f"{'文本':<14}{'年报':>5}{'可见单元格':>8}{'读对':>6}{'未知':>6}{'读错':>6}{'读对率':>9}"]
    for name, t in out.items():
        lines.append(f"{name:<14}{t.reports:>5}{t.cells:>8}{t.exact:>6}{t.unknown:>6}{len(t.wrong):>6}{t.rate():>9.2%}")
        lines += [f"    漏报缺陷 {m}" for m in t.missed_defects] + [f"    误报错误 {m}" for m in t.false_errors[:5]]
    SUMMARY_TABLES.append(("import recovery on tests/published (originals and derived rough variants)", lines))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_recovery(tallies, variant):
    t = tallies[variant]
    assert not t.wrong, t.wrong  # unsure → unknown, never a wrong number
    assert t.rate() >= THRESHOLD.get(variant, 0.98), (variant, t.exact, t.cells, t.unknown)
    assert not t.missed_defects, t.missed_defects
    assert not t.false_errors, t.false_errors


# ---------------------------------------------------------------- the sample county: full tables, non-zero figures


@pytest.fixture(scope="module")
def county(tmp_path_factory) -> dict[str, Tally]:
    """Every return of samples/returns (a real county's figures, 22 units) published the way
    the seed was, then roughened: exercises run-together digits with non-zero columns, where
    only the column sums and 一+二 = 三（七）+四 can settle a split."""
    from published_text import flat_text, html_page

    from toolkit.check import check_paths
    from toolkit.spec import current_format

    fmt = current_format()
    returns = check_paths(sorted((ROOT / "samples" / "returns").glob("*.xlsx")), CheckOptions()).reports
    shapes = {**VARIANTS, "网页（HTML表格）": None}
    out = {}
    for name, derive in shapes.items():
        tally, tmp = Tally(), tmp_path_factory.mktemp("county")
        for r in returns:
            vals = {c.id: r.values[c.id] for c in fmt.cells.values() if fmt.sheet(c.sheet_id).published}
            src = tmp / f"{r.unit_code}.{'html' if derive is None else 'txt'}"
            text = (
                html_page(fmt, vals, unit=r.unit_name, year=2025)
                if derive is None
                else derive(flat_text(fmt, vals, unit=r.unit_name, year=2025))
            )
            src.write_text(text, encoding="utf-8")
            rep = check_report(read_published(src, unit=r.unit_name, year=2025, unit_type=r.unit_type), CheckOptions())
            tally.reports += 1
            for cid, want in vals.items():
                tally.cells += 1
                got = rep.cached.get(cid) if fmt.cells[cid].is_total else rep.values.get(cid)
                if cid in rep.unknown:
                    tally.unknown += 1
                elif got == want:
                    tally.exact += 1
                else:
                    tally.wrong.append(f"{r.unit_name} {cid}: {got} ≠ {want}")
            tally.false_errors += [
                f"{r.unit_name} {f.code} {f.message}" for f in rep.findings if f.severity == "错误" and f.code not in READING
            ]
        out[name] = tally
    lines = [
        f"{name:<14}{t.reports:>5}{t.cells:>8}{t.exact:>6}{t.unknown:>6}{len(t.wrong):>6}{t.rate():>9.2%}"
        for name, t in out.items()
    ]
    SUMMARY_TABLES.append(("import recovery on the sample county (samples/returns published as text/HTML)", lines))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("variant", [*VARIANTS, "网页（HTML表格）"])
def test_recovery_sample_county(county, variant):
    t = county[variant]
    assert not t.wrong, t.wrong
    assert t.rate() >= THRESHOLD.get(variant, 0.98), (variant, t.exact, t.cells, t.unknown)
    assert not t.false_errors, t.false_errors  # the sample county's returns are consistent


def test_variants_really_are_rough():
    """The derivations must change the text the way their names say (or the figures mean nothing)."""
    sample = "规章 | 0 | 0 | 0 |\n行政规范性文件 | 5 | 1 | 25 |\n正文。\n"
    assert no_space(sample) == "规章000行政规范性文件5125正文。"
    assert tables_on_one_line(sample) == "规章 0 0 0 行政规范性文件 5 1 25\n正文。\n"
    assert traditional("行政规范性文件 本年处理决定数量") == "行政規範性文件 本年處理決定數量"


@pytest.mark.slow
def test_no_cell_is_ever_guessed_on_random_tables_run_together(tmp_path):
    """Random tables (25 non-zero cells of 1–1000, a third with a planted defect: a cell or a printed
    total off by 1 or 10), every space and separator removed. Whatever the importer cannot split
    with certainty must be unknown: not one wrong number."""
    import random

    from published_text import flat_text

    from toolkit.report import derive_totals
    from toolkit.spec import current_format

    fmt = current_format()
    rng = random.Random(20240607)
    published = [c for c in fmt.cells.values() if fmt.sheet(c.sheet_id).published]
    counts = [c for c in fmt.inputs if fmt.sheet(c.sheet_id).published and fmt.kinds[c.kind].integer]
    wrong, unknown, total, set_aside = [], 0, 0, 0
    for trial in range(60):
        inputs = {c.id: 0 for c in fmt.inputs} | {
            c.id: rng.choice([1, 2, 3, 5, 7, 10, 11, 12, 21, 30, 100, 101, 110, 1000]) for c in rng.sample(counts, 25)
        }
        full = derive_totals(fmt, inputs)
        vals = {c.id: full[c.id] for c in published}
        if trial % 3:
            victim = rng.choice(published)
            vals[victim.id] += rng.choice([1, 10])
        src = tmp_path / f"{trial}.txt"
        src.write_text(no_space(flat_text(fmt, vals, unit="某某镇", year=2025)), encoding="utf-8")
        rep = read_published(src, year=2025)
        for cid, want in vals.items():
            total += 1
            got = rep.cached.get(cid) if fmt.cells[cid].is_total else rep.values.get(cid)
            if cid in rep.unknown:
                unknown += 1
            elif got != want and _flagged_implausible(rep, vals, cid):
                set_aside += 1
            elif got != want:
                wrong.append((trial, cid, got, want))
    assert not wrong, wrong[:10]
    assert unknown < 0.2 * total  # most cells are still recovered
    SUMMARY_TABLES.append(
        (
            "import: random run-together tables with planted defects",
            [f"{total} cells, {unknown} unknown, 0 wrong, {set_aside} in implausible 表二 rows read the plausible way (flagged)"],
        )
    )


def _flagged_implausible(rep, truth: dict, cid: str) -> bool:
    """A 表二 row whose true figures break I9 or I9b (more repealed than valid + made, or more made
    than valid + repealed) may be read the plausible way instead — but only with a split-plausible
    提示 on that row, so the auditor is told which readings were set aside."""
    row = cid.rsplit(".", 1)[0]
    if not row.startswith("t2."):
        return False
    made, repealed, valid = (truth.get(f"{row}.{c}") or 0 for c in ("made", "repealed", "valid"))
    breaks = repealed > valid + made or made > valid + repealed
    reading = f"{made}/{repealed}/{valid}"  # the true reading must be one the 提示 names as set aside
    return breaks and any(
        f.code == "split-plausible" and f.cell_id == f"{row}.made" and reading in _set_aside(f.message) for f in rep.findings
    )


def _set_aside(message: str) -> list[str]:
    """The readings a split-plausible 提示 names, each whole ('1/0/1' must not match '21/0/10')."""
    m = re.search(r"还可拆分为 (.+?)，但", message)
    return m.group(1).split("；") if m else []
