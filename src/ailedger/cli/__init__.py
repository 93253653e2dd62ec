"""The ``ailedger`` command line: one command group per noun."""

from __future__ import annotations

from ailedger.cli._app import app, main

__all__ = ["app", "main"]
