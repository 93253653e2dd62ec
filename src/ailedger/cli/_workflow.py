"""Shared pieces of the workflow commands, and ``ailedger roles grant|list``.

The workflow commands (``dataset register``, ``model register``, ``eval``, ``approve``,
``gate``, ``deploy``, ``rollback``, ``deprecate``, ``infer``, ``trace``, ``lineage``) live in
``_register``, ``_eval``, ``_deploy`` and ``_trace``; each opens the registry through
:func:`signed_registry` (or :func:`open_registry` to read). The local registry backend takes
roles from ``[members]`` in the workspace config, which ``roles grant`` writes; an on-chain
backend takes them from the Membership contract instead.

The commands that write where a rule lives (``model register``, ``approve``, ``gate``,
``deploy``, ``rollback``, ``deprecate``) choose the backend with ``--backend local|chain``;
by default the chain when ``ailedger chain deploy`` recorded contracts for the workspace's
configured chain (``.ailedger/deployments.json``), else the local one. ``--rpc URL`` (or
``$AILEDGER_RPC_URL``) names another node, as for the ``chain`` commands.

With ``--log URL`` (or ``[log] url``) a workflow command records in that log service (see
:mod:`ailedger.cli._remote`): it signs with the local key, submits, and reads its registry
from the verified mirror; the roles it judges by are still this workspace's (``roles
grant``), or the chain's with the chain backend.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ailedger.chain.backends import workspace_chain_id
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
from ailedger.cli._app import app
from ailedger.cli._chain_common import WORKSPACE_CHAIN, RpcOpt, ensure_dev_funds, open_chain
from ailedger.cli._common import JsonOpt, console, emit, err_console
from ailedger.cli._keys import (
    PasswordFileOpt,
    open_keystore,
    open_workspace,
    unlock_signer,
)
from ailedger.cli._remote import remote_for
from ailedger.errors import AiledgerError, InvalidInput, NotFound, OutOfStep
from ailedger.identity.keys import KeyInfo, Keystore, Secp256k1Signer, Signer
from ailedger.registry import LocalBackend, Recorded, Registry, RegistryBackend
from ailedger.registry._chain import ChainBackend
from ailedger.registry._refs import VersionRef
from ailedger.registry.policy import Policy, load_policy
from ailedger.registry.status import REPAIR_HINT, check_touched
from ailedger.workspace import Workspace

if TYPE_CHECKING:  # the service package loads on demand
    from ailedger.service.remote import RemoteLog

__all__ = [
    "BACKENDS",
    "POLICY_NAME",
    "BackendOpt",
    "KeyOpt",
    "PasswordFileOpt",
    "RpcOpt",
    "check_in_step",
    "open_registry",
    "parse_ref",
    "print_recorded",
    "refuse_out_of_step",
    "roles_app",
    "signed_registry",
    "workspace_policy",
]

#: The policy ``deploy`` applies when no ``--policy`` is given, inside ``.ailedger/``.
POLICY_NAME = "policy.toml"

#: ``--backend`` values: where the registry's release rules are enforced.
BACKENDS = ("local", "chain")

KeyOpt = Annotated[str, typer.Option("--key", help="Name of the signing key.")]
BackendOpt = Annotated[
    str | None,
    typer.Option(
        "--backend",
        help="local or chain (default: chain when `ailedger chain deploy` ran for the "
        "workspace's chain, else local).",
    ),
]

roles_app = typer.Typer(
    help="Grant and list the roles of keys in the local registry.", no_args_is_help=True
)
app.add_typer(roles_app, name="roles")

_KEYID = re.compile(r"0x[0-9a-fA-F]{40}|[0-9a-f]{16,}")


def parse_ref(text: str) -> VersionRef:
    return VersionRef.parse(text)


@contextmanager
def signed_registry(
    key: str,
    password_file: Path | None,
    *,
    backend: str | None = "local",
    rpc: str | None = None,
    log_url: str | None = None,
    log_key: str | None = None,
) -> Iterator[tuple[Registry, Signer]]:
    """The registry (see :func:`open_registry`) and the unlocked signer of ``key``, which
    also sends the transactions when the backend is the chain.

    With ``log_url`` (``--log``) or ``[log] url``, the registry records in that log service
    (signed here, submitted, read back from the verified mirror; ``log_key``: its trusted
    key, ``--log-key``)."""
    remote = remote_for(log_url, log_key)
    store = open_keystore()
    signer = unlock_signer(store, key, password_file)
    with open_registry(store, backend=backend, rpc=rpc, sender=signer, remote=remote) as reg:
        yield reg, signer


@contextmanager
def open_registry(
    store: Keystore | None = None,
    *,
    backend: str | None = "local",
    rpc: str | None = None,
    sender: Signer | None = None,
    read_only: bool = False,
    remote: RemoteLog | None = None,
) -> Iterator[Registry]:
    """The current workspace's registry, trusting the workspace's keys, over ``backend``:
    ``local``, ``chain``, or None for the chain when contracts are recorded for the chain
    the command would use (``trace`` and ``lineage`` pass None too: which deploys are events
    depends on who may deploy, which the chain answers when contracts are deployed). On a
    development chain ``sender`` (who sends the transactions) is funded from the faucet.
    ``read_only`` (for commands that only read) writes nothing to the workspace.

    With ``remote``, the registry reads the verified mirror of that log service instead of
    the workspace's log, with the index kept beside the mirror (rebuilt from its verified
    entries alone); the mirror and its index are written even when ``read_only``. Unless
    ``read_only``, the registry's own appends go to the service
    (:meth:`~ailedger.service.remote.RemoteLog.appender`)."""
    workspace = open_workspace()
    keys = (store or Keystore(workspace.keys_dir)).list_keys()
    if backend is not None and backend not in BACKENDS:
        raise InvalidInput(f"unknown --backend {backend!r}: use {' or '.join(BACKENDS)}")
    with ExitStack() as stack:
        chosen: RegistryBackend | None = None
        if backend == "chain" or (backend is None and _chain_by_default(workspace, rpc)):
            chosen = _chain_backend(workspace, keys, rpc, sender, stack, read_only=read_only)
        if remote is not None:
            mirror = remote.open()
            registry = Registry.open(
                workspace,
                keys=keys,
                backend=chosen,
                log=mirror,
                index_path=remote.index_path,
                appender=None if read_only else remote.appender(mirror),
            )
        else:
            registry = Registry.open(workspace, keys=keys, backend=chosen, read_only=read_only)
        yield stack.enter_context(registry)


def _chain_by_default(workspace: Workspace, rpc: str | None) -> bool:
    """Whether contracts are recorded for the chain the command would use."""
    if rpc is not None and rpc != WORKSPACE_CHAIN:
        return True
    book = DeploymentBook(workspace.path / DEPLOYMENTS_FILE)
    if not book.path.is_file():
        return False
    chain_id = workspace_chain_id(workspace)
    if chain_id is not None:
        return book.get(chain_id) is not None
    return bool(book.all())  # the node tells its chain id; a missing deployment is an error


def _chain_backend(
    workspace: Workspace,
    keys: list[KeyInfo],
    rpc: str | None,
    sender: Signer | None,
    stack: ExitStack,
    *,
    read_only: bool = False,
) -> ChainBackend:
    """The chain backend over the workspace's chain (``read_only``: opened for reading, with
    a shared lock; nothing is written, and a transaction is refused)."""
    chain = stack.enter_context(open_chain(workspace, rpc, read_only=read_only))
    deployment = DeploymentBook(workspace.path / DEPLOYMENTS_FILE).require(chain.chain_id)
    orgs = [str(m["org"]) for m in LocalBackend.members(workspace).values() if m.get("org")]
    if isinstance(sender, Secp256k1Signer):
        ensure_dev_funds(chain, sender.address)
    return ChainBackend.from_deployment(chain, deployment, keys=keys, orgs=orgs)


def check_in_step(
    registry: Registry, *, envs: Iterable[str] = (), refs: Iterable[VersionRef] = ()
) -> None:
    """On the chain backend, check cheaply whether what a command touched (``envs``,
    ``refs``) is in step between the log and the chain; if not, print one ``warning:`` line
    to stderr naming the first finding and ``ailedger status --repair``. Never fails the
    command: a check that cannot run is itself the warning."""
    backend = registry.backend
    if not isinstance(backend, ChainBackend):
        return
    try:
        findings = check_touched(registry, backend, envs=envs, refs=refs)
    except AiledgerError as exc:
        err_console.print(
            f"[yellow]warning:[/yellow] could not check that the log and the chain are in "
            f"step ({escape(exc.message)}); run `ailedger status`"
        )
        return
    if findings:
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        todo = REPAIR_HINT if all(f.repairable for f in findings) else "ailedger status"
        err_console.print(
            f"[yellow]warning:[/yellow] out of step: {escape(findings[0].message)}{more}; "
            f"run `{todo}`"
        )


def refuse_out_of_step(registry: Registry, env: str, target: VersionRef | None) -> None:
    """Before a deploy or rollback on the chain backend: when the log and the chain name
    different versions serving ``env``, refuse (:class:`OutOfStep`, exit 12) anything but
    the action that completes the step the log records (``target`` is what the log says
    serves). Another version would push a history onto the chain that skips the logged
    step, which no repair can undo; the retry of the logged step finishes it."""
    backend = registry.backend
    if not isinstance(backend, ChainBackend):
        return
    found = check_touched(registry, backend, envs=[env])
    if not found or (target is not None and target == registry.current(env)):
        return
    logged = registry.current(env)
    if not all(f.repairable for f in found):
        raise OutOfStep(
            f"{found[0].message}: the chain holds state the log does not explain",
            hint="run `ailedger status` and look into it before deploying again",
        )
    again = f" (or deploy {logged} to {env} again, which completes the logged step)"
    raise OutOfStep(
        f"{found[0].message}: finish that first",
        hint=f"run `{REPAIR_HINT}`" + (again if logged is not None else ""),
    )


def workspace_policy(path: Path | None) -> Policy:
    """``path``, else the workspace's ``.ailedger/policy.toml``."""
    if path is not None:
        return load_policy(path)
    default = open_workspace().path / POLICY_NAME
    if not default.is_file():
        raise NotFound(
            f"no policy: pass --policy FILE or put one at {default}",
            hint="a deploy always runs the gate; see examples/policy.toml",
        )
    return load_policy(default)


def print_recorded(recorded: Recorded, verb: str) -> None:
    again = " (already in the log)" if recorded.already else ""
    console.print(
        f"{escape(verb)} [bold]{escape(recorded.ref)}[/bold]: log entry {recorded.log_index}"
        f"{again}, subject {recorded.digest}"
    )


@roles_app.command("grant")
def grant_cmd(
    key: Annotated[str, typer.Argument(help="A workspace key name, or a key id / address.")],
    role: Annotated[str, typer.Argument(help="Role name, e.g. qa, trainer, auditor, deployer.")],
    org: Annotated[
        str | None, typer.Option("--org", help="Organisation (default: the key's own).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a key a role in the local registry (the chain's Membership contract later).

    The roles live in this workspace's config (\\[members]) and count for what this workspace
    reads, from its own log or a log service's (--log URL, \\[log] url): each party grants the
    roles it trusts, e.g. another organisation's deployer by its address, and its trace,
    lineage, status and gate judge the service's statements by them. For one shared set of
    roles, use the chain backend (its Membership contract)."""
    workspace = open_workspace()
    store = Keystore(workspace.keys_dir)
    if _KEYID.fullmatch(key):
        keyid = key.lower()
        found = store.find(key)
    else:
        found = store.info(key)
        keyid = found.keyid.lower()
    org = org or (found.org if found is not None else None)
    if org is None:
        raise NotFound(f"key {key} has no organisation: pass --org")
    workspace = LocalBackend.grant(workspace, keyid, role, org)
    entry = LocalBackend.members(workspace)[keyid]
    data = {"keyid": keyid, **entry}
    emit(data, as_json, lambda: console.print(f"{keyid}: org {org}, roles {entry['roles']}"))


@roles_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List the keys with roles in the local registry."""
    members = LocalBackend.members(open_workspace())

    def human() -> None:
        table = Table("key id", "org", "roles")
        for keyid, entry in sorted(members.items()):
            roles = entry.get("roles", [])
            shown = ", ".join(map(str, roles)) if isinstance(roles, list) else ""
            table.add_row(keyid, str(entry.get("org", "")), shown)
        console.print(table)

    emit(members, as_json, human)
