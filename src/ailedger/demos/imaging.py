"""``ailedger demo imaging-dispute``: which model version flagged this scan, proven weeks later.

A provider (vision-ai) trains a triage classifier on scikit-learn's bundled digit images
(stand-ins for scans, see :mod:`._imaging_model`) and registers it with its lineage in the
consortium's log: the training and holdout datasets (fingerprinted), the signed training
metadata, a QA accuracy evaluation and an independent auditor's flag-safety evaluation, and
both approvals. It serves the registered version with ``ailedger market serve`` (a child
process on 127.0.0.1, the model's files checked against the registered fingerprint before
they are unpickled). A hospital opens a job on the InferenceMarket (escrow in the consortium
token; the provider's stake locked in the StakeManager) and sends 1,000 studies; every answer
comes with a signed receipt that the hospital checks and keeps (with the inclusion proofs of
its flagged studies, the ones a dispute may come for, and of the calls the sample draws).

**The study's salted digest.** For each study the hospital draws a 32-byte salt and keeps it
with the image in its archive; the request it sends is the image's 64 pixel values and the
salt, and the receipt's request digest is ``sha256(salt || JCS(pixels))`` (RFC 8785). That
digest is the study's salted digest: it binds the exact pixels the provider classified, and
nobody without the salt can test a guessed image against it. Right after the calls the
hospital signs a study index (one ``{"study", "job", "counter", "digest"}`` record per call,
registered as a dataset: its Merkle root in the log), so the link between a study's
accession id and its digest is fixed at call time. A third party checks a disputed study
from the digest alone: its record is in the logged index (a membership proof), it is the
request digest of a receipt the provider signed, the receipt is in an epoch root committed
on-chain, and the receipt names the model digest whose lineage is in the log. Opening the
digest (salt and pixels, to an arbiter under seal) would let the arbiter re-hash it; the demo
re-derives it inside the hospital only: for the dispute the image never leaves the hospital.
(The provider saw the pixels when it classified them, and the verifiers see the calls the
sample draws, which they re-execute; neither is needed for the dispute.)

The epochs are committed on-chain (the provider's signed roots, relayed), the sample is drawn
from the next block's hash, the verifiers re-execute the sampled calls and the epochs are
settled; weeks later the job is finished and paid, and one flagged study is disputed: the
demo walks the evidence chain as a verifier would (:mod:`._imaging_evidence`). Then the same
provider, serving a second job, silently answers 5% of the calls with a cheaper model while
its receipts still name the registered one: the sampled verification catches it, the epoch
fails, the hospital proves one wrong output with the verifiers' signed mismatch, and the
provider is slashed and the hospital refunded. Every claim printed is read back from the
chain or the log and checked; one that does not hold raises ClaimFailed (exit 1).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from ailedger.chain.backends import open_workspace_chain
from ailedger.demos import _imaging_evidence as evidence
from ailedger.demos import _imaging_jobs as jobs
from ailedger.demos import _imaging_model as im
from ailedger.demos._claims import Claims
from ailedger.demos._imaging_world import (
    MODEL_REF,
    SWAP_RATE,
    K,
    World,
    deploy_market,
    deploy_rest,
    epoch_size,
    parties,
    providers,
    register,
    store_provider_key,
)
from ailedger.demos._ml import require_sklearn
from ailedger.errors import InvalidInput
from ailedger.identity.keys import Keystore, Secp256k1Signer
from ailedger.markets._sampling import miss_probability
from ailedger.markets.inference.settlement import claim_report
from ailedger.registry import Registry
from ailedger.workspace import Workspace

__all__ = ["CALLS", "MIN_CALLS", "run_imaging_dispute"]

CALLS = im.STUDIES
#: Enough studies for a flagged one (about one in ten is an 8) and a sample to draw from.
MIN_CALLS = 100
ORIGIN = "imaging.demo.ailedger"


def _sampling() -> dict[str, Any]:
    """The sample size and what it buys: the chance that one epoch's sample catches a swap of
    :data:`SWAP_RATE` of the calls, and how far it backs the 99% pass claim."""
    return {
        "swap_rate": SWAP_RATE,
        "catch_probability_per_epoch": round(1.0 - miss_probability(SWAP_RATE, K), 6),
        **claim_report(K),
    }


def run_imaging_dispute(
    workdir: Path,
    rpc: str | None = None,
    *,
    calls: int = CALLS,
    on_step: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """The whole imaging example (module docstring) in ``workdir`` on the embedded chain (or
    the development node at ``rpc``); the report, every claim in it read back and checked."""
    if not MIN_CALLS <= calls <= 100_000:
        raise InvalidInput(f"--calls must be {MIN_CALLS}..100000, not {calls}")
    require_sklearn()  # before anything is written
    if importlib.util.find_spec("uvicorn") is None or importlib.util.find_spec("starlette") is None:
        raise InvalidInput(
            "the demo runs `ailedger market serve`, which needs the server extra",
            hint="pip install 'ailedger[server]'",
        )
    say = on_step or (lambda _line: None)
    workspace, keys = parties(Workspace.init(workdir, origin=ORIGIN))
    verifiers = sorted(
        (Secp256k1Signer.generate() for _ in range(3)), key=lambda s: int(s.address, 16)
    )
    sampling = _sampling()
    with ExitStack() as stack:
        background = stack.enter_context(ThreadPoolExecutor(max_workers=1))
        stored = background.submit(store_provider_key, workspace, keys["provider"])
        d = im.load_digits_split()
        chain = stack.enter_context(open_workspace_chain(workspace, rpc))
        world = World(workdir, workspace, chain, keys, verifiers, Claims(), say)
        reg = stack.enter_context(
            Registry.open(workspace, keys=Keystore(workspace.keys_dir).list_keys())
        )
        registered = register(world, reg, d)
        deploy_market(world)
        deploy_rest(world)
        # the hospital opens November's job and, for two months, December's; the provider
        # accepts both (its services start once the jobs exist: they serve named jobs)
        job_nov = jobs.open_job(world, registered.digest, calls, jobs.JOB_DAYS)
        job_dec = jobs.open_job(world, registered.digest, calls, jobs.LONG_JOB_DAYS)
        stored.result()
        started = stack.enter_context(providers(world, d, calls, [job_nov, job_dec]))
        url = started["provider-honest"].result().url
        nov = jobs.serve_job(world, url, job_nov, "nov", d, calls, registered, reg)
        jobs.verify_and_settle(world, nov, registered)
        jobs.finish_after_weeks(world, nov, calls)
        world.report["dispute"] = evidence.walk(world, reg, nov, registered)
        say(
            f"sampling: {K} samples per epoch (of {epoch_size(calls)} calls) catch a "
            f"{SWAP_RATE:.0%} swap with probability {sampling['catch_probability_per_epoch']:.1%}"
            f"; {sampling['line']}"
        )
        url = started["provider-swapping"].result().url
        dec = jobs.serve_job(world, url, job_dec, "dec", d, calls, registered, reg)
        jobs.catch_the_swap(world, dec, registered)
        jobs.books(world)
        say(f"{world.claims.checked} claims read back from the chain and the log: all hold")
        return {
            "chain_id": chain.chain_id,
            "market": world.m.address,
            "calls": calls,
            "model": str(MODEL_REF),
            "model_digest": registered.digest.hex(),
            "sampling": sampling,
            **world.report,
            "claims_checked": world.claims.checked,
        }
