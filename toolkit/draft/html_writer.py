"""`Document` model → a clean web page with Jinja2 (autoescaped).

What an office pastes into its website system: real `<table>`s with `rowspan`/`colspan`
exactly as the format definition merges them, `<th scope>` for every label so a screen
reader can name each figure, and no scripts. The styles are inline (`style=` on each element),
because a website's editor keeps the attributes of what is pasted but often drops a `<style>`
element; the part to copy is the `<div class="nianbao-report">` between two marked comments.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import __version__
from ..fileio import atomic_write_text
from .model import Document, Paragraph, Table, TableCell
from .written import mark_html

TEMPLATES = Path(__file__).with_name("templates")

_SERIF = "FangSong,仿宋,仿宋_GB2312,STFangsong,'Noto Serif CJK SC',serif"
_SONG = "SimSun,宋体,'Noto Serif CJK SC',serif"
_CELL = "border:1px solid #333;padding:0.3em 0.35em;vertical-align:middle;font-weight:normal;"
# Inline styles of the fragment (CSS, not wording): borders on every cell, so a pasted table keeps its
# grid; short headings (总计, 其他…) and figures never wrap, so no column shrinks to one character.
CSS = {
    "body": "margin:0;background:#fff;",
    "report": "max-width:52em;margin:0 auto;padding:1.5em 1em 3em;color:#111;background:#fff;"
    f"font-family:{_SERIF};font-size:16px;line-height:1.9;",
    "h1": f"font-family:方正小标宋简体,{_SONG};font-size:1.6em;font-weight:normal;text-align:center;line-height:1.5;"
    "margin:0.5em 0 1em;",
    "h2": "font-family:SimHei,黑体,'Noto Sans CJK SC',sans-serif;font-size:1em;font-weight:normal;text-indent:2em;"
    "margin:0.6em 0 0.2em;",
    "h3": "font-family:KaiTi,楷体,楷体_GB2312,STKaiti,serif;font-size:1em;font-weight:normal;text-indent:2em;"
    "margin:0.4em 0 0.2em;",
    "p": "text-indent:2em;text-align:justify;margin:0 0 0.3em;",
    "signoff": "text-align:right;margin:0 2em 0.3em 0;",
    "mark": "background:#ffef5c;color:#000;",
    "warning": "color:#b00000;font-weight:bold;",
    "table": f"border-collapse:collapse;width:100%;margin:0.5em 0 1.2em;font-family:{_SONG};font-size:13px;line-height:1.4;",
    "th": _CELL + "text-align:center;",
    "th_short": _CELL + "text-align:center;white-space:nowrap;",
    "th_row": _CELL + "text-align:left;",
    "th_group": _CELL + "text-align:center;",
    "td": _CELL + "text-align:center;white-space:nowrap;",
}


def _widths(table: Table) -> list[str]:
    """Column widths in % of the table, as the Word draft has them (row labels wide enough)."""
    from .docx_writer import column_widths

    mm = column_widths(table, 156.0)
    return [f"{100 * w / sum(mm):.1f}" for w in mm]


def _rows(cells: list[TableCell], first: int, last: int) -> list[list[TableCell]]:
    """Anchor cells of rows first..last, each row in column order (covered positions are omitted)."""
    return [sorted((c for c in cells if c.row == r), key=lambda c: c.col) for r in range(first, last + 1)]


def _view(doc: Document) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    label = ""
    n = 0
    for b in doc.blocks:
        if isinstance(b, Paragraph):
            item: dict[str, Any] = {"style": b.style, "runs": b.runs}
            if b.style == "heading1":
                n += 1
                label = item["id"] = f"section-{n}"
            out.append(item)
        elif isinstance(b, Table):
            cells = list(b.cells)
            out.append(
                {
                    "table": b,
                    "label": label,
                    "widths": _widths(b),
                    "head": _rows(cells, 1, b.header_rows),
                    "body": _rows(cells, b.header_rows + 1, b.n_rows),
                }
            )
    return out


def render_html(doc: Document) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(("html", "j2")),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    page = env.get_template("report.html.j2").render(
        title=doc.title, unit=doc.unit_name, year=doc.year, blocks=_view(doc), version=__version__, css=CSS
    )
    return mark_html(page)


def write_html(doc: Document, path: Path) -> Path:
    """Write the page atomically, UTF-8 (declared in the page)."""
    atomic_write_text(Path(path), render_html(doc))
    return Path(path)
