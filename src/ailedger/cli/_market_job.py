"""``ailedger market job open|accept|status|draw|approve|cancel|finish|claim|dispute``: the
pay-per-inference jobs of the InferenceMarket that ``ailedger chain deploy`` recorded for the
chain (or ``--contract``), on the workspace's chain or ``--rpc``.

The consumer opens a job (escrowing ``price x max-calls`` of ether or the ``--token``
ERC-20), the provider accepts it (locking its stake, deposited first with ``ailedger stake
deposit``, and naming the key its receipt book signs with), ``market serve --commit-epochs``
commits the epochs; the consumer approves an epoch, or the verifier set settles it; after the
deadline and the settle window anyone finishes the job (epochs nobody failed are paid, the
rest of the escrow refunded) and each party claims what it is owed. ``dispute`` proves a
receipt from the consumer's receipt store against the committed root (wrong model, or omitted
/ altered). Amounts (``--price``, ``--stake``) are integers in the asset's base units (wei for
ether). Keys come from the workspace's keystore and are never printed; a revert is one decoded
line and a hint (exit 9).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ailedger.cli._chain_common import RpcOpt, ensure_dev_funds, open_chain
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._keys import PasswordFileOpt, log_signer, open_keystore, open_workspace
from ailedger.cli._market import _default_store, _hex32, market_app
from ailedger.errors import InvalidInput, NotFound
from ailedger.identity.keys import Secp256k1PublicKey, Secp256k1Signer, checksum_address

if TYPE_CHECKING:
    from ailedger.chain.client import Chain
    from ailedger.chain.inference_market import InferenceMarket
    from ailedger.markets.inference import WalletRow

__all__ = ["job_app"]

job_app = typer.Typer(
    help="Pay-per-inference jobs on the InferenceMarket: open, accept, status, approve, "
    "finish, claim, dispute.",
    no_args_is_help=True,
)
dispute_app = typer.Typer(
    help="Dispute a kept receipt: wrong-model or omission (slashes the provider's stake).",
    no_args_is_help=True,
)
job_app.add_typer(dispute_app, name="dispute")
market_app.add_typer(job_app, name="job")

KeyOpt = Annotated[str, typer.Option("--key", help="Name of a secp256k1 key in the workspace.")]
JobArg = Annotated[str, typer.Argument(help="The job id (0x + 64 hex), as `job open` printed.")]
EpochArg = Annotated[int, typer.Argument(help="The epoch number, as `job status` lists it.", min=0)]
ContractOpt = Annotated[
    str | None,
    typer.Option(
        "--contract",
        "--market-contract",
        help="InferenceMarket address (default: the workspace's deployment).",
    ),
]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="ERC-20 payment asset (default: ether).")
]
StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="The consumer's receipt store (default: in the workspace)."),
]

_ETHER = "0x" + "00" * 20


def _address(text: str, what: str) -> str:
    """An address, or the address of a secp256k1 key of the workspace named ``text``."""
    if text.startswith("0x"):
        try:
            return checksum_address(text)
        except InvalidInput:
            raise InvalidInput(f"{what} {text!r} is not an Ethereum address") from None
    public = open_keystore().info(text).public_key
    if not isinstance(public, Secp256k1PublicKey):
        raise InvalidInput(f"{what}: key {text!r} is not a secp256k1 key (an Ethereum account)")
    return public.address


@contextmanager
def _market(
    rpc: str | None, contract: str | None, *, read_only: bool = False, track: bool = False
) -> Iterator[InferenceMarket]:
    """The InferenceMarket on the workspace's chain (or ``rpc``): ``contract``, else the
    deployment's. ``track``: its events are indexed (for ``status``)."""
    from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
    from ailedger.chain.inference_market import InferenceMarket

    ws = open_workspace()
    with open_chain(ws, rpc, read_only=read_only) as chain:
        if contract is None:
            rec = DeploymentBook(ws.path / DEPLOYMENTS_FILE).require(chain.chain_id)
            record = rec.record("InferenceMarket")
            address, from_block = record.address, record.block_number
        else:
            address, from_block = checksum_address(contract), 0
            if not chain.code(address):
                raise NotFound(f"no contract at {address} on chain {chain.chain_id}")
        deployed = chain.at("InferenceMarket", address, from_block=from_block, track=track)
        yield InferenceMarket(chain, deployed)


def _signer(key: str, password_file: Path | None, chain: Chain) -> Secp256k1Signer:
    signer = log_signer(key, password_file)
    ensure_dev_funds(chain, signer.address)
    return signer


def _job_id(text: str) -> bytes:
    return _hex32(text, "the job id")


def _deadline(text: str, chain: Chain) -> int:
    """``+SECONDS`` after the chain's latest block, or a unix time."""
    relative = text.startswith("+")
    body = text[1:] if relative else text
    if not body.isdigit():
        raise InvalidInput(f"--deadline {text!r}: give unix seconds, or +SECONDS from now")
    return chain.block_timestamp() + int(body) if relative else int(body)


def _model_digest(model: str | None, digest: str | None) -> bytes:
    if (model is None) == (digest is None):
        raise InvalidInput("give exactly one of --model NAME@VERSION and --model-digest sha256:HEX")
    if digest is not None:
        return _hex32(digest, "--model-digest")
    from ailedger.cli._workflow import open_registry
    from ailedger.registry import VersionRef

    with open_registry(read_only=True) as registry:
        row = registry.model(VersionRef.parse(str(model)))
    return _hex32(row.digest, f"the digest of {model}")


@job_app.command("open")
def open_cmd(
    key: KeyOpt,
    provider: Annotated[
        str, typer.Option("--provider", help="The provider's account (address or key name).")
    ],
    price: Annotated[int, typer.Option("--price", min=1, help="Price per call (base units).")],
    max_calls: Annotated[int, typer.Option("--max-calls", min=1, help="Calls escrowed.")],
    stake: Annotated[
        int, typer.Option("--stake", min=1, help="Stake the provider locks (base units).")
    ],
    verifier: Annotated[
        list[str],
        typer.Option("--verifier", help="A verifier (address or key name); repeat for a set."),
    ],
    model: Annotated[
        str | None, typer.Option("--model", help="A registered version NAME@VERSION.")
    ] = None,
    model_digest: Annotated[
        str | None, typer.Option("--model-digest", help="The model digest paid for (sha256:HEX).")
    ] = None,
    deadline: Annotated[
        str, typer.Option("--deadline", help="Unix seconds, or +SECONDS from the latest block.")
    ] = "+86400",
    threshold: Annotated[
        int, typer.Option("--threshold", min=1, max=32, help="Verifier signatures needed.")
    ] = 1,
    k: Annotated[int, typer.Option("--k", min=1, max=1024, help="Calls sampled per epoch.")] = 16,
    pass_bps: Annotated[
        int,
        typer.Option(
            "--pass-bps", min=0, max=10_000, help="Share of samples that must pass (0: 9900)."
        ),
    ] = 0,
    token: TokenOpt = None,
    stake_token: Annotated[
        str | None,
        typer.Option("--stake-token", help="The stake's ERC-20 (default: the payment asset)."),
    ] = None,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Open a job (the consumer, KEY): escrow PRICE x MAX-CALLS; print the job id the
    contract assigned (read back from its JobOpened event)."""
    from ailedger.chain.inference_market import JobTerms

    digest = _model_digest(model, model_digest)
    provider_address = _address(provider, "--provider")
    verifiers = [_address(v, "--verifier") for v in verifier]
    asset = _ETHER if token is None else checksum_address(token)
    stake_asset = asset if stake_token is None else checksum_address(stake_token)
    with _market(rpc, contract) as market:
        signer = _signer(key, password_file, market.chain)
        terms = JobTerms(
            provider_address, asset, stake_asset, stake, digest, price, max_calls,
            _deadline(deadline, market.chain), k=k, pass_bps=pass_bps, threshold=threshold,
        )  # fmt: skip
        job = market.open_job(terms, verifiers, signer=signer)
        info = market.job(job)
    doc = {"job": "0x" + job.hex(), "market": market.address, "escrow": terms.escrow}
    doc["chain_id"] = market.chain.chain_id
    doc.update(info.to_dict())
    emit(
        doc,
        as_json,
        lambda: console.print(
            f"job 0x{job.hex()} opened by {info.consumer}: {max_calls} calls at {price} each "
            f"escrowed ({terms.escrow}), provider {provider_address}, deadline {terms.deadline}"
        ),
    )


@job_app.command("accept")
def accept_cmd(
    job: JobArg,
    key: KeyOpt,
    signer_key: Annotated[
        str | None,
        typer.Option(
            "--signer",
            help="The receipt signer: the key `market serve --key` uses (address or key name; "
            "default: KEY's own account).",
        ),
    ] = None,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Accept a job (the provider, KEY): lock its stake in the StakeManager and name the key
    that signs its receipts and epoch roots."""
    job_id = _job_id(job)
    with _market(rpc, contract) as market:
        signer = _signer(key, password_file, market.chain)
        receipt_signer = signer.address if signer_key is None else _address(signer_key, "--signer")
        tx = market.accept_job(job_id, receipt_signer, signer=signer)
        info = market.job(job_id)
    doc = {"job": "0x" + job_id.hex(), "tx_hash": tx.tx_hash, **info.to_dict()}
    emit(
        doc,
        as_json,
        lambda: console.print(
            f"job 0x{job_id.hex()} accepted: stake {info.terms.stake} locked, receipts signed "
            f"by {info.signer}"
        ),
    )


def _status_doc(market: InferenceMarket, job_id: bytes) -> dict[str, Any]:
    from ailedger.chain.inference_market import EpochStatus

    try:
        info = market.job(job_id)
    except InvalidInput:
        raise NotFound(
            f"there is no job 0x{job_id.hex()} on the market {market.address}",
            hint="check the job id (`market job open` printed it) and --contract / --rpc",
        ) from None
    epochs = []
    for record in market.chain.events(market.contract, "EpochCommitted", args={"jobId": job_id}):
        number = int(record.args["epoch"])
        e = market.epoch(job_id, number)
        epochs.append(
            {
                "epoch": number,
                "status": e.status.name.lower(),
                "size": e.size,
                "first_call": e.first,
                "calls": e.calls,
                "seed_block": e.seed_block,
                "root": "0x" + e.root.hex(),
                "seed": "0x" + e.seed.hex() if e.drawn else None,
                "sample": market.sample_counters(job_id, number) if e.drawn else None,
                "paid": e.status == EpochStatus.PASSED,
            }
        )
    asset = info.terms.asset
    owed = {
        "consumer": market.owed(info.consumer, asset),
        "provider": market.owed(info.terms.provider, asset),
    }
    return {
        "job": "0x" + job_id.hex(),
        "market": market.address,
        "chain_id": market.chain.chain_id,
        **info.to_dict(),
        "verifiers": list(market.chain.call(market.contract, "verifiersOf", job_id)),
        "epochs": epochs,
        "owed": owed,
        "now": market.chain.block_timestamp(),
    }


@job_app.command("status")
def status_cmd(
    job: JobArg,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A job's terms and state, its committed epochs (status, seed, sample), paid and failed
    calls, and what the contract owes the consumer and the provider."""
    job_id = _job_id(job)
    with _market(rpc, contract, read_only=True, track=True) as market:
        doc = _status_doc(market, job_id)

    def human() -> None:
        t = doc["terms"]
        console.print(
            f"job {doc['job']}: {doc['status']}, consumer {doc['consumer']}, provider "
            f"{t['provider']} (receipts signed by {doc['signer']})"
        )
        console.print(
            f"  model sha256:{t['model_digest']}, {t['max_calls']} calls at {t['price']}, "
            f"deadline {t['deadline']}, k {t['k']}, pass {t['pass_bps']} bps, "
            f"{t['threshold']} of {len(doc['verifiers'])} verifiers"
        )
        console.print(
            f"  calls committed {doc['committed_calls']}, paid {doc['paid_calls']}, failed "
            f"{doc['failed_calls']}; owed: consumer {doc['owed']['consumer']}, provider "
            f"{doc['owed']['provider']}"
        )
        for e in doc["epochs"]:
            sample = "" if e["sample"] is None else f", sample {e['sample']}"
            console.print(
                f"  epoch {e['epoch']}: {e['status']}, calls {e['first_call']}.."
                f"{e['first_call'] + e['calls'] - 1}{sample}"
            )

    emit(doc, as_json, human)


def _simple(
    action: str, job: str, epoch: int | None, key: str, contract: str | None, rpc: str | None,
    password_file: Path | None,
) -> tuple[dict[str, Any], str]:  # fmt: skip
    """Run one transaction of a job (``action`` names the binding's method)."""
    job_id = _job_id(job)
    with _market(rpc, contract) as market:
        signer = _signer(key, password_file, market.chain)
        doc: dict[str, Any] = {"job": "0x" + job_id.hex(), "account": signer.address}
        if action == "cancel":
            doc["tx_hash"] = market.cancel(job_id, signer=signer).tx_hash
            line = f"job 0x{job_id.hex()} cancelled: the escrow is owed back to the consumer"
        elif action == "approve":
            assert epoch is not None
            doc["tx_hash"] = market.approve_epoch(job_id, epoch, signer=signer).tx_hash
            e = market.epoch(job_id, epoch)
            doc["epoch"], doc["calls"] = epoch, e.calls
            line = f"epoch {epoch} of job 0x{job_id.hex()} approved: {e.calls} calls paid"
        else:  # finish
            paid, refund = market.finish(job_id, signer=signer)
            doc["paid"], doc["refund"] = paid, refund
            line = f"job 0x{job_id.hex()} finished: {paid} paid to the provider, {refund} refunded"
        info = market.job(job_id)
        doc["status"] = info.status.name.lower()
        doc["paid_calls"] = info.paid_calls
    return doc, line


@job_app.command("cancel")
def cancel_cmd(
    job: JobArg,
    key: KeyOpt,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cancel a job no provider accepted yet (the consumer): its escrow is owed back."""
    doc, line = _simple("cancel", job, None, key, contract, rpc, password_file)
    emit(doc, as_json, lambda: console.print(line))


@job_app.command("approve")
def approve_cmd(
    job: JobArg,
    epoch: EpochArg,
    key: KeyOpt,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Pay a committed epoch without waiting for the verifiers (the consumer)."""
    doc, line = _simple("approve", job, epoch, key, contract, rpc, password_file)
    emit(doc, as_json, lambda: console.print(line))


@job_app.command("finish")
def finish_cmd(
    job: JobArg,
    key: KeyOpt,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """After the deadline and the settle window (anyone): pay every committed epoch nobody
    failed, refund the rest of the escrow, release the provider's stake."""
    doc, line = _simple("finish", job, None, key, contract, rpc, password_file)
    emit(doc, as_json, lambda: console.print(line))


@job_app.command("claim")
def claim_cmd(
    key: KeyOpt,
    token: TokenOpt = None,
    to: Annotated[
        str | None, typer.Option("--to", help="Recipient (default: the key's account).")
    ] = None,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send what the market owes KEY's account in ether (or --token): pay, refunds."""
    asset = _ETHER if token is None else checksum_address(token)
    with _market(rpc, contract) as market:
        signer = _signer(key, password_file, market.chain)
        recipient = signer.address if to is None else checksum_address(to)
        before = market.chain.balance(recipient) if asset == _ETHER else None
        amount = market.claim(asset, recipient, signer=signer)
        after = market.chain.balance(recipient) if asset == _ETHER else None
    doc: dict[str, Any] = {"account": signer.address, "asset": asset, "claimed": amount}
    doc["to"] = recipient
    if before is not None and after is not None:
        doc["balance_before"], doc["balance_after"] = before, after
    emit(doc, as_json, lambda: console.print(f"claimed {amount} (base units) to {recipient}"))


# --------------------------------------------------------------------------- disputes


def _kept(store: Path | None, job_id: bytes, counter: int) -> WalletRow:
    from ailedger.markets.inference import ReceiptWallet

    path = _default_store(store, "consumer.sqlite")
    if not path.exists():
        raise NotFound(f"no receipt store at {path}")
    with ReceiptWallet(path) as wallet:
        for row in wallet.rows(job_id):
            if row.receipt.receipt.counter == counter:
                return row
    raise NotFound(f"{path} holds no receipt {counter} of job 0x{job_id.hex()}")


def _check_kept(row: WalletRow, market: InferenceMarket) -> None:
    """The kept receipt must be the provider's for this market (checked before disputing)."""
    from ailedger.markets.inference import verify_kept

    domain = row.receipt.domain
    if (domain.chain_id, domain.verifying_contract) != (market.chain.chain_id, market.address):
        raise InvalidInput(
            f"the receipt is for the market {domain.verifying_contract} on chain "
            f"{domain.chain_id}, not {market.address} on chain {market.chain.chain_id}"
        )
    verify_kept(row)


@dispute_app.command("wrong-model")
def wrong_model_cmd(
    job: JobArg,
    counter: Annotated[int, typer.Option("--counter", min=1, help="The receipt's call number.")],
    key: KeyOpt,
    url: Annotated[
        str | None,
        typer.Option("--url", help="Fetch the receipt's inclusion proof from this provider."),
    ] = None,
    store: StoreOpt = None,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prove that a kept receipt, included in its epoch's committed root, names another model
    than the job pays for (the consumer): the provider's stake is slashed, the unpaid escrow
    refunded. The inclusion proof is the one kept (`market verify --url`) or fetched (--url)."""
    from ailedger.markets.inference import ProviderClient
    from ailedger.markets.inference.onchain import wrong_model_args

    job_id = _job_id(job)
    row = _kept(store, job_id, counter)
    with _market(rpc, contract) as market:
        _check_kept(row, market)
        proof = row.proof
        if proof is None:
            if url is None:
                raise NotFound(
                    f"no inclusion proof kept for receipt {counter}",
                    hint="fetch it with `ailedger market verify --url URL`, or pass --url",
                )
            signed = row.receipt
            with ProviderClient(
                url,
                provider=row.provider,
                model_digest=signed.receipt.model_digest,
                domain=signed.domain,
            ) as client:
                _, proof = client.prove(signed)
        committed = market.epoch(job_id, row.receipt.receipt.epoch)
        if (proof.root, proof.tree_size) != (committed.root, committed.size):
            raise InvalidInput(
                f"the receipt's proof is for another root than the one committed for epoch "
                f"{row.receipt.receipt.epoch}",
                hint="the root omits or alters the receipt: `ailedger market job dispute omission`",
            )
        signer = _signer(key, password_file, market.chain)
        slashed = market.prove_wrong_model(*wrong_model_args(row.receipt, proof), signer=signer)
        info = market.job(job_id)
        owed = market.owed(signer.address, info.terms.asset)
    doc = {"job": "0x" + job_id.hex(), "counter": counter, "slashed": slashed, "owed": owed}
    doc["status"] = info.status.name.lower()
    emit(
        doc,
        as_json,
        lambda: console.print(
            f"receipt {counter} names model sha256:{row.receipt.receipt.model_digest.hex()}: "
            f"provider slashed {slashed}; {owed} owed to you (claim it)"
        ),
    )


@dispute_app.command("omission")
def omission_cmd(
    job: JobArg,
    counter: Annotated[int, typer.Option("--counter", min=1, help="The receipt's call number.")],
    key: KeyOpt,
    store: StoreOpt = None,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Prove that the provider's commitments omit a kept receipt it signed (the consumer):
    its epoch was skipped (a later one is committed) or its position lies beyond the committed
    root's size. The provider's stake is slashed, the unpaid escrow refunded."""
    from ailedger.chain.inference_market import EpochStatus
    from ailedger.markets.inference.onchain import omission_args

    job_id = _job_id(job)
    row = _kept(store, job_id, counter)
    r = row.receipt.receipt
    with _market(rpc, contract) as market:
        _check_kept(row, market)
        info = market.job(job_id)
        committed = market.epoch(job_id, r.epoch)
        if committed.status == EpochStatus.NONE:
            if not info.any_epoch or r.epoch >= info.last_epoch:
                raise InvalidInput(
                    f"epoch {r.epoch} is not committed yet, and no later epoch is: nothing is "
                    "omitted so far",
                    hint="wait for the provider's next commitment",
                )
            how = f"epoch {r.epoch} was skipped (epoch {info.last_epoch} is committed)"
        elif r.position >= committed.size:
            how = (
                f"position {r.position} lies beyond the {committed.size} receipts committed for "
                f"epoch {r.epoch}"
            )
        else:
            raise InvalidInput(
                f"the committed root of epoch {r.epoch} covers position {r.position}: an "
                "altered root is disproven with the leaf it holds there and its proof, which "
                "only the provider's tree gives",
                hint="if the root names another model, `ailedger market job dispute wrong-model`",
            )
        signer = _signer(key, password_file, market.chain)
        slashed = market.prove_omission(
            *omission_args(row.receipt, b"\0" * 32, None), signer=signer
        )
        owed = market.owed(signer.address, info.terms.asset)
    doc = {"job": "0x" + job_id.hex(), "counter": counter, "slashed": slashed, "owed": owed}
    doc["reason"] = how
    emit(
        doc,
        as_json,
        lambda: console.print(f"{how}: provider slashed {slashed}; {owed} owed to you (claim it)"),
    )
