"""One seam for reading a workbook: bytes in, the workbook's facts and values out, or a
``ProbeProblem`` (a catalogue code) when it is not a usable workbook.

    guard   the zip guard: sniffing, limits before inflating, members inflated within their size,
            XML parsed or streamed with DTDs refused, the work bounds of a sheet
    parts   docProps, workbook, relationships, content types, hidden parts → ``Probe``
    scan    the careful scan: a worksheet part (or .ods content) streamed through lxml
    fast    the one optional fast reader: a worksheet part in the shape Excel, WPS, LibreOffice and
            this tool write, read with linear regular expressions, values as python-calamine gives them
    read    ``probe`` and ``open_workbook``: the entry, choosing the fast reader where it is certain

The careful path (``careful=True``: the XML parser, python-calamine, nothing remembered between
files) defines the semantics; the fast reader gives the same result or declines (returns None) and
the careful path reads the part. tests/test_read_paths.py proves them equal part by part.
"""

from .guard import (
    MAX_CELL_ELEMENTS,
    MAX_FILE_BYTES,
    MAX_FILLED,
    MAX_RATIO,
    Filled,
    ProbeProblem,
    open_zip,
    read_member,
    tool_sheets,
)
from .parts import Probe, claimed_properties, formula_risk
from .read import Book, open_workbook, probe
from .scan import typed_text

__all__ = [
    "MAX_CELL_ELEMENTS",
    "MAX_FILE_BYTES",
    "MAX_FILLED",
    "MAX_RATIO",
    "Book",
    "Filled",
    "Probe",
    "ProbeProblem",
    "claimed_properties",
    "formula_risk",
    "open_workbook",
    "open_zip",
    "probe",
    "read_member",
    "tool_sheets",
    "typed_text",
]
