"""`import nianbao` — the library under the `nianbao` command line.

The code lives in the ``toolkit`` package (the project's layout); this module is its public face, taken
from ``toolkit.api`` (the one seam the command line and the web page use too):
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
    ConsolidateOptions,
    Finding,
    NianbaoError,
    Refused,
    Report,
    Roster,
    Summary,
    Unit,
    as_roster,
    audit,
    check,
    check_batch,
    consolidate,
    current_format,
    formats,
    import_published,
    load_roster,
    to_dataframe,
    write_annotated,
    write_audit,
    write_summary,
    write_template,
)


def __getattr__(name: str):
    """The archive (SQLAlchemy) is imported only when asked for; like every name here, from toolkit.api."""
    if name in ("Archive", "ArchiveError"):
        import toolkit.api

        return getattr(toolkit.api, name)
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
