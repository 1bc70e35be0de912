"""The `nianbao` console script: stop quietly if Ctrl-C or SIGTERM arrives while the command
line is still starting (importing), then hand over to the command line proper."""

from __future__ import annotations

import os
import signal
import sys


def _stop_while_starting(signum: int, frame: object) -> None:
    word = "已中断" if signum == signal.SIGINT else "已终止"
    sys.stderr.write(f"{word}。没有写出任何文件。\n")
    sys.stderr.flush()
    os._exit(130 if signum == signal.SIGINT else 143)


def install() -> None:
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _stop_while_starting)


def main() -> None:
    install()
    from .cli import main as run

    run()
