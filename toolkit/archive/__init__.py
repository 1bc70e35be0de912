"""The archive across years (SQLite by default, PostgreSQL for a shared server): rosters, every
version each unit sent, the county's decisions on them (workflow.py), consolidation and export of
the approved versions without re-reading files."""

from .core import Archive, HistoryItem, Received, UnitState, Version
from .db import ArchiveError, resolve_url

__all__ = ["Archive", "ArchiveError", "HistoryItem", "Received", "UnitState", "Version", "resolve_url"]
