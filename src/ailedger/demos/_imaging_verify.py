"""The imaging demo's verifiers: three organisations, each with its own copy of the model the
job pays for, re-execute an epoch's sample (the verifier library of
:mod:`ailedger.markets.inference.verifier`) and sign; the settlement takes the result two of
them signed alike, and a dispute the Mismatch two of them signed alike.

The hospital is the one who holds the requests (a receipt holds only the salted digest), so
it reveals the sampled calls from its receipt wallet (input, salt, answer, receipt and
inclusion proof); a sampled call it did not reveal would count as failed. Each verifier
loads its copy through the fingerprint-checked plug-in (``callable`` with
:func:`ailedger.demos._imaging_model.triage`), refused unless its files hash to the job's
model digest.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from typing import Any

from ailedger.chain.inference_market import JobStatus
from ailedger.demos._imaging_world import (
    CALLABLE,
    STAKE,
    UNIT,
    JobRun,
    K,
    Registered,
    World,
)
from ailedger.identity.keys import checksum_address
from ailedger.markets.inference import ReceiptWallet, load_predictor, market_domain
from ailedger.markets.inference.attestation import (
    Attestation,
    WrongOutputEvidence,
    gather_verification,
    gather_wrong_outputs,
)
from ailedger.markets.inference.models import verified_model
from ailedger.markets.inference.verifier import reveal_from_wallet, verify_epoch

__all__ = ["THRESHOLD", "K", "Verdict", "attest", "prove_wrong_output"]

THRESHOLD = 2
#: InferenceMarket's reason code for a proven wrong output.
REASON_WRONG_OUTPUT = 3


@dataclass
class Verdict:
    """What the verifiers signed for one epoch: ``passed`` of ``total`` sampled calls, the
    threshold's signatures (ordered by signer), the calls found wrong by the threshold."""

    passed: int
    total: int
    signatures: list[bytes]
    signers: list[str]
    counters: list[int]
    wrong: list[WrongOutputEvidence] = field(default_factory=list)
    outcomes: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "total": self.total,
            "signers": self.signers,
            "sampled_counters": self.counters,
            "wrong_outputs_signed": [e.receipt.receipt.counter for e in self.wrong],
            "outcomes": self.outcomes,
        }


def _b32(value: Any) -> bytes:
    """A bytes32 event argument (hex text or bytes) as bytes."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return bytes.fromhex(str(value).removeprefix("0x"))


def _copies(world: World, registered: Registered) -> list[Any]:
    """Each verifier's own copy of the registered model (made once), loaded through the
    fingerprint check against the digest the job pays for."""
    loaded = []
    for i, _ in enumerate(world.verifiers):
        copy = world.workdir / "verifiers" / f"verifier-{i + 1}" / "model"
        if not copy.exists():
            shutil.copytree(registered.model_dir, copy)
        model = verified_model(copy, registered.digest)
        loaded.append((model, load_predictor(model, "callable", CALLABLE + "triage")))
    return loaded


def attest(world: World, run: JobRun, epoch: int, registered: Registered) -> Verdict:
    """The hospital reveals the epoch's sampled calls; each verifier re-executes them and
    signs its attestation (kept as a file); the threshold's result and mismatches."""
    claims, counters = world.claims, run.epochs[epoch]["sample"]
    with ReceiptWallet(world.workdir / "hospital" / "receipts.sqlite") as wallet:
        reveal, missing = reveal_from_wallet(wallet, run.job, epoch, counters)
    claims.check(
        not missing and len(counters) == K and all(c.proof for c in reveal.calls),
        f"job {run.name} epoch {epoch}: the hospital reveals all {K} sampled calls "
        f"({len(set(counters))} distinct) with their inclusion proofs",
    )
    attestations: list[Attestation] = []
    for i, (verifier, (model, predictor)) in enumerate(
        zip(world.verifiers, _copies(world, registered), strict=True)
    ):
        att = verify_epoch(
            world.m, run.job, epoch, model=model, predictor=predictor, reveals=[reveal],
            signer=verifier,
        )  # fmt: skip
        path = world.workdir / "verifiers" / f"verifier-{i + 1}" / f"{run.name}-{epoch}.json"
        path.write_text(json.dumps(att.to_dict(), indent=2) + "\n", encoding="utf-8")
        attestations.append(att)
    domain = market_domain(world.chain.chain_id, world.m.address)
    seed, signers_set = (
        run.epochs[epoch]["seed"],
        [checksum_address(v.address) for v in world.verifiers],
    )
    result, signatures, _ = gather_verification(
        attestations, domain=domain, job=run.job, epoch=epoch, seed=seed,
        verifiers=signers_set, threshold=THRESHOLD,
    )  # fmt: skip
    wrong = gather_wrong_outputs(
        attestations, domain=domain, job=run.job, epoch=epoch, seed=seed,
        verifiers=signers_set, threshold=THRESHOLD,
    )  # fmt: skip
    outcomes: dict[str, int] = {}
    for s in attestations[0].samples:
        outcomes[s.outcome] = outcomes.get(s.outcome, 0) + 1
    signers = sorted(
        (a.verifier for a in attestations if a.verification == result), key=lambda a: int(a, 16)
    )
    return Verdict(result.passed, result.total, signatures, signers, counters, wrong, outcomes)


def prove_wrong_output(
    world: World, run: JobRun, epoch: int, evidence: WrongOutputEvidence
) -> dict[str, Any]:
    """The hospital proves one wrong output of the failed epoch; the slash read back from
    the market and the StakeManager, and the hospital's prover share claimed."""
    claims, hospital, provider = world.claims, world.addr("hospital"), world.addr("provider")
    signed = evidence.receipt
    slashed = world.m.prove_wrong_output(*evidence.args(), signer=world.keys["hospital"])
    market_events = [
        e for e in world.chain.events(world.m.contract, "ProviderSlashed")
        if _b32(e.args["jobId"]) == run.job
    ]  # fmt: skip
    manager_events = [
        e for e in world.chain.events(world.s.contract, "Slashed")
        if checksum_address(str(e.args["participant"])) == provider
    ]  # fmt: skip
    claims.check(
        len(market_events) == 1
        and int(market_events[0].args["reasonCode"]) == REASON_WRONG_OUTPUT
        and _b32(market_events[0].args["receiptDigest"]) == signed.digest()
        and int(market_events[0].args["slashed"]) == slashed == STAKE
        and world.m.job(run.job).status == JobStatus.SLASHED,
        f"the market slashed the provider {STAKE // UNIT} CON for the wrong output of call "
        f"{signed.receipt.counter} (reason {REASON_WRONG_OUTPUT}, wrong output)",
    )
    event = manager_events[-1]
    share = int(event.args["proverShare"])
    claims.check(
        int(event.args["amount"]) == STAKE
        and checksum_address(str(event.args["prover"])) == hospital
        and world.s.stake_of(provider, world.t.address).slashed == STAKE
        and world.s.owed(hospital, world.t.address) == share > 0,
        f"the StakeManager shows the slash of {STAKE // UNIT} CON, the hospital (the prover) "
        f"owed {share / UNIT:g} CON of it",
    )
    world.s.claim(world.t.address, signer=world.keys["hospital"])
    claims.check(
        world.s.owed(hospital, world.t.address) == 0, "the hospital claimed its prover share"
    )
    world.say(
        f"the hospital proved call {signed.receipt.counter}'s wrong output (the receipt, its "
        f"inclusion proof and {len(evidence.signatures)} verifiers' signed Mismatch): the "
        f"provider is slashed {STAKE // UNIT} CON, {share / UNIT:g} CON of it to the hospital"
    )
    return {
        "counter": signed.receipt.counter,
        "epoch": epoch,
        "expected_response_digest": "0x" + evidence.expected_response_digest.hex(),
        "receipt_response_digest": "0x" + signed.receipt.response_digest.hex(),
        "slashed": slashed,
        "prover_share": share,
        "transaction": market_events[0].tx_hash,
        "verifiers": list(evidence.signers),
    }
