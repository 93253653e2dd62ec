"""The root Typer application, command registration and error handling."""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from ailedger import __version__
from ailedger.cli._common import err_console, state
from ailedger.errors import AiledgerError

__all__ = ["app", "main"]

app = typer.Typer(
    name="ailedger",
    help="A shared, verifiable record of AI work: fingerprints, proofs, statements, logs, chains.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: ``ailedger verify ...``: every offline check (proof, statement, receipt).
verify_app = typer.Typer(help="Verify proofs, statements and receipts.", no_args_is_help=True)
app.add_typer(verify_app, name="verify")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ailedger {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show tracebacks and debug detail on errors.")
    ] = False,
    workspace: Annotated[
        Path | None,
        typer.Option(
            "--workspace",
            envvar="AILEDGER_HOME",
            help="Workspace directory (default: the nearest .ailedger/ walking up).",
        ),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    state.verbose = verbose
    state.workspace = workspace


def _register() -> None:
    # Each module adds its commands to ``app`` / ``verify_app`` when imported.
    from ailedger.cli import (  # noqa: F401
        _audit,
        _chain,
        _dataset,
        _demo,
        _deploy,
        _eval,
        _fingerprint,
        _integrations,
        _keys,
        _log,
        _model,
        _model_sign,
        _register,
        _statements,
        _trace,
        _workflow,
    )


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning errors into one line and an exit code."""
    try:
        app(args=argv, prog_name="ailedger", standalone_mode=True)
    except AiledgerError as exc:
        if state.verbose:
            traceback.print_exc()
        err_console.print(f"[red]error:[/red] {escape(exc.message)}")
        if exc.hint:
            err_console.print(f"hint: {escape(exc.hint)}")
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except OSError as exc:
        if state.verbose:
            traceback.print_exc()
        name = f": {exc.filename}" if exc.filename else ""
        err_console.print(f"[red]error:[/red] {escape(str(exc.strerror or exc))}{escape(name)}")
        sys.exit(4)
    except Exception as exc:  # a bug: say so, show the traceback only when asked
        if state.verbose:
            traceback.print_exc()
        err_console.print(f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))}")
        err_console.print("hint: run again with --verbose and report the traceback")
        sys.exit(70)
