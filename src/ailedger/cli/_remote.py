"""The log a command uses: the workspace's own, or a log service's (``--log URL``).

``--log URL`` (or ``[log] url = "http://..."`` in config.toml; the option overrides, and
``--log local`` forces the workspace's own log) points a command at ``ailedger serve``. Its
trusted key is ``--log-key`` where the command has one, else ``[log] url_key`` (the log's
Ethereum address or verifier key, as ``ailedger serve --json`` prints it), else the key the
workspace's mirror of that log was first verified with; with none, the command fails closed.
``ailedger log remote URL --log-key KEY`` saves both keys of config.toml.

Reads go through the verified mirror of :mod:`ailedger.service.remote`; its registry index
(for ``trace``, ``lineage``, ``audit report``) lives beside it, rebuilt from the verified
remote entries alone and never mixed with the workspace's own log or index.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from ailedger.cli._keys import open_workspace
from ailedger.errors import WorkspaceError
from ailedger.identity.keys import Keystore
from ailedger.log import TransparencyLog, check_ethereum_signature, known_keys_check
from ailedger.workspace import Workspace

__all__ = [
    "LOCAL",
    "LogUrlOpt",
    "RemoteKeyOpt",
    "configured_url",
    "log_source",
    "optional_workspace",
    "reading_log",
    "remote_for",
    "remote_log",
]

if TYPE_CHECKING:  # the service package loads on demand
    from ailedger.service.remote import LogSource, RemoteLog

#: ``--log local``: the workspace's own log even when ``[log] url`` is set.
LOCAL = "local"

LogUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--log",
        help="A log service URL (`ailedger serve`) to use instead of the workspace's log "
        "(default: [log] url in config.toml; 'local': the workspace's log).",
    ),
]
RemoteKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--log-key",
        help="With a log service: its trusted log key, an Ethereum address or verifier key "
        "(default: [log] url_key, else the key its mirror was first verified with).",
    ),
]


def _config_value(ws: Workspace, key: str) -> str | None:
    value = ws.config.section("log").get(key)
    if value is not None and not isinstance(value, str):
        raise WorkspaceError(f"{ws.config_path}: [log] {key} must be a string")
    return value


def configured_url(option: str | None, ws: Workspace | None) -> str | None:
    """The log service URL a command uses: ``--log``, else ``[log] url``; None for the
    workspace's own log."""
    if option == LOCAL:
        return None
    if option is not None:
        return option
    return None if ws is None else _config_value(ws, "url")


def optional_workspace() -> Workspace | None:
    """The current workspace, or None where there is none (submitting needs none)."""
    try:
        return open_workspace()
    except WorkspaceError:
        return None


def remote_log(url: str, log_key: str | None, ws: Workspace | None = None) -> RemoteLog:
    """The log service at ``url`` with the workspace's mirror and keys (``ws``: the current
    workspace, if any; without one, the service can only be submitted to)."""
    from ailedger.service.client import LogClient
    from ailedger.service.remote import MIRRORS_DIR, RemoteLog

    ws = ws or optional_workspace()
    if ws is None:
        return RemoteLog(
            LogClient(url), None, log_key=log_key, check_signature=check_ethereum_signature
        )
    if log_key is None and url == _config_value(ws, "url"):
        log_key = _config_value(ws, "url_key")
    known = [k.public_key for k in Keystore(ws.keys_dir).list_keys()]
    return RemoteLog(
        LogClient(url),
        ws.path / MIRRORS_DIR,
        log_key=log_key,
        check_signature=known_keys_check(known),
    )


def remote_for(url_option: str | None, log_key: str | None) -> RemoteLog | None:
    """The log service a command uses (``--log``, ``[log] url``), or None for the
    workspace's own log."""
    ws = open_workspace()
    url = configured_url(url_option, ws)
    return None if url is None else remote_log(url, log_key, ws)


def log_source(url_option: str | None, log_key: str | None) -> LogSource:
    """The log a command reads: the log service's verified mirror, or the workspace's own
    log (read-only)."""
    from ailedger.service.remote import LocalLog

    ws = open_workspace()
    url = configured_url(url_option, ws)
    if url is not None:
        return remote_log(url, log_key, ws)
    known = [k.public_key for k in Keystore(ws.keys_dir).list_keys()]
    return LocalLog(ws, known_keys_check(known), read_only=True)


@contextmanager
def reading_log(url_option: str | None, log_key: str | None) -> Iterator[TransparencyLog]:
    """The opened :func:`log_source` (synced and verified first, for a service)."""
    with log_source(url_option, log_key).open() as log:
        yield log
