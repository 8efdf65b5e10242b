"""Progress bars on the terminal, quiet when output goes to a file or a pipe; one-line notes to stderr."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

Advance = Callable[[int], None]


@contextlib.contextmanager
def progress_bar(description: str, total: int, *, enabled: bool = True) -> Iterator[Advance]:
    """Yield `advance(n)`; draws a rich bar on stderr only when stderr is a terminal and there is something to do
    (a bar of 0/0 says nothing: mapping a run whose maps were all made alongside training, say)."""
    if not (enabled and total > 0 and sys.stderr.isatty()):
        yield lambda n=1: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


def note(message: str, *, enabled: bool = True) -> None:
    """A line for the person running the command (stderr, so stdout stays clean for data)."""
    if enabled:
        print(message, file=sys.stderr, flush=True)
