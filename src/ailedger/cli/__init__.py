"""The ``ailedger`` command line: one command group per noun."""

from __future__ import annotations

from ailedger.cli._app import app, load_commands, main

__all__ = ["app", "load_commands", "main"]
