"""``ailedger serve``: the workspace's transparency log as an HTTP service.

Who may submit (``--membership chain|allow-list``, or ``[serve] membership``):

- ``allow-list``: the Ethereum addresses of ``--allow ADDRESS`` (repeatable) or ``[serve] allow
  = ["0x...", ...]`` in config.toml (the option replaces the config);
- ``chain``: every signer must be a current member of an organisation in the Membership
  contract of the workspace's chain (or ``--rpc URL``), with ``--require-role ROLE`` (``[serve]
  require_role``) holding that role in it; a refused signer gets 403 ``signer-not-member``, a
  chain that cannot answer 503 ``chain-unavailable`` (:mod:`ailedger.service.membership`).
  Answers are cached ``--membership-ttl`` seconds (``[serve] membership_ttl``, default 2): a
  member removed on-chain is refused at most that long after the removal's block. On the
  embedded chain, membership is read from the node the service serves at ``/rpc`` (so not with
  ``--no-chain-rpc``). The contract's address comes from the deployment book, so the operator
  may deploy through ``/rpc`` after the service starts (until then: 503).

Without ``--membership``: ``allow-list`` when one is given, else ``chain`` when Membership is
deployed on the workspace's chain, else the service refuses to start (fail closed). An
allow-list and ``chain`` together are refused at start: a union would let an allow-listed
address keep submitting after its organisation removed it on-chain, and an intersection
would make two lists to keep in step; one source of truth fails closed.

A read-only service (``--read-only``, or ``[serve] read_only = true``, which ``ailedger demo``
sets in its workspace) takes no one's submissions: it serves the log and the explorer from the
stored checkpoints with no key unlocked, refuses every submission (403) and does not serve the
chain's ``/rpc`` (it takes transactions); ``--allow``, the membership options and the anchoring
options are refused with it. ``ailedger serve DIR`` serves the workspace at DIR (as
``--workspace DIR``).

Rate limits (off unless set): ``--rate LIMIT/s --burst N`` per signer for submissions,
``--read-rate LIMIT/s --read-burst N`` per client IP for reads and ``/rpc`` calls, or
``[serve] rate / burst / read_rate / read_burst``;
over a limit the service answers 429 with ``Retry-After``. Checkpoints are signed with the
workspace's log key (``--key``, default ``[log] key``), unlocked at start: Ed25519 (C2SP's own
signature type, which standard C2SP clients check) or secp256k1 (what on-chain anchoring
checks).

Witnesses (c2sp.org/tlog-witness): ``--witness URL=VKEY`` (repeatable) or ``[serve] witnesses
= ["URL=VKEY", ...]``, with ``--witness-threshold K`` or ``[serve] witness_threshold`` (default:
all of them). A checkpoint is then published at ``/checkpoint`` only with K valid
cosignatures, which are stored in the log beside it (see
:mod:`ailedger.service._sequencer`).

On-chain anchoring (:mod:`ailedger.service._anchoring`): ``--anchor-every N`` and/or
``--anchor-interval SECONDS`` (``[serve] anchor_every``, ``anchor_interval``) anchor the
published checkpoint on the workspace's chain (or ``--rpc URL``) every N entries or T seconds,
whichever comes first, with the consistency proof from the last anchor and the EIP-712
cosignatures of the secp256k1 witnesses (``POST /v1/anchor-cosign`` on each). The
transactions are sent (and the log registered on first use) by ``--anchor-key NAME``
(``[serve] anchor_key``; default: the log key), unlocked at start. The log is registered with
the witnesses and threshold of ``[anchor]`` in config.toml, else the secp256k1 witnesses and
the witness threshold.

Once the log is open and a checkpoint covers it, one ready line goes to standard output
(``--json``: ``{"url", "origin", "log_key", "size", "chain", "membership"}``, the last
one of ``chain``, ``allow-list`` or ``read-only``), so scripts and tests can start
it as a process and read where it listens (``--port 0``: any free port).

A workspace on the embedded chain has it served as an Ethereum JSON-RPC node at ``URL/rpc``
(``chain.rpc`` in the ready line): the service owns the chain while it runs, and every party,
this workspace's own commands included, reaches it with ``--rpc URL/rpc`` (``--no-chain-rpc``:
not served, not locked). With an external chain, ``chain.rpc`` (and ``GET /v1/chain``) name its
node.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ailedger.chain.backends import embedded_chain_dir, workspace_chain_id, workspace_rpc_url
from ailedger.cli._app import app
from ailedger.cli._chain_common import RpcOpt
from ailedger.cli._common import JsonOpt, console, state
from ailedger.cli._keys import (
    PasswordFileOpt,
    check_log_key,
    default_log_key,
    log_key_name,
    log_signer,
    note_signer,
    open_keystore,
    open_workspace,
)
from ailedger.errors import (
    AiledgerError,
    ConflictError,
    InvalidInput,
    NotFound,
    WorkspaceError,
)
from ailedger.identity.keys import Ed25519Signer, Secp256k1Signer
from ailedger.log import AnyNoteKey, Checkpoint, note_key_for, open_workspace_log, vkey
from ailedger.workspace import Workspace

if TYPE_CHECKING:
    from ailedger.service._anchoring import AnchorSchedule
    from ailedger.service._cosigning import WitnessConfig
    from ailedger.service._sequencer import Sequencer

if TYPE_CHECKING:
    from ailedger.chain import Chain
    from ailedger.service.explorer_api import ExplorerSource
    from ailedger.service.membership import ChainMembership
    from ailedger.service.ratelimit import RateLimit
    from ailedger.service.rpc import EmbeddedRpc

__all__ = ["serve_cmd"]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


def _allow_list(option: list[str] | None, configured: object, source: str) -> frozenset[str]:
    if option:
        values, where = list(option), "--allow"
    elif configured is None:
        values, where = [], source
    elif isinstance(configured, list) and all(isinstance(v, str) for v in configured):
        values, where = list(configured), f"{source}: [serve] allow"
    else:
        raise WorkspaceError(f"{source}: [serve] allow must be a list of Ethereum addresses")
    bad = [v for v in values if not _ADDRESS.fullmatch(v)]
    if bad:
        raise InvalidInput(f"{where}: {bad[0]!r} is not an Ethereum address (0x + 40 hex digits)")
    if not values:
        raise WorkspaceError(
            "no signer is allowed to submit: the service would refuse everything",
            hint="give --allow ADDRESS (repeatable) or set [serve] allow = [...] in config.toml, "
            "or deploy the contracts (`ailedger chain deploy`) for on-chain membership",
        )
    return frozenset(v.lower() for v in values)


_MEMBERSHIP_MODES = ("chain", "allow-list")


def _membership_mode(
    option: str | None, configured: object, allow_given: bool, deployed: bool, source: str
) -> str:
    """``chain`` or ``allow-list`` (module docstring: how they are chosen, and never both)."""
    if option is None and configured is not None:
        if configured not in _MEMBERSHIP_MODES:
            raise WorkspaceError(f'{source}: [serve] membership must be "chain" or "allow-list"')
        option = str(configured)
    if option is not None and option not in _MEMBERSHIP_MODES:
        raise InvalidInput(f"--membership {option!r}: use chain or allow-list")
    if option == "chain" and allow_given:
        raise InvalidInput(
            "on-chain membership and an allow-list (--allow / [serve] allow) do not combine",
            hint="members come from the chain: drop the allow-list, or use --membership allow-list",
        )
    if option is not None:
        return option
    return "chain" if deployed and not allow_given else "allow-list"


def _membership_deployed(ws: Workspace, rpc: str | None) -> bool:
    """Whether the workspace's deployment book has Membership on the chain ``serve`` uses
    (an external node not configured with its chain id is asked for it)."""
    from ailedger.chain.backends import WORKSPACE_CHAIN
    from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
    from ailedger.errors import NodeUnavailable
    from ailedger.service.membership import ChainUnavailable, HttpReader
    from ailedger.service.rpc import public_url

    book = DeploymentBook(ws.path / DEPLOYMENTS_FILE)
    if not book.path.exists():
        return False
    chain_id = workspace_chain_id(ws, rpc)
    if chain_id is None:
        url = rpc if rpc is not None and rpc != WORKSPACE_CHAIN else workspace_rpc_url(ws)
        if url is None:
            return False
        try:
            chain_id = HttpReader(url, shown=public_url(url)).chain_id()
        except ChainUnavailable as exc:
            raise NodeUnavailable(
                f"cannot tell whether Membership is deployed: {exc}",
                hint="start the node, or give --membership allow-list with --allow ADDRESS",
            ) from None
    found = book.get(chain_id)
    return found is not None and "Membership" in found.contracts


def _chain_membership(
    ws: Workspace, rpc: str | None, serve_chain: bool, require_role: str | None, ttl: float
) -> Callable[[EmbeddedRpc | None], ChainMembership]:
    """The factory of the on-chain check, given the embedded chain the service will hold
    (checked now, so that a service that could not check membership does not start)."""
    from ailedger.chain.backends import WORKSPACE_CHAIN
    from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
    from ailedger.service.membership import ChainMembership, HttpReader, InProcessReader
    from ailedger.service.rpc import public_url

    if require_role is not None and (not require_role or require_role != require_role.lower()):
        raise InvalidInput(f"--require-role {require_role!r}: a role is a lower-case name")
    external = rpc if rpc is not None and rpc != WORKSPACE_CHAIN else workspace_rpc_url(ws)
    if external is None and not serve_chain:
        raise InvalidInput(
            "on-chain membership on the embedded chain is read through the chain this service "
            "serves, and --no-chain-rpc serves none",
            hint="drop --no-chain-rpc, or give an allow-list (--allow ADDRESS)",
        )
    book = DeploymentBook(ws.path / DEPLOYMENTS_FILE)

    def resolve(chain_id: int) -> str | None:
        found = book.get(chain_id)
        return None if found is None or "Membership" not in found.contracts else (
            found.address("Membership"))  # fmt: skip

    def make(node: EmbeddedRpc | None) -> ChainMembership:
        if external is not None:
            reader: HttpReader | InProcessReader = HttpReader(external, shown=public_url(external))
        else:
            assert node is not None  # the embedded chain is served (checked above)
            reader = InProcessReader(node)
        return ChainMembership(reader, resolve, require_role=require_role, ttl=ttl)

    return make


def _check_read_only(
    allow: list[str] | None,
    anchor_every: int | None,
    anchor_interval: float | None,
    anchor_key: str | None,
) -> None:
    """Refuse options a read-only service cannot honour (fail closed, not ignored)."""
    if allow:
        raise InvalidInput(
            "--read-only takes no submissions: --allow would be ignored",
            hint="drop --allow, or serve with --no-read-only",
        )
    if anchor_every is not None or anchor_interval is not None or anchor_key is not None:
        raise InvalidInput(
            "--read-only signs nothing: it cannot anchor (--anchor-every/--anchor-interval)",
            hint="serve with --no-read-only to anchor",
        )


def _read_only_verifier(ws: Workspace, key: str | None) -> AnyNoteKey:
    """The key the log's checkpoints are signed with, as the log recorded it; when the
    workspace holds the log key (``--key`` or the default), it must be the same key."""
    with open_workspace_log(ws, read_only=True) as log:
        known = log.log_key()
    if known is None:
        raise NotFound(
            f"log {ws.config.origin} has no signed checkpoint: nothing to serve read-only",
            hint="sign one with `ailedger log checkpoint`, or serve with --no-read-only",
        )
    info = default_log_key(ws) if key is None else None
    name = key if key is not None else (None if info is None else info.name)
    if name is not None:
        expected = note_key_for(ws.config.origin, open_keystore().public_key(name))
        if vkey(expected) != vkey(known):
            raise ConflictError(
                f"log {ws.config.origin} is signed by {vkey(known)}, not by key {name} "
                f"({vkey(expected)})",
                hint="serve the log with its own key (--key NAME)",
            )
    return known


def _explorer_source(ws: Workspace, rpc: str | None) -> Callable[[str | None], ExplorerSource]:
    """How the explorer's pages open the registry (``own_rpc``: this service's ``/rpc`` when it
    serves the embedded chain, which it then holds): judged with the chain's roles when
    contracts are recorded for the chain, else the workspace's ``[members]``; the anchors are
    read from the workspace's anchor book and back from LogAnchors on that chain."""

    def open_source(own_rpc: str | None) -> ExplorerSource:
        # imported on the first request of a page, not at start (web3 costs about a second)
        from contextlib import ExitStack

        from ailedger.chain.anchoring import ANCHORS_FILE, AnchorBook, AnchorRecord
        from ailedger.chain.anchors import LogAnchors, OnChainAnchor
        from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
        from ailedger.chain.membership import Membership
        from ailedger.cli._chain_common import open_chain
        from ailedger.cli._workflow import _chain_by_default
        from ailedger.identity.keys import Keystore
        from ailedger.registry import LocalBackend, Registry, RegistryBackend
        from ailedger.registry._chain import ChainBackend
        from ailedger.service.explorer_api import ExplorerSource

        keys = Keystore(ws.keys_dir).list_keys()
        book = AnchorBook(ws.path / ANCHORS_FILE)
        stack = ExitStack()
        backend: RegistryBackend = LocalBackend(ws, keys)
        on_chain: Callable[[AnchorRecord], OnChainAnchor | None] | None = None
        reader: Chain | None = None
        org_members: Callable[[str], list[tuple[str, str]]] | None = None
        no_chain = "this workspace has no chain"
        try:
            if _chain_by_default(ws, rpc):
                chain = stack.enter_context(open_chain(ws, rpc or own_rpc, read_only=True))
                reader = chain
                deployment = DeploymentBook(ws.path / DEPLOYMENTS_FILE).require(chain.chain_id)
                orgs = [str(m["org"]) for m in LocalBackend.members(ws).values() if m.get("org")]
                backend = ChainBackend.from_deployment(chain, deployment, keys=keys, orgs=orgs)
                if "Membership" in deployment.contracts:
                    membership = Membership(chain, deployment.open(chain, "Membership"))

                    def org_members(org: str) -> list[tuple[str, str]]:
                        if not membership.org_exists(org):
                            return []
                        return [(m.account, m.role) for m in membership.members(org)]

                if "LogAnchors" in deployment.contracts:
                    contract = LogAnchors(chain, deployment.open(chain, "LogAnchors"))

                    def on_chain(record: AnchorRecord) -> OnChainAnchor | None:
                        if record.chain_id != chain.chain_id:
                            return None
                        if record.contract.lower() != contract.address.lower():
                            return None
                        if record.index >= contract.count(record.log_id):
                            return None
                        return contract.anchor_at(record.log_id, record.index)

            elif rpc or own_rpc or _has_chain(ws):  # no contracts recorded: oracle pages
                try:
                    reader = stack.enter_context(open_chain(ws, rpc or own_rpc, read_only=True))
                except AiledgerError as exc:
                    no_chain = f"the chain could not be opened: {exc.message}"
            registry = Registry.open(ws, keys=keys, backend=backend, read_only=True)
        except BaseException:
            stack.close()
            raise
        stack.callback(registry.close)
        return ExplorerSource(
            registry,
            lambda: book.records(ws.config.origin),
            on_chain,
            close=stack.close,
            orgs={k.keyid.lower(): k.org for k in keys if k.org},
            chain=reader,
            no_chain=no_chain,
            members={
                str(a).lower(): str(m["org"])
                for a, m in LocalBackend.members(ws).items()
                if m.get("org")
            },
            org_members=org_members,
        )

    return open_source


def _has_chain(ws: Workspace) -> bool:
    """Whether the workspace names a node or has an embedded chain on disk."""
    directory = embedded_chain_dir(ws)
    return workspace_rpc_url(ws) is not None or (directory is not None and directory.is_dir())


def _witnesses(
    option: list[str] | None, configured: object, threshold: int | None, source: str
) -> tuple[list[str], int]:
    """The ``URL=VKEY`` witness specs and the threshold (option over config)."""
    if option:
        values = list(option)
    elif configured is None:
        values = []
    elif isinstance(configured, list) and all(isinstance(v, str) for v in configured):
        values = list(configured)
    else:
        raise WorkspaceError(f'{source}: [serve] witnesses must be a list of "URL=VKEY" strings')
    if threshold is None:
        return values, len(values)
    if not values:
        raise InvalidInput("--witness-threshold needs witnesses (--witness URL=VKEY)")
    return values, threshold


def _config_number(value: object, name: str, source: str, *, integer: bool) -> float | None:
    """``[serve] NAME``: a number > 0 (an integer when ``integer``), or ``None`` if unset."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or (integer and not isinstance(value, int))
        or not value > 0
    ):
        what = "an integer" if integer else "a number"
        raise WorkspaceError(f"{source}: [serve] {name} must be {what} > 0")
    return float(value)


def _anchoring(
    ws: Workspace,
    every: int | None,
    interval: float | None,
    anchor_key: str | None,
    rpc: str | None,
    log_key: Ed25519Signer | Secp256k1Signer,
    witnesses: list[WitnessConfig],
    k: int,
    password_file: Path | None,
) -> Callable[[Sequencer, str | None], AnchorSchedule] | None:
    """The anchoring schedule's factory, when anchoring is asked for (checked and keys
    unlocked now, so that a misconfigured service does not start)."""
    section = ws.config.section("serve")
    source = str(ws.config_path)
    if every is None:
        configured = _config_number(
            section.get("anchor_every"), "anchor_every", source, integer=True
        )
        every = None if configured is None else int(configured)
    if interval is None:
        interval = _config_number(
            section.get("anchor_interval"), "anchor_interval", source, integer=False
        )
    if every is None and interval is None:
        if anchor_key is not None:
            raise InvalidInput("--anchor-key needs --anchor-every N or --anchor-interval SECONDS")
        return None
    # imported only by a service that anchors (the chain modules cost ~0.05 s of every start)
    from ailedger.chain.anchoring import ANCHORS_FILE, AnchorBook
    from ailedger.chain.backends import workspace_chain_id
    from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
    from ailedger.cli._chain import _config_witnesses
    from ailedger.cli._chain_common import ensure_dev_funds, open_chain
    from ailedger.log.checkpoint import Secp256k1Cosigner
    from ailedger.service._anchoring import AnchorJob, AnchorSchedule, AnchorWitness

    if not isinstance(log_key, Secp256k1Signer):
        raise InvalidInput(
            f"log {ws.config.origin} is signed by an Ed25519 log key; on-chain anchors need a "
            "secp256k1 log key (LogAnchors recovers ECDSA signatures)",
            hint="serve with a secp256k1 --key, or without --anchor-every/--anchor-interval",
        )
    remote = [
        AnchorWitness(w.url, w.key.address)
        for w in witnesses
        if isinstance(w.key, Secp256k1Cosigner)
    ]
    if not remote:
        raise InvalidInput(
            "anchoring needs witnesses with secp256k1 keys (--witness URL=VKEY): LogAnchors "
            "takes only their EIP-712 cosignatures"
        )
    deployments = DeploymentBook(ws.path / DEPLOYMENTS_FILE)
    chain_id = workspace_chain_id(ws, rpc)
    if chain_id is not None:
        deployments.require(chain_id)  # NotFound with the hint to deploy: fail at start
    cfg_witnesses, cfg_threshold = _config_witnesses(ws)
    register = cfg_witnesses if cfg_witnesses is not None else [w.address for w in remote]
    threshold = cfg_threshold if cfg_threshold is not None else min(k, len(register))
    name = anchor_key if anchor_key is not None else section.get("anchor_key")
    if name is not None and not isinstance(name, str):
        raise WorkspaceError(f"{source}: [serve] anchor_key must be a key name")
    sender = log_key if name is None else log_signer(name, password_file)

    def schedule(seq: Sequencer, own_rpc: str | None) -> AnchorSchedule:
        # serving the embedded chain, the service holds it: anchors go through its own /rpc
        chain_url = rpc or own_rpc
        job = AnchorJob(
            origin=ws.config.origin,
            open_chain=lambda: open_chain(ws, chain_url),
            open_log=lambda: open_workspace_log(ws, read_only=True),
            deployments=deployments,
            book=AnchorBook(ws.path / ANCHORS_FILE),
            log_key=log_key,
            sender=sender,
            witnesses=remote,
            register_witnesses=register,
            register_threshold=threshold,
            on_open=lambda chain: ensure_dev_funds(chain, sender.address),
        )
        return AnchorSchedule(job, lambda: seq.note, seq.published, every=every, interval=interval)

    return schedule


def _limit(
    rate: str | None,
    burst: int | None,
    configured: dict[str, Any],
    rate_key: str,
    burst_key: str,
    source: str,
) -> RateLimit | None:
    """A rate limit from the options, else from ``[serve] rate_key / burst_key``."""
    from ailedger.service.ratelimit import RateLimit

    if rate is None:
        value = configured.get(rate_key)
        if value is None:
            if burst is not None:
                raise InvalidInput(f"--{burst_key.replace('_', '-')} needs a rate")
            return None
        if isinstance(value, int | float) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise WorkspaceError(f'{source}: [serve] {rate_key} must be like "20/s"')
        rate = value
    if burst is None:
        value = configured.get(burst_key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
            raise WorkspaceError(f"{source}: [serve] {burst_key} must be a whole number")
        burst = value
    return RateLimit.parse(rate, burst=burst)


def _shown(url: str | None) -> str | None:
    from ailedger.service.rpc import public_url

    return None if url is None else public_url(url)


@app.command("serve")
def serve_cmd(
    directory: Annotated[
        Path | None,
        typer.Argument(
            help="The workspace directory (default: --workspace, else the nearest .ailedger/).",
            show_default=False,
        ),
    ] = None,
    read_only: Annotated[
        bool | None,
        typer.Option(
            "--read-only/--no-read-only",
            help="Serve the log and the explorer only: no submissions, no key unlocked, no "
            "chain /rpc (default: [serve] read_only, which `ailedger demo` sets).",
            show_default=False,
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option("--port", min=0, max=65535, help="Port (0: any free port).")
    ] = 8080,
    allow: Annotated[
        list[str] | None,
        typer.Option(
            "--allow",
            help="An Ethereum address allowed to submit (repeatable; default: [serve] allow).",
        ),
    ] = None,
    membership: Annotated[
        str | None,
        typer.Option(
            "--membership",
            help="Who may submit: chain (members of an organisation in the Membership "
            "contract) or allow-list (default: [serve] membership, else allow-list when one "
            "is given, else chain when Membership is deployed).",
        ),
    ] = None,
    require_role: Annotated[
        str | None,
        typer.Option(
            "--require-role",
            help="With on-chain membership: the role each signer must hold in its "
            "organisation (default: [serve] require_role; none: any member).",
        ),
    ] = None,
    membership_ttl: Annotated[
        float | None,
        typer.Option(
            "--membership-ttl",
            min=0.0,
            help="Seconds an on-chain membership answer is reused (default: [serve] "
            "membership_ttl, else 2; 0: read the chain on every submission).",
        ),
    ] = None,
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="The log's ed25519 or secp256k1 key (default: the workspace's log key).",
        ),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            help="A witness URL=VKEY whose cosignature a checkpoint needs before it is "
            "published (repeatable; default: [serve] witnesses).",
        ),
    ] = None,
    witness_threshold: Annotated[
        int | None,
        typer.Option(
            "--witness-threshold",
            min=1,
            help="Cosignatures needed to publish (default: [serve] witness_threshold, else all).",
        ),
    ] = None,
    anchor_every: Annotated[
        int | None,
        typer.Option(
            "--anchor-every",
            min=1,
            help="Anchor the published checkpoint on-chain every N entries "
            "(default: [serve] anchor_every).",
        ),
    ] = None,
    anchor_interval: Annotated[
        float | None,
        typer.Option(
            "--anchor-interval",
            min=0.001,
            help="... or T seconds after the last anchor if the log grew "
            "(default: [serve] anchor_interval).",
        ),
    ] = None,
    anchor_key: Annotated[
        str | None,
        typer.Option(
            "--anchor-key",
            help="The secp256k1 account that sends the anchors (default: [serve] anchor_key, "
            "else the log key).",
        ),
    ] = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    max_body_bytes: Annotated[
        int, typer.Option("--max-body-bytes", min=1024, help="Request body limit.")
    ] = 1 << 20,
    checkpoint_interval_ms: Annotated[
        int,
        typer.Option(
            "--checkpoint-interval-ms",
            min=1,
            help="Sign a checkpoint at most this long after an entry is appended.",
        ),
    ] = 500,
    checkpoint_entries: Annotated[
        int,
        typer.Option(
            "--checkpoint-entries", min=1, help="... or once this many entries are uncovered."
        ),
    ] = 1024,
    rate: Annotated[
        str | None,
        typer.Option(
            "--rate",
            help="Submissions per signer: LIMIT/s, e.g. 50/s (default: [serve] rate; none: "
            "unlimited). Over it: 429 with Retry-After.",
        ),
    ] = None,
    burst: Annotated[
        int | None,
        typer.Option(
            "--burst", min=1, help="Submissions a signer may make at once (default: 1 s worth)."
        ),
    ] = None,
    read_rate: Annotated[
        str | None,
        typer.Option(
            "--read-rate",
            help="Reads (GET) and /rpc calls per client IP: LIMIT/s (default: [serve] "
            "read_rate; none: unlimited).",
        ),
    ] = None,
    read_burst: Annotated[
        int | None,
        typer.Option("--read-burst", min=1, help="Reads a client IP may make at once."),
    ] = None,
    chain_rpc: Annotated[
        bool | None,
        typer.Option(
            "--chain-rpc/--no-chain-rpc",
            help="Serve the workspace's embedded chain as a JSON-RPC node at /rpc "
            "(default: yes, unless read-only).",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve the workspace's log over HTTP (submissions, C2SP tlog-tiles, proofs).

    POST /v1/entries takes a DSSE envelope signed by allowed signers (an allow-list, or
    members of an organisation on-chain: --membership); GET /checkpoint,
    /tile/..., /v1/entries/{i}, /v1/receipts/{i}, /v1/proof/consistency serve the log.
    With --anchor-every/--anchor-interval the published checkpoints are anchored on-chain.
    With the embedded chain, POST /rpc serves it as an Ethereum JSON-RPC node.
    Stops on Ctrl-C or SIGTERM after committing what was acknowledged."""
    try:
        from ailedger.service._sequencer import SequencerSettings
        from ailedger.service._server import serve
        from ailedger.service.app import ServiceSettings
    except ImportError as exc:
        raise InvalidInput(
            f"the log service needs the server extra ({exc.name} is missing)",
            hint="pip install 'ailedger[server]'",
        ) from None
    from ailedger.service._cosigning import Cosigning, parse_witness_option

    if directory is not None:
        state.workspace = directory
    ws = open_workspace()
    section = ws.config.section("serve")
    if read_only is None:
        configured = section.get("read_only", False)
        if not isinstance(configured, bool):
            raise WorkspaceError(f"{ws.config_path}: [serve] read_only must be true or false")
        read_only = configured
    if chain_rpc is None:
        chain_rpc = not read_only
    members = None
    mode = "read-only"
    if read_only:
        _check_read_only(allow, anchor_every, anchor_interval, anchor_key)
        if membership is not None or require_role is not None or membership_ttl is not None:
            raise InvalidInput(
                "--read-only takes no submissions: --membership, --require-role and "
                "--membership-ttl would be ignored",
                hint="drop them, or serve with --no-read-only",
            )
        allowed: frozenset[str] = frozenset()
    else:
        source = str(ws.config_path)
        allow_given = bool(allow) or section.get("allow") is not None
        auto = membership is None and section.get("membership") is None and not allow_given
        mode = _membership_mode(
            membership,
            section.get("membership"),
            allow_given,
            auto and _membership_deployed(ws, rpc),
            source,
        )
        if mode == "chain":
            role = require_role if require_role is not None else section.get("require_role")
            if role is not None and not isinstance(role, str):
                raise WorkspaceError(f"{source}: [serve] require_role must be a role name")
            ttl = membership_ttl
            if ttl is None:
                ttl_value = section.get("membership_ttl", 2.0)
                if (
                    isinstance(ttl_value, bool)
                    or not isinstance(ttl_value, int | float)
                    or (ttl_value < 0)
                ):
                    raise WorkspaceError(f"{source}: [serve] membership_ttl must be a number >= 0")
                ttl = float(ttl_value)
            members = _chain_membership(ws, rpc, chain_rpc, role, ttl)
            allowed = frozenset()
        else:
            if require_role is not None or membership_ttl is not None:
                raise InvalidInput("--require-role and --membership-ttl need --membership chain")
            allowed = _allow_list(allow, section.get("allow"), source)
    configured_k = section.get("witness_threshold")
    if configured_k is not None and (type(configured_k) is not int or configured_k < 1):
        raise WorkspaceError(f"{ws.config_path}: [serve] witness_threshold must be an integer >= 1")
    specs, k = _witnesses(
        witness,
        section.get("witnesses"),
        witness_threshold if witness_threshold is not None else configured_k,
        str(ws.config_path),
    )
    witnesses = [parse_witness_option(v) for v in specs]
    cosigning = Cosigning(witnesses, k) if witnesses else None
    signer_limit = _limit(rate, burst, section, "rate", "burst", str(ws.config_path))
    read_limit = _limit(
        read_rate, read_burst, section, "read_rate", "read_burst", str(ws.config_path)
    )
    if read_only:
        verifier = _read_only_verifier(ws, key)
        note_key = None
        anchoring = None
    else:
        name = log_key_name(key, "--key")
        store = open_keystore()
        check_log_key(store, name)
        verifier = note_key_for(ws.config.origin, store.public_key(name))
        with open_workspace_log(ws) as log:
            known = log.log_key()
        if known is not None and vkey(known) != vkey(verifier):
            raise ConflictError(
                f"log {ws.config.origin} is signed by {vkey(known)}, not by key {name} "
                f"({vkey(verifier)})",
                hint="serve the log with its own key (--key NAME)",
            )
        signer = note_signer(name, password_file)
        note_key = note_key_for(ws.config.origin, signer)
        anchoring = _anchoring(
            ws, anchor_every, anchor_interval, anchor_key, rpc, signer, witnesses, k, password_file
        )

    def ready(url: str) -> None:
        embedded = embedded_chain_dir(ws) is not None
        served = f"{url}/rpc" if chain_rpc else None
        chain = {
            "backend": "embedded" if embedded else "rpc",
            "chain_id": workspace_chain_id(ws),
            "rpc": served if embedded else _shown(workspace_rpc_url(ws)),
        }
        with open_workspace_log(ws, read_only=True) as log:
            size = Checkpoint.parse(log.latest_checkpoint().text).size
        doc = {
            "url": url,
            "origin": ws.config.origin,
            "log_key": vkey(verifier),
            "size": size,
            "chain": chain,
            "membership": mode,
        }
        if as_json:
            sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
            sys.stdout.flush()
        else:
            console.print(
                f"serving {ws.config.origin} at {url} (log key {vkey(verifier)}; "
                f"membership: {mode})"
            )
            if chain["rpc"]:
                console.print(f"{chain['backend']} chain {chain['chain_id']} at {chain['rpc']}")

    serve(
        ws,
        note_key,
        verifier,
        ServiceSettings(
            allow=allowed,
            max_body_bytes=max_body_bytes,
            signer_limit=signer_limit,
            read_limit=read_limit,
        ),
        host=host,
        port=port,
        sequencing=SequencerSettings(
            checkpoint_entries=checkpoint_entries, checkpoint_interval_ms=checkpoint_interval_ms
        ),
        serve_chain=chain_rpc,
        on_ready=ready,
        cosigning=cosigning,
        anchoring=anchoring,
        membership=members,
        explorer_source=_explorer_source(ws, rpc),
    )
