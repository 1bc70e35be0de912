"""`nianbao draft`: write the published 年报 (Word and web page) from checked figures.

    report = read_source(Path("宝力根苏木.xlsx"))          # a return or a summary, checked
    doc = build_document(report, fmt, previous, options)    # plain data: prose runs + tables
    write_docx(doc, Path("报告.docx")); write_html(doc, Path("报告.html"))
    placeholders(doc)                                       # what the office still has to write

`build_document` takes any `Report` — a return, a summary, or (later) a row of the archive —
so the source of the figures is not this package's business.
"""

from __future__ import annotations

from .build import DraftOptions, build_document, default_name, table_of
from .docx_writer import render_docx, write_docx
from .html_writer import render_html, write_html
from .model import Document, Paragraph, Pending, Run, Table, TableCell, placeholders
from .sources import carryover_notes, pending_in_file, read_previous, read_source

__all__ = [
    "Document",
    "DraftOptions",
    "Paragraph",
    "Pending",
    "Run",
    "Table",
    "TableCell",
    "build_document",
    "carryover_notes",
    "default_name",
    "pending_in_file",
    "placeholders",
    "read_previous",
    "read_source",
    "render_docx",
    "render_html",
    "table_of",
    "write_docx",
    "write_html",
]
