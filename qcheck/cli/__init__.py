"""The ``qcheck`` command: a thin layer over the library; exit codes are data (``ExitCode``).

``parser`` assembles every command from shared flag groups; ``commands`` turns parsed flags
into one library call each; ``app`` parses and dispatches. This front imports none of them
until it is called: ``run`` first starts the workers a check will want (``qcheck.workers.
ahead``), so TensorFlow loads in them while this process imports the rest of qcheck.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from qcheck.cli import _blas  # noqa: F401 - first: it sets what OpenBLAS reads as it loads

__all__ = ["main", "run"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: the process's) and return its exit code."""
    from qcheck.cli.app import main as app_main

    return app_main(argv)


def run() -> NoReturn:
    """The ``qcheck`` command: ``main`` with the process's arguments, then out at once."""
    from qcheck.workers.ahead import start_for_command

    start_for_command(sys.argv[1:])
    from qcheck.cli.app import run as app_run

    app_run()
