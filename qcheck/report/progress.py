"""Progress: a live spinner on a terminal, plain lines elsewhere, nothing when quiet."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator

__all__ = ["progress_reporter"]

ProgressFn = Callable[[str], None]


@contextlib.contextmanager
def progress_reporter(*, quiet: bool = False) -> Iterator[ProgressFn | None]:
    if quiet:
        yield None
        return
    if not sys.stderr.isatty():
        # Targets report from the scheduler's threads: one locked write per line, so two
        # lines never run together.
        lock = threading.Lock()

        def plain(message: str) -> None:
            with lock:
                sys.stderr.write(f"qcheck: {message}\n")
                sys.stderr.flush()

        yield plain
        return
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    started = time.monotonic()
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        task = bar.add_task("starting", total=None)

        def update(message: str) -> None:
            elapsed = time.monotonic() - started
            bar.console.print(f"[dim]{elapsed:5.1f}s[/] {message}", highlight=False)
            bar.update(task, description=message)

        yield update
