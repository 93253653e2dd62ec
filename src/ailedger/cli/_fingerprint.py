"""``ailedger fingerprint``: the command group; model and dataset modules add commands."""

from __future__ import annotations

import typer

from ailedger.cli._app import app

__all__ = ["fingerprint_app"]

fingerprint_app = typer.Typer(help="Fingerprint models and datasets.", no_args_is_help=True)
app.add_typer(fingerprint_app, name="fingerprint")
