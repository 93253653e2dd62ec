"""The root Typer application, command registration and error handling."""

from __future__ import annotations

import importlib
import sqlite3
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.markup import escape
from typer.core import TyperGroup

from ailedger import __version__
from ailedger.cli._common import err_console, state
from ailedger.errors import AiledgerError, StorageError

__all__ = [
    "COMMAND_HELP",
    "COMMAND_MODULES",
    "COMMAND_PANELS",
    "app",
    "load_commands",
    "main",
    "verify_app",
]

#: ``ailedger --help`` groups the commands by what a user is doing, in this order; the
#: README's command map has the same groups (tests/cli/test_lazy.py checks both).
COMMAND_PANELS: dict[str, tuple[str, ...]] = {
    "Getting started": ("init", "keys", "demo"),
    "Fingerprints and proofs": ("fingerprint", "prove", "verify"),
    "Statements and the log": ("attest", "log", "serve", "witness"),
    "The chain": ("chain", "anchor"),
    "The release workflow": (
        "dataset",
        "model",
        "eval",
        "approve",
        "roles",
        "gate",
        "deploy",
        "rollback",
        "deprecate",
        "infer",
        "integrations",
    ),
    "Oracles and settlement": ("oracle", "stake"),
    "Markets": ("label", "market", "vouch"),
    "Inspecting and auditing": ("trace", "lineage", "audit", "status"),
}
#: Each command's one-line help for the root ``--help``, which lists every command without
#: importing any of them (tests/cli/test_lazy.py checks each line against the command).
COMMAND_HELP: dict[str, str] = {
    "init": "Create a workspace (.ailedger/) with a config and a keys directory.",
    "keys": "Create, import and inspect signing keys.",
    "demo": "Run the examples for real.",
    "fingerprint": "Fingerprint models and datasets.",
    "prove": "Prove a record is in a dataset (or, sorted, that it is not), or a tensor in a model.",
    "verify": "Verify proofs, statements, receipts and trace documents.",
    "attest": (
        "Sign a statement about the subjects, append it to the workspace log, write the envelope."
    ),
    "log": "The transparency log: append, checkpoint, cosign, verify, query.",
    "serve": "Serve the workspace's log over HTTP (submissions, C2SP tlog-tiles, proofs).",
    "witness": "Witness other logs over the network (C2SP tlog-witness).",
    "chain": (
        "The chain: deploy the contracts, status, organisations and roles, cosign for anchors."
    ),
    "anchor": "Anchor the log's latest checkpoint on the chain (registering the log on first use).",
    "dataset": "Register dataset versions.",
    "model": "Sign, verify and register models.",
    "eval": "Run evaluations and sign their results (pass or fail).",
    "approve": "Approve (or --reject) a model version for a role; the key must hold the role.",
    "roles": "Grant and list the roles of keys in the local registry.",
    "gate": "Exit 0 if the version meets the policy for the environment; else list every unmet.",
    "deploy": "Run the gate, then sign and log the deployment.",
    "rollback": (
        "Return the environment to the version that served before the current one (or to --to)."
    ),
    "deprecate": "Mark a version deprecated: it can no longer be deployed or rolled back to.",
    "infer": "Record which model produced which output.",
    "integrations": "Register models and datasets from other tools (MLflow, DVC).",
    "oracle": "Oracle nodes and rounds (AI scores for contracts).",
    "stake": "Stake ether or an ERC-20 in the StakeManager; withdraw after the unbonding delay.",
    "market": "Pay per inference: serve a model with usage receipts, call it, verify receipts.",
    "label": "The labeling market: post tasks, stake and label, reveal gold, score, settle.",
    "vouch": "Vouch for datasets with stake; audit them by sampled records (slash or reward).",
    "trace": (
        "Which version served an environment at a time (with proof); `trace output` finds the "
        "model behind an output."
    ),
    "lineage": "Datasets, evaluations, approvals, deployments and provenance of a model version.",
    "audit": "Audit reports a regulator can read: every release and how its evidence verified.",
    "status": "Compare the log, the registry index and the chain; exit 12 where they disagree.",
}
_PANEL_OF = {name: panel for panel, names in COMMAND_PANELS.items() for name in names}
_ORDER = {name: i for i, name in enumerate(_PANEL_OF)}


class _MappedGroup(TyperGroup):
    """The root group: commands listed in :data:`COMMAND_PANELS` order."""

    def list_commands(self, ctx: typer.Context) -> list[str]:  # type: ignore[override]
        names = super().list_commands(ctx)
        return sorted(names, key=lambda n: (_ORDER.get(n, len(_ORDER)), n))


app = typer.Typer(
    cls=_MappedGroup,
    name="ailedger",
    help="A shared, verifiable record of AI work: fingerprints, proofs, statements, logs, chains.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

#: ``ailedger verify ...``: every offline check (proof, statement, receipt).
verify_app = typer.Typer(
    help="Verify proofs, statements, receipts and trace documents.", no_args_is_help=True
)
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
    state.log_timeout = state.witness_keys = state.witness_threshold = None


#: Which command modules each top-level command needs. Each module adds its commands to
#: ``app`` (and to the shared groups) when imported; ``main`` imports only what the command
#: being run needs, because the chain modules (web3, eth-account) cost about a second.
#: tests/test_cli_lazy.py checks every entry against a full load.
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "anchor": ("_chain",),
    "approve": ("_register",),
    "attest": ("_statements",),
    "audit": ("_audit",),
    "chain": ("_chain",),
    "dataset": ("_register",),
    "demo": ("_demo",),
    "deploy": ("_deploy",),
    "deprecate": ("_deploy",),
    "eval": ("_eval",),
    "fingerprint": ("_fingerprint", "_model", "_dataset"),
    "gate": ("_deploy",),
    "infer": ("_deploy",),
    "init": ("_keys",),
    "integrations": ("_integrations",),
    "keys": ("_keys",),
    "label": ("_label",),
    "lineage": ("_trace",),
    "log": ("_log",),
    "market": ("_market", "_market_job", "_market_verify"),
    "oracle": ("_oracle",),
    "model": ("_model_sign", "_register"),
    "prove": ("_dataset",),
    "roles": ("_workflow",),
    "rollback": ("_deploy",),
    "serve": ("_serve",),
    "stake": ("_stake",),
    "status": ("_status",),
    "trace": ("_trace",),
    "verify": ("_dataset", "_statements", "_log", "_trace"),
    "vouch": ("_vouch",),
    "witness": ("_witness",),
}


def load_commands(names: Iterable[str] | None = None) -> None:
    """Register the commands ``names`` (top-level command names) need; all when None."""
    wanted = COMMAND_MODULES if names is None else names
    modules = sorted({m for name in wanted for m in COMMAND_MODULES.get(name, ())})
    for module in modules:
        importlib.import_module(f"ailedger.cli.{module}")
    _assign_panels()


def _assign_panels() -> None:
    for command in app.registered_commands:
        command.rich_help_panel = _PANEL_OF.get(command.name or "", command.rich_help_panel)
    for group in app.registered_groups:
        group.rich_help_panel = _PANEL_OF.get(group.name or "", group.rich_help_panel)


def _list_commands_only() -> None:
    """Register a placeholder per command, with its panel and one-line help, so that the root
    ``--help`` lists every command without importing a single command module."""
    registered = {c.name for c in app.registered_commands} | {g.name for g in app.registered_groups}
    for name, text in COMMAND_HELP.items():
        if name in registered:
            continue  # `verify` is a group of this module

        def placeholder() -> None:  # never run: the process prints the root help and exits
            raise typer.Exit(2)

        app.command(name, help=text)(placeholder)
    _assign_panels()


def _command_name(argv: list[str]) -> str | None:
    """The top-level command in ``argv``, skipping the root options."""
    tokens = iter(argv)
    for token in tokens:
        if token == "--workspace":
            next(tokens, None)
        elif not token.startswith("-"):
            return token
    return None


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning errors into one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    name = _command_name(args)
    try:
        if name in COMMAND_MODULES:
            load_commands([name])
        elif name is None and ("--version" in args or "--help" in args or "-h" in args or not args):
            _list_commands_only()  # the root --help (or --version): no command module needed
        else:
            load_commands()  # an unknown name: the full set gives Typer's suggestion
        # Not standalone: usage errors come back here and are printed as one line (Typer's
        # own rendering is a five-line box). An explicit exit (--help, typer.Exit) returns
        # its code.
        rv = app(args=args, prog_name="ailedger", standalone_mode=False)
        sys.exit(rv if isinstance(rv, int) and not isinstance(rv, bool) else 0)
    except (OSError, sqlite3.Error) as exc:
        fault = StorageError.from_exception(exc)
        if fault is not None:  # a full, read-only or failing disk: exit 11, one line
            _report(fault)
        if not isinstance(exc, OSError):  # any other SQLite failure is a bug
            _internal(exc)
        if state.verbose:
            traceback.print_exc()
        name = f": {exc.filename}" if exc.filename else ""
        err_console.print(f"[red]error:[/red] {escape(str(exc.strerror or exc))}{escape(name)}")
        sys.exit(4)
    except AiledgerError as exc:
        _report(exc)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        _click_error(exc)  # Typer's (vendored) Click errors: usage and abort
        _internal(exc)  # a bug: say so, show the traceback only when asked


def _click_error(exc: Exception) -> None:
    """Exit for a Click error as one line (Typer's own rendering is a five-line box); return
    for anything else. Typer vendors Click, so its classes are known by name only."""
    kinds = {cls.__name__ for cls in type(exc).__mro__}
    if "Abort" in kinds:
        err_console.print("aborted")
        sys.exit(1)
    if "ClickException" not in kinds:
        return
    exit_code = getattr(exc, "exit_code", 2)
    code = exit_code if isinstance(exit_code, int) else 2
    if "NoArgsIsHelpError" in kinds:  # a group run bare: its help is already printed
        sys.exit(code)
    format_message = getattr(exc, "format_message", None)
    message = str(format_message() if callable(format_message) else exc)
    err_console.print(f"[red]error:[/red] {escape(' '.join(message.split()))}")
    if "UsageError" in kinds:  # unknown option or command, missing or bad argument
        ctx = getattr(exc, "ctx", None)
        path = getattr(ctx, "command_path", None) or "ailedger"
        err_console.print(f"hint: see `{escape(str(path))} -h`")
    sys.exit(code)


def _report(exc: AiledgerError) -> NoReturn:
    """Print ``exc`` as one line (and its hint) and exit with its code."""
    if state.verbose:
        traceback.print_exc()
    code = f"[{exc.code}] " if exc.code else ""  # a verification failure's stable code
    err_console.print(f"[red]error:[/red] {escape(code + exc.message)}")
    if exc.hint:
        err_console.print(f"hint: {escape(exc.hint)}")
    sys.exit(exc.exit_code)


def _internal(exc: BaseException) -> NoReturn:
    """A bug: say so, show the traceback only when asked, exit 70."""
    if state.verbose:
        traceback.print_exc()
    err_console.print(f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))}")
    err_console.print("hint: run again with --verbose and report the traceback")
    sys.exit(70)
