"""The command's body: parse the flags, dispatch to ``commands``, turn errors into exit codes
(``qcheck.cli`` is the light front that loads this)."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from typing import NoReturn

from qcheck.cli import (
    _blas,  # noqa: F401 - first: it sets what OpenBLAS reads as it loads
    commands,
)
from qcheck.cli.parser import build_parser
from qcheck.errors import ExitCode, QcheckError, first_line
from qcheck.memory import keep_freed_memory

__all__ = ["main", "run"]

_RANGE_OPTIONS = ("--input-range", "--output-range")


def _joined_ranges(argv: Sequence[str] | None) -> list[str]:
    """``--input-range -1:1`` as typed: argparse would take ``-1:1`` for an option."""
    args = list(sys.argv[1:] if argv is None else argv)
    joined: list[str] = []
    index = 0
    while index < len(args):
        if args[index] in _RANGE_OPTIONS and index + 1 < len(args) \
                and args[index + 1].startswith("-") and ":" in args[index + 1]:
            joined.append(f"{args[index]}={args[index + 1]}")
            index += 2
            continue
        joined.append(args[index])
        index += 1
    return joined


class _Terminated(BaseException):
    """SIGTERM, raised where the main thread is, so every ``with`` block unwinds: workers are
    stopped and the work folder removed."""


def _terminate(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second SIGTERM must not cut cleanup short
    raise _Terminated


@contextlib.contextmanager
def _termination_unwinds() -> Iterator[None]:
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):  # paths that are not UTF-8 still print
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(errors="backslashreplace")  # type: ignore[union-attr]
    parser = build_parser()
    try:
        with _termination_unwinds():
            return _dispatch(parser, parser.parse_args(_joined_ranges(argv)))
    except QcheckError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return int(exc.exit_code)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except _Terminated:
        print("error: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except Exception as exc:  # a bug in qcheck: still one line, unless asked for the trace
        if os.environ.get("QCHECK_DEBUG"):
            raise
        print(f"error: internal error ({type(exc).__name__}: {first_line(exc)}); rerun with "
              "QCHECK_DEBUG=1 for the traceback and please report it", file=sys.stderr)
        return int(ExitCode.CRASHED)


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.version:
        from qcheck.version import __version__

        print(f"qcheck {__version__}")
        return ExitCode.OK
    if args.command is None:
        parser.print_help()
        return ExitCode.USAGE
    # Looked up when called, so each command's function is the module's current one.
    return int(getattr(commands, f"run_{args.command}")(args))


def run() -> NoReturn:
    """The ``qcheck`` command: ``main`` with the process's arguments, then out at once.

    The interpreter's own teardown (freeing every module, array and figure one by one) took
    0.16-0.41 s after a cold check had written its report, a twentieth of the check (0.06-0.07 s
    after a warm one); the exit handlers still run and the output is flushed, then the process
    ends without it. Its comparisons reuse the memory they free (``keep_freed_memory``).
    """
    keep_freed_memory()
    code = main()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(code)
