"""The archive across years (SQLite by default, PostgreSQL for a shared server): rosters,
received files, statuses, 退回 and 说明, consolidation and export without re-reading files."""

from .core import Archive, HistoryItem, Received, UnitState
from .db import ArchiveError, resolve_url

__all__ = ["Archive", "ArchiveError", "HistoryItem", "Received", "UnitState", "resolve_url"]
