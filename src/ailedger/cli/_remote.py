"""The log a command uses: the workspace's own, or a log service's (``--log URL``).

``--log URL`` (or ``[log] url = "http://..."`` in config.toml; the option overrides, and
``--log local`` forces the workspace's own log) points a command at ``ailedger serve``. Its
trusted key is ``--log-key`` where the command has one, else ``[log] url_key`` (the log's
Ethereum address or verifier key, as ``ailedger serve --json`` prints it), else the key the
workspace's mirror of that log was first verified with; with none, the command fails closed.
``ailedger log remote URL --log-key KEY`` saves both keys of config.toml.

Every remote call gives up after ``--timeout SECONDS`` (or ``[log] timeout``; default 30 s),
and so does a registry write's wait for a published checkpoint covering its entry: exit 13.
``--witness-key VKEY`` (repeatable) and ``--witness-threshold K`` (or ``[log] witnesses``, a
list of verifier keys, and ``[log] witness_threshold``, for the configured service) make the
mirror believe a checkpoint only with K valid cosignatures by those witnesses.

Registry writes (``dataset register``, ``model register``, ``eval``, ``approve``, ``deploy``,
``rollback``, ``deprecate``, ``infer record``, the integrations' imports) sign with the
client's key, submit to the service, and sync the mirror and its index once a published
checkpoint covers the entry (:meth:`~ailedger.service.remote.RemoteLog.appender`). Their
authority rules are judged as on a local log, with the roles of the **client's** workspace
(``[members]``, written by ``roles grant``; or the chain's Membership contract with the chain
backend): each party decides whose deploys it counts, as a verifier does.

Reads go through the verified mirror of :mod:`ailedger.service.remote`; its registry index
(for ``trace``, ``lineage``, ``audit report``) lives beside it, rebuilt from the verified
remote entries alone and never mixed with the workspace's own log or index.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ailedger.cli._common import state
from ailedger.cli._keys import open_workspace
from ailedger.errors import InvalidInput, WorkspaceError
from ailedger.identity.keys import Keystore
from ailedger.log import (
    AnyNoteKey,
    TransparencyLog,
    check_ethereum_signature,
    known_keys_check,
    parse_vkey,
)
from ailedger.workspace import Workspace

__all__ = [
    "DEFAULT_TIMEOUT_S",
    "LOCAL",
    "LogUrlOpt",
    "RemoteKeyOpt",
    "TimeoutOpt",
    "WitnessKeyOpt",
    "WitnessThresholdOpt",
    "client_for",
    "configured_url",
    "log_source",
    "optional_workspace",
    "reading_log",
    "remote_for",
    "remote_log",
]

if TYPE_CHECKING:  # the service package loads on demand
    from ailedger.service.client import LogClient
    from ailedger.service.remote import LogSource, RemoteLog

#: ``--log local``: the workspace's own log even when ``[log] url`` is set.
LOCAL = "local"
#: Seconds a remote call (and a write's wait for a published checkpoint) may take by default.
DEFAULT_TIMEOUT_S = 30.0


def _store(name: str) -> Any:
    def callback(value: Any) -> Any:
        setattr(state, name, value)
        return value

    return callback


TimeoutOpt = Annotated[
    float | None,
    typer.Option(
        "--timeout",
        min=0.001,
        metavar="SECONDS",
        callback=_store("log_timeout"),
        expose_value=False,
        help="With a log service: give up on a call (and on the wait for a checkpoint "
        "covering a new entry) after SECONDS, exit 13 (default: \\[log] timeout, else 30).",
    ),
]
WitnessKeyOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--witness-key",
        metavar="VKEY",
        callback=_store("witness_keys"),
        expose_value=False,
        help="With a log service: a trusted witness verifier key (repeatable; default: "
        "\\[log] witnesses).",
    ),
]
WitnessThresholdOpt = Annotated[
    int | None,
    typer.Option(
        "--witness-threshold",
        min=0,
        metavar="K",
        callback=_store("witness_threshold"),
        expose_value=False,
        help="With a log service: believe a checkpoint only with K valid cosignatures by the "
        "--witness-key witnesses (default: \\[log] witness_threshold, else 0).",
    ),
]

LogUrlOpt = Annotated[
    str | None,
    typer.Option(
        "--log",
        help="A log service URL (`ailedger serve`) to use instead of the workspace's log "
        "(default: \\[log] url in config.toml; 'local': the workspace's log).",
    ),
]
RemoteKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--log-key",
        help="With a log service: its trusted log key, an Ethereum address or verifier key "
        "(default: \\[log] url_key, else the key its mirror was first verified with).",
    ),
]


def _config_value(ws: Workspace, key: str) -> str | None:
    value = ws.config.section("log").get(key)
    if value is not None and not isinstance(value, str):
        raise WorkspaceError(f"{ws.config_path}: [log] {key} must be a string")
    return value


def _timeout(ws: Workspace | None) -> float:
    if state.log_timeout is not None:
        return state.log_timeout
    value = None if ws is None else ws.config.section("log").get("timeout")
    if value is None:
        return DEFAULT_TIMEOUT_S
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise WorkspaceError(f"{ws.config_path if ws else ''}: [log] timeout must be seconds > 0")
    return float(value)


def _witnesses(ws: Workspace | None, configured: bool) -> tuple[list[AnyNoteKey], int]:
    """The witness keys and threshold: the options, else (for the configured service)
    ``[log] witnesses`` and ``[log] witness_threshold``."""
    section = ws.config.section("log") if ws is not None and configured else {}
    keys: Any = state.witness_keys if state.witness_keys else section.get("witnesses", [])
    threshold: Any = state.witness_threshold
    if threshold is None:
        threshold = section.get("witness_threshold", 0)
    where = f"{ws.config_path}: " if ws is not None else ""
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise WorkspaceError(f"{where}[log] witnesses must be a list of verifier keys")
    if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
        raise WorkspaceError(f"{where}[log] witness_threshold must be a whole number >= 0")
    try:
        parsed = [parse_vkey(k) for k in keys]
    except InvalidInput as exc:
        raise InvalidInput(f"a witness key is not a verifier key: {exc.message}") from None
    return parsed, threshold


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


def client_for(url: str, ws: Workspace | None = None) -> LogClient:
    """A client of the log service at ``url`` with the command's timeout."""
    from ailedger.service.client import LogClient

    return LogClient(url, timeout=_timeout(ws or optional_workspace()))


def remote_log(url: str, log_key: str | None, ws: Workspace | None = None) -> RemoteLog:
    """The log service at ``url`` with the workspace's mirror and keys (``ws``: the current
    workspace, if any; without one, the service can only be submitted to)."""
    from ailedger.service.client import LogClient
    from ailedger.service.remote import MIRRORS_DIR, RemoteLog

    ws = ws or optional_workspace()
    timeout = _timeout(ws)
    configured = ws is not None and url == _config_value(ws, "url")
    witnesses, threshold = _witnesses(ws, configured)
    options: dict[str, Any] = {
        "witnesses": witnesses,
        "witness_threshold": threshold,
        "publish_wait_s": timeout,
    }
    client = LogClient(url, timeout=timeout)
    if ws is None:
        return RemoteLog(
            client, None, log_key=log_key, check_signature=check_ethereum_signature, **options
        )
    if log_key is None and configured:
        log_key = _config_value(ws, "url_key")
    known = [k.public_key for k in Keystore(ws.keys_dir).list_keys()]
    return RemoteLog(
        client,
        ws.path / MIRRORS_DIR,
        log_key=log_key,
        check_signature=known_keys_check(known),
        **options,
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
