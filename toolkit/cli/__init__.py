"""`nianbao` command line: parse options, call the library, print. Nothing else.

One module per group of commands; each registers its commands on the shared typer ``app``.
Exit codes: 0 fine; 1 problems (错误) found in the inputs; 2 could not run.
"""

from __future__ import annotations

from . import archive, collect, draft, explain, published, web  # noqa: F401  (they register their commands)
from .app import app, main, run

__all__ = ["app", "main", "run"]
