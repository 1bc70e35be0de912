"""Issue 18: text shapes of real published reports — tables run together on one line or with
no spaces at all, traditional characters, label aliases from the format definition, mirror-site
noise — and what the importer must do when a split is not certain."""

from __future__ import annotations

import re
import tomllib

import pytest
from published_text import flat_text

from toolkit.aliases import aliases, parse_aliases
from toolkit.check import CheckOptions, check_report
from toolkit.errors import SpecError
from toolkit.published.importer import read_published
from toolkit.published.source import clean_text, is_traditional
from toolkit.published.tokens import lexicon_for, text_cells, tokens
from toolkit.published.walk import split_row
from toolkit.spec import templates_dir


def imported(path):
    return check_report(read_published(path), CheckOptions())


def table_cells(rep, fmt, ids):
    return {k: (rep.cached[k] if fmt.cells[k].is_total else rep.values[k]) for k in ids}


T3 = {
    "t3.r1.np": 58,
    "t3.r1.biz": 7,
    "t3.r1.law": 1,
    "t3.r1.tot": 66,
    "t3.r2.np": 2,
    "t3.r2.tot": 2,
    "t3.r3_1.np": 2,
    "t3.r3_1.biz": 1,
    "t3.r3_1.tot": 3,
    "t3.r3_2.np": 16,
    "t3.r3_2.biz": 1,
    "t3.r3_2.tot": 17,
    "t3.r3_3_5.np": 1,
    "t3.r3_3_5.tot": 1,
    "t3.r3_4_1.np": 30,
    "t3.r3_4_1.biz": 5,
    "t3.r3_4_1.law": 1,
    "t3.r3_4_1.tot": 36,
    "t3.r4.np": 11,
    "t3.r4.tot": 11,
}
T3 |= {"t3.r3_7.np": 49, "t3.r3_7.biz": 7, "t3.r3_7.law": 1, "t3.r3_7.tot": 57}


def test_whole_report_without_any_space_or_separator(tmp_path, fmt):
    """'…数量5870010066二、上年…': labels and digits run together. Rows split by their totals; what
    stays ambiguous is settled by the column sums and 一+二 = 三（七）+四, or left unknown."""
    text = re.sub(r"[\s|]+", "", flat_text(fmt, T3 | {"t2.license.n": 146, "t2.fees.amt": 86.35}, received=66))
    p = tmp_path / "nospace.txt"
    p.write_text(text, encoding="utf-8")
    rep = imported(p)
    assert table_cells(rep, fmt, T3) == T3
    assert rep.values["t2.license.n"] == 146 and rep.values["t2.fees.amt"] == 86.35
    assert not [f for f in rep.findings if f.severity == "错误"]


def test_whole_table_on_one_line_with_single_spaces(tmp_path, fmt):
    lines = flat_text(fmt, T3, received=66).splitlines()
    text = (
        "\n".join(ln for ln in lines if "|" not in ln)
        + "\n"
        + " ".join(ln.replace("|", " ").strip() for ln in lines if "|" in ln)
    )
    p = tmp_path / "one.txt"
    p.write_text(text, encoding="utf-8")
    rep = imported(p)
    assert table_cells(rep, fmt, T3) == T3
    assert not [f for f in rep.findings if f.severity == "错误"]


def _norm_row(tmp_path, fmt, made, repealed, valid):
    text = re.sub(r"[\s|]+", "", flat_text(fmt, {"t2.norm.made": made, "t2.norm.repealed": repealed, "t2.norm.valid": valid}))
    p = tmp_path / "amb.txt"
    p.write_text(text, encoding="utf-8")
    return imported(p)


NORM = ("t2.norm.made", "t2.norm.repealed", "t2.norm.valid")


def test_two_splits_left_means_unknown_never_a_guess(tmp_path, fmt):
    """'12233' for 本年制发/废止/现行有效 splits as 1|2|233, 1|22|33 or 12|2|33 (each keeps every
    equality and bound of the format; 1|223|3, 12|23|3, 122|3|3 break I9 or I9b): no rule decides
    it, and no 提示 claims a reading was taken."""
    rep = _norm_row(tmp_path, fmt, 1, 22, 33)
    assert set(NORM) <= rep.unknown
    assert not [f for f in rep.findings if f.code == "split-plausible"]
    (f,) = [f for f in rep.findings if f.code == "table-unreadable"]
    assert "12233" in f.message and "按未知处理" in f.message and f.sheet == "表二"
    assert rep.values["t2.reg.made"] == 0 and "t2.reg.made" not in rep.unknown


def test_a_split_that_breaks_a_bound_of_the_format_is_set_aside_and_said(tmp_path, fmt):
    """'5125' splits as 5|1|25, 5|12|5 or 51|2|5. 5|12|5 repeals more than are valid or made (I9);
    51|2|5 made more than are valid or repealed (I9b): the reading that keeps both is taken, and
    a 提示 names the readings set aside."""
    rep = _norm_row(tmp_path, fmt, 5, 1, 25)
    assert [rep.values[c] for c in NORM] == [5, 1, 25] and not set(NORM) & rep.unknown
    (f,) = [f for f in rep.findings if f.code == "split-plausible"]
    assert (f.severity, f.sheet, f.cell_id) == ("提示", "表二", "t2.norm.made")
    assert "5125" in f.message and "5/12/5" in f.message and "51/2/5" in f.message and "I9b" in f.message
    assert not [f for f in rep.findings if f.code in ("I9", "I9b")]


def test_each_row_is_settled_by_its_own_bounds(tmp_path, fmt):
    """Two run-together rows: 规章 '5100' breaks a bound every way (stays unknown), 行政规范性文件
    '5125' has one reading that keeps its bounds (taken). Each 提示 names its own row's rules only."""
    vals = {"t2.reg.made": 51, "t2.norm.made": 5, "t2.norm.repealed": 1, "t2.norm.valid": 25}
    p = tmp_path / "two.txt"
    p.write_text(re.sub(r"[\s|]+", "", flat_text(fmt, vals)), encoding="utf-8")
    rep = imported(p)
    assert {"t2.reg.made", "t2.reg.repealed"} <= rep.unknown
    assert [rep.values[c] for c in NORM] == [5, 1, 25] and not set(NORM) & rep.unknown
    vals |= {"t2.reg.made": 4, "t2.reg.valid": 32}  # 规章 '4032': 40/3/2 breaks I9b only
    p.write_text(re.sub(r"[\s|]+", "", flat_text(fmt, vals)), encoding="utf-8")
    rep = imported(p)
    hints = {f.cell_id: f.message for f in rep.findings if f.code == "split-plausible"}
    assert [rep.values[f"t2.reg.{c}"] for c in ("made", "repealed", "valid")] == [4, 0, 32]
    assert "40/3/2" in hints["t2.reg.made"] and "I9b" in hints["t2.reg.made"] and "I9（" not in hints["t2.reg.made"]
    assert "5/12/5" in hints["t2.norm.made"] and "I9（" in hints["t2.norm.made"]


def test_a_row_that_breaks_the_bounds_every_way_stays_unknown(tmp_path, fmt):
    """'5100' splits as 51|0|0 (breaks I9b) or 5|10|0 (breaks I9); 5|1|00 is no split (leading
    zero). Every reading breaks a bound: none is preferred, the row stays unknown."""
    rep = _norm_row(tmp_path, fmt, 51, 0, 0)
    assert {"t2.norm.made", "t2.norm.repealed"} <= rep.unknown and rep.values["t2.norm.valid"] == 0
    assert not [f for f in rep.findings if f.code == "split-plausible"]


def test_split_row_respects_totals_and_leading_zeros(fmt):
    from toolkit.published.tokens import Tok

    cells = [c for c in fmt.sheet("t3").cells if c.row_id == "r1"]
    assert split_row(cells, [Tok("587001066", 1)], fmt) == [[58, 7, 0, 0, 1, 0, 66]]
    assert split_row(cells, [Tok("0000000", 1)], fmt) == [[0] * 7]
    assert sorted(split_row(cells, [Tok("161000017", 1)], fmt)) == [[1, 6, 10, 0, 0, 0, 17], [16, 1, 0, 0, 0, 0, 17]]
    fee = [fmt.cells["t2.fees.amt"]]
    assert split_row(fee, [Tok("86.35", 1)], fmt) == [[86.35]]


def test_traditional_characters(tmp_path, fmt):
    import opencc

    vals = {
        "t2.license.n": 146,
        "t3.r1.np": 3,
        "t3.r1.tot": 3,
        "t3.r3_4_1.np": 3,
        "t3.r3_4_1.tot": 3,
        "t3.r3_7.np": 3,
        "t3.r3_7.tot": 3,
    }
    for config in ("s2t", "s2twp", "s2hk"):  # mainland text in traditional characters; Taiwan phrasing (資訊)
        text = opencc.OpenCC(config).convert(flat_text(fmt, vals, unit="寶力根蘇木"))
        assert is_traditional(text)
        p = tmp_path / f"{config}.txt"
        p.write_text(text, encoding="utf-8")
        rep = imported(p)
        assert table_cells(rep, fmt, vals) == vals, config
        assert rep.unit_name == "宝力根苏木" and "繁体" in rep.provenance.application
        assert not [f for f in rep.findings if f.severity == "错误"]


def test_mirror_site_noise_is_removed():
    assert clean_text("政(zheng)府(fu)信息公開\u200b工作") == "政府信息公開工作"
    assert clean_text("规章(reg) 0") == "规章(reg) 0"  # only pinyin right after a character, lower case


def test_label_aliases_file_is_valid_and_used(tmp_path, fmt):
    assert any(a.row_id == "r3_3_2" and a.source for a in aliases(fmt.id))
    # the typo of 洪泽 2023/2024, run together with its digits: only the alias can find it
    text = flat_text(
        fmt, {"t3.r3_3_2.np": 1, "t3.r3_3_2.tot": 1, "t3.r1.np": 1, "t3.r1.tot": 1, "t3.r3_7.np": 1, "t3.r3_7.tot": 1}
    )
    text = re.sub(r"[\s|]+", "", text.replace("2.其他法律行政法规禁止公开", "2.其他法律行政止公开"))
    p = tmp_path / "typo.txt"
    p.write_text(text, encoding="utf-8")
    rep = imported(p)
    assert rep.values["t3.r3_3_2.np"] == 1
    assert not [f for f in rep.findings if f.severity == "错误"]


@pytest.mark.parametrize(
    "raw,error",
    [
        ({"format": {"id": "zfxxgk-2021"}, "t3": {"r9": [{"alias": "x", "source": "y"}]}}, "没有行"),
        ({"format": {"id": "zfxxgk-2021"}, "t9": {"r1": [{"alias": "x", "source": "y"}]}}, "不存在"),
        ({"format": {"id": "zfxxgk-2021"}, "t3": {"r1": [{"alias": "本年新收", "source": ""}]}}, "source"),
        (
            {"format": {"id": "zfxxgk-2021"}, "t3": {"r1": [{"alias": "二、上年结转政府信息公开申请数量", "source": "s"}]}},
            "正式标签",
        ),
        (
            {
                "format": {"id": "zfxxgk-2021"},
                "t3": {"r1": [{"alias": "新收", "source": "s"}], "r2": [{"alias": "新收", "source": "s"}]},
            },
            "同时给了",
        ),
        ({"format": {"id": "zfxxgk-2019"}}, "id 应为"),
    ],
)
def test_alias_loader_refuses_broken_entries(fmt, raw, error):
    with pytest.raises(SpecError, match=error):
        parse_aliases(raw, fmt, "aliases/test.toml")


def test_alias_file_parses_as_toml():
    raw = tomllib.loads((templates_dir() / "aliases" / "zfxxgk-2021.toml").read_text(encoding="utf-8"))
    assert raw["format"]["id"] == "zfxxgk-2021"


def test_prose_mentions_of_labels_are_not_rows(fmt):
    """'规章制度' in prose is not the 规章 row; '收到申请3件' is not a cell."""
    lex = lexicon_for(fmt, [])
    toks = tokens(text_cells("我单位健全规章制度，收到申请3件。规章000行政规范性文件5125"), lex)
    texts = [t.text for t in toks]
    assert "规章" in texts and texts.count("规章") == 1 and "3" not in texts and "5125" in texts


def test_legacy_encodings_gbk_and_big5(tmp_path, fmt):
    import opencc

    vals = {"t2.license.n": 146}
    text = flat_text(fmt, vals)
    for enc, body in (("gbk", text), ("big5", opencc.OpenCC("s2t").convert(text))):
        p = tmp_path / f"{enc}.txt"
        p.write_bytes(body.encode(enc, errors="replace"))
        rep = imported(p)
        assert rep.values["t2.license.n"] == 146 and rep.unit_name == "宝力根苏木", enc
        page = tmp_path / f"{enc}.html"
        page.write_bytes(f"<html><body><p>{body.replace(chr(10), '</p><p>')}</p></body></html>".encode(enc, "replace"))
        assert imported(page).values["t2.license.n"] == 146, enc


def test_unit_and_year_from_real_report_openings():
    """The unit is taken from the title or the opening sentence only when it looks like a unit's
    name; otherwise it stays unknown ('' → the --unit option or the file name), never a phrase."""
    from toolkit.published.identity import guess_identity

    root = templates_dir().parent / "tests" / "published"
    got = {p.name[:2]: guess_identity(p.read_text(encoding="utf-8")) for p in sorted(root.glob("*.source.txt"))}
    assert got["01"] == ("宝力根苏木", 2023) and got["02"] == ("太平镇人民政府", 2022)
    assert got["06"] == ("螅镇", 2022) and got["11"] == ("湛江市人民政府地方志办公室", 2023)
    assert got["15"] == ("丽岙街道", 2023) and got["09"] == ("", 2021)  # '编制我单位…' is no name
    assert guess_identity("一、总体情况本年报根据条例编制") == ("", None)


# ---------------------------------------------------------------- real-page oddities of tests/published (18, 27, 43, 45)


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


@pytest.mark.parametrize("blank", ["  \n", " |\n"])
def test_row_without_label_read_by_position(tmp_path, fmt, blank):
    """18: the 规章 label cell is empty; its numbers stand between the column headers and 行政规范性文件."""
    vals = {"t2.reg.made": 1, "t2.reg.repealed": 2, "t2.reg.valid": 3, "t2.norm.made": 4, "t2.license.n": 146}
    text = flat_text(fmt, vals).replace("规章 |\n", blank, 1)
    rep = imported(_write(tmp_path, "nolabel.txt", text))
    assert table_cells(rep, fmt, vals) == vals
    assert [f.cell_id for f in rep.findings if f.code == "row-label-missing"] == ["t2.reg.made"]
    assert not [f for f in rep.findings if f.severity == "错误"]


def test_missing_label_with_wrong_count_is_not_guessed(tmp_path, fmt):
    """Only two numbers where the label-less row needs three: nothing is read by position."""
    text = flat_text(fmt, {"t2.reg.made": 1}).replace("规章 |\n1 |\n", "", 1)
    rep = imported(_write(tmp_path, "short.txt", text))
    assert "t2.reg.made" in rep.unknown and "t2.reg.valid" in rep.unknown
    assert not [f for f in rep.findings if f.code == "row-label-missing"]


def test_slash_cells_and_lone_bars_are_blank(tmp_path, fmt):
    """45: '/' printed instead of a number, and a lone '|' line for an empty cell: value-missing, the total kept."""
    text = flat_text(fmt, T3)
    text = text.replace("规章 |\n0 |\n0 |\n0 |", "规章 |\n/ |\n/ |\n/ |", 1)
    text = text.replace("二、上年结转政府信息公开申请数量 |\n2 |\n0 |", "二、上年结转政府信息公开申请数量 |\n2 |\n|", 1)
    rep = imported(_write(tmp_path, "slash.txt", text))
    assert [rep.values[c] for c in ("t2.reg.made", "t2.reg.repealed", "t2.reg.valid")] == [None, None, None]
    assert rep.values["t3.r2.biz"] is None and rep.cached["t3.r2.tot"] == 2 and rep.values["t3.r2.np"] == 2
    missing = {f.cell_id for f in rep.findings if f.code == "value-missing"}
    assert {"t2.reg.made", "t2.reg.valid", "t3.r2.biz"} <= missing
    assert not [f for f in rep.findings if f.severity == "错误"]


def test_stray_question_mark_before_a_number(tmp_path, fmt):
    """43: '? 0' — a character lost in the copy; the number is read, and a 提示 says so."""
    text = flat_text(fmt, {"t2.norm.repealed": 5}).replace("行政规范性文件 |\n0 |\n5 |", "行政规范性文件 |\n0 |\n? 5 |", 1)
    rep = imported(_write(tmp_path, "stray.txt", text))
    assert rep.values["t2.norm.repealed"] == 5
    assert [f.found for f in rep.findings if f.code == "text-stray-mark"] == [1]


def test_narrative_about_normative_documents(tmp_path, fmt):
    """27: the prose says 0 normative documents made, the table 4 — also when the table's digits run together."""
    vals = {"t2.norm.made": 4, "t2.norm.valid": 32}
    prose = "本年度，我镇共制定规范性文件0件，废止规范性文件0件，现行有效的规范性文件0件。\n"
    text = flat_text(fmt, vals).replace("二、主动公开政府信息情况", prose + "二、主动公开政府信息情况", 1)
    rep = imported(_write(tmp_path, "prose.txt", text))
    got = {(f.cell_id, f.found, f.expected) for f in rep.findings if f.code == "narrative-mismatch"}
    assert got == {("t2.norm.made", 0, 4), ("t2.norm.valid", 0, 32)}
    glued = re.sub(r"[\s|]+", "", text)  # '行政规范性文件4032': 4/0/32, or 40/3/2 (breaks I9b) — both contradict the prose
    rep = imported(_write(tmp_path, "glued.txt", glued))
    assert [rep.values[c] for c in ("t2.norm.made", "t2.norm.repealed", "t2.norm.valid")] == [4, 0, 32]
    assert {f.cell_id for f in rep.findings if f.code == "narrative-mismatch"} >= {"t2.norm.made", "t2.norm.valid"}
    ok = flat_text(fmt, {"t2.norm.made": 0}).replace("二、主动公开政府信息情况", prose + "二、主动公开政府信息情况", 1)
    assert not [f for f in imported(_write(tmp_path, "ok.txt", ok)).findings if f.code == "narrative-mismatch"]


def test_row_with_fewer_digits_than_cells_is_value_missing(tmp_path, fmt):
    """32/42 with every separator removed: '规章00' has 2 digits for 3 cells — some cell was blank; none is guessed."""
    text = flat_text(fmt, {}).replace("规章 |\n0 |\n0 |\n0 |", "规章 |\n0 |\n0 |\n|", 1)
    glued = re.sub(r"[\s|]+", "", text)
    rep = imported(_write(tmp_path, "glued.txt", glued))
    assert {"t2.reg.made", "t2.reg.repealed", "t2.reg.valid"} <= rep.unknown
    assert [f.cell_id for f in rep.findings if f.code == "value-missing"] == ["t2.reg.made"]
    assert rep.values["t2.norm.made"] == 0
