"""``ailedger vouch bound|list|stake|fund|claim|status`` and ``ailedger vouch audit
open|draw|answer|settle``: vouched datasets on the DatasetVouching contract that ``ailedger
chain deploy`` recorded for the chain (or ``--contract``).

Amounts are decimal units of the dataset's ERC-20 asset. ``bound`` prints how many sampled
records back "fewer than P bad at confidence 1 - D"; ``audit open --bad P --risk D`` audits
that many. A revert is one decoded line and a hint (exit 9).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from ailedger.chain.client import Chain
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
from ailedger.chain.stake import Token, format_units, parse_units
from ailedger.chain.vouching import DatasetVouching, RecordChecks, VouchTerms
from ailedger.cli._app import app
from ailedger.cli._chain_common import RpcOpt, ensure_dev_funds, open_chain
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._dataset import SecretOpt, UnsaltedOpt, dataset_secret
from ailedger.cli._keys import PasswordFileOpt, log_signer, open_workspace
from ailedger.errors import InvalidInput
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.vouch import (
    REASONS,
    answer_audit,
    audit_outcome,
    check_listing,
    miss_probability,
    salt_length_of,
    sample_size,
    sample_size_without_replacement,
)

__all__ = ["vouch_app"]

vouch_app = typer.Typer(
    help="Vouch for datasets with stake; audit them by sampled records (slash or reward).",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="Open, draw, answer and settle an audit of a vouched dataset.", no_args_is_help=True
)
vouch_app.add_typer(audit_app, name="audit")
app.add_typer(vouch_app, name="vouch")

KeyOpt = Annotated[str, typer.Option("--key", help="Name of a secp256k1 key in the workspace.")]
ContractOpt = Annotated[
    str | None,
    typer.Option(
        "--contract", help="DatasetVouching address (default: the workspace's deployment)."
    ),
]
DatasetIdArg = Annotated[str, typer.Argument(help="Dataset id (hex), as `vouch list` printed.")]
AuditIdArg = Annotated[int, typer.Argument(help="Audit id.", min=1)]
AmountArg = Annotated[str, typer.Argument(help="Amount in units of the asset, e.g. 1.5.")]
DatasetOpt = Annotated[
    Path | None, typer.Option("--dataset", help="The dataset file (fingerprinted in input order).")
]
BadOpt = Annotated[
    float | None, typer.Option("--bad", help="Claim: fewer than this fraction of records is bad.")
]
RiskOpt = Annotated[
    float | None, typer.Option("--risk", help="Claim: at confidence 1 - RISK (e.g. 0.01).")
]


def _bytes32(text: str, what: str) -> bytes:
    try:
        raw = bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise InvalidInput(f"{what} must be 32 bytes of hex, not {text!r}")
    return raw


def _address(chain: Chain, contract: str | None) -> str:
    if contract is not None:
        return contract
    ws = open_workspace()
    dep = DeploymentBook(ws.path / DEPLOYMENTS_FILE).require(chain.chain_id)
    return dep.address("DatasetVouching")


@contextmanager
def _vouching(
    rpc: str | None, contract: str | None, *, read_only: bool = False
) -> Iterator[DatasetVouching]:
    ws = open_workspace()
    with open_chain(ws, rpc, read_only=read_only) as chain:
        address = _address(chain, contract)
        yield DatasetVouching(chain, chain.at("DatasetVouching", address, track=False))


def _signer(key: str, password_file: Path | None, chain: Chain) -> Secp256k1Signer:
    signer = log_signer(key, password_file)
    ensure_dev_funds(chain, signer.address)
    return signer


def _unit(chain: Chain, asset: str) -> tuple[int, str]:
    token = Token.at(chain, asset)
    return token.decimals(), token.symbol()


def _bound_doc(p: float, d: float, size: int | None) -> dict[str, Any]:
    k = sample_size(p, d)
    doc: dict[str, Any] = {
        "bad_fraction": p,
        "risk": d,
        "k": k,
        "miss_probability": miss_probability(p, k),
        "sampling": "with replacement (as the contract samples)",
    }
    if size is not None:
        doc["size"] = size
        doc["k_without_replacement"] = sample_size_without_replacement(size, p, d)
    return doc


def _bound_line(doc: dict[str, Any]) -> str:
    line = (
        f"k = {doc['k']} sampled records show < {doc['bad_fraction']:g} bad at confidence "
        f"{1 - doc['risk']:g} (a bad fraction that large passes with probability "
        f"{doc['miss_probability']:.3g})"
    )
    if "k_without_replacement" in doc:
        line += f"; {doc['k_without_replacement']} distinct records of {doc['size']}"
    return line


@vouch_app.command("bound")
def bound_cmd(
    bad: Annotated[float, typer.Option("--bad", help="Fewer than this fraction is bad.")],
    risk: Annotated[float, typer.Option("--risk", help="At confidence 1 - RISK.")],
    size: Annotated[
        int | None, typer.Option("--size", min=1, help="Dataset size: also without replacement.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """How many sampled records back "fewer than BAD bad at confidence 1 - RISK":
    k = ceil(ln RISK / ln(1 - BAD))."""
    doc = _bound_doc(bad, risk, size)
    emit(doc, as_json, lambda: console.print(_bound_line(doc)))


@vouch_app.command("list")
def list_cmd(
    version_id: Annotated[str, typer.Argument(help="Model version id (hex) you registered.")],
    dataset: Annotated[Path, typer.Option("--dataset", help="The dataset file.")],
    token: Annotated[str, typer.Option("--token", help="The stake asset (an ERC-20 address).")],
    key: KeyOpt,
    bond: Annotated[str, typer.Option("--bond", help="Challenger's bond, in token units.")],
    min_vouch: Annotated[str, typer.Option("--min-vouch", help="Minimum vouch.")] = "1",
    reward: Annotated[str, typer.Option("--reward", help="Reward per passed audit.")] = "0",
    root_index: Annotated[int, typer.Option("--root-index", min=0)] = 0,
    slash_bps: Annotated[int, typer.Option("--slash-bps", min=0, max=10_000)] = 5_000,
    answer_window: Annotated[int, typer.Option("--answer-window", min=1)] = 86_400,
    dispute_window: Annotated[int, typer.Option("--dispute-window", min=0)] = 86_400,
    min_length: Annotated[int, typer.Option("--min-length", min=0)] = 0,
    max_length: Annotated[int, typer.Option("--max-length", min=0)] = 2**32 - 1,
    prefix: Annotated[str, typer.Option("--prefix", help="Every record starts so.")] = "",
    label_prefix: Annotated[str, typer.Option("--label-prefix")] = "",
    label_suffix: Annotated[
        str, typer.Option("--label-suffix", help="Record ends: label digits, then this.")
    ] = "",
    label_min: Annotated[int, typer.Option("--label-min", min=0)] = 0,
    label_max: Annotated[int, typer.Option("--label-max", min=0)] = 2**64 - 1,
    test_root: Annotated[str | None, typer.Option("--test-root", help="Test-set root.")] = None,
    test_size: Annotated[int, typer.Option("--test-size", min=0)] = 0,
    salt_secret: SecretOpt = None,
    unsalted: UnsaltedOpt = False,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List root ROOT_INDEX of VERSION_ID (fingerprinted from --dataset) for vouching, with its
    terms and record checks (fixed for good)."""
    secret = dataset_secret(dataset, salt_secret, unsalted, create=False)
    fp = fingerprint_dataset(dataset, secret=secret)
    checks = RecordChecks(
        min_length, max_length, prefix.encode(), label_prefix.encode(), label_suffix.encode(),
        label_min, label_max,
        b"\0" * 32 if test_root is None else _bytes32(test_root, "--test-root"), test_size,
    )  # fmt: skip
    with _vouching(rpc, contract) as v:
        signer = _signer(key, password_file, v.chain)
        decimals, _ = _unit(v.chain, token)
        terms = VouchTerms(
            token, fp.size, salt_length_of(fp), slash_bps, answer_window, dispute_window,
            parse_units(min_vouch, decimals), parse_units(bond, decimals),
            0 if reward.strip() in ("0", "0.0") else parse_units(reward, decimals),
        )  # fmt: skip
        version = _bytes32(version_id, "the version id")
        dataset_id = v.list_dataset(version, root_index, terms, checks, signer=signer)
        info = v.dataset(dataset_id)
        check_listing(info, fp)
    doc = info.to_dict()
    emit(
        doc,
        as_json,
        lambda: console.print(f"listed dataset {dataset_id.hex()} ({fp.size} records)"),
    )


@vouch_app.command("stake")
def stake_cmd(
    dataset_id: DatasetIdArg,
    amount: AmountArg,
    key: KeyOpt,
    dataset: DatasetOpt = None,
    salt_secret: SecretOpt = None,
    unsalted: UnsaltedOpt = False,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Vouch AMOUNT for DATASET_ID: lock that much of your free StakeManager stake (deposit it
    first with `ailedger stake deposit`). With --dataset, the listing is checked against your
    own fingerprint first."""
    did = _bytes32(dataset_id, "the dataset id")
    with _vouching(rpc, contract) as v:
        info = v.dataset(did)
        if dataset is not None:
            secret = dataset_secret(dataset, salt_secret, unsalted, create=False)
            check_listing(info, fingerprint_dataset(dataset, secret=secret))
        signer = _signer(key, password_file, v.chain)
        decimals, symbol = _unit(v.chain, info.terms.asset)
        v.vouch(did, parse_units(amount, decimals), signer=signer)
        mine = v.vouched(did, signer.address)
    doc = {"dataset_id": did.hex(), "curator": signer.address, "vouched": mine}
    emit(
        doc,
        as_json,
        lambda: console.print(f"{signer.address} vouches {format_units(mine, decimals)} {symbol}"),
    )


@vouch_app.command("request-unstake")
def request_unstake_cmd(
    dataset_id: DatasetIdArg,
    key: KeyOpt,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Announce leaving DATASET_ID: `unstake` is allowed a day later (the vouch stays
    auditable until then)."""
    did = _bytes32(dataset_id, "the dataset id")
    with _vouching(rpc, contract) as v:
        signer = _signer(key, password_file, v.chain)
        at = v.request_unvouch(did, signer=signer)
    doc = {"dataset_id": did.hex(), "curator": signer.address, "unstake_from": at}
    emit(doc, as_json, lambda: console.print(f"unstake allowed from {at} (unix time)"))


@vouch_app.command("unstake")
def unstake_cmd(
    dataset_id: DatasetIdArg,
    amount: AmountArg,
    key: KeyOpt,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Withdraw AMOUNT of your vouch for DATASET_ID (announced with `request-unstake`); the
    stake is free again in the StakeManager."""
    did = _bytes32(dataset_id, "the dataset id")
    with _vouching(rpc, contract) as v:
        info = v.dataset(did)
        signer = _signer(key, password_file, v.chain)
        decimals, symbol = _unit(v.chain, info.terms.asset)
        v.unvouch(did, parse_units(amount, decimals), signer=signer)
        mine = v.vouched(did, signer.address)
    doc = {"dataset_id": did.hex(), "curator": signer.address, "vouched": mine}
    emit(doc, as_json, lambda: console.print(f"vouch now {format_units(mine, decimals)} {symbol}"))


@vouch_app.command("fund")
def fund_cmd(
    dataset_id: DatasetIdArg,
    amount: AmountArg,
    key: KeyOpt,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Add AMOUNT to DATASET_ID's reward pool (passed audits pay the curators from it)."""
    did = _bytes32(dataset_id, "the dataset id")
    with _vouching(rpc, contract) as v:
        info = v.dataset(did)
        signer = _signer(key, password_file, v.chain)
        decimals, symbol = _unit(v.chain, info.terms.asset)
        arrived = v.fund(did, parse_units(amount, decimals), signer=signer)
    doc = {"dataset_id": did.hex(), "funded": arrived}
    emit(doc, as_json, lambda: console.print(f"pool += {format_units(arrived, decimals)} {symbol}"))


@vouch_app.command("claim")
def claim_cmd(
    token: Annotated[str, typer.Option("--token", help="The asset (an ERC-20 address).")],
    key: KeyOpt,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send what DatasetVouching owes the key's account (rewards, returned bonds)."""
    with _vouching(rpc, contract) as v:
        signer = _signer(key, password_file, v.chain)
        amount = v.claim(token, signer=signer)
    emit(
        {"account": signer.address, "claimed": amount},
        as_json,
        lambda: console.print(f"claimed {amount}"),
    )


@audit_app.command("open")
def open_cmd(
    dataset_id: DatasetIdArg,
    key: KeyOpt,
    k: Annotated[int | None, typer.Option("--k", min=1, max=256, help="Records to sample.")] = None,
    bad: BadOpt = None,
    risk: RiskOpt = None,
    bond: Annotated[
        str | None, typer.Option("--bond", help="Bond to send (default: the dataset's).")
    ] = None,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open an audit of DATASET_ID: --k records, or as many as --bad P --risk D need; the
    sample comes from the hash of the next block but one. Posts the bond."""
    if (k is None) == (bad is None or risk is None):
        raise InvalidInput("give --k N, or --bad P and --risk D")
    bound = None if k is not None else _bound_doc(float(bad or 0), float(risk or 0), None)
    count = k if k is not None else int(bound["k"] if bound else 0)
    if count > 256:
        raise InvalidInput(f"the claim needs {count} records; an audit samples at most 256")
    did = _bytes32(dataset_id, "the dataset id")
    with _vouching(rpc, contract) as v:
        info = v.dataset(did)
        signer = _signer(key, password_file, v.chain)
        decimals, _ = _unit(v.chain, info.terms.asset)
        sent = None if bond is None else parse_units(bond, decimals)
        audit_id = v.open_audit(did, count, signer=signer, bond=sent)
        audit = v.audit(audit_id)
    doc = {"audit": audit.to_dict(), "bound": bound}

    def human() -> None:
        if bound is not None:
            console.print(_bound_line(bound))
        console.print(f"audit {audit_id}: {count} records seeded by block {audit.seed_block}")

    emit(doc, as_json, human)


@audit_app.command("draw")
def draw_cmd(
    audit_id: AuditIdArg,
    key: KeyOpt,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fix AUDIT_ID's sample from its seed block's hash (re-seeded if that hash is gone)."""
    with _vouching(rpc, contract) as v:
        signer = _signer(key, password_file, v.chain)
        drawn = v.draw(audit_id, signer=signer)
        audit = v.audit(audit_id)
        indices = v.sample_indices(audit_id) if drawn else []
    doc = {"audit": audit.to_dict(), "drawn": drawn, "indices": indices}

    def human() -> None:
        if drawn:
            console.print(f"audit {audit_id}: records {indices}; answer by {audit.deadline}")
        else:
            console.print(
                f"audit {audit_id}: seed hash lost, re-seeded by block {audit.seed_block}"
            )

    emit(doc, as_json, human)


@audit_app.command("answer")
def answer_cmd(
    audit_id: AuditIdArg,
    dataset: Annotated[Path, typer.Option("--dataset", help="The listed dataset file.")],
    key: KeyOpt,
    salt_secret: SecretOpt = None,
    unsalted: UnsaltedOpt = False,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Answer AUDIT_ID (as the dataset's owner) with the sampled records and their proofs."""
    secret = dataset_secret(dataset, salt_secret, unsalted, create=False)
    with _vouching(rpc, contract) as v:
        signer = _signer(key, password_file, v.chain)
        answer = answer_audit(v, audit_id, dataset, secret=secret, signer=signer)
        audit = v.audit(audit_id)
    first = answer.first_failure
    doc = {
        "audit": audit.to_dict(),
        "indices": list(answer.indices),
        "passed": first is None,
        "failed_sample": first,
        "reason": None if first is None else REASONS[answer.reasons[first]],
    }

    def human() -> None:
        if first is None:
            console.print(f"audit {audit_id}: {len(answer.indices)} records pass the checks")
        else:
            console.print(
                f"audit {audit_id}: record {answer.indices[first]} fails the "
                f"{doc['reason']} check: the audit failed"
            )

    emit(doc, as_json, human)


@audit_app.command("settle")
def settle_cmd(
    audit_id: AuditIdArg,
    key: KeyOpt,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Close AUDIT_ID: a failure (or no answer) slashes the curators, a pass rewards them."""
    with _vouching(rpc, contract) as v:
        signer = _signer(key, password_file, v.chain)
        v.settle(audit_id, signer=signer)
        outcome = audit_outcome(v, audit_id)
    doc = outcome.to_dict()
    verdict = (
        "passed: curators rewarded"
        if outcome.passed
        else f"failed ({outcome.reason}): curators slashed"
    )
    emit(doc, as_json, lambda: console.print(f"audit {audit_id} {verdict}"))


@vouch_app.command("status")
def status_cmd(
    dataset_id: Annotated[
        str | None, typer.Option("--dataset-id", help="A listed dataset.")
    ] = None,
    audit: Annotated[int | None, typer.Option("--audit", min=1, help="An audit id.")] = None,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A listed dataset (terms, checks, curators, pool) or an audit and its outcome."""
    if (dataset_id is None) == (audit is None):
        raise InvalidInput("give exactly one of --dataset-id ID and --audit ID")
    with _vouching(rpc, contract, read_only=True) as v:
        if audit is not None:
            outcome = audit_outcome(v, audit)
            doc = outcome.to_dict()
            line = f"audit {audit}: {outcome.audit.status.name.lower()}" + (
                f" ({outcome.reason})" if outcome.reason else ""
            )
        else:
            info = v.dataset(_bytes32(str(dataset_id), "the dataset id"))
            doc = info.to_dict()
            doc["vouches"] = {c: v.vouched(info.dataset_id, c) for c in info.curators}
            line = (
                f"dataset {info.dataset_id.hex()}: {info.terms.size} records, "
                f"{len(info.curators)} curators vouching {info.total_vouched}, pool {info.pool}"
            )
    emit(doc, as_json, lambda: console.print(line))
