"""Chain backends: one interface, one name -> backend map, used by the CLI, demos and tests.

A workspace's ``config.toml`` names its backend in ``[chain] backend``; :data:`BACKENDS` maps
that name to a :class:`ChainBackend`, which validates the rest of the ``[chain]`` table and
opens a :class:`~ailedger.chain.client.Chain`::

    chain = open_workspace_chain(workspace)             # whatever [chain] says
    chain = backend_named("rpc").open({"url": "http://127.0.0.1:8545"}, state_dir=tmp)

Two backends ship: ``embedded`` (a real EVM, py-evm, persisted in ``<state_dir>/chain``) and
``rpc`` (any JSON-RPC node: anvil, geth, an L2, Besu; settings ``url`` and ``chain_id``). A
new backend is a class with a ``name``, ``check`` and ``open`` registered in
:data:`BACKENDS`; nothing else dispatches on backend names. An unknown name, or settings a
backend does not understand, is a :class:`~ailedger.errors.WorkspaceError`: never a silent
fallback to another chain.

Nothing here imports web3 or py-evm until :meth:`ChainBackend.open` runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from ailedger.chain._constants import EMBEDDED_CHAIN_ID
from ailedger.errors import WorkspaceError
from ailedger.workspace import Workspace

if TYPE_CHECKING:
    from ailedger.chain.client import Chain

__all__ = [
    "BACKENDS",
    "WORKSPACE_CHAIN",
    "ChainBackend",
    "EmbeddedBackend",
    "RpcBackend",
    "backend_named",
    "embedded_chain_dir",
    "open_workspace_chain",
    "workspace_chain_id",
    "workspace_rpc_url",
]

#: The ``--rpc`` value that means "the workspace's own chain, whatever its backend".
WORKSPACE_CHAIN = "workspace"
#: The embedded chain's directory inside its ``state_dir`` (the workspace).
_EMBEDDED_DIR = "chain"


class ChainBackend(Protocol):
    """How to open one kind of chain from a ``[chain]`` settings table."""

    #: The ``[chain] backend`` value that selects this backend.
    name: ClassVar[str]

    def check(self, settings: Mapping[str, Any], *, source: str) -> None:
        """Raise :class:`WorkspaceError` (naming ``source``) if ``settings`` are unusable."""

    def chain_id(self, settings: Mapping[str, Any]) -> int | None:
        """The chain id these settings select, when known without asking a node."""

    def open(
        self,
        settings: Mapping[str, Any],
        *,
        state_dir: Path,
        artifacts_dir: Path | None = None,
        read_only: bool = False,
    ) -> Chain:
        """Open the chain; local state (chain data, event index) lives under ``state_dir``
        (``read_only``: for commands that only read, nothing is written there)."""


class EmbeddedBackend:
    """The default: a real EVM (py-evm) persisted in SQLite under ``<state_dir>/chain``."""

    name: ClassVar[str] = "embedded"

    def check(self, settings: Mapping[str, Any], *, source: str) -> None:
        unknown = sorted(set(settings) - {"backend"})
        if unknown:
            raise WorkspaceError(
                f"{source}: [chain] backend 'embedded' takes no {', '.join(unknown)}",
                hint='remove them, or use backend = "rpc" with url and chain_id',
            )

    def chain_id(self, settings: Mapping[str, Any]) -> int | None:
        return EMBEDDED_CHAIN_ID

    def open(
        self,
        settings: Mapping[str, Any],
        *,
        state_dir: Path,
        artifacts_dir: Path | None = None,
        read_only: bool = False,
    ) -> Chain:
        from ailedger.chain._connect import open_embedded

        return open_embedded(
            state_dir / _EMBEDDED_DIR, artifacts_dir=artifacts_dir, read_only=read_only
        )


class RpcBackend:
    """Any JSON-RPC node at ``url``; ``chain_id`` (optional) is checked against the node."""

    name: ClassVar[str] = "rpc"
    #: Options a test or a careful caller may pass through ``settings``.
    _TUNING = ("retries", "backoff", "timeout", "confirmations")

    def check(self, settings: Mapping[str, Any], *, source: str) -> None:
        url = settings.get("url")
        if not isinstance(url, str) or not url:
            raise WorkspaceError(f"{source}: [chain] backend 'rpc' needs a url")
        chain_id = settings.get("chain_id")
        if chain_id is not None and (not isinstance(chain_id, int) or isinstance(chain_id, bool)):
            raise WorkspaceError(f"{source}: [chain] chain_id must be an integer")
        unknown = sorted(set(settings) - {"backend", "url", "chain_id", *self._TUNING})
        if unknown:
            raise WorkspaceError(
                f"{source}: [chain] backend 'rpc' does not understand {', '.join(unknown)}",
                hint="it takes url, chain_id, retries, backoff, timeout and confirmations",
            )

    def chain_id(self, settings: Mapping[str, Any]) -> int | None:
        value = settings.get("chain_id")
        return value if isinstance(value, int) else None

    def open(
        self,
        settings: Mapping[str, Any],
        *,
        state_dir: Path,
        artifacts_dir: Path | None = None,
        read_only: bool = False,
    ) -> Chain:
        from ailedger.chain._connect import connect_rpc

        self.check(settings, source="settings")
        tuning = {k: settings[k] for k in self._TUNING if k in settings}
        return connect_rpc(
            str(settings["url"]),
            self.chain_id(settings),
            index_path=state_dir / "rpc-events.sqlite",
            artifacts_dir=artifacts_dir,
            read_only=read_only,
            **tuning,
        )


#: Every backend by its ``[chain] backend`` name: the one place that knows them.
BACKENDS: dict[str, ChainBackend] = {b.name: b for b in (EmbeddedBackend(), RpcBackend())}


def backend_named(name: object, *, source: str = "[chain] backend") -> ChainBackend:
    """The backend called ``name``, or :class:`WorkspaceError` listing the known ones."""
    backend = BACKENDS.get(name) if isinstance(name, str) else None
    if backend is None:
        known = " or ".join(f'backend = "{n}"' for n in BACKENDS)
        raise WorkspaceError(f"{source}: unknown chain backend {name!r}", hint=f"use {known}")
    return backend


def _configured(ws: Workspace) -> tuple[ChainBackend, dict[str, Any]]:
    settings = ws.config.section("chain")
    backend = backend_named(ws.config.chain_backend, source=str(ws.config_path))
    backend.check(settings, source=str(ws.config_path))
    return backend, settings


def workspace_chain_id(ws: Workspace, rpc: str | None = None) -> int | None:
    """The chain id a command on ``ws`` (with ``--rpc rpc``) would use, if known offline."""
    if rpc is not None and rpc != WORKSPACE_CHAIN:
        return None
    backend, settings = _configured(ws)
    return backend.chain_id(settings)


def embedded_chain_dir(ws: Workspace) -> Path | None:
    """The directory of the workspace's embedded chain, or ``None`` if it uses another backend
    (``ailedger serve`` owns that directory and serves the chain at ``/rpc``)."""
    backend, _ = _configured(ws)
    return ws.path / _EMBEDDED_DIR if isinstance(backend, EmbeddedBackend) else None


def workspace_rpc_url(ws: Workspace) -> str | None:
    """The node URL of a workspace whose ``[chain]`` is ``backend = "rpc"``, else ``None``."""
    backend, settings = _configured(ws)
    return str(settings["url"]) if isinstance(backend, RpcBackend) else None


def open_workspace_chain(
    ws: Workspace | None,
    rpc: str | None = None,
    *,
    artifacts_dir: Path | None = None,
    read_only: bool = False,
) -> Chain:
    """The chain for a command: the node at ``rpc`` if given (its event index kept in the
    workspace when there is one), else the workspace's configured backend. ``read_only``
    (for commands that only read) writes nothing to the workspace."""
    if rpc is not None and rpc != WORKSPACE_CHAIN:
        from ailedger.chain._connect import connect_rpc

        index = None if ws is None else ws.path / "rpc-events.sqlite"
        return connect_rpc(rpc, index_path=index, artifacts_dir=artifacts_dir, read_only=read_only)
    if ws is None:
        raise WorkspaceError("no workspace to take the chain from", hint="pass --rpc URL")
    backend, settings = _configured(ws)
    return backend.open(
        settings, state_dir=ws.path, artifacts_dir=artifacts_dir, read_only=read_only
    )
