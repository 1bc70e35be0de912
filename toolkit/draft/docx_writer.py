"""`Document` model → Word (.docx) with python-docx.

Page and type follow the habits of Chinese government documents (GB/T 9704): A4, body in
仿宋 三号 with a fixed 28 pt line, 一、 headings in 黑体, （一） headings in 楷体, title in
小标宋 二号. A font a computer lacks is substituted by Word/WPS/LibreOffice, so the names
are those an office machine has. A table too wide for a portrait page would get a landscape
section (表四's 15 columns fit, with two-line headings, as in most published reports). Where python-docx
has no API (East Asian font name, repeated header rows, page-number field, document
language) the element is added through python-docx's own oxml helpers — no XML is written
by hand.
"""

from __future__ import annotations

from pathlib import Path

from ..fileio import atomic_write_bytes
from .model import PLACEHOLDER, WARNING, Document, Paragraph, Table

BODY_FONT, HEADING1_FONT, HEADING2_FONT, TITLE_FONT, TABLE_FONT = "仿宋_GB2312", "黑体", "楷体_GB2312", "方正小标宋简体", "宋体"
LATIN_FONT = "Times New Roman"
BODY_PT, TITLE_PT, LINE_PT = 16, 22, 28
PORTRAIT_MARGINS_MM = (37, 35, 28, 26)  # top, bottom, left, right (GB/T 9704)
LANDSCAPE_MARGINS_MM = (26, 26, 30, 30)
MIN_COL_MM = 9.5  # two characters of 9 pt and the cell margins: narrower columns need a landscape page
MIN_ROW_MM, ROOMY_ROW_MM = 5.5, 7
TALL_TABLE_ROWS = 20  # taller tables get compact rows, so that 表三 fits one page


def _fonts(style, east_asian: str, size_pt: float) -> None:
    """Set the Latin and the East Asian font of a style; drop theme fonts, which would otherwise win."""
    from docx.oxml.ns import qn
    from docx.shared import Pt

    style.font.name = LATIN_FONT
    style.font.size = Pt(size_pt)
    rpr = style.element.get_or_add_rPr()
    rfonts = rpr.get_or_add_rFonts()
    rfonts.set(qn("w:eastAsia"), east_asian)
    for theme in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        rfonts.attrib.pop(qn(theme), None)


def _language(style) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    rpr = style.element.get_or_add_rPr()
    lang = OxmlElement("w:lang")
    lang.set(qn("w:val"), "zh-CN")
    lang.set(qn("w:eastAsia"), "zh-CN")
    rpr.append(lang)


def _styles(d) -> dict[str, object]:
    """Normal, headings and title as named styles, so the office can restyle the whole report."""
    from docx.enum.style import WD_STYLE_TYPE
    from docx.enum.text import WD_ALIGN_PARAGRAPH, WD_LINE_SPACING
    from docx.shared import Pt, RGBColor

    normal = d.styles["Normal"]
    _fonts(normal, BODY_FONT, BODY_PT)
    _language(normal)
    pf = normal.paragraph_format
    pf.first_line_indent = Pt(2 * BODY_PT)
    pf.line_spacing_rule, pf.line_spacing = WD_LINE_SPACING.EXACTLY, Pt(LINE_PT)
    pf.space_before = pf.space_after = Pt(0)
    pf.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    pf.widow_control = True

    def heading(name: str, font: str) -> object:
        st = d.styles[name]
        _fonts(st, font, BODY_PT)
        st.font.bold = False
        st.font.italic = False
        st.font.color.rgb = RGBColor(0, 0, 0)
        f = st.paragraph_format
        f.first_line_indent = Pt(2 * BODY_PT)
        f.line_spacing_rule, f.line_spacing = WD_LINE_SPACING.EXACTLY, Pt(LINE_PT)
        f.space_before = f.space_after = Pt(0)
        f.keep_with_next = True
        return st

    title = d.styles.add_style("年报标题", WD_STYLE_TYPE.PARAGRAPH)
    title.base_style = normal
    _fonts(title, TITLE_FONT, TITLE_PT)
    tf = title.paragraph_format
    tf.alignment = WD_ALIGN_PARAGRAPH.CENTER
    tf.first_line_indent = Pt(0)
    tf.line_spacing_rule, tf.line_spacing = WD_LINE_SPACING.EXACTLY, Pt(36)
    tf.space_after = Pt(LINE_PT)
    cell = d.styles.add_style("年报表格", WD_STYLE_TYPE.PARAGRAPH)
    cell.base_style = normal
    _fonts(cell, TABLE_FONT, 9)
    cf = cell.paragraph_format
    cf.first_line_indent = Pt(0)
    cf.line_spacing = 1.0
    cf.alignment = WD_ALIGN_PARAGRAPH.CENTER
    signoff = d.styles.add_style("年报落款", WD_STYLE_TYPE.PARAGRAPH)
    signoff.base_style = normal
    sf = signoff.paragraph_format
    sf.alignment = WD_ALIGN_PARAGRAPH.RIGHT
    sf.first_line_indent = Pt(0)
    sf.right_indent = Pt(4 * BODY_PT)  # GB/T 9704: the sign-off ends four characters from the right
    return {
        "title": title,
        "signoff": signoff,
        "heading1": heading("Heading 1", HEADING1_FONT),
        "heading2": heading("Heading 2", HEADING2_FONT),
        "body": normal,
        "warning": normal,
        "cell": cell,
    }


def _page(section, landscape: bool) -> None:
    from docx.enum.section import WD_ORIENT
    from docx.shared import Mm

    section.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT
    section.page_width, section.page_height = (Mm(297), Mm(210)) if landscape else (Mm(210), Mm(297))
    top, bottom, left, right = LANDSCAPE_MARGINS_MM if landscape else PORTRAIT_MARGINS_MM
    section.top_margin, section.bottom_margin = Mm(top), Mm(bottom)
    section.left_margin, section.right_margin = Mm(left), Mm(right)
    section.footer_distance = Mm(18)


def _page_number(section, style) -> None:
    """'— 1 —' centred in the footer (a PAGE field, so Word and LibreOffice count)."""
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn
    from docx.shared import Pt

    p = section.footer.paragraphs[0]
    p.style = style
    p.alignment = WD_ALIGN_PARAGRAPH.CENTER
    p.add_run("— ").font.size = Pt(14)
    field = OxmlElement("w:fldSimple")
    field.set(qn("w:instr"), "PAGE")
    run = p.add_run()
    run.font.size = Pt(14)
    field.append(run._r)
    p._p.append(field)
    p.add_run(" —").font.size = Pt(14)


MIN_TITLE_PT = 16  # 三号, the body's size, at the least; a longer title wraps (after '年') rather than shrinking further
TITLE_FILL = 0.95  # of the text width: room for a substituted font that runs a little wider


def title_width_em(text: str) -> float:
    """Width in em of a title line: a Chinese character is 1 em, a digit or Latin letter about half."""
    return sum(0.5 if ord(ch) < 0x2E80 else 1.0 for ch in text)


def title_size(text: str, text_mm: float) -> float | None:
    """The largest size from 二号 (22 pt) down to 三号 (16 pt) at which the title fits
    one line — a title on one line is what readers, and the importer, take for the title;
    None when even the smallest does not fit (then it wraps after '年')."""
    room_pt = text_mm / 25.4 * 72 * TITLE_FILL
    for size in (TITLE_PT, 21, 20, 19, 18, 17, MIN_TITLE_PT):
        if title_width_em(text) * size <= room_pt:
            return size
    return None


def _paragraph(d, block: Paragraph, styles: dict, text_mm: float) -> None:
    from docx.enum.text import WD_COLOR_INDEX
    from docx.shared import Pt, RGBColor

    p = d.add_paragraph(style=styles[block.style])
    size = title_size(block.text, text_mm) if block.style == "title" else None
    for r in block.runs:
        if block.style == "title" and size is None and r.text.startswith("年政府信息公开"):
            p.add_run("年").add_break()  # '…2025年' / '政府信息公开工作年度报告', not a lone '告'
            p.add_run(r.text[1:])
            continue
        run = p.add_run(r.text)
        if size is not None and size != TITLE_PT:
            run.font.size = Pt(size)
        if r.kind == PLACEHOLDER:
            run.font.highlight_color = WD_COLOR_INDEX.YELLOW
        elif r.kind == WARNING:
            run.font.bold = True
            run.font.color.rgb = RGBColor(0xC0, 0, 0)


def _row_flag(row, tag: str) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    el = OxmlElement(tag)
    el.set(qn("w:val"), "true")
    row._tr.get_or_add_trPr().append(el)


def _cant_split(row) -> None:
    """A row never breaks across pages (LibreOffice and WPS honour this row property)."""
    _row_flag(row, "w:cantSplit")


def _repeat_header(row) -> None:
    _row_flag(row, "w:tblHeader")


PT_MM = 0.3528  # a 1 pt CJK character is about this wide
CELL_MARGIN_MM = 1.0


def table_font_pt(table: Table) -> float:
    return 10.5 if table.n_cols <= 4 else 9


def column_widths(table: Table, text_mm: float) -> list[float]:
    """Widths in mm: the format's proportions, except that a column of row labels is widened
    until its longest label needs at most two lines (a label over three lines is hard to read
    and is often cut apart by PDF text extraction); the other columns share what is left."""
    char = table_font_pt(table) * PT_MM
    pad = 2 * CELL_MARGIN_MM
    floor = 2 * char + pad
    total = sum(table.col_widths)
    prop = [text_mm * w / total for w in table.col_widths]
    need = [0.0] * table.n_cols
    for c in table.cells:
        if c.role == "rowhead" and c.rowspan == 1 and c.colspan == 1:
            need[c.col - 1] = max(need[c.col - 1], -(-len(c.text) // 2) * char + pad)
    fixed = {i for i in range(table.n_cols) if need[i] > prop[i]}
    free = text_mm - sum(need[i] for i in fixed)
    share = sum(table.col_widths[i] for i in range(table.n_cols) if i not in fixed) or 1.0
    return [need[i] if i in fixed else max(floor, free * table.col_widths[i] / share) for i in range(table.n_cols)]


GRID_TWIPS = 72  # 1.27 mm: widths in whole multiples are exact both in twips and in 1/100 mm


def _twips(mm: float):
    """A column width that converts between Word's twips and LibreOffice's 1/100 mm without rounding,
    so that the sums of merged cells stay exact (LibreOffice's re-save may still move a merged
    header's edge by 1 twip: its own relative column units round)."""
    from docx.shared import Twips

    return Twips(max(1, round(mm / 25.4 * 1440 / GRID_TWIPS)) * GRID_TWIPS)


def _table_width(t, width: int) -> None:
    from docx.oxml.ns import qn

    tblw = t._tbl.tblPr.find(qn("w:tblW"))
    tblw.set(qn("w:type"), "dxa")
    tblw.set(qn("w:w"), str(width))


def _cell_margins(t) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    mar = OxmlElement("w:tblCellMar")
    for side in ("w:left", "w:right"):
        el = OxmlElement(side)
        el.set(qn("w:w"), str(round(CELL_MARGIN_MM / 25.4 * 1440)))  # twips
        el.set(qn("w:type"), "dxa")
        mar.append(el)
    look = t._tbl.tblPr.find(qn("w:tblLook"))  # the schema wants tblCellMar before tblLook (Word is strict)
    if look is not None:
        look.addprevious(mar)
    else:
        t._tbl.tblPr.append(mar)


def _table(d, table: Table, styles: dict, text_width_mm: float) -> None:
    from docx.enum.table import WD_CELL_VERTICAL_ALIGNMENT, WD_ROW_HEIGHT_RULE, WD_TABLE_ALIGNMENT
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.shared import Mm, Pt

    t = d.add_table(rows=table.n_rows, cols=table.n_cols)
    t.style = d.styles["Table Grid"]
    t.alignment = WD_TABLE_ALIGNMENT.CENTER
    t.autofit = False
    _cell_margins(t)
    widths = [_twips(w) for w in column_widths(table, text_width_mm)]
    _table_width(t, sum(w.twips for w in widths))
    for col, w in zip(t.columns, widths, strict=True):
        col.width = w
    for row in t.rows:
        for cell, w in zip(row.cells, widths, strict=True):
            cell.width = w
    size = table_font_pt(table)
    for tc in table.cells:  # merge first: a merged cell keeps the paragraphs of the cells it absorbed
        if tc.rowspan > 1 or tc.colspan > 1:
            t.cell(tc.row - 1, tc.col - 1).merge(t.cell(tc.row + tc.rowspan - 2, tc.col + tc.colspan - 2))
    for tc in table.cells:
        cell = t.cell(tc.row - 1, tc.col - 1)
        cell.vertical_alignment = WD_CELL_VERTICAL_ALIGNMENT.CENTER
        p = cell.paragraphs[0]
        p.style = styles["cell"]
        if tc.role == "rowhead" and tc.rowspan == 1:
            p.alignment = WD_ALIGN_PARAGRAPH.LEFT
        p.paragraph_format.keep_with_next = tc.row < table.n_rows  # Word keeps the table together; LibreOffice
        p.paragraph_format.keep_together = True  # and WPS need the page break before the heading (render_docx)
        run = p.add_run(tc.text)
        run.font.size = Pt(size)
    for i, row in enumerate(t.rows):
        row.height = Mm(MIN_ROW_MM if table.n_rows > TALL_TABLE_ROWS else ROOMY_ROW_MM)
        row.height_rule = WD_ROW_HEIGHT_RULE.AT_LEAST
        _cant_split(row)
        if i < table.header_rows:
            _repeat_header(row)


def _text_width(section) -> float:
    return (section.page_width - section.left_margin - section.right_margin) / 36000  # EMU → mm


def _properties(d, doc: Document) -> None:
    """Title, unit and year where file managers, search and the importer look (File → Properties);
    created/modified are now (python-docx's blank document would say 2013)."""
    from datetime import UTC, datetime

    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)  # written as UTC ('…Z')
    core = d.core_properties
    core.title = doc.title
    core.author = doc.unit_name
    core.subject = doc.title
    core.keywords = f"{doc.unit_name}; {doc.year}年; 政府信息公开工作年度报告; {doc.format_id}"
    core.category = f"{doc.year}年度"
    core.comments = f"{doc.unit_name} {doc.year}年度 政府信息公开工作年度报告（nianbao 生成的文稿）"
    core.language = "zh-CN"
    core.created = core.modified = now
    core.last_printed = now
    core.last_modified_by = "nianbao"
    core.revision = 1


def _body(d, doc: Document, styles: dict) -> None:
    from docx.enum.section import WD_SECTION
    from docx.shared import Pt

    section = d.sections[0]
    _page(section, landscape=False)
    _page_number(section, styles["cell"])
    landscape_now = False
    blocks = doc.blocks
    for i, block in enumerate(blocks):
        want = _wants_landscape(blocks, i)
        if want != landscape_now and i > 0:
            section = d.add_section(WD_SECTION.NEW_PAGE)
            _page(section, landscape=want)
            landscape_now = want
        if isinstance(block, Table):
            _table(d, block, styles, _text_width(section))
            d.add_paragraph(style=styles["cell"])  # a line of space below the table
        else:
            _paragraph(d, block, styles, _text_width(section))
            before = getattr(blocks[i - 1], "style", None) if i else None  # a Table has no style
            if block.style == "signoff" and before != "signoff":
                d.paragraphs[-1].paragraph_format.space_before = Pt(2 * LINE_PT)  # two blank lines above
            if _heads_table(blocks, i):
                # Each official table starts a page: LibreOffice and WPS ignore "keep with next" across
                # a table, and the office's own text above it will change the page breaks anyway.
                d.paragraphs[-1].paragraph_format.page_break_before = True


def _heads_table(blocks: list, i: int) -> bool:
    nxt = blocks[i + 1] if i + 1 < len(blocks) else None
    return isinstance(nxt, Table) and blocks[i].style == "heading1"


def render_docx(doc: Document) -> bytes:
    """The .docx bytes of ``doc``, marked with the digest of its body (written.py) so that a later
    draft can tell the file it wrote from one a person has edited."""
    from docx import Document as new_document

    from .written import mark_docx

    d = new_document()
    styles = _styles(d)
    _properties(d, doc)
    _body(d, doc, styles)
    return mark_docx(d)


def _too_wide(table: Table) -> bool:
    """Landscape only when the columns cannot fit a portrait page (表四's 15 columns do, with
    two-line headings, as in most published reports); the format's landscape flag is for printing the return."""
    width = 210 - PORTRAIT_MARGINS_MM[2] - PORTRAIT_MARGINS_MM[3]
    return table.n_cols * MIN_COL_MM > width


def _wants_landscape(blocks: list, i: int) -> bool:
    """A table too wide for portrait, and the heading just before it, go on a landscape page."""
    block = blocks[i]
    if isinstance(block, Table):
        return _too_wide(block)
    nxt = blocks[i + 1] if i + 1 < len(blocks) else None
    return block.style == "heading1" and isinstance(nxt, Table) and _too_wide(nxt)


def write_docx(doc: Document, path: Path) -> Path:
    """Write the .docx atomically (a crash never leaves half a report)."""
    atomic_write_bytes(Path(path), render_docx(doc))
    return Path(path)
