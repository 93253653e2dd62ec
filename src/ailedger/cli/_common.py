"""Options, output and error reporting shared by every command."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = [
    "JsonOpt",
    "QuietOpt",
    "WorkspaceOpt",
    "byte_bar",
    "byte_progress",
    "console",
    "emit",
    "err_console",
    "file_size",
    "state",
]

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


@dataclass
class _State:
    verbose: bool = False
    workspace: Path | None = None
    # the remote-log options (``--timeout``, ``--witness-key``, ``--witness-threshold``) of
    # the command being run, stored by their callbacks (:mod:`ailedger.cli._remote`)
    log_timeout: float | None = None
    witness_keys: list[str] | None = None
    witness_threshold: int | None = None


#: Global options parsed by the root callback (``--verbose``, ``--workspace``).
state = _State()

JsonOpt = Annotated[
    bool, typer.Option("--json", help="Print a JSON document instead of human-readable text.")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar on stderr.")]
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        envvar="AILEDGER_HOME",
        help="Workspace directory (default: the nearest .ailedger/ walking up).",
    ),
]


def emit(data: Any, as_json: bool, human: Callable[[], None] | None = None) -> None:
    """Print ``data`` as JSON when ``as_json``, else call ``human`` (or pretty-print data)."""
    if as_json:
        sys.stdout.write(json.dumps(data, indent=2, sort_keys=True) + "\n")
        sys.stdout.flush()
    elif human is not None:
        human()
    else:
        for key, value in data.items() if isinstance(data, dict) else []:
            console.print(f"[bold]{key}[/bold]: {value}")


def byte_bar(**options: Any) -> Progress:
    """A rich progress bar over bytes on stderr (size, speed, time left), removed when done;
    ``options`` go to :class:`rich.progress.Progress`."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=True,
        **options,
    )


def file_size(path: Path) -> int | None:
    """A file's size for a progress bar (None for a directory: no total)."""
    return path.stat().st_size if path.is_file() else None


@contextlib.contextmanager
def byte_progress(
    description: str, total: int | None, *, enabled: bool = True
) -> Iterator[Callable[[int], None] | None]:
    """A progress bar over bytes on stderr, shown only when stderr is a terminal and
    ``enabled`` (pass ``not (quiet or as_json)``); yields the callback to advance it, or None
    when no bar is shown (so the work skips the calls)."""
    if not (enabled and err_console.is_terminal):
        yield None
        return
    progress = byte_bar()
    task = progress.add_task(description, total=total)
    with progress:
        yield lambda n: progress.advance(task, n)
