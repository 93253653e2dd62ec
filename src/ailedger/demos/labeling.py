"""``ailedger demo labeling``: a labeling market on real images, for real.

A requester posts 200 of scikit-learn's bundled 8x8 digit images (fingerprinted as a dataset:
the task commits to its Merkle root) with 30 hidden gold items (a salted Merkle commitment),
a reward pool in the consortium token and a minimum stake. Eight simulated labelers stake in the
StakeManager and join: two careful ones (classifiers trained on other digits), a lazy one
(random labels), a copycat (copies the careful labeler's commitment, then its revealed labels:
neither opens for the copycat), a late one (never reveals) and three colluders (agreeing on
wrong labels for half the batch). The labelers commit, reveal; the requester reveals the gold
with inclusion proofs; the contract scores everyone; settlement slashes the late, the copycat
and the inaccurate and pays the others pro rata to their correct gold answers.

The labels of the paid labelers, aggregated by majority weighted by gold accuracy, become a
dataset version (``digits-labels@1``) whose every record names its labelers and their accuracy;
a model trained on it is registered, so its lineage reaches the labelers. Every claim printed
is read back from the chain (events, stakes, balances) and the log, and compared with what the
demo computed on its own; one that does not hold raises ClaimFailed (exit 1).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from web3.providers.eth_tester import EthereumTesterProvider

from ailedger.attest.statements import Statement
from ailedger.chain import Chain
from ailedger.chain._revert import ContractReverted
from ailedger.chain.backends import open_workspace_chain
from ailedger.chain.labeling import LabelingMarket, TaskParams, deploy_labeling_market
from ailedger.chain.stake import StakeManager, Token, deploy_stake_manager
from ailedger.demos import _ml as ml
from ailedger.demos._claims import Claims
from ailedger.demos._steps import DEMO_PASSWORD
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.identity.keys import Keystore, Secp256k1Signer, checksum_address
from ailedger.markets.labeling import (
    LATE,
    LOW_ACCURACY,
    REASONS,
    GoldSet,
    aggregate,
    gold_accuracy,
    labels_commitment,
)
from ailedger.registry import Registry, VersionRef
from ailedger.registry.lineage import lineage
from ailedger.workspace import Workspace

__all__ = ["BATCH", "GOLD", "LABELERS", "THRESHOLD_BPS", "run_labeling"]

BATCH = 200
GOLD = 30
THRESHOLD_BPS = 8_000
LABELERS = (
    "careful",
    "careful-2",
    "lazy",
    "copycat",
    "late",
    "colluder-1",
    "colluder-2",
    "colluder-3",
)
UNIT = 10**18
POOL = 1_000 * UNIT + 7  # odd: the shares leave a remainder
MIN_STAKE = 100 * UNIT
PHASE = 600
UNBONDING = 60
BATCH_REF = VersionRef("digits-batch", "1")
LABELS_REF = VersionRef("digits-labels", "1")
MODEL_REF = VersionRef("digits-classifier", "1")
_ETHER = 10**18


def _advance(chain: Chain, seconds: int) -> int:
    """Mine a block ``seconds`` after the latest (embedded chain or a development node)."""
    target = chain.block_timestamp() + seconds
    provider = chain.w3.provider
    request: Any = provider.make_request
    if isinstance(provider, EthereumTesterProvider):
        request("testing_timeTravel", [target])
        request("evm_mine", [1])
    else:
        request("evm_setNextBlockTimestamp", [target])
        request("evm_mine", [])
    return chain.block_timestamp()


@dataclass
class _Digits:
    batch_x: Any
    batch_y: list[int]
    rest_x: Any
    rest_y: Any


def _digits() -> _Digits:
    ml.require_sklearn()
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = list(range(len(digits.target)))
    random.Random(15).shuffle(order)
    batch, rest = order[:BATCH], order[BATCH:]
    return _Digits(
        digits.data[batch],
        [int(v) for v in digits.target[batch]],
        digits.data[rest],
        digits.target[rest],
    )


def _answers(d: _Digits) -> dict[str, bytes]:
    """Each simulated labeler's labels for the batch (one byte per image)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    # One BLAS thread: on a busy machine a thread per core made these fits 100x slower.
    with threadpool_limits(1):
        careful = LogisticRegression(max_iter=2_000).fit(d.rest_x, d.rest_y).predict(d.batch_x)
        careful2 = KNeighborsClassifier(3).fit(d.rest_x, d.rest_y).predict(d.batch_x)
    rng = random.Random(7)
    lazy = bytes(rng.randrange(10) for _ in range(BATCH))
    # The colluders agree: the careful answer on the first half, (answer + 1) mod 10 after.
    colluded = bytes(int(v) if i < BATCH // 2 else (int(v) + 1) % 10 for i, v in enumerate(careful))
    return {
        "careful": bytes(int(v) for v in careful),
        "careful-2": bytes(int(v) for v in careful2),
        "lazy": lazy,
        "copycat": bytes(BATCH),  # never opened: it copies the careful labeler's commitment
        "late": bytes(int(v) for v in careful2),
        "colluder-1": colluded,
        "colluder-2": colluded,
        "colluder-3": colluded,
    }


def _write_batch(d: _Digits, path: Path) -> None:
    with path.open("w", encoding="utf-8") as fh:
        for i, pixels in enumerate(d.batch_x):
            fh.write(json.dumps({"item": i, "pixels": [int(p) for p in pixels]}) + "\n")


def run_labeling(
    workdir: Path, rpc: str | None = None, *, on_step: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The whole labeling example (module docstring); the report, every claim in it read back
    from the chain or the log and checked."""
    say = on_step or (lambda _line: None)
    claims = Claims()
    d = _digits()
    answers = _answers(d)
    workspace = Workspace.init(workdir, origin="labeling.demo.ailedger")
    keystore = Keystore(workspace.keys_dir)
    requester = Secp256k1Signer.generate()
    keystore.add("requester", requester, DEMO_PASSWORD, org="digits-lab")
    people = {name: Secp256k1Signer.generate() for name in LABELERS}
    addr = {name: checksum_address(k.address) for name, k in people.items()}
    with (
        open_workspace_chain(workspace, rpc) as chain,
        Registry.open(workspace, keys=keystore.list_keys()) as reg,
    ):
        for k in (requester, *people.values()):
            chain.fund(k.address, 10 * _ETHER)
        # -- the StakeManager, the token and the market -----------------------------------
        token_c = chain.deploy(
            "ConsortiumToken",
            "Consortium",
            "CON",
            requester.address,
            10**9 * UNIT,
            signer=requester,
        )
        token = Token(chain, token_c)
        stake_c = deploy_stake_manager(chain, requester, unbonding_delay=UNBONDING)
        stakes = StakeManager(chain, stake_c)
        market_c = deploy_labeling_market(chain, requester, stake_c)
        market = LabelingMarket(chain, market_c)
        _advance(chain, stakes.governance_delay() + 1)
        claims.check(
            stakes.is_judge(market.address) and stakes.is_market(market.address),
            "the LabelingMarket is a registered judge and market of the StakeManager",
        )
        say(
            f"StakeManager {stakes.address}, token CON {token.address}, LabelingMarket "
            f"{market.address} (judge and market after the governance delay)"
        )
        # -- the batch, fingerprinted and registered ----------------------------------------
        data_dir = workdir / "data"
        data_dir.mkdir()
        batch_path = data_dir / "digits-batch.jsonl"
        _write_batch(d, batch_path)
        batch_rec = reg.register_dataset(batch_path, BATCH_REF, requester, format="jsonl")
        batch_root = bytes.fromhex(str(batch_rec.predicate["root"]))
        rng = random.Random(3)
        gold_items = sorted(rng.sample(range(BATCH), GOLD))
        gold = GoldSet.derive([(i, d.batch_y[i]) for i in gold_items], b"demo gold secret v1")
        say(
            f"batch of {BATCH} scikit-learn digit images registered as {BATCH_REF} (log entry "
            f"{batch_rec.log_index}, root {batch_root.hex()[:16]}...); {GOLD} gold items "
            f"committed (root {gold.root().hex()[:16]}...)"
        )
        # -- post, stake, join, commit -------------------------------------------------------
        t0 = chain.block_timestamp()
        params = TaskParams(
            token.address,
            batch_root,
            BATCH,
            gold.root(),
            GOLD,
            POOL,
            MIN_STAKE,
            THRESHOLD_BPS,
            t0 + PHASE,
            t0 + 2 * PHASE,
            t0 + 3 * PHASE,
        )
        task = market.create_task(params, signer=requester)
        info = market.task(task)
        claims.check(info.pool == POOL and info.batch_root == batch_root, "the pool is escrowed")
        salts: dict[str, bytes] = {}
        for name in LABELERS:
            token.transfer(addr[name], 2 * MIN_STAKE, signer=requester)
            stakes.deposit(2 * MIN_STAKE, token.address, signer=people[name])
            salts[name] = hashlib.sha256(f"salt/{name}".encode()).digest()
            if name == "copycat":
                continue
            c = labels_commitment(
                chain.chain_id, market.address, task, addr[name], answers[name], salts[name]
            )
            market.join(task, c, signer=people[name])  # join and commit in one transaction
        copied = market.work_of(task, addr["careful"]).hash
        market.join(task, copied, signer=people["copycat"])
        say(
            f"task {task}: pool {POOL / UNIT:g} CON, stake {MIN_STAKE // UNIT} CON locked for each "
            f"of {len(LABELERS)} labelers; all committed (the copycat copied the careful "
            "labeler's commitment)"
        )
        # -- reveal ------------------------------------------------------------------------
        _advance(chain, PHASE + 1)
        for name in LABELERS:
            if name not in ("copycat", "late"):
                market.reveal(task, answers[name], salts[name], signer=people[name])
        copy_error = ""
        try:  # the copycat replays what the careful labeler revealed: it does not open
            market.reveal(task, answers["careful"], salts["careful"], signer=people["copycat"])
        except ContractReverted as exc:
            copy_error = exc.error_name
        claims.check(
            copy_error == "CommitmentMismatch",
            "the copycat's reveal of the careful labeler's labels and salt is refused",
        )
        say(
            "6 labelers revealed; the copycat's reveal of the careful labeler's revealed labels "
            f"and salt reverted ({copy_error}); the late labeler did not reveal"
        )
        # -- gold, scores, settlement ---------------------------------------------------------
        _advance(chain, PHASE + 1)
        market.reveal_gold(task, gold.salts, gold.records(), gold.proofs(), signer=requester)
        expected_correct = {n: gold_accuracy(answers[n], gold.items) for n in LABELERS}
        revealed = [n for n in LABELERS if n not in ("copycat", "late")]
        by_addr = market.score(
            task,
            [addr[n] for n in revealed],
            [answers[n] for n in revealed],
            gold.records(),
            signer=requester,
        )
        scored = {n: by_addr[addr[n]] for n in revealed}
        for name in revealed:
            claims.check(
                scored[name] == expected_correct[name],
                f"{name}'s on-chain score equals its gold accuracy computed off-chain",
            )
        receipt = market.settle(task, signer=requester)
        outcome = _expected(scored)
        weights = {n: scored[n] for n, o in outcome.items() if o == "paid"}
        total = sum(weights.values())
        rewards = {n: POOL * w // total for n, w in weights.items()}
        remainder = POOL - sum(rewards.values())
        report_rows = _verify_settlement(
            claims,
            chain,
            market,
            stakes,
            task,
            receipt.tx_hash,
            addr,
            outcome,
            rewards,
            remainder,
            requester,
            scored,
        )
        say(f"gold revealed with {GOLD} inclusion proofs; every revealed labeler scored on-chain")
        for row in report_rows:
            say(row["line"])
        # -- claims: pull payments ---------------------------------------------------------
        for name, reward in rewards.items():
            before = token.balance_of(addr[name])
            market.claim(token.address, signer=people[name])
            claims.check(
                token.balance_of(addr[name]) == before + reward,
                f"{name} claimed exactly its reward",
            )
        market.claim(token.address, signer=requester)
        books = market.books(token.address)
        claims.check(
            token.balance_of(market.address) == 0
            and books == {"escrowed": 0, "owed": 0, "claimed": POOL},
            "the market paid out the pool exactly: shares plus remainder == pool, nothing left",
        )
        totals = stakes.totals(token.address)
        claims.check(
            totals.balanced
            and all(stakes.stake_of(a, token.address).balanced for a in addr.values())
            and token.balance_of(stakes.address) == totals.staked + totals.owed,
            "StakeManager books: deposited == staked + slashed + withdrawn, per labeler and "
            "in sum; slashed == owed + claimed; its balance holds staked + owed",
        )
        # -- the aggregated labels, their provenance, a model's lineage ---------------------
        accuracy = {n: scored[n] / GOLD for n in weights}
        dataset = _write_labels(
            data_dir / "digits-labels.jsonl", d, answers, accuracy, addr, chain, market, task
        )
        labels_rec = reg.register_dataset(dataset.path, LABELS_REF, requester, format="jsonl")
        settle_index = _log_settlement(reg, requester, chain, market, task, report_rows)
        model_dir = _train(d, dataset.labels, workdir / "models" / "digits-classifier-1")
        reg.register_model(
            model_dir, MODEL_REF, requester, datasets=[LABELS_REF], code_revision="demo"
        )
        tree = lineage(reg, MODEL_REF)
        _verify_provenance(
            claims,
            reg,
            tree,
            labels_rec.log_index,
            dataset,
            addr,
            weights,
            settle_index,
            report_rows,
        )
        say(
            f"aggregated labels ({dataset.agreement:.1%} match the true digits) registered as "
            f"{LABELS_REF} (log entry {labels_rec.log_index}), each record naming its labelers "
            f"and their accuracy; {MODEL_REF}'s lineage reaches them"
        )
        say(f"{claims.checked} claims read back from the chain and the log: all hold")
        return {
            "task": task,
            "chain_id": chain.chain_id,
            "market": market.address,
            "stake_manager": stakes.address,
            "token": token.address,
            "pool": POOL,
            "min_stake": MIN_STAKE,
            "threshold_bps": THRESHOLD_BPS,
            "labelers": [{k: v for k, v in r.items() if k != "line"} for r in report_rows],
            "remainder_to_requester": remainder,
            "settlement_log_index": settle_index,
            "labels_dataset": {"ref": str(LABELS_REF), "log_index": labels_rec.log_index},
            "model": str(MODEL_REF),
            "claims_checked": claims.checked,
        }


def _b32(value: Any) -> bytes:
    """A bytes32 event argument (hex text or bytes) as bytes."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return bytes.fromhex(str(value).removeprefix("0x"))


def _expected(scored: dict[str, int]) -> dict[str, str]:
    out = {}
    for name in LABELERS:
        if name not in scored:
            out[name] = "late"
        elif scored[name] * 10_000 < THRESHOLD_BPS * GOLD:
            out[name] = "low-accuracy"
        else:
            out[name] = "paid"
    return out


def _verify_settlement(
    claims: Claims,
    chain: Chain,
    market: LabelingMarket,
    stakes: StakeManager,
    task: int,
    tx_hash: str,
    addr: dict[str, str],
    outcome: dict[str, str],
    rewards: dict[str, int],
    remainder: int,
    requester: Secp256k1Signer,
    scored: dict[str, int],
) -> list[dict[str, Any]]:
    """Read the settlement back from the chain's events and state; one row per labeler."""
    slashed = {
        checksum_address(str(e.args["labeler"])): e
        for e in chain.events(market.contract, "LabelerSlashed")
        if int(e.args["taskId"]) == task
    }
    manager = {
        _b32(e.args["faultId"]): e
        for e in chain.events(stakes.contract, "Slashed")
        if e.tx_hash == tx_hash
    }
    paid = {
        checksum_address(str(e.args["labeler"])): e
        for e in chain.events(market.contract, "LabelerPaid")
        if int(e.args["taskId"]) == task
    }
    rows = []
    token = market.task(task).token
    for name in LABELERS:
        a = addr[name]
        want = outcome[name]
        stake = stakes.stake_of(a, token)
        row: dict[str, Any] = {"name": name, "address": a, "outcome": want}
        if name in scored:
            row["correct"] = scored[name]
            row["gold"] = GOLD
        if want == "paid":
            e = paid.get(a)
            claims.check(
                e is not None and int(e.args["reward"]) == rewards[name] and a not in slashed,
                f"{name} was paid {rewards[name]} (pro rata to {scored[name]} correct) and not "
                "slashed",
            )
            claims.check(
                stake.locked == 0 and stake.slashed == 0 and market.owed(a, token) == rewards[name],
                f"{name}'s stake was unlocked in full and its reward is owed to it",
            )
            row["reward"] = rewards[name]
            row["line"] = (
                f"PAID    {name:<10} {scored[name]}/{GOLD} gold correct: "
                f"{rewards[name] / UNIT:.4f} CON, stake back"
            )
        else:
            reason = LATE if want == "late" else LOW_ACCURACY
            e = slashed.get(a)
            fault = market.fault_id(task, a, reason)
            m = manager.get(fault)
            claims.check(
                e is not None
                and int(e.args["reasonCode"]) == reason
                and _b32(e.args["faultId"]) == fault
                and m is not None
                and checksum_address(str(m.args["participant"])) == a
                and int(m.args["amount"]) == MIN_STAKE
                and _b32(m.args["evidenceHash"]) == _b32(e.args["evidenceHash"])
                and a not in paid,
                f"{name} was slashed {MIN_STAKE} by the market (judge), reason {reason}",
            )
            claims.check(
                stake.slashed == MIN_STAKE and stake.locked == 0 and market.owed(a, token) == 0,
                f"{name}'s stake shows the slash and it is owed nothing",
            )
            assert e is not None
            row.update(
                reason_code=reason,
                fault_id="0x" + fault.hex(),
                evidence_hash="0x" + _b32(e.args["evidenceHash"]).hex(),
                slashed=MIN_STAKE,
            )
            why = REASONS[reason]
            if name in scored:
                why += f" ({scored[name]}/{GOLD} < {THRESHOLD_BPS / 100:g}%)"
            row["line"] = f"SLASHED {name:<10} {MIN_STAKE // UNIT} CON: {why}"
        rows.append(row)
    claims.check(
        market.owed(checksum_address(requester.address), token) == remainder,
        f"the rounding remainder ({remainder} wei) is owed to the requester",
    )
    return rows


@dataclass
class _Labels:
    path: Path
    labels: list[int]
    provenance: dict[int, list[dict[str, Any]]]
    agreement: float


def _write_labels(
    path: Path,
    d: _Digits,
    answers: dict[str, bytes],
    accuracy: dict[str, float],
    addr: dict[str, str],
    chain: Chain,
    market: LabelingMarket,
    task: int,
) -> _Labels:
    """One JSONL record per image: the aggregated label and who gave it (with accuracy)."""
    voted = aggregate({n: answers[n] for n in accuracy}, accuracy, BATCH)
    provenance: dict[int, list[dict[str, Any]]] = {}
    with path.open("w", encoding="utf-8") as fh:
        for rec, pixels in zip(voted, d.batch_x, strict=True):
            who = [{"labeler": addr[n], "accuracy": round(accuracy[n], 4)} for n in rec.labelers]
            provenance[rec.item] = who
            doc = {
                "item": rec.item,
                "pixels": [int(p) for p in pixels],
                "label": rec.label,
                "labelers": who,
                "task": {"chain_id": chain.chain_id, "market": market.address, "id": task},
            }
            fh.write(json.dumps(doc, sort_keys=True) + "\n")
    labels = [r.label for r in voted]
    agreement = sum(a == b for a, b in zip(labels, d.batch_y, strict=True)) / BATCH
    return _Labels(path, labels, provenance, agreement)


def _train(d: _Digits, labels: list[int], directory: Path) -> Path:
    import pickle

    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):
        model = LogisticRegression(max_iter=2_000).fit(d.batch_x, labels)
    directory.mkdir(parents=True)
    (directory / "model.pkl").write_bytes(pickle.dumps(model, protocol=5))
    config = {"estimator": "LogisticRegression", "trained_on": str(LABELS_REF)}
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return directory


def _log_settlement(
    reg: Registry,
    requester: Secp256k1Signer,
    chain: Chain,
    market: LabelingMarket,
    task: int,
    rows: list[dict[str, Any]],
) -> int:
    """A signed statement of the task's outcome in the log (subject: the settlement's digest),
    naming every labeler, its score and its slash's fault id and evidence hash."""
    from ailedger.attest import statements
    from ailedger.markets.labeling import SettlementPredicate

    info = market.task(task)
    predicate = SettlementPredicate(
        chain_id=chain.chain_id,
        market=market.address,
        task_id=task,
        batch_root=info.batch_root.hex(),
        gold_root=info.gold_root.hex(),
        gold_digest=info.gold_digest.hex(),
        # amounts as decimal text: RFC 8785 JSON numbers stop at 2**53
        labelers=[
            {k: str(v) if k in ("reward", "slashed") else v for k, v in r.items() if k != "line"}
            for r in rows
        ],
    )
    digest = hashlib.sha256(json.dumps(predicate.to_dict(), sort_keys=True).encode()).hexdigest()
    envelope = statements.attest(
        predicate,
        [statements.subject_from_digest(f"sha256:{digest}", f"labeling-task-{task}")],
        [requester],
    )
    return reg.log.append(envelope.to_json())


def _verify_provenance(
    claims: Claims,
    reg: Registry,
    tree: Any,
    labels_index: int,
    dataset: _Labels,
    addr: dict[str, str],
    weights: dict[str, int],
    settle_index: int,
    rows: list[dict[str, Any]],
) -> None:
    from ailedger.attest import dsse

    fp = fingerprint_dataset(dataset.path, secret=None, format="jsonl")
    registered = [str(r) for ds in tree.datasets for r in ds["registered_as"]]
    claims.check(
        str(LABELS_REF) in registered
        and any(
            ds["root"] == fp.root.hex() and ds["log_index"] == labels_index for ds in tree.datasets
        ),
        f"{MODEL_REF}'s lineage reaches {LABELS_REF} (log entry {labels_index}) by its root",
    )
    paid = {addr[n] for n in weights}
    seen = {p["labeler"] for who in dataset.provenance.values() for p in who}
    claims.check(
        seen <= paid and bool(seen),
        "every record's provenance names only paid labelers (none slashed)",
    )
    envelope = dsse.Envelope.from_json(reg.log.get(settle_index).envelope)
    logged = Statement.from_json(envelope.payload).predicate
    by_addr = {r["address"]: r for r in logged["labelers"]}
    claims.check(
        all(
            by_addr[r["address"]].get("fault_id") == r.get("fault_id")
            and by_addr[r["address"]]["outcome"] == r["outcome"]
            for r in rows
        ),
        f"the settlement statement in the log (entry {settle_index}) names every labeler's "
        "outcome and fault id as the chain does",
    )
