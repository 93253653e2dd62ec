"""The user's stat cache, shared by the commands that fingerprint models (``fingerprint model``,
``prove --tensor``, ``attest model --subject PATH``).

Kept apart from :mod:`ailedger.cli._model` so that a command can open the cache without
registering the ``fingerprint`` commands.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.markup import escape

from ailedger.cli._common import err_console
from ailedger.errors import StorageError
from ailedger.fingerprint._statcache import SqliteStatCache

__all__ = ["default_cache_path", "open_stat_cache"]


def default_cache_path() -> Path:
    """``$XDG_CACHE_HOME/ailedger/stat-cache.sqlite`` (default ``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "ailedger" / "stat-cache.sqlite"


def _warn(fault: StorageError) -> None:
    err_console.print(
        f"[yellow]warning:[/yellow] not updating the stat cache ({escape(fault.message)}); "
        "going on without it"
    )


def open_stat_cache(no_cache: bool = False) -> SqliteStatCache | None:
    """The user's stat cache (None with ``no_cache``). It only saves time, so a full or
    read-only disk under it is one ``warning:`` line and the command goes on."""
    if no_cache:
        return None
    return SqliteStatCache(default_cache_path(), on_storage_fault=_warn)
