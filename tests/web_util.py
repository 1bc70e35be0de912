"""Shared setup of the web tests: an archive with the samples' roster and one private link per unit."""

from __future__ import annotations

import socket
from pathlib import Path

from conftest import SAMPLES

from toolkit.archive import Archive
from toolkit.web.keys import issue_links

YEAR = 2025
ROSTER = SAMPLES / "roster.csv"
FAULTY = SAMPLES / "faulty"
RETURNS = SAMPLES / "returns"


def sample(code: str, folder: Path = RETURNS) -> Path:
    return next(folder.glob(f"{code}_*.xlsx"))


def new_archive(db: Path, roster: Path = ROSTER) -> dict[str, str]:
    """An archive at ``db`` with the year's roster; returns unit code → private link token."""
    with Archive.open(str(db)) as archive:
        archive.load_roster(roster, YEAR)
        made, _ = issue_links(archive, YEAR)
    return {link.unit_code: link.token for link in made}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
