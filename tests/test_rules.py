"""Issue 4: every rule of the format definition — a passing case, a failing case with the
exact message, cell and delta, and the missing-value behaviour. Pure data: no Excel."""

from __future__ import annotations

import pytest

from toolkit.report import Report, derive_totals
from toolkit.rules import evaluate, run_rule, run_rules


def make_report(fmt, unit_type="县级部门", cached=None, **values):
    vals = {c.id: 0 for c in fmt.inputs}
    vals.update({k.replace("__", "."): v for k, v in values.items()})
    rep = Report(unit_code="X1", unit_name="测试单位", unit_type=unit_type, year=2025)
    rep.values = derive_totals(fmt, {c.id: vals.get(c.id) for c in fmt.inputs})
    rep.cached = {c.id: rep.values[c.id] for c in fmt.totals}
    rep.cached.update(cached or {})
    return rep


def rule(fmt, code):
    return next(r for r in fmt.rules if r.code == code)


def codes(findings):
    return [(f.code, f.cell_id) for f in findings]


def test_every_rule_is_tested_here(fmt):
    """Rules within one year are tested here; the cross-year rules in test_years.py."""
    tested = {"O1", "I1", "I2", "I4", "I5-wan", "I5-wan-town", "I5-wan-county", "I5-count-town", "I9", "I9b", "I10"}
    tested |= {"fee-uncollected"}  # in test_draft_publish.py
    assert {r.code for r in fmt.rules if not r.cross_year} == tested
    assert {r.code for r in fmt.rules if r.cross_year} == {"carryover-mismatch", "valid-continuity", "jump-up", "jump-down"}


def test_o1_pass_and_fail(fmt):
    ok = make_report(fmt, **{"t3__r1__np": 5, "t3__r2__np": 1, "t3__r3_1__np": 4, "t3__r4__np": 2})
    assert run_rule(rule(fmt, "O1"), fmt, ok) == []
    bad = make_report(fmt, **{"t3__r1__np": 5, "t3__r2__np": 1, "t3__r3_1__np": 4, "t3__r4__np": 1})
    found = run_rule(rule(fmt, "O1"), fmt, bad)
    assert codes(found) == [("O1", "t3.r3_7.np")]  # the 总计 column is not reported again
    f = found[0]
    assert f.cell == "D30" and f.sheet == "表三"
    assert f.message == "自然人列：第一项＋第二项 = 6，第三项（七）总计＋第四项 = 5，相差1。"
    # pinned to D30: what （七）总计 shows and what it would have to be for the column to balance
    assert (f.found, f.expected, f.delta) == (4, 5, -1)
    assert f.severity == "错误"


def test_o1_total_column_reported_when_only_it_fails(fmt):
    # impossible with derived totals, but a published table can break only in 总计
    rep = make_report(fmt)
    rep.values["t3.r1.tot"] = 3
    found = run_rule(rule(fmt, "O1"), fmt, rep)
    assert codes(found) == [("O1", "t3.r3_7.tot")]
    assert found[0].message.startswith("总计列：")


def test_o1_missing_counts_as_zero(fmt):
    rep = make_report(fmt, **{"t3__r1__np": 2, "t3__r3_1__np": 2})
    rep.values["t3.r2.np"] = None
    assert run_rule(rule(fmt, "O1"), fmt, rep) == []
    rep.values["t3.r4.np"] = None
    rep.values["t3.r3_1.np"] = None
    rep.values.update(derive_totals(fmt, {c.id: rep.values.get(c.id) for c in fmt.inputs}))
    assert codes(run_rule(rule(fmt, "O1"), fmt, rep)) == [("O1", "t3.r3_7.np")]


def test_i1_cached_result_total(fmt):
    rep = make_report(fmt, cached={"t3.r3_7.biz": 4}, **{"t3__r3_1__biz": 2, "t3__r3_4_1__biz": 1})
    found = run_rule(rule(fmt, "I1"), fmt, rep)
    assert codes(found) == [("I1", "t3.r3_7.biz")]
    assert found[0].message == "表中（七）总计为4，按（一）至（六）各项合计应为3，相差1。"
    assert found[0].cell == "E30"


def test_i1_skips_when_no_cached_value(fmt):
    rep = make_report(fmt, cached={"t3.r3_7.np": None}, **{"t3__r3_1__np": 2})
    assert run_rule(rule(fmt, "I1"), fmt, rep) == []


def test_i2_row_total(fmt):
    rep = make_report(fmt, cached={"t3.r1.tot": 0}, **{"t3__r1__np": 1, "t3__r1__oth": 2})
    found = run_rule(rule(fmt, "I2"), fmt, rep)
    assert codes(found) == [("I2", "t3.r1.tot")]
    assert found[0].message == "表中总计为0，按自然人及法人或其他组织各列合计应为3，相差3。"
    assert found[0].cell == "J7"
    assert run_rule(rule(fmt, "I2"), fmt, make_report(fmt, **{"t3__r1__np": 1})) == []


def test_i4_table4_totals(fmt):
    rep = make_report(fmt, cached={"t4.r1.rv_tot": 0}, **{"t4__r1__rv_main": 10, "t4__r1__rv_corr": 1})
    found = run_rule(rule(fmt, "I4"), fmt, rep)
    assert codes(found) == [("I4", "t4.r1.rv_tot")]
    assert found[0].message == "表中总计为0，按结果维持、结果纠正、其他结果、尚未审结合计应为11，相差11。"
    assert found[0].cell == "E7"
    ok = make_report(fmt, **{"t4__r1__as_pend": 3})
    assert run_rule(rule(fmt, "I4"), fmt, ok) == []


def test_i5_wan_absurd_amount(fmt):
    assert run_rule(rule(fmt, "I5-wan"), fmt, make_report(fmt, **{"t2__fees__amt": 7730.28})) == []
    found = run_rule(rule(fmt, "I5-wan"), fmt, make_report(fmt, **{"t2__fees__amt": 2_500_000}))
    assert codes(found) == [("I5-wan", "t2.fees.amt")]
    assert "是否误用元为单位" in found[0].message and found[0].severity == "警告"
    assert found[0].cell == "B17"


def test_i5_wan_town_only_for_townships(fmt):
    town = make_report(fmt, unit_type="苏木", **{"t2__fees__amt": 12000})
    found = run_rule(rule(fmt, "I5-wan-town"), fmt, town)
    assert codes(found) == [("I5-wan-town", "t2.fees.amt")]
    want = "乡镇（街道、苏木）收费金额12000万元超过1000万元，是否误用元为单位？如填的是元，可能应为1.2（万元）。"
    assert found[0].message == want
    assert (found[0].found, found[0].expected) == (12000, 1.2)  # 应为: the entry read as 元, in 万元 (not the bound)
    dept = make_report(fmt, unit_type="县级部门", **{"t2__fees__amt": 12000})
    assert run_rule(rule(fmt, "I5-wan-town"), fmt, dept) == []
    missing = make_report(fmt, unit_type="苏木")
    missing.values["t2.fees.amt"] = None
    assert run_rule(rule(fmt, "I5-wan-town"), fmt, missing) == []  # skip_if_any


def test_i5_wan_county(fmt):
    found = run_rule(rule(fmt, "I5-wan-county"), fmt, make_report(fmt, unit_type="县级部门", **{"t2__fees__amt": 35000}))
    assert codes(found) == [("I5-wan-county", "t2.fees.amt")] and "1亿元" in found[0].message
    assert run_rule(rule(fmt, "I5-wan-county"), fmt, make_report(fmt, unit_type="县级部门", **{"t2__fees__amt": 86.35})) == []
    assert run_rule(rule(fmt, "I5-wan-county"), fmt, make_report(fmt, unit_type="市级政府", **{"t2__fees__amt": 35000})) == []


def test_i5_count_town(fmt):
    found = run_rule(rule(fmt, "I5-count-town"), fmt, make_report(fmt, unit_type="镇", **{"t2__license__n": 1460000}))
    assert codes(found) == [("I5-count-town", "t2.license.n")]
    assert found[0].message == "件数1460000超过100000，对乡镇（街道、苏木）明显偏大，是否多输入了数字？"
    assert (found[0].cell, found[0].delta) == ("B10", 1360000)
    blank = make_report(fmt, unit_type="镇", **{"t2__license__n": 1460000})
    blank.values["t2.license.n"] = None
    assert run_rule(rule(fmt, "I5-count-town"), fmt, blank) == []  # skip_if_any
    assert run_rule(rule(fmt, "I5-count-town"), fmt, make_report(fmt, unit_type="县级部门", **{"t2__license__n": 1460000})) == []


def test_i9_repealed_more_than_valid_plus_made(fmt):
    found = run_rule(rule(fmt, "I9"), fmt, make_report(fmt, **{"t2__norm__repealed": 5, "t2__norm__valid": 2}))
    assert codes(found) == [("I9", "t2.norm.repealed")]
    assert found[0].message == "本年废止5件，多于现行有效件数与本年制发件数之和2件。"
    assert found[0].delta == 3
    ok = make_report(fmt, **{"t2__norm__repealed": 2, "t2__norm__valid": 1, "t2__norm__made": 1})
    assert run_rule(rule(fmt, "I9"), fmt, ok) == []
    blank = make_report(fmt, **{"t2__norm__repealed": 1})
    blank.values["t2.norm.valid"] = blank.values["t2.norm.made"] = None  # missing counts 0: 1 > 0 is reported
    assert codes(run_rule(rule(fmt, "I9"), fmt, blank)) == [("I9", "t2.norm.repealed")]


def test_i9b_made_more_than_valid_plus_repealed(fmt):
    implausible = {"t2__norm__made": 30, "t2__norm__repealed": 10, "t2__norm__valid": 1}
    found = run_rule(rule(fmt, "I9b"), fmt, make_report(fmt, **implausible))
    assert codes(found) == [("I9b", "t2.norm.made")]
    assert found[0].message == "本年制发30件，多于现行有效件数与本年废止件数之和11件。"
    assert found[0].delta == 19
    for made, repealed, valid in ((3, 0, 101), (5, 5, 0), (0, 0, 0)):  # still in force, or repealed the same year
        ok = make_report(fmt, **{"t2__reg__made": made, "t2__reg__repealed": repealed, "t2__reg__valid": valid})
        assert run_rule(rule(fmt, "I9b"), fmt, ok) == []


@pytest.mark.parametrize(
    "unit_type,expected",
    [
        ("镇", 1),
        ("街道", 1),
        ("县级部门", 1),
        ("县级政府", 1),
        ("市级部门", 1),
        ("省级部门", 1),
        ("市级政府", 0),
        ("国务院部门", 0),
    ],
)
def test_i10_rules_only_for_units_without_power(fmt, unit_type, expected):
    found = run_rule(rule(fmt, "I10"), fmt, make_report(fmt, unit_type=unit_type, **{"t2__reg__valid": 6}))
    assert len(found) == expected
    if found:
        assert found[0].message == f"本单位类型为{unit_type}，没有规章制定权，但规章一栏填了6件。"
        assert "立法法" in rule(fmt, "I10").basis and found[0].cell == "D6" and found[0].delta == 6
    missing = make_report(fmt, unit_type=unit_type)
    missing.values["t2.reg.valid"] = None
    assert run_rule(rule(fmt, "I10"), fmt, missing) == []  # skip_if_any: a blank is not a 规章


def test_overwritten_total_is_reported_once(fmt):
    from toolkit.findings import make

    rep = make_report(fmt, cached={"t3.r1.tot": 5}, **{"t3__r1__np": 3, "t3__r3_1__np": 3})
    rep.findings.append(make("formula-overwritten", where=fmt.cells["t3.r1.tot"], found=5))
    assert [f.code for f in run_rules(fmt, rep)] == []


def test_fingerprint_is_stable(fmt):
    rep = make_report(fmt, **{"t3__r1__np": 1})
    a = run_rules(fmt, rep)
    b = run_rules(fmt, make_report(fmt, **{"t3__r1__np": 1}))
    assert [f.fingerprint for f in a] == [f.fingerprint for f in b] and a


def test_expression_parser(fmt):
    rep = make_report(fmt, **{"t3__r3_1__np": 2, "t3__r3_6_3__np": 3, "t3__r3_7__np": 0})
    assert evaluate("sum(t3.r3_[1-6]*.np)", fmt, rep).value == 5
    assert evaluate("t3.r3_1.np - 1 + 0.5", fmt, rep).value == 1.5
    assert evaluate("parts(t3.r3_7.np)", fmt, rep).value == 5
    with pytest.raises(ValueError):
        evaluate("t3.r1.np * 2", fmt, rep)


def test_compiled_rules_live_on_the_format(fmt, tmp_path):
    """Each rule is parsed once per loaded format and its check generated once, both kept on the
    Format itself (no module dictionary keyed by format id): a definition loaded again — here a copy
    whose O1 is changed — gets its own."""
    import shutil

    from toolkit.spec import load_format, templates_dir

    made = fmt.compiled["O1"]
    assert fmt.compiled["O1"] is made and made.check is made.check
    assert [r.code for r in fmt.rules] == list(fmt.compiled)
    copy = tmp_path / fmt.source
    shutil.copy(templates_dir() / fmt.source, copy)
    text = copy.read_text(encoding="utf-8")
    o1 = text.index('code = "O1"')
    right = text.index("right = ", o1)
    end = text.index("\n", right)
    assert text[end - 1] == '"'
    copy.write_text(text[: end - 1] + ' + 1"' + text[end:], encoding="utf-8")  # O1 now demands one more
    other = load_format(copy)
    assert other.compiled["O1"] is not made and other.compiled["O1"].instances != made.instances
    rep = make_report(fmt)
    assert not [f for f in run_rules(fmt, rep) if f.code == "O1"]
    assert [f for f in run_rules(other, rep) if f.code == "O1"]


# ---------------------------------------------------------------- kinds (issue 27)
MUST_CORRECT = {"O1", "I1", "I2", "I4"}  # 勾稽 and totals: no 说明 makes them acceptable
EXPLAINABLE = {"I5-wan", "I5-wan-town", "I5-wan-county", "I5-count-town", "I9", "I9b", "I10", "fee-uncollected"}
EXPLAINABLE |= {"carryover-mismatch", "valid-continuity", "jump-up", "jump-down"}


def test_every_rule_and_check_has_its_kind():
    from toolkit.spec import KINDS, checks, formats

    for f in formats().values():
        kinds = {r.code: r.kind for r in f.rules}
        assert set(kinds.values()) <= set(KINDS)
        assert {c for c, k in kinds.items() if k == "强制性"} == MUST_CORRECT & set(kinds), f.id
        assert {c for c, k in kinds.items() if k == "核实性"} == EXPLAINABLE & set(kinds), f.id
    cat = checks()
    assert cat["formula-overwritten"].kind == cat["protection-removed"].kind == cat["not-a-number"].kind == "强制性"
    # a 警告 or 提示 is always explainable: only an 错误 can be 强制性
    assert all(c.kind == "核实性" for c in cat.values() if c.severity != "错误")
    assert all(c.kind in KINDS for c in cat.values())


def test_findings_carry_their_kind(fmt):
    from toolkit.findings import Finding, make

    bad = make_report(fmt, **{"t3__r1__np": 5, "t3__r3_1__np": 4})
    last = make_report(fmt, **{"t3__r4__np": 2})
    bad.previous = last
    found = {f.code: f for f in run_rules(fmt, bad) + run_rule(rule(fmt, "carryover-mismatch"), fmt, bad)}
    assert found["O1"].kind == "强制性" and found["carryover-mismatch"].kind == "核实性"
    assert make("file-empty").kind == "强制性" and make("value-blank", count=1, cells="B6").kind == "核实性"
    # stored before kinds existed (an archive of issue 26): rebuilt with the catalogue's kind
    for f in found.values():
        old = {k: v for k, v in f.to_dict().items() if k != "kind"}
        assert Finding(**old).kind == f.kind


def test_a_wrong_kind_is_refused_at_load(tmp_path):
    from toolkit.errors import SpecError
    from toolkit.spec import load_checks, load_format, templates_dir

    src = (templates_dir() / "zfxxgk-2021.toml").read_text(encoding="utf-8")
    bad = tmp_path / "bad.toml"
    bad.write_text(src.replace('kind = "核实性"', 'kind = "可以商量"', 1), encoding="utf-8")
    with pytest.raises(SpecError, match="kind"):
        load_format(bad)
    no_kind = tmp_path / "old.toml"  # a definition without kinds: 错误 → 强制性, others → 核实性
    no_kind.write_text(
        "\n".join(x for x in src.split("\n") if not x.startswith(('kind = "强制性', 'kind = "核实性'))), encoding="utf-8"
    )
    kinds = {r.code: r.kind for r in load_format(no_kind).rules}
    assert kinds["O1"] == "强制性" and kinds["I9"] == "核实性" and kinds["carryover-mismatch"] == "强制性"
    checks_bad = tmp_path / "checks.toml"
    checks_bad.write_text(
        '[x]\nseverity = "错误"\nkind = "随意"\ntitle = "t"\nmessage = "m"\ninstruction = "i"\n', encoding="utf-8"
    )
    with pytest.raises(SpecError, match="kind"):
        load_checks(checks_bad)
