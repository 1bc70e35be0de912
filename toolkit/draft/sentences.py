"""Chinese sentences built from the figures, as runs that remember their source cells.

The rules a careful writer follows: counts in 件, amounts in 万元/元 with only the decimals
that carry information, a zero said in words (未收到, 无…) instead of “0件，占0%”, shares
and year-on-year changes only where the base is not zero, and nothing phrased so that a
reader (or `nianbao import`'s narrative check) could take last year's figure for this
year's. Names of items (行政许可, 自然人, 本机关不掌握相关政府信息 …) are the labels of the
format definition, never typed again here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..report import Number, Report
from ..spec import Format
from .model import CHANGE, DATE, FIGURE, GROWTH, PLACEHOLDER, PREV_FIGURE, SHARE, TOTAL, Paragraph, Run

Runs = list[Run]


# ---------------------------------------------------------------- numbers


def number_text(v: Number | None, decimals: int = 4) -> str:
    """5 → '5', 3.5 → '3.5', 129.15 → '129.15', 0.1 + 0.2 → '0.3': no padding, no float noise."""
    if v is None:
        return "0"
    if float(v).is_integer():
        return str(int(v))
    return f"{float(v):.{decimals}f}".rstrip("0").rstrip(".")


def percent(part: float, whole: float) -> tuple[float, str]:
    """part/whole in % with one decimal — more only when one decimal would show 0 for a non-zero part,
    or 100 for a part smaller than the whole (1999 of 2000 is 99.95%, never 100%)."""
    exact = 100.0 * part / whole
    for places in (1, 2, 3, 4, 5, 6):
        shown = round(exact, places)
        if (shown or not part) and (shown < 100 or part >= whole):
            text = f"{shown:.{places}f}".rstrip("0").rstrip(".")
            return shown, text
    shown = int(exact * 10**6) / 10**6  # truncated: still below 100
    return shown, f"{shown:.6f}".rstrip("0").rstrip(".")


def label_tail(text: str) -> str:
    """'三、本年度办理结果 （三）不予公开 4.保护第三方合法权益' → '保护第三方合法权益'."""
    last = text.split(" ")[-1] if text else ""
    last = re.sub(r"^(?:[一二三四五六七八九十]+、|（[一二三四五六七八九十]+）|\d+\.)", "", last)
    return re.sub(r"（[^）]*）$", "", last) or last


# ---------------------------------------------------------------- context


@dataclass
class Ctx:
    fmt: Format
    report: Report
    prev: Report | None
    year: int
    subject: str  # 本机关 / 本苏木 / 市政府 / 全市
    agencies: str  # who is sued: 本机关 / 全市各级行政机关
    words: dict = field(default_factory=dict)  # the format's wording (wording.toml)

    def has(self, cid: str) -> bool:
        return cid in self.fmt.cells

    def val(self, cid: str) -> Number:
        return self.report.value(cid) if self.has(cid) else 0

    def prev_val(self, cid: str) -> Number | None:
        """Last year's value, or None when unknown (no report, cell missing or unreadable there)."""
        p = self.prev
        if p is None or cid in p.unknown or p.values.get(cid) is None:
            return None
        return p.values[cid]

    def prev_sum(self, cells: tuple[str, ...]) -> Number | None:
        values = [self.prev_val(c) for c in cells]
        return None if any(v is None for v in values) else _tidy(sum(values))  # type: ignore[arg-type]

    def now_sum(self, cells: tuple[str, ...]) -> Number:
        return _tidy(sum(self.val(c) for c in cells))

    def unit_of(self, cid: str) -> str:
        return self.fmt.kinds[self.fmt.cells[cid].kind].unit

    def row_name(self, cid: str) -> str:
        return label_tail(self.fmt.cells[cid].row_label)

    def col_name(self, cid: str) -> str:
        return label_tail(self.fmt.cells[cid].col_label)

    def fig(self, cid: str) -> Runs:
        """The cell's value and its unit: '146' '件'."""
        v = self.val(cid)
        return [Run(number_text(v), FIGURE, (cid,), v), Run(self.unit_of(cid))]

    def total(self, cells: tuple[str, ...]) -> Runs:
        """The sum of several cells and its unit: a subtotal the tables do not print."""
        v = self.now_sum(cells)
        return [Run(number_text(v), TOTAL, cells, v), Run(self.unit_of(cells[0]))]

    def year_run(self) -> Run:
        return Run(f"{self.year}年", DATE, value=self.year)

    def say(self, key: str) -> str:
        """A phrase of the wording file ([<format>.phrases])."""
        return self.words["phrases"][key]


def _tidy(v: Number) -> Number:
    return round(v, 6) if isinstance(v, float) else v


def text(s: str) -> Run:
    return Run(s)


def join(parts: list[Runs], sep: str) -> Runs:
    out: Runs = []
    for i, p in enumerate(parts):
        if i:
            out.append(Run(sep))
        out.extend(p)
    return out


def change(ctx: Ctx, cells: tuple[str, ...]) -> Runs | None:
    """'比上年增加6件、增长4.3%' / '比上年减少…、下降…%'; [] when unchanged; None without last year."""
    before, now = ctx.prev_sum(cells), ctx.now_sum(cells)
    if before is None:
        return None
    if now == before:
        return []
    delta = now - before
    size = _tidy(abs(delta))
    up = delta > 0
    runs = [text(ctx.say("up" if up else "down")), Run(number_text(size), CHANGE, cells, size), text(ctx.unit_of(cells[0]))]
    if before:
        shown, shown_text = percent(size, before)
        runs += [text(ctx.say("grow" if up else "fall")), Run(shown_text, GROWTH, cells, shown), text("%")]
    return runs


def compare(ctx: Ctx, cid: str) -> Runs:
    """One item: '，比上年增加6件、增长4.3%' / '，与上年持平'; nothing without last year."""
    runs = change(ctx, (cid,))
    if runs is None:
        return []
    return [text("，"), *runs] if runs else [text("，" + ctx.say("same"))]


def year_on_year(ctx: Ctx, items: list[tuple[str, tuple[str, ...]]]) -> Runs:
    """Several items: each change a clause of its own, the unchanged ones named together once:
    '行政许可处理决定比上年增加6件、增长4.3%；行政处罚、行政强制处理决定与上年持平'."""
    changed: list[Runs] = []
    same: list[str] = []
    for name, cells in items:
        runs = change(ctx, cells)
        if runs is None or (not runs and not ctx.now_sum(cells)):
            continue  # no last year, or nothing either year: nothing to compare
        if runs:
            changed.append([text(name), *runs])
        else:
            same.append(name)
    if same:
        changed.append([text("、".join(same) + ctx.say("same"))])
    return join(changed, "；")


def was(ctx: Ctx, cid: str) -> Runs:
    """For a figure that is zero this year: '（上年为3件）' when last year had some."""
    before = ctx.prev_val(cid)
    if not before:
        return []
    return [text(ctx.say("was")), Run(number_text(before), PREV_FIGURE, (cid,), before), text(ctx.unit_of(cid) + "）")]


def placeholder(guidance: str) -> Run:
    return Run(f"【请填写：{guidance}】", PLACEHOLDER)


def para(runs: Runs, style: str = "body") -> Paragraph:
    return Paragraph(tuple(r for r in runs if r.text), style)


def sentence(*parts: Runs) -> Runs:
    """Clauses joined into one sentence ending in '。' (empty clauses dropped)."""
    kept = [p for p in parts if p]
    return [*join(kept, "；"), text("。")] if kept else []


# ---------------------------------------------------------------- 一、总体情况 (its opening paragraph)


def overview(ctx: Ctx) -> list[Paragraph]:
    """A model opening for 一、总体情况 from the figures; the office rewrites it (the placeholder after it)."""
    new, done, review = "t3.r1.tot", "t3.r3_7.tot", "t4.r1.rv_tot"
    suits = tuple(c for c in ("t4.r1.ds_tot", "t4.r1.as_tot") if ctx.has(c))
    if not suits or not all(ctx.has(c) for c in (new, done, review)):
        return []
    runs = [ctx.year_run(), text(f"，{ctx.subject}" + ctx.say("overview_lead"))]
    if ctx.val(new):
        runs += [text(ctx.say("received")), *ctx.fig(new), text(ctx.say("done")), *ctx.fig(done)]
    elif ctx.val(done):
        runs += [text(ctx.say("none_new_done")), *ctx.fig(done)]
    else:
        runs += [text(ctx.say("none_received"))]
    if ctx.val(review) or ctx.now_sum(suits):
        runs += [text(ctx.say("overview_review")), *ctx.total((review,)), text(ctx.say("overview_suits")), *ctx.total(suits)]
    else:
        runs += [text("，" + ctx.say("no_appeals"))]
    return [para([*runs, text("。")])]


# ---------------------------------------------------------------- 主动公开 (表二)


def documents_clause(ctx: Ctx, row: str, always: bool) -> Runs:
    """规章 / 行政规范性文件: '制发…3件、废止1件，现行有效…21件'; zeros said in words."""
    made, rep, valid = (f"t2.{row}.{c}" for c in ("made", "repealed", "valid"))
    if not all(ctx.has(c) for c in (made, rep, valid)):
        return []
    name = ctx.row_name(made)
    if not (ctx.val(made) or ctx.val(rep) or ctx.val(valid)):
        return [text(ctx.say("documents_none").format(name=name))] if always else []
    changes: list[Runs] = []
    if ctx.val(made):
        changes.append([text(ctx.say("documents_made").format(name=name)), *ctx.fig(made)])
    if ctx.val(rep):
        changes.append([text(ctx.say("documents_repealed").format(name="" if changes else name)), *ctx.fig(rep)])
    runs = join(changes, "、") if changes else [text(ctx.say("documents_none").format(name=name))]
    if ctx.val(valid):
        runs += [text(ctx.say("documents_valid").format(name=name)), *ctx.fig(valid)]
    return runs


DECISIONS = ("t2.license.n", "t2.penalty.n", "t2.coercion.n")


def decisions_clause(ctx: Ctx) -> Runs:
    """'作出行政许可处理决定146件、行政处罚处理决定2件，无行政强制处理决定（上年行政强制3件）'."""
    cells = [c for c in DECISIONS if ctx.has(c)]
    if not cells:
        return []
    some = [c for c in cells if ctx.val(c)]
    none = [c for c in cells if not ctx.val(c)]
    parts: list[Runs] = []
    if some:
        items = [[text(ctx.say("decision").format(name=ctx.row_name(c))), *ctx.fig(c)] for c in some]
        parts.append([text(ctx.say("decided")), *join(items, "、")])
    if none:
        names = "、".join(ctx.row_name(c) for c in none)
        zero = [text(ctx.say("no_decisions").format(names=names))]
        for c in none:
            zero += was_named(ctx, c)
        parts.append(zero)
    return join(parts, "，")


def was_named(ctx: Ctx, cid: str) -> Runs:
    """'（上年行政强制3件）': last year's figure of one of several items that are zero this year."""
    before = ctx.prev_val(cid)
    if not before:
        return []
    return [
        text(ctx.say("was_named").format(name=ctx.row_name(cid))),
        Run(number_text(before), PREV_FIGURE, (cid,), before),
        text(ctx.unit_of(cid) + "）"),
    ]


def fees_clause(ctx: Ctx) -> Runs:
    cid = "t2.fees.amt"
    if not ctx.has(cid):
        return []
    name = ctx.row_name(cid)
    if not ctx.val(cid):
        return [text(ctx.say("none_of").format(name=name)), *was(ctx, cid)]
    return [text(name), *ctx.fig(cid)]


def active(ctx: Ctx) -> list[Paragraph]:
    facts = [
        documents_clause(ctx, "reg", False),
        documents_clause(ctx, "norm", True),
        decisions_clause(ctx),
        fees_clause(ctx),
    ]
    if not any(facts):
        return []
    items = [(ctx.say("decision").format(name=ctx.row_name(c)), (c,)) for c in DECISIONS if ctx.has(c) and ctx.val(c)]
    if ctx.has("t2.fees.amt") and ctx.val("t2.fees.amt"):
        items.append((ctx.row_name("t2.fees.amt"), ("t2.fees.amt",)))
    first = [ctx.year_run(), text(f"，{ctx.subject}"), *sentence(*facts)]
    return [para([*first, *sentence(year_on_year(ctx, items))])]


# ---------------------------------------------------------------- 依申请公开 (表三)

APPLICANT_COLS = ("np", "biz", "res", "ngo", "law", "oth")
RESULT_SINGLE = ("r3_1", "r3_2")  # 予以公开, 部分公开: one row each


def applicants_clause(ctx: Ctx) -> Runs:
    cells = [f"t3.r1.{c}" for c in APPLICANT_COLS if ctx.has(f"t3.r1.{c}") and ctx.val(f"t3.r1.{c}")]
    if not cells:
        return []
    if len(cells) == 1:
        return [text(ctx.say("all_by").format(name=ctx.col_name(cells[0])))]
    return [text(ctx.say("of_which")), *join([[text(ctx.col_name(c)), *ctx.fig(c)] for c in cells], "、")]


def _share(ctx: Ctx, cells: tuple[str, ...], total: str) -> Runs:
    shown, shown_text = percent(ctx.now_sum(cells), ctx.val(total))
    return [text(ctx.say("share")), Run(shown_text, SHARE, (*cells, total), shown), text("%")]


def _result_groups(ctx: Ctx) -> dict[str, list[str]]:
    """不予公开, 无法提供, 不予处理, 其他处理 → their rows that are not zero, in the table's order."""
    groups: dict[str, list[str]] = {}
    for c in ctx.fmt.sheet("t3").cells:
        if c.col_id == "tot" and re.fullmatch(r"r3_\d+_\d+", c.row_id) and ctx.val(c.id):
            groups.setdefault(label_tail(c.row_label.split(" ")[-2]), []).append(c.id)
    return groups


def results_clause(ctx: Ctx) -> Runs:
    """'本年度办结62件，其中予以公开33件，占53.2%；…；不予公开5件，占8.1%（保护第三方合法权益1件、…）'."""
    total = "t3.r3_7.tot"
    if not ctx.val(total):
        return [text(ctx.say("none_done"))]
    parts: list[Runs] = []
    for row in RESULT_SINGLE:
        cid = f"t3.{row}.tot"
        if ctx.has(cid) and ctx.val(cid):
            parts.append([text(ctx.row_name(cid)), *ctx.fig(cid), *_share(ctx, (cid,), total)])
    for group, cells in _result_groups(ctx).items():
        both = tuple(cells)
        amount = ctx.fig(cells[0]) if len(cells) == 1 else ctx.total(both)  # one row: its own cell
        head = [text(group), *amount, *_share(ctx, both, total)]
        if len(cells) == 1:
            parts.append([*head, text(ctx.say("all_are").format(name=ctx.row_name(cells[0])))])
        else:
            parts.append([*head, text("（"), *join([[text(ctx.row_name(c)), *ctx.fig(c)] for c in cells], "、"), text("）")])
    return [text(ctx.say("done_total")), *ctx.fig(total), text(ctx.say("of_which")), *join(parts, "；")]


def applications(ctx: Ctx) -> list[Paragraph]:
    new, carried, out = "t3.r1.tot", "t3.r2.tot", "t3.r4.tot"
    if not all(ctx.has(c) for c in (new, carried, out, "t3.r3_7.tot")):
        return []
    start = [ctx.year_run(), text(f"，{ctx.subject}")]
    if not ctx.val(new) and not ctx.val(carried):
        return [para([*start, text(ctx.say("none_received")), *was(ctx, new), text(ctx.say("none_carried"))])]
    if ctx.val(new):
        first = [*start, text(ctx.say("received")), *ctx.fig(new), *compare(ctx, new), *applicants_clause(ctx)]
    else:
        first = [*start, text(ctx.say("none_new")), *was(ctx, new)]
    if ctx.val(carried):
        first += [text(ctx.say("carried")), *ctx.fig(carried)]
    second = results_clause(ctx)
    if ctx.val(out):
        second += [text(ctx.say("carried_out")), *ctx.fig(out)]
    return [para([*first, text("。"), *second, text("。")])]


# ---------------------------------------------------------------- 行政复议、行政诉讼 (表四)

APPEAL_GROUPS = ("rv", "ds", "as")  # 行政复议, 未经复议直接起诉, 复议后起诉
OUTCOMES = ("main", "corr", "othr", "pend")


def outcome_list(ctx: Ctx, group: str) -> Runs:
    cells = [f"t4.r1.{group}_{o}" for o in OUTCOMES if ctx.has(f"t4.r1.{group}_{o}") and ctx.val(f"t4.r1.{group}_{o}")]
    return [text("（"), *join([[text(ctx.col_name(c)), *ctx.fig(c)] for c in cells], "、"), text("）")]


def _suits_clause(ctx: Ctx, tots: dict[str, str]) -> Runs:
    """'被提起政府信息公开行政诉讼3件，其中未经复议直接起诉2件（…）、复议后起诉1件（…）'."""
    suits = [g for g in ("ds", "as") if ctx.val(tots[g])]
    if not suits:
        return [text(ctx.say("no_suits"))]
    both = (tots["ds"], tots["as"])
    kind = {g: label_tail(ctx.fmt.cells[tots[g]].col_label.split(" ")[-2]) for g in suits}
    head = [text(ctx.say("suits")), *ctx.total(both)]
    if len(suits) == 1:
        return [*head, text(ctx.say("suits_all").format(name=kind[suits[0]])), *outcome_list(ctx, suits[0])]
    items = [[text(kind[g]), *ctx.fig(tots[g]), *outcome_list(ctx, g)] for g in suits]
    return [*head, text(ctx.say("of_which")), *join(items, "、")]


def appeals(ctx: Ctx) -> list[Paragraph]:
    tots = {g: f"t4.r1.{g}_tot" for g in APPEAL_GROUPS}
    if not all(ctx.has(c) for c in tots.values()):
        return []
    start = [ctx.year_run(), text(f"，{ctx.agencies}")]
    review = tots["rv"]
    if not any(ctx.val(c) for c in tots.values()):
        comparison = year_on_year(ctx, [(ctx.say("review_name"), (review,)), (ctx.say("suits_name"), (tots["ds"], tots["as"]))])
        return [para([*start, text(ctx.say("no_appeals_sentence")), *sentence(comparison)])]
    if ctx.val(review):
        first = [text(ctx.say("review")), *ctx.fig(review), *outcome_list(ctx, "rv")]
    else:
        first = [text(ctx.say("no_review"))]
    comparison = year_on_year(ctx, [(ctx.say("review_name"), (review,)), (ctx.say("suits_name"), (tots["ds"], tots["as"]))])
    return [para([*start, *sentence(first, _suits_clause(ctx, tots)), *sentence(comparison)])]


# ---------------------------------------------------------------- 六、其他需要报告的事项 (信息处理费)


def fee_sentence(ctx: Ctx, sheet_id: str) -> Runs:
    """The 信息处理费 statement in the words real reports use (wording.toml [fees]): notices, the amount
    notified and the amount collected, each only when there is one; a notice with nothing collected
    says so."""
    notices, notified, collected = f"{sheet_id}.notices.n", f"{sheet_id}.notice_amt.n", f"{sheet_id}.collected.n"
    n, a, c = ctx.val(notices), ctx.val(notified), ctx.val(collected)
    fees = ctx.words["fees"]
    start = [ctx.year_run(), text(f"，{ctx.subject}")]
    if not (n or a or c):
        return [*start, text(fees["none"])]
    told: list[Runs] = []
    if n:
        told.append([text(fees["notices"]), *ctx.fig(notices)])
    if a:
        told.append([text(fees["notified"]), *ctx.fig(notified)])
    runs = [*start, text(fees["basis"]), *join(told, "，")] if told else list(start)
    if c:
        return [*runs, text(fees["collected"] if told else fees["collected"].lstrip("，")), *ctx.fig(collected), text("。")]
    return [*runs, text(fees["not_collected"])]


def generic_sentence(ctx: Ctx, sheet_id: str) -> Runs:
    """Any other unpublished sheet: '项目：数值单位' for its non-zero cells."""
    cells = [c for c in ctx.fmt.sheet(sheet_id).cells if ctx.val(c.id)]
    if not cells:
        return []
    items = [[text(label_tail(c.row_label) + "："), *ctx.fig(c.id)] for c in cells]
    return [*join(items, "；"), text("。")]


def other(ctx: Ctx) -> list[Paragraph]:
    out = []
    for sheet in ctx.fmt.sheets:
        if sheet.published:
            continue
        ids = {c.id for c in sheet.cells}
        fee_ids = {f"{sheet.id}.notices.n", f"{sheet.id}.notice_amt.n", f"{sheet.id}.collected.n"}
        runs = fee_sentence(ctx, sheet.id) if fee_ids <= ids else generic_sentence(ctx, sheet.id)
        if runs:
            out.append(para(runs))
    return out


BUILDERS = {"overview": overview, "active": active, "applications": applications, "appeals": appeals, "other": other}


def subject_of(name: str, unit_type: str, level: str, self_words: dict) -> tuple[str, str]:
    """How the text names the reporting body, and who is sued, by level (wording.toml [self]):
    a summary 全市 / 全市各级行政机关; a people's government 市政府 / 区政府 (its own report);
    a township 本苏木 / 本街道 / 本镇 / 本乡; a department 本机关."""
    area = name.removesuffix("人民政府").removesuffix("办公室").removesuffix("办事处")
    last = area[-1:] if area and area[-1] in self_words["area_suffixes"] else ""
    if level != "填报单位":
        if not last:
            return self_words["summary_unknown"], self_words["summary_unknown_agencies"]
        return self_words["summary"].format(suffix=last), self_words["summary_agencies"].format(suffix=last)
    for suffix in self_words["township_suffixes"]:
        if area.endswith(suffix) or (unit_type == suffix and not area):
            word = self_words["township"].format(suffix=suffix)
            return word, word
    if unit_type in self_words["government_types"] and last:
        word = self_words["government"].format(suffix=last)
        return word, word
    return self_words["department"], self_words["department"]
