"""Gas of anchoring a log checkpoint vs. writing every entry on-chain.

Deploys contracts/LogAnchors.sol (compiled from source with the pinned solc-js, like the
tests) on web3.py's in-memory py-evm chain and measures, from transaction receipts:

* gas per anchor with 1, 1,000 and 1,000,000 entries behind it (real RFC 9162 roots of that
  many entries), for a log's first anchor and for a later one, with and without an on-chain
  consistency proof;
* the gas each extra witness cosignature adds (threshold k = 1..8);
* next to it, the gas of writing each entry on-chain one transaction at a time: a minimal
  contract storing a bytes32 per entry (``EntryStore.store``) and one only emitting it in an
  event (``EntryLog.emitEntry``), per entry and extrapolated to N entries;
* StakeManager's deposit, withdrawal request, withdraw, lock, slash and claim (ether and the
  consortium ERC-20), each beside a plain ERC-20 transfer (``--stake-only``: just these);
* accountable oracles (``--judge-only``): OracleFeeds.transmit with every observation signed
  by its observer, and OracleJudge challenges (one that slashes, one that reverts), beside a
  plain ERC-20 transfer;
* DatasetVouching's audit of k = 10 / 30 / 100 records of a 10,000- and a 1,000,000-record
  dataset: open, draw, answer (records, proofs and checks), settle passed and settle failed
  (three curators slashed), beside a plain ERC-20 transfer (``--vouch-only``: just these);
* InferenceMarket (``--inference-only``): open, accept, commit an epoch root, draw, settle
  with two verifier signatures, approve, finish, claim, a wrong-model and a wrong-output
  dispute, beside a plain ERC-20 transfer; gas per call of a job of 1,000 / 100,000 /
  10,000,000 calls (one root per epoch) beside one transfer per call; and the sample sizes a
  99 % claim at 95 % confidence needs (Hoeffding; zero failures), which cost no gas (a
  verification result is two counts whatever k is).

    .venv/bin/python benchmarks/bench_gas.py [--witnesses 2] [--max-k 8] [--stake-only]
        [--vouch-only] [--judge-only] [--inference-only]
"""

from __future__ import annotations

import argparse
import importlib.util
import platform
import sys
import time
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from ailedger import merkle
from ailedger.chain.eip712 import log_id
from ailedger.identity.keys import Secp256k1Signer

REPO = Path(__file__).resolve().parents[1]
SIZES = (1, 1_000, 1_000_000)

BASELINE = """
// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// One storage slot per entry: the cheapest way to keep every entry in contract state.
contract EntryStore {
    bytes32[] public entries;
    function store(bytes32 entry) external { entries.push(entry); }
}

/// One event per entry: the cheapest way to put every entry on-chain (logs only).
contract EntryLog {
    event Entry(bytes32 entry);
    function emitEntry(bytes32 entry) external { emit Entry(entry); }
}
"""


def _load_test_helpers() -> Any:
    """The compile / deploy / sign helpers of tests/contracts/contract_helpers.py."""
    path = REPO / "tests" / "contracts" / "contract_helpers.py"
    spec = importlib.util.spec_from_file_location("ailedger_contract_helpers", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _roots() -> dict[int, bytes]:
    t = time.perf_counter()
    hashes = merkle.leaf_hashes(b"entry %d" % i for i in range(max(SIZES)))
    roots = {n: merkle.root_from_leaf_hashes(hashes[:n]) for n in SIZES}
    print(f"(roots of {max(SIZES):,} entries computed in {time.perf_counter() - t:.1f} s)")
    return roots


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--witnesses", type=int, default=2, help="cosignatures per anchor")
    parser.add_argument("--max-k", type=int, default=8, help="largest threshold measured")
    parser.add_argument("--per-entry-samples", type=int, default=20)
    parser.add_argument("--stake-only", action="store_true", help="only the StakeManager steps")
    parser.add_argument(
        "--judge-only",
        action="store_true",
        help="only transmit with per-observation signatures and an OracleJudge challenge",
    )
    parser.add_argument("--vouch-only", action="store_true", help="only DatasetVouching audits")
    parser.add_argument("--inference-only", action="store_true", help="only InferenceMarket jobs")
    args = parser.parse_args()
    if args.inference_only:
        _inference_gas()
        _machine()
        return
    if args.judge_only:
        _judge_gas()
        _machine()
        return
    if args.vouch_only:
        _vouch_gas()
        _machine()
        return
    if args.stake_only:
        _stake_gas()
        _machine()
        return

    h = _load_test_helpers()
    compiled = h.compile_contracts(extra={"bench/Baseline.sol": BASELINE})
    chain = h.Chain(Web3(EthereumTesterProvider()), compiled)
    anchors = chain.deploy("LogAnchors")
    chain_id = chain.chain_id
    log_key = Secp256k1Signer(keccak(text="bench log key"))
    witnesses = [Secp256k1Signer(keccak(text=f"bench witness {i}")) for i in range(32)]
    roots = _roots()
    f = anchors.functions
    counter = iter(range(10**6))

    def new_log(k: int) -> bytes:
        origin = f"bench.example/log/{next(counter)}"
        ws = [w.address for w in witnesses[: max(k, 1)]]
        admin = chain.accounts[0]
        call = h.register_log(anchors, chain_id, origin, log_key, ws, max(k, 1), admin)
        chain.send(call, admin)
        return bytes(log_id(origin, log_key.address))

    def anchor(lid: bytes, size: int, root: bytes, k: int, proof: list[bytes] | None) -> int:
        sig, cosigs = h.sign_checkpoint(anchors, chain_id, lid, size, root, log_key, witnesses[:k])
        if proof is None:
            call = f.anchor(lid, size, root, sig, cosigs)
        else:
            call = f.anchorWithProof(lid, size, root, sig, cosigs, proof)
        return int(chain.send(call)["gasUsed"])

    k = args.witnesses
    print(f"\nGas per anchor, {k} witness cosignatures + the log signature")
    print(
        f"{'entries':>10} {'first':>8} {'later':>8} {'later+proof':>12} {'proof len':>9}"
        f" {'gas/entry (later)':>18}"
    )
    hashes_cache: dict[int, list[bytes]] = {}
    later_gas: dict[int, int] = {}
    for n in SIZES:
        first = anchor(new_log(k), n, roots[n], k, None)
        # A later anchor: the log already holds an anchor at n // 2 (or 0 entries for n=1).
        lid = new_log(k)
        old = n // 2
        if old == 0:
            anchor(lid, 0, merkle.EMPTY_ROOT, k, None)
        else:
            anchor(lid, old, _root_of(old, hashes_cache), k, None)
        later = anchor(lid, n, roots[n], k, None)
        lid2 = new_log(k)
        old_root = merkle.EMPTY_ROOT if old == 0 else _root_of(old, hashes_cache)
        anchor(lid2, old, old_root, k, None)
        proof = [] if old == 0 else _consistency(old, n, hashes_cache)
        with_proof = anchor(lid2, n, roots[n], k, proof)
        later_gas[n] = later
        print(
            f"{n:>10,} {first:>8,} {later:>8,} {with_proof:>12,} {len(proof):>9}"
            f" {later / n:>18,.3f}"
        )

    print("\nGas per extra witness cosignature (later anchors of 1,000 entries)")
    by_k: dict[int, int] = {}
    for kk in range(1, args.max_k + 1):  # LogAnchors requires a threshold of at least 1
        lid = new_log(kk)
        anchor(lid, 500, _root_of(500, hashes_cache), kk, None)
        by_k[kk] = anchor(lid, 1000, roots[1000], kk, None)
    steps = [by_k[i + 1] - by_k[i] for i in range(1, args.max_k)]
    print("k:   " + " ".join(f"{i:>7}" for i in by_k))
    print("gas: " + " ".join(f"{g:>7,}" for g in by_k.values()))
    print(
        f"marginal gas per cosignature: min {min(steps):,}, max {max(steps):,}, "
        f"mean {sum(steps) / len(steps):,.0f}"
    )

    print("\nWriting each entry on-chain, one transaction per entry (steady state)")
    store = chain.deploy("EntryStore")
    events = chain.deploy("EntryLog")
    samples = args.per_entry_samples
    store_gas = [
        int(chain.send(store.functions.store(keccak(b"%d" % i)))["gasUsed"]) for i in range(samples)
    ]
    event_gas = [
        int(chain.send(events.functions.emitEntry(keccak(b"%d" % i)))["gasUsed"])
        for i in range(samples)
    ]
    per_store = store_gas[-1]
    per_event = event_gas[-1]
    print(
        f"EntryStore.store (bytes32 slot): {per_store:,} gas/entry (first entry {store_gas[0]:,})"
    )
    print(f"EntryLog.emitEntry (event):      {per_event:,} gas/entry")

    print("\nN entries: anchor once vs write one by one")
    print(
        f"{'entries':>10} {'anchor gas':>11} {'per-entry store':>16} {'per-entry event':>16}"
        f" {'store/anchor':>13} {'event/anchor':>13}"
    )
    for n in SIZES:
        a = later_gas[n]
        print(
            f"{n:>10,} {a:>11,} {per_store * n:>16,} {per_event * n:>16,}"
            f" {per_store * n / a:>12,.2f}x {per_event * n / a:>12,.2f}x"
        )
    _registry_gas(h, chain)
    _stake_gas()
    _vouch_gas()
    _inference_gas()
    _machine()


def _machine() -> None:
    print(
        f"\nmachine: {platform.processor() or platform.machine()}, Python "
        f"{platform.python_version()}, py-evm (eth-tester) chain"
    )


def _stake_gas() -> None:
    """StakeManager's steps (steady state: the participant already has a stake of that asset)
    beside a plain ERC-20 transfer between two accounts that already hold the token."""
    tests = REPO / "tests" / "contracts"
    sys.path.insert(0, str(tests))
    import oracle_helpers
    import stake_helpers

    sm = stake_helpers.deploy_stakes(Web3(EthereumTesterProvider()))
    chain, m, token = sm.chain, sm.manager.functions, sm.token
    a, b = sm.staker(1), sm.staker(2)
    rows: list[tuple[str, int]] = []

    def gas(label: str, receipt: Any) -> None:
        rows.append((label, int(receipt["gasUsed"])))

    gas("ERC-20 transfer (ConsortiumToken)", chain.send(token.functions.transfer(b, 10**18), a))
    eth, tok = stake_helpers.ETHER_ASSET, token.address
    sm.deposit(a, None, 10**18)  # first deposits set the stake's slots; measure the next ones
    chain.send(token.functions.approve(sm.manager.address, 2**255), a)
    chain.send(m.deposit(tok, 10**18), a)
    gas("deposit ether", sm.deposit(a, None, 10**18))
    gas("deposit ERC-20 (balance delta measured)", chain.send(m.deposit(tok, 10**18), a))
    gas("requestWithdrawal", chain.send(m.requestWithdrawal(tok, 10**17), a))
    gas("lock (by a market)", chain.send(sm.judge.functions.lock(a, tok, 10**17)))
    gas("slash (by a judge, own lock first)", chain.send(sm.slash(a, tok, 2 * 10**17)))
    gas("claim ERC-20 (prover's share)", chain.send(m.claim(tok, sm.prover), sm.prover))
    chain.send(m.requestWithdrawal(eth, 10**17), a)
    oracle_helpers.warp(chain, stake_helpers.UNBONDING)
    chain.send(m.requestWithdrawal(tok, 10**17), a)
    oracle_helpers.warp(chain, stake_helpers.UNBONDING)
    gas("withdraw ERC-20", chain.send(m.withdraw(tok, a), a))
    gas("withdraw ether", chain.send(m.withdraw(eth, a), a))
    base = rows[0][1]
    print("\nGas of StakeManager steps beside a plain ERC-20 transfer")
    for label, used in rows:
        print(f"{label:<42} {used:>9,}  {used / base:>5.2f}x")


def _judge_gas() -> None:
    """OracleFeeds.transmit with every observation signed by its observer (n = 4, f = 1, two
    report signatures; 3 and 4 observations, later reports of the feed), a successful
    OracleJudge challenge (it slashes an ether stake), and a challenge that reverts (within
    tolerance: the challenger's gas), beside a plain ERC-20 transfer."""
    tests = REPO / "tests" / "contracts"
    sys.path.insert(0, str(tests))
    import judge_helpers

    jd = judge_helpers.deploy_judged(Web3(EthereumTesterProvider()))
    chain, o = jd.chain, jd.o
    rows: list[tuple[str, int]] = []
    a, b = chain.accounts[1], chain.accounts[2]
    token = chain.deploy("ConsortiumToken", "Consortium", "CON", a, 10**30)
    chain.send(token.functions.transfer(b, 10**18), a)  # b holds the token already
    transfer = chain.send(token.functions.transfer(b, 10**18), a)
    rows.append(("ERC-20 transfer (ConsortiumToken)", int(transfer["gasUsed"])))
    jd.declare()
    for i in range(4):
        jd.stake(jd.oracle(i))
    jd.accept(1, [500, 510, 520, 900])  # the feed's first report (initialises its slots)
    for epoch, values in ((2, [500, 510, 900]), (3, [500, 510, 520, 900])):
        report = o.report(epoch, values)
        sigs = o.sign(report, o.signer_keys()[:2])
        used = int(chain.send(o.transmit(report, sigs))["gasUsed"])
        rows.append((f"transmit, {len(values)} signed observations, 2 sigs", used))
    stamp = int(o.feeds.functions.getRound(o.feed, 3).call()[1])
    report = o.report(3, [500, 510, 520, 900], timestamp=stamp)
    failed = jd.challenge_call(report, 0)
    rows.append(
        ("challenge that reverts (within tolerance)", _reverted_gas(chain, failed, jd.prover))
    )
    slashed = chain.send(jd.challenge_call(report, 3), jd.prover)
    rows.append(("challenge that slashes (ether stake)", int(slashed["gasUsed"])))
    base = rows[0][1]
    print("\nGas of accountable oracles beside a plain ERC-20 transfer (n = 4, f = 1)")
    for label, used in rows:
        print(f"{label:<46} {used:>9,}  {used / base:>5.2f}x")


def _reverted_gas(chain: Any, call: Any, sender: str) -> int:
    """Gas a reverting transaction burns (sent with a fixed limit; the receipt has it)."""
    tx = call.build_transaction({"from": sender, "gas": 300_000})
    receipt = chain.w3.eth.wait_for_transaction_receipt(chain.w3.eth.send_transaction(tx))
    assert receipt["status"] == 0
    return int(receipt["gasUsed"])


def _registry_gas(h: Any, chain: Any) -> None:
    """Gas of the registry's steps: register, approve (direct, signed, batched), deploy."""
    world = h.populate(h.deploy_all(chain))
    f = world.registry.functions
    rows: list[tuple[str, int]] = []

    def gas(label: str, call: Any, sender: str | None = None) -> None:
        rows.append((label, int(chain.send(call, sender)["gasUsed"])))

    roots = [keccak(text=f"dataset {i}") for i in range(4)]
    digest = keccak(text="weights")
    gas(
        "registerVersion (4 dataset roots)",
        f.registerVersion("m", "1", digest, digest, roots),
        world.frank,
    )
    v1 = bytes(f.versionIdOf(h.ORG_A, "m", "1").call())
    gas("approve (direct, approver's tx)", world.approve(v1, h.QA), world.carol)
    gas("approveBySig (relayed)", f.approveBySig(world.signed(v1, h.AUDITOR, world.auditor_b, 1)))
    gas("deploy (gate: 1 qa + 1 auditor, 2 orgs)", f.deploy(h.PROD, v1, digest), world.carol)
    chain.send(f.registerVersion("m", "2", digest, digest, []), world.frank)
    v2 = bytes(f.versionIdOf(h.ORG_A, "m", "2").call())
    batch = [
        world.signed(v2, h.QA, world.qa_a, 2),
        world.signed(v2, h.AUDITOR, world.auditor_b, 2),
        world.signed(v2, h.QA, world.qa_c, 2),
    ]
    gas("approveBatch (3 signed, 3 orgs)", f.approveBatch(batch))
    chain.send(f.deploy(h.PROD, v2, digest), world.carol)
    gas("rollback", f.rollback(h.PROD), world.carol)
    m = world.dep.membership.functions
    newcomer = h.key(90)
    gas(
        "Membership.addMember (signed consent)",
        h.join_call(world.dep.membership, chain.chain_id, h.ORG_A, newcomer),
        world.alice,
    )
    gas("Membership.grantRole", m.grantRole(h.ORG_A, newcomer.address, h.QA), world.alice)
    gas("Membership.revokeRole", m.revokeRole(h.ORG_A, newcomer.address, h.QA), world.alice)
    print("\nGas of registry and membership steps")
    for label, used in rows:
        print(f"{label:<42} {used:>9,}")


def _root_of(n: int, cache: dict[int, list[bytes]]) -> bytes:
    return merkle.root_from_leaf_hashes(_hashes(n, cache))


def _consistency(old: int, new: int, cache: dict[int, list[bytes]]) -> list[bytes]:
    return list(merkle.consistency_proof_from_leaf_hashes(_hashes(new, cache), old))


def _hashes(n: int, cache: dict[int, list[bytes]]) -> list[bytes]:
    if n not in cache:
        cache[n] = merkle.leaf_hashes(b"entry %d" % i for i in range(n))
    return cache[n]


def _vouch_gas() -> None:
    """Audits of k records (k = 10, 30, 100) of a listed dataset of 10,000 and of 1,000,000
    salted iris-like records (proof depth 14 and 20), three curators vouching: open, draw,
    answer (k records, proofs and checks verified on-chain) and settle a passed audit
    (rewards); then an unanswered audit settled after its deadline (three curators slashed).
    Each beside a plain ERC-20 transfer between two holders."""
    tests = REPO / "tests" / "contracts"
    sys.path.insert(0, str(tests))
    import oracle_helpers
    import vouch_helpers as vh

    v = vh.deploy_vouching(Web3(EthereumTesterProvider()))
    chain, token, f = v.chain, v.sm.token, v.f
    base = int(chain.send(token.functions.transfer(v.curator(2), 10**18), v.curator(1))["gasUsed"])
    r = v.dep.registry.functions
    org = v.dep.membership.functions.orgOf(v.owner).call()
    print(f"\nGas of DatasetVouching audits beside a plain ERC-20 transfer ({base:,} gas)")
    print(
        f"{'records':>9} {'k':>4} {'open':>8} {'draw':>8} {'answer':>10} {'/record':>8}"
        f" {'settle pass':>11} {'settle fail':>11} {'answer/transfer':>15}"
    )
    for n in (10_000, 1_000_000):
        t = time.perf_counter()
        entries = [keccak(b"salt%d" % i) + vh.row(i, str(i % 3)) for i in range(n)]
        tree = merkle.MerkleTree.from_entries(entries)
        took = time.perf_counter() - t
        name = f"n{n}"
        chain.send(
            r.registerVersion("bench", name, b"\x01" * 32, b"\x02" * 32, [tree.root()]), v.owner
        )
        version = bytes(r.versionIdOf(org, "bench", name).call())
        terms = vh.terms(token.address, n, 32, minVouch=1)
        chain.send(f.list(version, 0, terms, vh.CHECKS.as_tuple()), v.owner)
        v.ids[name] = dataset = bytes(f.datasetIdOf(version, 0).call())
        for i in (1, 2, 3):
            v.vouch(name, v.curator(i), 10**6)
        chain.send(f.fund(dataset, 10**6), v.owner)
        for k in (10, 30, 100):
            opened = chain.send(
                f.openAudit(dataset, chain.block_number() + 2, k, vh.BOND), v.challenger
            )
            audit = int(f.auditCount().call())
            vh.mine(chain, 2)
            drawn = chain.send(f.draw(audit))
            idx = [int(i) for i in f.sampleIndices(audit).call()]
            proofs = [list(tree.inclusion_proof(i).hashes) for i in idx]
            answered = chain.send(f.answer(audit, [entries[i] for i in idx], proofs), v.owner)
            oracle_helpers.warp(chain, vh.DISPUTE_WINDOW + 1)
            passed = chain.send(f.settle(audit))
            chain.send(f.openAudit(dataset, chain.block_number() + 2, k, vh.BOND), v.challenger)
            unanswered = int(f.auditCount().call())
            vh.mine(chain, 2)
            chain.send(f.draw(unanswered))
            oracle_helpers.warp(chain, vh.ANSWER_WINDOW + 1)
            failed = chain.send(f.settle(unanswered))
            o, d, a = (int(x["gasUsed"]) for x in (opened, drawn, answered))
            sp, sf = int(passed["gasUsed"]), int(failed["gasUsed"])
            print(
                f"{n:>9,} {k:>4} {o:>8,} {d:>8,} {a:>10,} {a // k:>8,} {sp:>11,} {sf:>11,}"
                f" {a / base:>14.1f}x"
            )
        print(f"  (the tree of {n:,} records built in {took:.1f} s)")


def _inference_gas() -> None:
    """One InferenceMarket job's steps beside an ERC-20 transfer, then the gas per call of a
    whole job (open, accept, per epoch: commit + draw + settle, finish, both claims) at
    1,000 / 100,000 / 10,000,000 calls, with one epoch root for all calls and with epochs of
    10,000 calls, beside one ERC-20 transfer per call."""
    tests = REPO / "tests" / "contracts"
    sys.path.insert(0, str(tests))
    import inference_helpers as ih
    import oracle_helpers

    from ailedger.markets.inference.settlement import (
        Mismatch,
        hoeffding_sample_size,
        sign_mismatch,
        zero_failure_sample_size,
    )

    m = ih.deploy_market(Web3(EthereumTesterProvider()))
    chain, f, token = m.chain, m.f, m.sm.token
    base = int(chain.send(token.functions.transfer(m.bystander, 10**18), m.consumer)["gasUsed"])
    calls = 10_000_000
    rows: list[tuple[str, int]] = []

    def gas(label: str, receipt: Any) -> int:
        used = int(receipt["gasUsed"])
        rows.append((label, used))
        return used

    # a warm-up job, so that the measured one does not pay for first-time slots (owed, held)
    warm = m.open(maxCalls=calls)
    m.accept(warm)
    m.commit(warm, 0, 1, 4)
    m.chain.send(f.approveEpoch(warm, 0), m.consumer)
    terms = m.terms(maxCalls=calls)
    opened = chain.send(f.openJob(terms, [v.address for v in ih.VERIFIERS]), m.consumer)
    (event,) = chain.events(m.market, "JobOpened", opened)
    job = bytes(event["args"]["jobId"])
    g_open = gas("openJob (ERC-20 escrow, 3 verifiers)", opened)
    g_accept = gas("acceptJob (locks the stake)", m.accept(job))
    commits = [gas(f"commitEpoch #{e + 1}", m.commit(job, e, 1 + 8 * e, 8)) for e in range(2)]
    draws, settles = [], []
    for e in range(2):
        ih.mine(chain, 2)
        draws.append(gas(f"draw #{e + 1}", chain.send(f.draw(job, e), m.bystander)))
        settles.append(
            gas(f"settleEpoch #{e + 1} (2 signatures)", chain.send(m.settle_call(job, e, ih.K)))
        )
    m.commit(job, 2, 17, 8)
    gas("approveEpoch (consumer pays)", chain.send(f.approveEpoch(job, 2), m.consumer))
    m.commit(job, 3, 25, 8, model=ih.OTHER_MODEL)
    oracle_helpers.warp(chain, ih.DEADLINE_IN + ih.SETTLE_WINDOW + 1)
    g_finish = gas("finish (refund, unlock)", chain.send(f.finish(job), m.provider))
    g_claims = gas(
        "claim ERC-20 (provider)", chain.send(f.claim(token.address, m.provider), m.provider)
    )
    g_claims += gas(
        "claim ERC-20 (consumer)", chain.send(f.claim(token.address, m.consumer), m.consumer)
    )
    # a dispute on another job
    other = m.open()
    m.accept(other)
    m.commit(other, 0, 1, 8, model=ih.OTHER_MODEL)
    r, sig, proof = m.proof(other, 0, 3)
    gas(
        "proveWrongModel (slash, refund)",
        chain.send(f.proveWrongModel(other, r, sig, proof), m.consumer),
    )
    # an output dispute: a failed epoch, one receipt, two verifiers' Mismatch signatures
    wrong = m.open()
    m.accept(wrong)
    m.commit(wrong, 0, 1, 8)
    ih.mine(chain, 2)
    chain.send(f.draw(wrong, 0), m.bystander)
    chain.send(m.settle_call(wrong, 0, ih.K - 1))
    r, sig, proof = m.proof(wrong, 0, 3)
    kept = m.epochs[(wrong, 0)][3]
    expected = b"\x07" * 32
    mismatch = Mismatch(wrong, kept.counter, kept.request_digest, kept.response_digest, expected)
    sigs = sign_mismatch(mismatch, m.domain, ih.VERIFIERS[:2])
    gas(
        "proveWrongOutput (2 Mismatch signatures)",
        chain.send(f.proveWrongOutput(wrong, r, sig, proof, expected, sigs), m.consumer),
    )
    print(f"\nGas of InferenceMarket steps beside a plain ERC-20 transfer ({base:,} gas)")
    for label, used in rows:
        print(f"{label:<40} {used:>9,}  {used / base:>5.2f}x")
    epoch = commits[1] + draws[1] + settles[1]
    fixed = g_open + g_accept + g_finish + g_claims
    print(f"\nGas per call of a whole job (one epoch: {epoch:,} gas; fixed: {fixed:,} gas)")
    print(
        f"{'calls':>12} {'1 root':>10} {'/call':>8} {'roots of 10,000':>16} {'/call':>8}"
        f" {'1 transfer per call':>20}"
    )
    for n in (1_000, 100_000, 10_000_000):
        one = fixed + epoch
        many = fixed + epoch * max(1, -(-n // 10_000))
        print(f"{n:>12,} {one:>10,} {one / n:>8.2f} {many:>16,} {many / n:>8.2f} {base * n:>20,}")
    print(
        "\nsample size for '>= 99 % of calls right at 95 % confidence': "
        f"Hoeffding (margin 1 point) k = {hoeffding_sample_size(0.01, 0.95):,}; "
        f"all sampled calls pass (< 1 % bad) k = {zero_failure_sample_size(0.01, 0.95):,}"
    )


if __name__ == "__main__":
    main()
