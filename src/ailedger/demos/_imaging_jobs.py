"""The imaging demo's jobs: open a job, send the studies, keep the receipts and their proofs,
commit the epochs, verify the samples and settle; finish the honest job weeks later; catch
and slash the provider who swapped its model for some calls."""

from __future__ import annotations

import json
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ailedger.chain.inference_market import EpochStatus, JobStatus, JobTerms
from ailedger.demos import _imaging_model as im
from ailedger.demos import _imaging_verify as verify
from ailedger.demos._chain import advance_time, anchor_log, mine
from ailedger.demos._imaging_world import (
    DAY,
    PRICE,
    STAKE,
    UNIT,
    JobRun,
    K,
    Registered,
    World,
)
from ailedger.errors import NodeUnavailable, NotFound
from ailedger.markets.inference import ProviderClient, ReceiptWallet, market_domain
from ailedger.markets.inference.models import SklearnPredictor, verified_model
from ailedger.markets.inference.settlement import sample_counters
from ailedger.registry import Registry, VersionRef

__all__ = [
    "JOB_DAYS",
    "LONG_JOB_DAYS",
    "books",
    "catch_the_swap",
    "finish_after_weeks",
    "honest_outputs",
    "open_job",
    "serve_job",
    "verify_and_settle",
]

JOB_DAYS = 7
#: December's job is opened with November's, for two months: it outlives the weeks-later.
LONG_JOB_DAYS = 60
#: How long after the job's deadline the dispute comes.
WEEKS_LATER = 21 * DAY


def open_job(world: World, digest: bytes, calls: int, days: int) -> bytes:
    """The hospital opens a job of ``calls`` calls for ``days`` (escrow), three verifiers,
    two of them needed; the provider accepts it (its stake locked). Its id, read back."""
    k = world.keys
    terms = JobTerms(
        world.addr("provider"), world.t.address, world.t.address, STAKE, digest, PRICE, calls,
        world.chain.block_timestamp() + days * DAY, k=K, threshold=2,
    )  # fmt: skip
    held = world.m.held(world.t.address)
    job = world.m.open_job(terms, [v.address for v in world.verifiers], signer=k["hospital"])
    world.m.accept_job(job, world.addr("provider"), signer=k["provider"])
    info = world.m.job(job)
    world.claims.check(
        info.status == JobStatus.ACTIVE
        and info.terms.model_digest == digest
        and info.consumer == world.addr("hospital")
        and info.signer == world.addr("provider")
        and world.m.held(world.t.address) == held + calls * PRICE
        and world.s.stake_of(world.addr("provider"), world.t.address).locked >= STAKE,
        f"job 0x{job.hex()[:12]}… is active on-chain: {calls * PRICE / UNIT:g} CON escrowed "
        f"for {calls} calls of model sha256:{digest.hex()[:16]}… over {days} days, the "
        f"provider's {STAKE // UNIT} CON stake locked",
    )
    world.say(
        f"the hospital opened job 0x{job.hex()[:12]}… for {calls} calls over {days} days "
        f"({calls * PRICE / UNIT:g} CON escrowed); the provider accepted ({STAKE // UNIT} CON "
        "of its stake locked)"
    )
    return job


#: Client threads sending the studies (each its own connection; the wallet is shared).
CLIENTS = 4


def _client(world: World, url: str, digest: bytes, wallet: ReceiptWallet) -> ProviderClient:
    """The hospital's client pinned to the provider's key, the model paid for, the market's
    domain and the price: a receipt that says otherwise is refused before it is kept."""
    return ProviderClient(
        url,
        provider=world.addr("provider"),
        model_digest=digest,
        domain=market_domain(world.chain.chain_id, world.m.address),
        wallet=wallet,
        price=PRICE,
    )


def _call_all(
    world: World, url: str, wallet: ReceiptWallet, run: JobRun, d: im.Digits, n: int, digest: bytes
) -> None:
    """The hospital sends ``n`` studies, each with a fresh salt, from :data:`CLIENTS`
    threads; every receipt is checked (signature, domain, model, job, price, request and
    response digests) and kept in the wallet before its call returns."""
    hospital = world.keys["hospital"]

    def send(i: int, client: ProviderClient) -> dict[str, Any]:
        salt = secrets.token_bytes(32)
        pixels = d.studies[i % len(d.studies)]
        result = client.call(pixels, job=run.job, signer=hospital, salt=salt)
        return {
            "study": f"{run.name}-{i + 1:06d}",
            "salt": "0x" + salt.hex(),
            "pixels": pixels,
            "counter": result.receipt.receipt.counter,
            "output": result.output,
        }

    def worker(first: int) -> list[dict[str, Any]]:
        with _client(world, url, digest, wallet) as client:
            return [send(i, client) for i in range(first, n, CLIENTS)]

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        done = [s for part in pool.map(worker, range(CLIENTS)) for s in part]
    run.studies.extend(sorted(done, key=lambda s: str(s["study"])))


def _archive(world: World, run: JobRun, reg: Registry) -> None:
    """The hospital's archive (images and salts: kept in-house) and its signed study index
    (accession id -> salted digest; a dataset whose root goes into the log)."""
    folder = world.workdir / "hospital"
    folder.mkdir(exist_ok=True)
    with (folder / f"archive-{run.name}.jsonl").open("w", encoding="utf-8") as out:
        for s in run.studies:
            out.write(json.dumps(s) + "\n")
    digests = {r.receipt.receipt.counter: r.receipt.receipt.request_digest for r in run.rows}
    index = folder / f"studies-{run.name}.jsonl"
    with index.open("w", encoding="utf-8") as out:
        for s in run.studies:
            doc = {
                "study": s["study"],
                "job": "0x" + run.job.hex(),
                "counter": s["counter"],
                "digest": "0x" + digests[s["counter"]].hex(),
            }
            out.write(json.dumps(doc, sort_keys=True) + "\n")
    ref = VersionRef(f"st-mary-studies-{run.name}", "1")
    rec = reg.register_dataset(index, ref, world.keys["hospital"], format="jsonl")
    run.index_log, run.index_path = rec.log_index, index


def _prove(
    world: World, url: str, digest: bytes, wallet: ReceiptWallet, run: JobRun, counters: Any
) -> None:
    """Fetch (and check) the inclusion proofs of ``counters`` not kept yet (from
    :data:`CLIENTS` connections); each is kept in the wallet."""
    todo = [
        r.receipt for r in run.rows if r.receipt.receipt.counter in counters and r.proof is None
    ]

    def worker(first: int) -> None:
        with _client(world, url, digest, wallet) as client:
            for signed in todo[first::CLIENTS]:
                client.prove(signed)

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        list(pool.map(worker, range(CLIENTS)))
    run.rows = wallet.rows(run.job)


def _epoch_roots(world: World, url: str, digest: bytes, wallet: ReceiptWallet, run: JobRun) -> None:
    """Wait for the last receipt's epoch to close; keep one proof per epoch (its signed
    root) and the proof of every flagged study (the ones a dispute may come for)."""
    last = max(run.rows, key=lambda r: r.receipt.receipt.counter).receipt
    deadline = time.monotonic() + 120.0  # a guard against a hung provider only
    with _client(world, url, digest, wallet) as client:
        while True:
            try:
                client.prove(last)
                break
            except NotFound:
                if time.monotonic() > deadline:
                    raise NodeUnavailable(
                        "the provider never closed the job's last epoch"
                    ) from None
                time.sleep(0.2)
    first: dict[int, int] = {}
    for row in run.rows:
        r = row.receipt.receipt
        first[r.epoch] = min(first.get(r.epoch, r.counter), r.counter)
    flagged = {s["counter"] for s in run.studies if s["output"]["flag"]}
    _prove(world, url, digest, wallet, run, flagged | set(first.values()))
    for row in run.rows:
        e = run.epochs.setdefault(row.receipt.receipt.epoch, {"root": None, "calls": 0})
        e["calls"] += 1
        if row.epoch_root is not None:
            e["root"] = row.epoch_root
    world.claims.check(
        all(r.proof is not None for r in run.rows if r.receipt.receipt.counter in flagged),
        f"job {run.name}: the hospital keeps the inclusion proofs of its {len(flagged)} flagged "
        "studies under their epochs' signed roots",
    )


def _commit(world: World, run: JobRun) -> None:
    """Relay the provider's signed epoch roots to the market (the provider's account pays
    the gas), then draw each epoch's sample from the hash of the block after it."""
    k = world.keys
    for epoch in sorted(run.epochs):
        e = run.epochs[epoch]
        root = e["root"]
        world.m.commit_epoch(
            run.job, epoch, root.epoch_root.size, root.epoch_root.root, e["calls"],
            root.signature, signer=k["provider"],
        )  # fmt: skip
    mine(world.chain)
    for epoch in sorted(run.epochs):
        while not world.m.draw(run.job, epoch, signer=k["hospital"]):
            mine(world.chain)  # reseeded: the seed block's hash had aged out
        stored = world.m.epoch(run.job, epoch)
        e = run.epochs[epoch]
        world.claims.check(
            stored.status == EpochStatus.COMMITTED
            and stored.root == e["root"].epoch_root.root
            and stored.calls == e["calls"]
            and stored.drawn,
            f"job {run.name} epoch {epoch}: its signed root and {e['calls']} calls are "
            "committed on-chain and its sample is drawn",
        )
        e["first"], e["seed"] = stored.first, stored.seed
        # the verifiers read the sample from the chain; the hospital computes it (same rule)
        e["sample"] = sample_counters(stored.seed, run.job, epoch, stored.first, stored.calls, K)


def serve_job(
    world: World,
    url: str,
    job: bytes,
    name: str,
    d: im.Digits,
    calls: int,
    registered: Registered,
    reg: Registry,
) -> JobRun:
    """Send the studies of ``job`` to the provider at ``url``, keep the receipts, index the
    studies (logged, the log anchored), commit the epochs on-chain and draw their samples;
    keep the proofs of the sampled calls too."""
    run = JobRun(job, name, [], [])
    with ReceiptWallet(world.workdir / "hospital" / "receipts.sqlite") as wallet:
        _call_all(world, url, wallet, run, d, calls, registered.digest)
        run.rows = wallet.rows(job)
        counters = sorted(r.receipt.receipt.counter for r in run.rows)
        world.claims.check(
            counters == list(range(1, calls + 1)) and not wallet.gaps(job),
            f"job {name}: the hospital holds a checked receipt for each of its {calls} calls, "
            f"counters 1..{calls} with no gap",
        )
        _epoch_roots(world, url, registered.digest, wallet, run)
        _archive(world, run, reg)
        assert world.deployment is not None
        signers = {"log": world.keys["log"], "witness": world.keys["witness"]}
        anchor_log(reg.log, world.workspace, world.chain, world.deployment, signers)
        _commit(world, run)
        sampled = {c for e in run.epochs.values() for c in e["sample"]}
        _prove(world, url, registered.digest, wallet, run, sampled)
    flagged = sum(1 for s in run.studies if s["output"]["flag"])
    world.say(
        f"job {name}: the hospital sent {calls} salted studies to {url} ({CLIENTS} "
        f"connections); {flagged} flagged; every receipt checked and kept; study index signed "
        f"(log entry {run.index_log}) and the log anchored on-chain; {len(run.epochs)} epoch "
        f"roots committed on-chain and their samples of {K} drawn"
    )
    return run


def _registered_model(registered: Registered) -> Any:
    """The registered version, loaded from files checked against its digest."""
    return SklearnPredictor(verified_model(registered.model_dir, registered.digest)).estimator


def honest_outputs(run: JobRun, registered: Registered) -> list[int]:
    """Counters whose received output is not what the registered model answers (the
    narrator's ground truth: the demo re-executes every call, which no verifier needs)."""
    model = _registered_model(registered)
    return [
        s["counter"] for s in run.studies if im.triage_output(model, s["pixels"]) != s["output"]
    ]


def verify_and_settle(world: World, run: JobRun, registered: Registered) -> None:
    """Every epoch of the honest job: the verifiers re-execute its sample and sign; the
    market pays the epoch (read back)."""
    wrong = honest_outputs(run, registered)
    world.claims.check(
        not wrong,
        f"job {run.name}: every output is the registered model's (re-executed: "
        f"{len(wrong)} differ)",
    )
    for epoch in sorted(run.epochs):
        verdict = verify.attest(world, run, epoch, registered)
        paid = world.m.settle_epoch(
            run.job, epoch, verdict.passed, verdict.total, verdict.signatures,
            signer=world.keys["hospital"],
        )  # fmt: skip
        stored = world.m.epoch(run.job, epoch)
        world.claims.check(
            paid and stored.status == EpochStatus.PASSED and verdict.passed == verdict.total,
            f"job {run.name} epoch {epoch}: {verdict.passed}/{verdict.total} sampled calls "
            "re-executed to the same output; settled as passed by 2 of 3 verifiers",
        )
        run.epochs[epoch]["settled"] = verdict.to_dict()
    world.say(
        f"job {run.name}: {len(run.epochs)} epochs verified ({K} samples each, "
        "re-executed by the verifiers against their own copy of the registered model) and paid"
    )


def finish_after_weeks(world: World, run: JobRun, calls: int) -> None:
    """Weeks later, after the deadline and the settle window: finish the job, claim."""
    advance_time(world.chain, JOB_DAYS * DAY + WEEKS_LATER)
    k, provider, hospital = world.keys, world.addr("provider"), world.addr("hospital")
    locked = world.s.stake_of(provider, world.t.address).locked
    paid, refund = world.m.finish(run.job, signer=k["hospital"])
    info = world.m.job(run.job)
    world.claims.check(
        info.status == JobStatus.FINISHED
        and (paid, refund) == (calls * PRICE, 0)
        and info.paid_calls == calls
        and world.s.stake_of(provider, world.t.address).locked == locked - STAKE,
        f"job {run.name} finished: {calls} calls paid ({paid / UNIT:g} CON), nothing to "
        "refund, the provider's stake unlocked",
    )
    before = world.t.balance_of(provider)
    got = world.m.claim(world.t.address, signer=k["provider"])
    world.claims.check(
        got == paid and world.t.balance_of(provider) == before + paid,
        f"the provider claimed {paid / UNIT:g} CON",
    )
    world.say(
        f"three weeks after its deadline job {run.name} is finished: {calls} calls paid "
        f"({paid / UNIT:g} CON, claimed by the provider), its stake unlocked"
    )
    world.report["job_nov"] = {
        "job": "0x" + run.job.hex(),
        "epochs": {str(e): _epoch_doc(v) for e, v in run.epochs.items()},
        "paid": paid,
        "study_index_log": run.index_log,
        "hospital": hospital,
    }


def _epoch_doc(e: dict[str, Any]) -> dict[str, Any]:
    root = e["root"].epoch_root
    return {
        "root": root.root.hex(),
        "size": root.size,
        "calls": e["calls"],
        "first": e.get("first"),
        "settled": e.get("settled"),
    }


def catch_the_swap(world: World, run: JobRun, registered: Registered) -> None:
    """The swapping provider's job: its epochs' samples are re-executed; the first epoch
    whose sample finds a wrong output fails, the hospital proves one wrong output with the
    verifiers' signed mismatch, and the provider is slashed (all read back)."""
    wrong = honest_outputs(run, registered)
    n = len(run.studies)
    world.claims.check(
        0 < len(wrong) < n,
        f"job {run.name}: {len(wrong)} of {n} outputs ({len(wrong) / n:.1%}) are not the "
        "registered model's, though every receipt names it",
    )
    k, hospital = world.keys, world.addr("hospital")
    outcome: dict[str, Any] = {"job": "0x" + run.job.hex(), "wrong_outputs": len(wrong)}
    world.say(
        f"job {run.name}: {len(wrong)} of {n} answers ({len(wrong) / n:.1%}) came from another "
        "model, every receipt naming the registered one (the demo's own re-execution of all "
        "calls; no verifier needs it)"
    )
    for epoch in sorted(run.epochs):
        verdict = verify.attest(world, run, epoch, registered)
        passed = world.m.settle_epoch(
            run.job, epoch, verdict.passed, verdict.total, verdict.signatures,
            signer=k["hospital"],
        )  # fmt: skip
        run.epochs[epoch]["settled"] = verdict.to_dict()
        if passed:
            world.say(
                f"job {run.name} epoch {epoch}: the sample found no wrong output "
                f"({verdict.passed}/{verdict.total}); paid"
            )
            continue
        stored = world.m.epoch(run.job, epoch)
        world.claims.check(
            stored.status == EpochStatus.FAILED and bool(verdict.wrong),
            f"job {run.name} epoch {epoch}: {verdict.total - verdict.passed} of "
            f"{verdict.total} sampled calls re-executed to another output; the epoch failed "
            "on-chain and is not paid",
        )
        world.say(
            f"job {run.name} epoch {epoch}: the verifiers reproduced {verdict.passed} of its "
            f"{verdict.total} sampled calls; {len(verdict.wrong)} wrong outputs signed by "
            f"{len(verdict.signers)} verifiers; settled as failed on-chain, not paid"
        )
        outcome["failed_epoch"] = epoch
        outcome["sample"] = verdict.to_dict()
        outcome["slash"] = verify.prove_wrong_output(world, run, epoch, verdict.wrong[0])
        break
    else:
        world.claims.check(False, f"job {run.name}: the sampled verification caught the swap")
    info = world.m.job(run.job)
    world.claims.check(
        info.status == JobStatus.SLASHED,
        f"job {run.name} is slashed on-chain (status {info.status.name.lower()})",
    )
    refund = PRICE * (n - info.paid_calls)
    before = world.t.balance_of(hospital)
    got = world.m.claim(world.t.address, signer=k["hospital"])
    world.claims.check(
        got == refund and world.t.balance_of(hospital) == before + refund,
        f"the hospital was refunded {refund / UNIT:g} CON (the {n - info.paid_calls} unpaid "
        "calls) and claimed it",
    )
    outcome["refund"] = refund
    outcome["paid_calls"] = info.paid_calls
    world.report["job_dec"] = outcome


def books(world: World) -> None:
    """The market holds exactly what it owes; the StakeManager's books balance."""
    held = world.m.held(world.t.address)
    totals = world.s.totals(world.t.address)
    world.claims.check(
        world.t.balance_of(world.m.address) == held,
        f"the InferenceMarket holds exactly the escrow and payments it owes ({held} wei)",
    )
    world.claims.check(
        totals.balanced and world.t.balance_of(world.s.address) == totals.staked + totals.owed,
        "StakeManager books: deposited == staked + slashed + withdrawn; slashed == owed + "
        "claimed; its balance holds staked + owed",
    )
    world.report["stake_totals"] = totals.to_dict()
