"""Start-up of the command line, for the `nianbao` console script and for `python -m toolkit.cli`:
from its first instant, Ctrl-C and SIGTERM stop it quietly (a Chinese line, exit code 130 or 143,
never a traceback) while it is still importing its modules; ``app.main`` then takes over.

Light on purpose: only the standard library, so that the handlers are in place a few milliseconds
after the interpreter starts, before anything slow is imported.
"""

from __future__ import annotations

import os
import signal
import sys

STOPS = (signal.SIGINT, signal.SIGTERM)


def _stop_while_starting(signum: int, frame: object) -> None:
    """Nothing has been written and no worker started: end at once. Written with ``os.write``,
    which is safe at any moment (the handler may run in the middle of another write)."""
    word = "已中断" if signum == signal.SIGINT else "已终止"
    encoding = getattr(sys.stderr, "encoding", None) or "utf-8"
    try:
        os.write(2, f"{word}。没有写出任何文件。\n".encode(encoding, "replace"))
    except (OSError, LookupError):
        pass
    os._exit(130 if signum == signal.SIGINT else 143)


def install() -> None:
    """Handlers for the start-up. Signals the parent left blocked are let through: a command that
    could not be stopped would be worse than one that stops at once."""
    for sig in STOPS:
        signal.signal(sig, _stop_while_starting)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)


def starting_as_module() -> bool:
    """True while `python -m toolkit.cli` imports the package, before its ``__main__`` runs: Python
    keeps ``sys.argv[0]`` as "-m" until it has found the module to run (documented in ``sys.argv``)."""
    return sys.argv[:1] == ["-m"]


def main() -> None:
    install()
    from .cli import main as run

    run()
