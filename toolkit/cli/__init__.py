"""`nianbao` command line: parse options, call the library, print. Nothing else.

One module per group of commands; each registers its commands on the shared typer ``app``.
Exit codes: 0 fine; 1 problems (错误) found in the inputs; 2 could not run; 130 interrupted (Ctrl-C),
143 stopped by SIGTERM.
"""

from __future__ import annotations

from ..entry import install, starting_as_module

if starting_as_module():  # `python -m toolkit.cli` imports this package before its __main__ runs
    install()  # so Ctrl-C during the imports below stops quietly too

# isort: off
# The order of registration is the order of --help: the yearly job first, help last.
from . import collect, draft, archive, city, published, web, explain  # noqa: F401  (they register their commands)

# isort: on
from .app import app, main, run

__all__ = ["app", "main", "run"]
