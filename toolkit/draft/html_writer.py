"""`Document` model → a clean web page with Jinja2 (autoescaped).

What an office pastes into its website system: real `<table>`s with `rowspan`/`colspan`
exactly as the format definition merges them, `<th scope>` for every label so a screen
reader can name each figure, one `<style>` block scoped to `.nianbao-report`, no
`style=` attributes and no scripts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .. import __version__
from ..fileio import atomic_write_text
from .model import Document, Paragraph, Table, TableCell

TEMPLATES = Path(__file__).with_name("templates")


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
                    "head": _rows(cells, 1, b.header_rows),
                    "body": _rows(cells, b.header_rows + 1, b.n_rows),
                }
            )
    return out


def render_html(doc: Document) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES)),
        autoescape=select_autoescape(("html", "j2", "css")),
        undefined=StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template("report.html.j2").render(title=doc.title, blocks=_view(doc), version=__version__)


def write_html(doc: Document, path: Path) -> Path:
    """Write the page atomically, UTF-8 (declared in the page)."""
    atomic_write_text(Path(path), render_html(doc))
    return Path(path)
