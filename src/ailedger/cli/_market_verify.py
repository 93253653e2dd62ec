"""``ailedger market draw|reveal|attest|settle|prove-output``: the sampled verification of an
InferenceMarket epoch (issue 16).

::

    market draw JOB EPOCH --market-contract M --key K       anyone: fix the epoch's sample
    market reveal JOB EPOCH --market-contract M --out F     the consumer: hand over the
                                                            sampled calls from its wallet
        [--provider-store F]                                or the provider, from its book
    market attest JOB EPOCH --market-contract M --key V     a verifier: re-execute the sample
        --model-path DIR --reveal F [--reveal F2] --out A   on its own copy of the model, sign
    market commit --key P [--store F]                       the provider: commit the closed
                                                            epochs the chain does not hold
    market settle JOB EPOCH A1 A2 ... --market-contract M   anyone: settleEpoch with the
        --key K                                             threshold of verifiers' results
    market prove-output JOB EPOCH A1 A2 ... --key C         the consumer: proveWrongOutput
                                                            from the verifiers' Mismatches

The market is not in `ailedger chain deploy`'s set: name it with ``--market-contract``. The
chain is the workspace's (or ``--rpc``). ``draw`` and ``attest`` print how far ``k`` samples
back the job's pass claim (Hoeffding, and when every sampled call must pass). ``settle`` reads
the epoch's status back from the chain. A revert is one decoded line and a hint (exit 9);
too few agreeing verifiers is exit 10; a malformed file exit 3.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ailedger.cli._chain_common import RpcOpt, ensure_dev_funds
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._keys import PasswordFileOpt, log_signer
from ailedger.cli._market import ContractOpt, StoreOpt, _default_store, _hex32, market_app
from ailedger.errors import ConflictError, InvalidInput, NotFound, StorageError

if TYPE_CHECKING:
    from ailedger.chain.inference_market import InferenceMarket

__all__: list[str] = []

JobArg = Annotated[str, typer.Argument(help="The job id (0x + 64 hex).", show_default=False)]
EpochArg = Annotated[int, typer.Argument(help="The epoch number.", min=0, show_default=False)]
KeyOpt = Annotated[str, typer.Option("--key", help="Name of a secp256k1 key in the workspace.")]
OutOpt = Annotated[
    Path | None, typer.Option("--out", help="Write the document here (default: standard output).")
]


@contextmanager
def _market(rpc: str | None, contract: str | None, *, read_only: bool = False) -> Iterator[Any]:
    """The InferenceMarket at ``contract``, else the workspace's deployment's."""
    from ailedger.cli._market_job import _market as open_market

    with open_market(rpc, contract, read_only=read_only) as market:
        yield market


def _write(out: Path, doc: dict[str, Any]) -> None:
    """Write ``doc`` to ``out`` whole or not at all."""
    data = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    target = out.absolute()
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except FileNotFoundError:
        raise NotFound(f"--out {out}: no such directory {target.parent}") from None
    except OSError as exc:
        raise StorageError.from_exception(exc, target) or exc from None
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        raise StorageError.from_exception(exc, target) or exc from None
    finally:
        tmp.unlink(missing_ok=True)


def _read(path: Path, what: str) -> Any:
    from ailedger import _json

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{path} does not exist") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory, not {what}") from None
    if not data.strip():
        raise InvalidInput(f"{path} is empty, not {what}")
    return _json.loads(data, what=f"{path}")


def _claim(market: InferenceMarket, job: bytes) -> dict[str, Any]:
    from ailedger.markets.inference.settlement import claim_report

    terms = market.job(job).terms
    return claim_report(terms.k, terms.pass_bps or 9_900)


def _seed_block(market: InferenceMarket, job: bytes, epoch: int, signer: Any) -> int:
    """On a development chain (embedded, anvil), which mines only when a transaction comes,
    mine past the epoch's seed block with zero-value self-transfers, so that its hash
    exists when ``draw`` runs (on a real network blocks come by themselves: SeedNotMined,
    exit 9, says to wait). The number of blocks mined."""
    from ailedger.chain._constants import ANVIL_CHAIN_ID, EMBEDDED_CHAIN_ID
    from ailedger.chain.inference_market import EpochStatus

    chain = market.chain
    if chain.chain_id not in (EMBEDDED_CHAIN_ID, ANVIL_CHAIN_ID):
        return 0
    e = market.epoch(job, epoch)
    if e.status == EpochStatus.NONE or e.drawn:
        return 0  # the contract says why not
    mined = 0
    while chain.block_number() <= e.seed_block and mined < 8:
        chain.send_value(signer.address, 0, signer=signer)
        mined += 1
    return mined


@market_app.command("draw")
def draw_cmd(
    job: JobArg,
    epoch: EpochArg,
    key: KeyOpt,
    market_contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fix EPOCH's sample from the hash of the block after its commitment."""
    job_id = _hex32(job, "JOB")
    with _market(rpc, market_contract) as market:
        signer = log_signer(key, password_file)
        ensure_dev_funds(market.chain, signer.address)
        mined = _seed_block(market, job_id, epoch, signer)
        drawn = market.draw(job_id, epoch, signer=signer)
        e = market.epoch(job_id, epoch)
        counters = market.sample_counters(job_id, epoch) if drawn else []
        claim = _claim(market, job_id)
    doc = {
        "job": "0x" + job_id.hex(),
        "epoch": epoch,
        "drawn": drawn,
        "seed": "0x" + e.seed.hex() if drawn else None,
        "seed_block": e.seed_block,
        "blocks_mined": mined,
        "counters": counters,
        "claim": claim,
    }

    def human() -> None:
        if drawn:
            console.print(f"epoch {epoch}: sampled calls {counters} (seed 0x{e.seed.hex()})")
            console.print(claim["line"])
        else:
            console.print(f"epoch {epoch}: seed hash lost, re-seeded by block {e.seed_block}")

    emit(doc, as_json, human)


@market_app.command("reveal")
def reveal_cmd(
    job: JobArg,
    epoch: EpochArg,
    market_contract: ContractOpt = None,
    out: OutOpt = None,
    store: StoreOpt = None,
    provider_store: Annotated[
        Path | None,
        typer.Option(
            "--provider-store",
            help="Reveal from the provider's receipt book (`market serve --store`) instead of "
            "the consumer's wallet: each call with the consumer's signed request.",
        ),
    ] = None,
    rpc: RpcOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Hand EPOCH's sampled calls (receipt, request, consumer's signature, proof) from the
    consumer's wallet, or the provider's book (--provider-store), to the verifiers: a call
    nobody reveals counts as failed."""
    from ailedger.markets.inference import (
        ReceiptWallet,
        read_sample,
        reveal_from_book,
        reveal_from_wallet,
    )

    job_id = _hex32(job, "JOB")
    if provider_store is not None and store is not None:
        raise InvalidInput("give --store (the consumer's wallet) or --provider-store, not both")
    path = provider_store or _default_store(store, "consumer.sqlite")
    if not path.exists():
        raise NotFound(f"no receipt store at {path}")
    with _market(rpc, market_contract, read_only=True) as market:
        sample = read_sample(market, job_id, epoch)
    if provider_store is not None:
        reveal, missing = reveal_from_book(path, job_id, epoch, sample.counters)
    else:
        with ReceiptWallet(path) as wallet:
            reveal, missing = reveal_from_wallet(wallet, job_id, epoch, sample.counters)
    unproven = sorted(c.receipt.receipt.counter for c in reveal.calls if c.proof is None)
    doc = reveal.to_dict()
    if out is not None:
        _write(out, doc)
    summary = {
        "job": doc["job"],
        "epoch": epoch,
        "revealed": sorted(c.receipt.receipt.counter for c in reveal.calls),
        "missing": missing,
        "without_proof": unproven,
        "out": None if out is None else str(out),
    }

    def human() -> None:
        console.print(
            f"revealed {len(reveal.calls)} of {len(set(sample.counters))} sampled calls of epoch "
            f"{epoch}" + ("" if out is None else f" to {out}")
        )
        if missing:
            where = "wallet" if provider_store is None else "provider's book"
            console.print(f"not in the {where} (they count as failed): {missing}")
        if unproven:
            console.print(
                f"no inclusion proof kept for {unproven}: run `ailedger market verify --url URL` "
                "first, or they count as failed"
            )

    if out is None:
        emit(doc, True)  # the reveal itself goes to standard output
    else:
        emit(summary, as_json, human)


@market_app.command("commit")
def commit_cmd(
    key: KeyOpt,
    market_contract: ContractOpt = None,
    store: StoreOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The provider: commit every closed epoch of its receipt store (`market serve --store`)
    that the chain does not hold yet, for each job in it (e.g. epochs that closed while the
    chain was down). Idempotent; one line per epoch and job; exit 8 if the chain is down, 10
    if a commitment failed (the others are still made; run it again)."""
    from ailedger.markets.inference._store import stored_epochs
    from ailedger.markets.inference.onchain import commit_stored_epochs

    path = _default_store(store, "provider.sqlite")
    provider, epochs = stored_epochs(path)
    with _market(rpc, market_contract) as market:
        signer = log_signer(key, password_file)
        if signer.address.lower() != provider.lower():
            raise InvalidInput(
                f"{path} holds receipts signed by {provider}, not by --key {key} "
                f"({signer.address})",
                hint="commit with the key that served them",
            )
        ensure_dev_funds(market.chain, signer.address)
        done = commit_stored_epochs(market, provider, epochs, signer=signer)
    rows = [
        {
            "epoch": epoch,
            "job": "0x" + c.job.hex(),
            "calls": c.calls,
            "committed": c.committed,
            "reason": c.reason,
            "failed": c.failed,
        }
        for epoch, c in done
    ]
    failed = [r for r in rows if r["failed"]]

    def human() -> None:
        if not rows:
            console.print(f"no closed epoch in {path}")
        for r in rows:
            if r["committed"]:
                state = r["reason"] or "committed"
            else:
                state = f"not committed ({r['reason']})"
            console.print(f"epoch {r['epoch']}: job {r['job']}: {r['calls']} calls {state}")

    emit({"store": str(path), "epochs": rows}, as_json, human)
    if failed:
        raise ConflictError(
            f"{len(failed)} epoch commitment(s) failed",
            hint="run `ailedger market commit` again once the cause is fixed",
        )


@market_app.command("attest")
def attest_cmd(
    job: JobArg,
    epoch: EpochArg,
    key: KeyOpt,
    model_path: Annotated[
        Path,
        typer.Option("--model-path", help="Your own copy of the model the job pays for."),
    ],
    reveal: Annotated[
        list[Path],
        typer.Option("--reveal", help="A reveal file of the sampled calls (repeatable)."),
    ],
    plugin: Annotated[
        str, typer.Option("--plugin", help="How to load the model: sklearn, onnx or callable.")
    ] = "sklearn",
    callable_: Annotated[
        str | None, typer.Option("--callable", help="module:function for the callable plug-in.")
    ] = None,
    market_contract: ContractOpt = None,
    out: OutOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """As one of the job's verifiers: re-execute EPOCH's sampled calls on your own copy of
    the model and sign the result (and a Mismatch for every wrong output)."""
    from ailedger.markets.inference import Reveal, load_predictor, verified_model, verify_epoch

    job_id = _hex32(job, "JOB")
    reveals = [Reveal.from_dict(_read(p, "a reveal")) for p in reveal]
    with _market(rpc, market_contract, read_only=True) as market:
        info = market.job(job_id)
        model = verified_model(model_path, info.terms.model_digest)  # before it is loaded
        predictor = load_predictor(model, plugin, callable_)
        signer = log_signer(key, password_file)
        attestation = verify_epoch(
            market, job_id, epoch, model=model, predictor=predictor, reveals=reveals,
            signer=signer,
        )  # fmt: skip
        claim = _claim(market, job_id)
    doc = attestation.to_dict()
    if out is not None:
        _write(out, doc)
    v = attestation.verification
    from ailedger.markets.inference.settlement import passes

    passing = passes(v.passed, v.total, info.terms.pass_bps or 9_900)
    summary = {
        "verifier": attestation.verifier,
        "job": doc["job"],
        "epoch": epoch,
        "passed": v.passed,
        "total": v.total,
        "epoch_passes": passing,
        "mismatches": [m.mismatch.counter for m in attestation.mismatches],
        "outcomes": [s.to_dict() for s in attestation.samples],
        "claim": claim,
        "out": None if out is None else str(out),
    }

    def human() -> None:
        verdict = "the epoch passes" if passing else "the epoch fails"
        console.print(
            f"{attestation.verifier}: {v.passed} of {v.total} sampled calls verified ({verdict});"
            f" {len(attestation.mismatches)} wrong outputs signed"
            + ("" if out is None else f"; written to {out}")
        )
        for s in attestation.samples:
            if not s.passed:
                console.print(
                    f"  call {s.counter}: {s.outcome}" + (f": {s.detail}" if s.detail else "")
                )
        console.print(claim["line"])

    if out is None:
        emit(doc, True)
    else:
        emit(summary, as_json, human)


@market_app.command("settle")
def settle_cmd(
    job: JobArg,
    epoch: EpochArg,
    attestations: Annotated[
        list[Path],
        typer.Argument(help="The verifiers' attestation files.", show_default=False),
    ],
    key: KeyOpt,
    market_contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Settle EPOCH with the result a threshold of the job's verifiers signed; the outcome is
    read back from the chain."""
    from ailedger.markets.inference import Attestation, gather_verification, market_domain

    job_id = _hex32(job, "JOB")
    parsed = [Attestation.from_dict(_read(p, "an attestation")) for p in attestations]
    with _market(rpc, market_contract) as market:
        info = market.job(job_id)
        e = market.epoch(job_id, epoch)
        if not e.drawn:
            raise InvalidInput(
                f"epoch {epoch} of job {job} has no sample yet", hint="run `ailedger market draw`"
            )
        result, sigs, ignored = gather_verification(
            parsed,
            domain=market_domain(market.chain.chain_id, market.address),
            job=job_id,
            epoch=epoch,
            seed=e.seed,
            verifiers=market.verifiers(job_id),
            threshold=info.terms.threshold,
        )
        signer = log_signer(key, password_file)
        ensure_dev_funds(market.chain, signer.address)
        market.settle_epoch(job_id, epoch, result.passed, result.total, sigs, signer=signer)
        status = market.epoch(job_id, epoch).status  # read back
        after = market.job(job_id)
    doc = {
        "job": "0x" + job_id.hex(),
        "epoch": epoch,
        "passed": result.passed,
        "total": result.total,
        "signatures": len(sigs),
        "status": status.name.lower(),
        "paid_calls": after.paid_calls,
        "failed_calls": after.failed_calls,
        "ignored": ignored,
    }

    def human() -> None:
        console.print(
            f"epoch {epoch} of job {doc['job']}: {result.passed} of {result.total} sampled calls "
            f"verified, signed by {len(sigs)} verifiers; on-chain status: {doc['status']} "
            f"(job: {after.paid_calls} calls paid, {after.failed_calls} failed)"
        )
        for note in ignored:
            console.print(f"  left out: {note}")

    emit(doc, as_json, human)


@market_app.command("prove-output")
def prove_output_cmd(
    job: JobArg,
    epoch: EpochArg,
    attestations: Annotated[
        list[Path],
        typer.Argument(help="The verifiers' attestation files.", show_default=False),
    ],
    key: KeyOpt,
    counter: Annotated[
        int | None,
        typer.Option("--counter", min=1, help="Dispute this call (default: the first found)."),
    ] = None,
    market_contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """As the job's consumer: prove a wrong output of failed EPOCH with the Mismatches a
    threshold of the job's verifiers signed alike; the provider's stake is slashed and the
    unpaid escrow refunded (read back from the chain)."""
    from ailedger.errors import ConflictError
    from ailedger.markets.inference import Attestation, gather_wrong_outputs, market_domain

    job_id = _hex32(job, "JOB")
    parsed = [Attestation.from_dict(_read(p, "an attestation")) for p in attestations]
    with _market(rpc, market_contract) as market:
        info = market.job(job_id)
        e = market.epoch(job_id, epoch)
        found = gather_wrong_outputs(
            parsed,
            domain=market_domain(market.chain.chain_id, market.address),
            job=job_id,
            epoch=epoch,
            seed=e.seed,
            verifiers=market.verifiers(job_id),
            threshold=info.terms.threshold,
        )
        if counter is not None:
            found = [f for f in found if f.receipt.receipt.counter == counter]
        if not found:
            which = "" if counter is None else f" for call {counter}"
            raise ConflictError(
                f"no wrong output of epoch {epoch}{which} is signed alike by "
                f"{info.terms.threshold} of the job's verifiers",
                hint="collect the attestations of more of the job's verifiers",
            )
        evidence = found[0]
        signer = log_signer(key, password_file)
        ensure_dev_funds(market.chain, signer.address)
        slashed = market.prove_wrong_output(*evidence.args(), signer=signer)
        after = market.job(job_id)  # read back
        refund = market.owed(info.consumer, info.terms.asset)
    doc = {
        "job": "0x" + job_id.hex(),
        "epoch": epoch,
        "counter": evidence.receipt.receipt.counter,
        "verifiers": list(evidence.signers),
        "slashed": slashed,
        "status": after.status.name.lower(),
        "consumer_owed": refund,
    }
    emit(
        doc,
        as_json,
        lambda: console.print(
            f"call {doc['counter']} of epoch {epoch} proven wrong (signed by "
            f"{len(evidence.signers)} verifiers): {slashed} of the provider's stake slashed; "
            f"job {doc['status']}, {refund} owed to the consumer (claim it)"
        ),
    )
