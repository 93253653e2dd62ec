"""``ailedger chain ...`` (deploy, status, grant, join, revoke, members, cosign) and
``ailedger anchor``.

The chain comes from the workspace's ``[chain]`` config: ``backend = "embedded"`` (state in
``.ailedger/chain/``) or ``backend = "rpc"`` with ``url`` and ``chain_id``; ``--rpc URL``
(or ``$AILEDGER_RPC_URL``, read only here) overrides it. Contract addresses are kept per
chain id in ``.ailedger/deployments.json``, anchors in ``.ailedger/anchors.json``. On the
development chains (embedded, anvil) a sending key with no ether is funded from the faucet.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from ailedger.chain import Chain
from ailedger.chain.anchoring import (
    ANCHORS_FILE,
    AnchorBook,
    AnchorResult,
    AnchorVerification,
    Eip712Cosignature,
    anchor_checkpoint,
    cosign_checkpoint,
    verify_receipt_anchor,
)
from ailedger.chain.anchors import LogAnchors
from ailedger.chain.backends import WORKSPACE_CHAIN
from ailedger.chain.deployments import (
    DEFAULT_REGISTRY_DELAY,
    DEPLOYMENTS_FILE,
    ContractRecord,
    DeploymentBook,
    deploy_contracts,
)
from ailedger.chain.eip712 import log_id
from ailedger.chain.inference_market import INFERENCE_PROVER_BPS, deploy_inference_market
from ailedger.chain.labeling import deploy_labeling_market
from ailedger.chain.membership import Membership, org_id
from ailedger.chain.oracle_judge import DEFAULT_PROVER_BPS, deploy_oracle_judge
from ailedger.chain.oracles import DEFAULT_CONFIG_DELAY
from ailedger.chain.stake import DEFAULT_UNBONDING_DELAY, deploy_stake_manager
from ailedger.chain.vouching import (
    VOUCH_PROVER_BPS,
    deploy_dataset_vouching,
    register_with_stake_manager,
)
from ailedger.cli._app import app
from ailedger.cli._chain_common import RPC_ENV, RpcOpt, ensure_dev_funds, open_chain
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._keys import (
    PasswordFileOpt,
    log_key_name,
    log_signer,
    open_log,
    open_workspace,
)
from ailedger.cli._remote import LogUrlOpt, RemoteKeyOpt, TimeoutOpt, configured_url, remote_log
from ailedger.errors import ConflictError, InvalidInput, NotFound, ProofInvalid, WorkspaceError
from ailedger.log.checkpoint import Checkpoint, Ed25519NoteKey, Secp256k1NoteKey, vkey
from ailedger.log.receipt import Receipt
from ailedger.workspace import Workspace

__all__ = [
    "RPC_ENV",
    "WORKSPACE_CHAIN",
    "chain_app",
    "ensure_dev_funds",
    "open_chain",
    "verify_receipt_on_chain",
]

chain_app = typer.Typer(
    help="The chain: deploy the contracts, status, organisations and roles, cosign for anchors.",
    no_args_is_help=True,
)
app.add_typer(chain_app, name="chain")

KeyOpt = Annotated[str, typer.Option("--key", help="Name of a secp256k1 key in the workspace.")]
OrgOpt = Annotated[str, typer.Option("--org", help="Organisation name.")]
RoleOpt = Annotated[str, typer.Option("--role", help="Role name (admin, qa, auditor, ...).")]


def _book(ws: Workspace) -> DeploymentBook:
    return DeploymentBook(ws.path / DEPLOYMENTS_FILE)


def _anchors(ws: Workspace, chain: Chain) -> LogAnchors:
    dep = _book(ws).require(chain.chain_id)
    return LogAnchors(chain, dep.open(chain, "LogAnchors"))


def _membership(ws: Workspace, chain: Chain) -> Membership:
    dep = _book(ws).require(chain.chain_id)
    return Membership(chain, dep.open(chain, "Membership"))


@chain_app.command("deploy")
def deploy_cmd(
    key: KeyOpt,
    rpc: RpcOpt = None,
    force: Annotated[
        bool, typer.Option("--force", help="Deploy again even if a deployment exists.")
    ] = False,
    registry_delay: Annotated[
        int,
        typer.Option(
            "--registry-delay",
            min=0,
            max=2**48 - 1,
            help="Seconds before a weaker approval requirement takes effect in ModelRegistry, "
            "and before a registry-admin handover can be accepted.",
        ),
    ] = DEFAULT_REGISTRY_DELAY,
    unbonding_delay: Annotated[
        int,
        typer.Option(
            "--unbonding-delay",
            min=1,
            max=2**62,
            help="Seconds between a StakeManager withdrawal request and the withdrawal; a new "
            "judge or market acts only twice as long after governance registers it.",
        ),
    ] = DEFAULT_UNBONDING_DELAY,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Deploy Membership, LogAnchors, ModelRegistry and StakeManager (KEY administers them,
    and is the StakeManager's treasury), LabelingMarket, DatasetVouching and InferenceMarket
    (each proposed as a StakeManager judge and market), OracleFeeds and its OracleJudge
    (proposed to the StakeManager as a judge); all active after the governance delay; record
    them."""
    ws = open_workspace()
    signer = log_signer(key, password_file)
    with open_chain(ws, rpc) as chain:
        existing = _book(ws).get(chain.chain_id)
        if existing is not None and not force and chain.code(existing.address("LogAnchors")):
            raise ConflictError(
                f"the contracts are already deployed on chain {chain.chain_id}",
                hint="use them, or pass --force to deploy a new set",
            )
        ensure_dev_funds(chain, signer.address)
        dep = deploy_contracts(chain, signer, registry_delay=registry_delay)
        stake = deploy_stake_manager(chain, signer, unbonding_delay=unbonding_delay)
        dep = dataclasses.replace(
            dep, contracts={**dep.contracts, stake.name: ContractRecord.of(stake)}
        )
        # LabelingMarket: proposed as a StakeManager judge and market (active after its delay)
        labeling = deploy_labeling_market(chain, signer, stake)
        dep = dataclasses.replace(
            dep, contracts={**dep.contracts, labeling.name: ContractRecord.of(labeling)}
        )
        # OracleFeeds and its OracleJudge, proposed to the StakeManager (acting after the
        # governance delay).
        feeds = chain.deploy("OracleFeeds", DEFAULT_CONFIG_DELAY, signer=signer)
        judge = deploy_oracle_judge(chain, stake.address, feeds.address, signer)
        chain.transact(stake, "proposeJudge", judge.address, DEFAULT_PROVER_BPS, signer=signer)
        dep = dataclasses.replace(
            dep,
            contracts={
                **dep.contracts,
                feeds.name: ContractRecord.of(feeds),
                judge.name: ContractRecord.of(judge),
            },
        )
        vouching = deploy_dataset_vouching(
            chain,
            signer,
            stake_manager=stake.address,
            registry=dep.address("ModelRegistry"),
        )
        register_with_stake_manager(
            chain, stake.address, vouching.address, prover_bps=VOUCH_PROVER_BPS, signer=signer
        )
        dep = dataclasses.replace(
            dep, contracts={**dep.contracts, vouching.name: ContractRecord.of(vouching)}
        )
        # InferenceMarket: a StakeManager judge and market like DatasetVouching
        market = deploy_inference_market(chain, signer, stake_manager=stake.address)
        register_with_stake_manager(
            chain, stake.address, market.address, prover_bps=INFERENCE_PROVER_BPS, signer=signer
        )
        dep = dataclasses.replace(
            dep, contracts={**dep.contracts, market.name: ContractRecord.of(market)}
        )
        _book(ws).put(dep)
    doc = dep.to_dict()

    def human() -> None:
        console.print(f"deployed on chain {dep.chain_id} (admin {dep.deployer}):")
        for name, rec in sorted(dep.contracts.items()):
            console.print(f"  {name}: {rec.address} (block {rec.block_number})")

    emit(doc, as_json, human)


def _anchor_status(ws: Workspace, chain: Chain) -> dict[str, Any] | None:
    dep = _book(ws).get(chain.chain_id)
    if dep is None:
        return None
    anchors = LogAnchors(chain, dep.open(chain, "LogAnchors"))
    with open_log(read_only=True) as log:
        key = log.log_key()
    if not isinstance(key, Secp256k1NoteKey):  # no checkpoint yet, or not an anchorable key
        return {
            "origin": ws.config.origin,
            "registered": False,
            "log": None,
            "anchors": 0,
            "latest": None,
        }
    lid = log_id(ws.config.origin, key.address)
    info = anchors.log_info(lid)
    latest = anchors.latest(lid)
    return {
        "origin": ws.config.origin,
        "registered": info is not None,
        "log": None if info is None else info.to_dict(),
        "anchors": anchors.count(lid),
        "latest": None if latest is None else latest.to_dict(),
    }


@chain_app.command("status")
def status_cmd(rpc: RpcOpt = None, as_json: JsonOpt = False) -> None:
    """Backend, chain id, head block, contract addresses and the workspace log's anchor."""
    ws = open_workspace()
    with open_chain(ws, rpc, read_only=True) as chain:
        dep = _book(ws).get(chain.chain_id)
        doc: dict[str, Any] = {
            "backend": chain.backend,
            "endpoint": chain.endpoint,
            "chain_id": chain.chain_id,
            "block_number": chain.block_number(),
            "contracts": None if dep is None else dep.to_dict()["contracts"],
            "log": _anchor_status(ws, chain),
        }

    def human() -> None:
        console.print(f"{doc['backend']} chain {doc['chain_id']} at block {doc['block_number']}")
        if dep is None:
            console.print("contracts: not deployed (run `ailedger chain deploy`)")
            return
        for name, rec in sorted(dep.contracts.items()):
            console.print(f"  {name}: {rec.address}")
        log = doc["log"]
        latest = log["latest"] if log else None
        if latest:
            console.print(f"log {escape(log['origin'])}: anchored size {latest['size']}")
            console.print(f"  root {latest['root']} (anchor #{latest['index']})")
        else:
            console.print("log: not anchored yet (run `ailedger anchor`)")

    emit(doc, as_json, human)


ConsentKeyOpt = Annotated[
    str | None,
    typer.Option(
        "--consent-key",
        help="Name of ADDRESS's own key in the workspace: it signs its consent to join ORG "
        "(EIP-712 Join), which KEY relays. Without it a non-member is only invited.",
    ),
]


@chain_app.command("grant")
def grant_cmd(
    address: Annotated[str, typer.Argument(help="Account (Ethereum address) to grant to.")],
    org: OrgOpt,
    role: RoleOpt,
    key: KeyOpt,
    consent_key: ConsentKeyOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Grant ROLE in ORG to ADDRESS, signed by an admin of ORG (or the global admin).

    Nobody joins an organisation without consenting: when ADDRESS is not a member of ORG yet,
    its own key (--consent-key) signs its consent and it joins in the same command; without
    that key it is invited, and joins with `ailedger chain join --org ORG --key ITS-KEY`
    before ROLE can be granted. An organisation that does not exist yet is created by the
    global admin (KEY) with ADDRESS as its first admin (once ADDRESS consents); ADDRESS then
    also gets ROLE unless ROLE is admin."""
    ws = open_workspace()
    signer = log_signer(key, password_file)
    consent = None if consent_key is None else log_signer(consent_key, password_file)
    if consent is not None and consent.address.lower() != address.lower():
        raise InvalidInput(
            f"--consent-key {consent_key} is the key of {consent.address}, not of {address}"
        )
    created = invited = False
    with open_chain(ws, rpc) as chain:
        members = _membership(ws, chain)
        ensure_dev_funds(chain, signer.address)
        receipts = []
        if not members.org_exists(org):
            receipts.append(members.create_org(org, address, signer=signer))
            created = True
        if members.org_of(address) != org_id(org):
            if consent is not None:
                receipts.append(members.add_member(members.sign_join(org, consent), signer=signer))
            else:
                if not created and not members.is_invited(org, address):
                    receipts.append(members.invite(org, address, signer=signer))
                invited = True
        if not invited and not (created and role == "admin"):  # a founder joins as admin
            receipts.append(members.grant(org, address, role, signer=signer))
    doc = {
        "org": org,
        "account": address,
        "role": role,
        "org_created": created,
        "invited": invited,
        "granted": not invited,
        "transactions": [r.tx_hash for r in receipts],
        "block": receipts[-1].block_number if receipts else None,
    }

    def human() -> None:
        note = f" (created organisation {escape(org)})" if created else ""
        if invited:
            console.print(
                f"invited {address} to {escape(org)}{note}; it joins with `ailedger chain join "
                f"--org {escape(org)} --key ITS-KEY`, then grant {role} again"
            )
        else:
            console.print(f"granted {role} in {escape(org)} to {address}{note}")

    emit(doc, as_json, human)


@chain_app.command("join")
def join_cmd(
    org: OrgOpt,
    key: KeyOpt,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Accept an invitation of ORG: KEY's account joins it (as its admin, if ORG was created
    with KEY's account as its first admin)."""
    ws = open_workspace()
    signer = log_signer(key, password_file)
    with open_chain(ws, rpc) as chain:
        members = _membership(ws, chain)
        ensure_dev_funds(chain, signer.address)
        receipt = members.accept(org, signer=signer)
    doc = {"org": org, "account": signer.address, "transaction": receipt.tx_hash}
    emit(doc, as_json, lambda: console.print(f"{signer.address} joined {escape(org)}"))


@chain_app.command("revoke")
def revoke_cmd(
    address: Annotated[str, typer.Argument(help="Account to revoke from.")],
    org: OrgOpt,
    role: RoleOpt,
    key: KeyOpt,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Revoke ROLE in ORG from ADDRESS (signed by an admin of ORG)."""
    ws = open_workspace()
    signer = log_signer(key, password_file)
    with open_chain(ws, rpc) as chain:
        members = _membership(ws, chain)
        ensure_dev_funds(chain, signer.address)
        receipt = members.revoke(org, address, role, signer=signer)
    doc = {"org": org, "account": address, "role": role, "transaction": receipt.tx_hash}
    emit(doc, as_json, lambda: console.print(f"revoked {role} in {escape(org)} from {address}"))


@chain_app.command("remove")
def remove_cmd(
    address: Annotated[str, typer.Argument(help="Member (Ethereum address) to remove.")],
    org: OrgOpt,
    key: KeyOpt,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove ADDRESS from ORG (signed by an admin of ORG); its roles must have been revoked
    first. A log service with on-chain membership refuses its submissions from then on."""
    ws = open_workspace()
    signer = log_signer(key, password_file)
    with open_chain(ws, rpc) as chain:
        members = _membership(ws, chain)
        ensure_dev_funds(chain, signer.address)
        receipt = members.remove_member(org, address, signer=signer)
    doc = {
        "org": org,
        "account": address,
        "transaction": receipt.tx_hash,
        "block": receipt.block_number,
    }
    emit(doc, as_json, lambda: console.print(f"removed {address} from {escape(org)}"))


@chain_app.command("deployer")
def deployer_cmd(
    address: Annotated[str, typer.Argument(help="Account (Ethereum address) to allow.")],
    env: Annotated[str, typer.Option("--env", help="Environment (prod, staging, ...).")],
    key: KeyOpt,
    revoke: Annotated[
        bool, typer.Option("--revoke", help="Take the deployer role away instead.")
    ] = False,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Let ADDRESS deploy and roll back in ENV on the ModelRegistry (or, with --revoke, no
    longer): signed by the registry admin (the key that ran `ailedger chain deploy`)."""
    from ailedger.chain.registry import ModelRegistry

    ws = open_workspace()
    signer = log_signer(key, password_file)
    with open_chain(ws, rpc) as chain:
        registry = ModelRegistry(
            chain, _book(ws).require(chain.chain_id).open(chain, "ModelRegistry")
        )
        ensure_dev_funds(chain, signer.address)
        if revoke:
            receipt = registry.revoke_deployer(env, address, signer=signer)
        else:
            receipt = registry.grant_deployer(env, address, signer=signer)
        holds = registry.is_deployer(env, address)
    doc = {"env": env, "account": address, "deployer": holds, "transaction": receipt.tx_hash}
    verb = "may no longer" if revoke else "may now"
    emit(doc, as_json, lambda: console.print(f"{address} {verb} deploy to {escape(env)}"))


@chain_app.command("members")
def members_cmd(org: OrgOpt, rpc: RpcOpt = None, as_json: JsonOpt = False) -> None:
    """Who holds which role in ORG now (from the grant and revoke events)."""
    ws = open_workspace()
    with open_chain(ws, rpc) as chain:
        members = _membership(ws, chain)
        if not members.org_exists(org):
            raise NotFound(f"no organisation {org!r} on chain {chain.chain_id}")
        held = members.members(org)

    def human() -> None:
        for m in held:
            console.print(f"{m.account} {m.role} (since block {m.since})")
        console.print(f"{len(held)} role assignments in {escape(org)}")

    emit({"org": org, "members": [m.to_dict() for m in held]}, as_json, human)


@chain_app.command("cosign")
def cosign_cmd(
    key: KeyOpt,
    out: Annotated[Path, typer.Option("--out", help="Write the cosignature JSON here.")],
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Witness the log's latest checkpoint for anchoring: an EIP-712 Cosignature by KEY.

    The checkpoint must carry the log key's signature and match the stored tree. Give the
    file to whoever runs `ailedger anchor --cosignature FILE`."""
    ws = open_workspace()
    witness = log_signer(key, password_file)
    with open_chain(ws, rpc) as chain, open_log() as log:
        cosignature = cosign_checkpoint(log, _anchors(ws, chain), witness)
    doc = cosignature.to_dict()
    out.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    emit(
        doc | {"file": str(out)},
        as_json,
        lambda: console.print(f"cosigned size {cosignature.size} as {witness.address}: {out}"),
    )


def _config_witnesses(ws: Workspace) -> tuple[list[str] | None, int | None]:
    section = ws.config.section("anchor")
    witnesses = section.get("witnesses")
    threshold = section.get("threshold")
    if witnesses is not None and not (
        isinstance(witnesses, list) and all(isinstance(w, str) for w in witnesses)
    ):
        raise WorkspaceError(f"{ws.config_path}: [anchor] witnesses must be a list of addresses")
    if threshold is not None and (not isinstance(threshold, int) or threshold < 1):
        raise WorkspaceError(f"{ws.config_path}: [anchor] threshold must be an integer >= 1")
    return witnesses, threshold


@app.command("anchor")
def anchor_cmd(
    key: Annotated[
        str | None,
        typer.Option(
            "--key",
            help="The log key (secp256k1, in the workspace; default: the workspace's log key).",
        ),
    ] = None,
    witness_key: Annotated[
        list[str] | None,
        typer.Option("--witness-key", help="A local witness key that cosigns (repeatable)."),
    ] = None,
    cosignature: Annotated[
        list[Path] | None,
        typer.Option("--cosignature", help="A remote witness's `chain cosign` file (repeatable)."),
    ] = None,
    witness: Annotated[
        list[str] | None,
        typer.Option(
            "--witness",
            help="Witness address to register on first use (repeatable; default: the "
            "witnesses of the anchor table in config.toml, else every cosigner).",
        ),
    ] = None,
    threshold: Annotated[
        int | None,
        typer.Option("--threshold", help="Cosignatures required, set on first use (default: all)."),
    ] = None,
    with_consistency: Annotated[
        bool,
        typer.Option(
            "--with-consistency",
            help="Have the contract verify a consistency proof from the previous anchor.",
        ),
    ] = False,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    log_url: LogUrlOpt = None,
    remote_key: RemoteKeyOpt = None,
    _timeout: TimeoutOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Anchor the log's latest checkpoint on the chain (registering the log on first use).

    If the log grew since its latest checkpoint (or has none), KEY signs a new one first.
    Anchors need a secp256k1 log key (LogAnchors recovers ECDSA signatures); a log signed by
    an Ed25519 key is refused.

    With --log URL (or \\[log] url): anchor the log service's latest published checkpoint,
    once the workspace's mirror verified it (see `log verify --log`); no checkpoint is signed.
    The anchor carries the log key's consent, so KEY must be the service's log key: only its
    operator anchors it (`ailedger serve --anchor-every N` does so on a schedule). Witnesses
    cosign for the chain as without --log (--witness-key, --cosignature)."""
    ws = open_workspace()
    url = configured_url(log_url, ws)
    if url is not None:
        service = remote_log(url, remote_key, ws)
        signer = log_signer(log_key_name(key, "--key"), password_file)
        witness_signers = [log_signer(w, password_file) for w in witness_key or []]
        cfg_witnesses, cfg_threshold = _config_witnesses(ws)
        with open_chain(ws, rpc) as chain, service.open() as mirror:
            assert service.last_sync is not None
            trusted = mirror.log_key()
            if (
                not isinstance(trusted, Secp256k1NoteKey)
                or trusted.address.lower() != signer.address.lower()
            ):
                shown = vkey(trusted) if trusted is not None else "no key"
                raise InvalidInput(
                    f"the log service {url} signs its checkpoints with {shown}, not with key "
                    f"{signer.address}: only its operator, who holds the log key, anchors it",
                    hint="the service anchors itself (`ailedger serve --anchor-every N`); its "
                    "receipts then carry the anchor",
                )
            anchors = _anchors(ws, chain)
            ensure_dev_funds(chain, signer.address)
            result = anchor_checkpoint(
                mirror,
                anchors,
                signer,
                witness_keys=witness_signers,
                cosignatures=[Eip712Cosignature.load(p) for p in cosignature or []],
                witnesses=witness if witness else cfg_witnesses,
                threshold=threshold if threshold is not None else cfg_threshold,
                with_consistency=with_consistency,
                book=AnchorBook(ws.path / ANCHORS_FILE),
                checkpoint=service.last_sync.checkpoint,
            )
        _print_anchor(result, as_json)
        return
    with open_log(read_only=True) as log:
        if isinstance(log.log_key(), Ed25519NoteKey):
            raise InvalidInput(
                f"log {log.origin} is signed by an Ed25519 log key; on-chain anchors need a "
                "secp256k1 log key (LogAnchors recovers ECDSA signatures)",
                hint="anchor a log whose checkpoints a secp256k1 key signs (`ailedger keys new`)",
            )
    signer = log_signer(log_key_name(key, "--key"), password_file)
    witness_signers = [log_signer(w, password_file) for w in witness_key or []]
    remote = [Eip712Cosignature.load(p) for p in cosignature or []]
    cfg_witnesses, cfg_threshold = _config_witnesses(ws)
    with open_chain(ws, rpc) as chain, open_log() as log:
        anchors = _anchors(ws, chain)
        try:
            size = Checkpoint.parse(log.latest_checkpoint().text).size
        except NotFound:
            size = -1
        if size != log.size():
            if log.size() == 0:
                raise InvalidInput("the log is empty: nothing to anchor")
            log.checkpoint(Secp256k1NoteKey.from_signer(log.origin, signer))
        ensure_dev_funds(chain, signer.address)
        result = anchor_checkpoint(
            log,
            anchors,
            signer,
            witness_keys=witness_signers,
            cosignatures=remote,
            witnesses=witness if witness else cfg_witnesses,
            threshold=threshold if threshold is not None else cfg_threshold,
            with_consistency=with_consistency,
            book=AnchorBook(ws.path / ANCHORS_FILE),
        )
    _print_anchor(result, as_json)


def _print_anchor(result: AnchorResult, as_json: bool) -> None:
    rec = result.record

    def human() -> None:
        if result.registered:
            console.print(f"registered log {escape(rec.origin)} on {rec.contract}")
        console.print(
            f"anchored size {rec.size} root {rec.root.hex()} as anchor #{rec.index} "
            f"in block {rec.block} ({rec.tx_hash})"
        )

    emit(result.to_dict(), as_json, human)


def verify_receipt_on_chain(receipt: Receipt, rpc: str, contract: str | None) -> AnchorVerification:
    """``verify receipt --rpc``: check the receipt's anchor on the node at ``rpc``.

    ``rpc`` may be ``workspace`` for the workspace's own chain. The contract is the one the
    receipt's anchor names, else ``contract``, else the workspace's deployment."""
    ws: Workspace | None = None
    if rpc == WORKSPACE_CHAIN or (contract is None and receipt.anchor is None):
        try:
            ws = open_workspace()
        except WorkspaceError:
            raise ProofInvalid(
                "the receipt carries no anchor and no --anchors-contract was given",
                hint="pass the LogAnchors address with --anchors-contract",
                code="receipt-anchor-missing",
            ) from None
    with open_chain(ws, rpc) as chain:
        address = contract
        if address is None and receipt.anchor is not None:
            address = str(receipt.anchor.get("contract", "")) or None
        if address is None:
            assert ws is not None
            dep = _book(ws).get(chain.chain_id)
            if dep is None:
                raise ProofInvalid(
                    f"the receipt carries no anchor and nothing is deployed on chain "
                    f"{chain.chain_id}",
                    code="receipt-anchor-missing",
                )
            address = dep.address("LogAnchors")
        contract_at = chain.at("LogAnchors", address, track=False)  # calls only: no log scan
        return verify_receipt_anchor(receipt, LogAnchors(chain, contract_at))
