"""`import nianbao` — the library under the `nianbao` command line.

The code lives in the ``toolkit`` package (the project's layout); this module is its public face:
the functions a notebook, a script or the web page call. Each returns complete, plain objects
(a ``Report`` holds every cell id of the format with its value; blank and unknown kept apart).

    import nianbao
    reports = nianbao.check(["samples/returns"], roster="samples/roster.csv", year=2025)
    summary = nianbao.consolidate(reports, "samples/roster.csv", 2025)
    nianbao.write_summary(summary, "输出/汇总.xlsx")
    df = nianbao.to_dataframe(reports)   # needs pandas

    with nianbao.Archive.open("nianbao.db") as db:   # the archive across years (SQLite or PostgreSQL)
        frame = db.export_frame([2024, 2025])
"""

from __future__ import annotations

from toolkit import __version__
from toolkit.api import (
    as_roster,
    audit,
    check,
    check_batch,
    consolidate,
    to_dataframe,
    write_annotated,
    write_audit,
    write_summary,
    write_template,
)
from toolkit.consolidate import ConsolidateOptions, Refused, Summary
from toolkit.errors import NianbaoError
from toolkit.findings import Finding
from toolkit.published.importer import import_published
from toolkit.report import Report
from toolkit.roster import Roster, Unit, load_roster
from toolkit.spec import current_format, formats


def __getattr__(name: str):
    """The archive (SQLAlchemy) is imported only when asked for."""
    if name in ("Archive", "ArchiveError"):
        import toolkit.archive

        return getattr(toolkit.archive, name)
    raise AttributeError(name)


__all__ = [
    "__version__",
    "Archive",
    "ArchiveError",
    "as_roster",
    "audit",
    "check",
    "check_batch",
    "consolidate",
    "ConsolidateOptions",
    "current_format",
    "formats",
    "Finding",
    "import_published",
    "load_roster",
    "NianbaoError",
    "Refused",
    "Report",
    "Roster",
    "Summary",
    "to_dataframe",
    "Unit",
    "write_annotated",
    "write_audit",
    "write_summary",
    "write_template",
]
