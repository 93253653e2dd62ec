"""``ailedger demo federated``: federated learning that records, scores and pays each update.

Eight clients on non-IID partitions of scikit-learn's digits (label skew, seeded) train a
softmax regression in a real Flower simulation (``flwr.simulation.run_simulation``, the Ray
engine, no network): five honest clients, a free rider (sends the global model back), a
poisoner (trains on flipped labels) and a noise spammer. Before round 1 the held-out set is
fingerprinted (salted RFC 9162 root), stated in the log by the sponsor and anchored on-chain.
Every update is signed by its client (:class:`~ailedger.fl.SignedClient`) and checked, logged,
scored by leave-one-out on the held-out set and aggregated by FedAvg inside
:class:`~ailedger.fl.LedgerStrategy`, which records each round in a statement the aggregator
signs. Rounds are settled on FLRewards (payouts by positive score, penalties for harmful
updates); in the last round the aggregator, colluding with the free rider, posts a record that
inflates the free rider's score and pays it, and an honest client challenges it within the
window with the verifier set's correction (the scores recomputed from the committed base
model, updates and held-out set): the round is corrected, the aggregator's bond slashed and the
task halted. The final model is fingerprinted and stated with its lineage (every round's entry,
every client, the held-out root) and its privacy accounting, the log is anchored, and the
model's receipt is written and verified offline and against the anchor.

Every figure printed is read back from the log (the signed statements) and checked
(:class:`~ailedger.demos._claims.ClaimFailed`, exit 1, otherwise): the rounds chain from the
initial model to the final one, each round's global model hashes to the digest its statement
names (the accuracy is computed from those parameters), each update entry is signed by its
client, contributions and payouts are summed from the logged scores, and the expectations the
demo states in advance (the model learns, the free rider earns nothing, the poisoner and the
spammer and no one else are penalised) hold.
"""

from __future__ import annotations

import logging
import os
import queue
import secrets
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import JsonValue

from ailedger.attest import dsse, statements
from ailedger.attest.privacy import PrivacyAccountingPredicate
from ailedger.attest.statements import Statement
from ailedger.chain import ContractReverted
from ailedger.chain.fl_rewards import TaskStatus
from ailedger.demos._chain import receipt_checked
from ailedger.demos._claims import ClaimFailed, Claims
from ailedger.demos._fl_clients import (
    BEHAVIOURS,
    ClientFactory,
    accuracy,
    initial_parameters,
    log_likelihood,
    split_digits,
)
from ailedger.demos._fl_settle import (
    BOND,
    STAKE,
    WINDOW,
    Market,
    advance,
    challenge_round,
    inflate,
    open_market,
    scores_root,
    settle_round,
)
from ailedger.demos._steps import DEMO_PASSWORD
from ailedger.demos.crop_insurance import DemoWorld, anchor, demo_world, quiet
from ailedger.fingerprint.dataset import default_secret_path, fingerprint_dataset
from ailedger.fingerprint.model import fingerprint_model
from ailedger.fl import (
    LedgerStrategy,
    PrivacyLedger,
    RoundPredicate,
    RoundRecord,
    Scorer,
    parameters_digest,
    start_ray,
)
from ailedger.fl.update import UpdatePredicate
from ailedger.identity.keys import Keystore, Secp256k1Signer, checksum_address
from ailedger.log import TransparencyLog
from ailedger.log._envelope import check_ethereum_signature
from ailedger.markets.flrewards import PayoutTree
from ailedger.markets.flrewards.heldout import RecordTree, verify_disjoint, verify_preregistered
from ailedger.registry import Registry, VersionRef
from ailedger.registry.lineage import lineage
from ailedger.registry.policy import parse_policy

__all__ = [
    "POOL_PER_ROUND",
    "ROUNDS",
    "TOLERANCE",
    "run_federated",
]

ROUNDS = 10
SEED = 7
ALPHA = 1.0
TASK = "digits-fl-demo"
#: An update whose leave-one-out score is below ``-TOLERANCE`` hurt the held-out
#: log-likelihood: it is left out of the aggregate and counts as a harmful round.
TOLERANCE = 0.01
#: Rewards per round (wei), shared in proportion to positive scores; each harmful round costs
#: a tenth of the client's stake (:mod:`ailedger.demos._fl_settle`).
POOL_PER_ROUND = 10**17
MODEL_DIR = "federated-model"
HELD_OUT_REF = VersionRef("digits-held-out", "1")
MODEL_REF = VersionRef("digits-federated", "1")
MAX_EPSILON = 10.0
PRIVACY_POLICY = f"[all]\nmax_epsilon = {MAX_EPSILON}\n"


def _quiet_flower() -> None:
    """Flower and Ray log every round at INFO; the demo prints its own lines."""
    logging.getLogger("flwr").setLevel(logging.WARNING)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"ray\..*")


def _statement(log: TransparencyLog, index: int, signer: str) -> Statement | None:
    """Entry ``index``'s statement if its envelope is signed by ``signer`` (re-verified)."""
    envelope = dsse.Envelope.from_json(log.get(index).envelope)
    if [s.keyid.lower() for s in envelope.signatures] != [signer.lower()]:
        return None
    check_ethereum_signature(signer.lower(), envelope.pae(), envelope.signatures[0].sig)
    return Statement.from_json(envelope.payload)


def _register_held_out(
    world: DemoWorld, keystore: Keystore, workdir: Path, split_x: Any, split_y: Any
) -> dict[str, Any]:
    """Write the held-out set as CSV and register it as :data:`HELD_OUT_REF` (salted: the
    secret stays beside it, mode 0600), signed by the sponsor."""
    path = workdir / "held-out.csv"
    header = ",".join([f"px{i}" for i in range(split_x.shape[1])] + ["label"])
    rows = [
        ",".join(f"{v:g}" for v in x) + f",{int(y)}" for x, y in zip(split_x, split_y, strict=True)
    ]
    path.write_text(header + "\n" + "\n".join(rows) + "\n")
    secret = secrets.token_bytes(32)
    fd = os.open(default_secret_path(path), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(secret)
    with Registry.open(world.workspace, keys=keystore.list_keys()) as reg:
        rec = reg.register_dataset(
            path, HELD_OUT_REF, world.keys["sponsor"], format="csv", secret=secret
        )
    root = bytes.fromhex(str(rec.predicate["root"]))
    return {
        "root": root,
        "size": int(rec.predicate["size"]),
        "log_index": rec.log_index,
        "path": str(path),
        "secret": secret,
    }


def _record(row: Any, label: Any) -> dict[str, Any]:
    """One example as a JSON record (pixels scaled to [0, 1], the digit)."""
    return {"x": [float(v) for v in row], "y": int(label)}


def _accounting(updates: list[UpdatePredicate]) -> PrivacyAccountingPredicate:
    """The model's privacy accounting, summed from the logged update statements."""
    ledger = PrivacyLedger()
    for update in updates:
        ledger.add(update.client, update.dp)
    accounting = ledger.accounting()
    if accounting is None:
        raise ClaimFailed(
            "no update statement was logged: nothing to account", code="demo-check-failed"
        )
    return accounting


def _contributions(rounds: list[RoundPredicate]) -> tuple[dict[str, float], dict[str, int]]:
    """Per client, from the logged round statements: the summed score, and the harmful rounds
    (score below -TOLERANCE)."""
    total: dict[str, float] = {}
    harmful: dict[str, int] = {}
    for rnd in rounds:
        for c in rnd.clients:
            if c.refused is not None:
                continue
            total[c.client] = total.get(c.client, 0.0) + (c.score or 0.0)
            if c.score is not None and c.score < -TOLERANCE:
                harmful[c.client] = harmful.get(c.client, 0) + 1
    return total, harmful


@dataclass(frozen=True)
class _Challenged:
    inflated: PayoutTree
    report: dict[str, Any]


def _dishonest_last_round(
    world: DemoWorld,
    market: Market,
    honest: RoundPredicate,
    record: RoundRecord,
    scorer: Scorer,
    colluder: str,
    challenger: Secp256k1Signer,
    names: dict[str, str],
    claims: Claims,
    say: Callable[[str], None],
) -> _Challenged:
    """The last round's act: the aggregator, colluding with the free rider, posts a record
    whose scores give the free rider more than the best honest client and pay it; a client
    challenges within the window with the verifier set's correction, recomputed from the
    committed base model, updates and held-out set; the round is corrected, the aggregator's
    bond slashed and the task halted (all read back from the chain)."""
    chain, aggregator = world.chain, world.keys["aggregator"]
    best = max(c.score or 0.0 for c in honest.clients)
    posted = inflate(honest, colluder, 2 * best)
    onchain = settle_round(chain, market, posted, aggregator, world.keys["sponsor"], TOLERANCE)
    inflated = market.payouts[posted.round]
    promised = {p.client.lower(): p.amount for p in inflated.payouts}.get(colluder, 0)
    claims.check(
        market.rewards.round(market.task, posted.round).payout_root == inflated.root
        and promised > 0,
        f"round {posted.round}'s record on-chain pays {names[colluder]} {promised / 10**18:g} ETH",
    )
    say(
        f"round {posted.round}: the aggregator, colluding with {names[colluder]}, posts a record "
        f"scoring it {2 * best:+.4f} (its update is the global model sent back) and paying it "
        f"{promised / 10**18:g} ETH"
    )
    before = market.stakes.stake_of(aggregator.address, market.token.address)
    done = challenge_round(
        chain, market, posted, onchain,
        base=record.base_parameters, updates=record.updates, scorer=scorer,
        challenger=challenger, tolerance=TOLERANCE,
    )  # fmt: skip
    info = market.rewards.round(market.task, posted.round)
    after = market.stakes.stake_of(aggregator.address, market.token.address)
    claims.check(
        info.corrected
        and info.payout_root == done.correction.payout_root
        and info.scores_root == done.correction.scores_root,
        f"round {posted.round} is corrected on-chain to the verifiers' recomputation",
    )
    claims.check(
        info.scores_root == scores_root(honest),
        f"the corrected scores are the ones the strategy logged for round {posted.round}",
    )
    claims.check(
        done.bond_slashed == BOND and after.slashed - before.slashed == BOND,
        f"the aggregator's bond ({BOND // 10**18} CON) was slashed in the StakeManager",
    )
    claims.check(
        market.rewards.task(market.task).status == TaskStatus.HALTED,
        "the task is halted: a proven-dishonest aggregator posts no more rounds",
    )
    owed = market.stakes.owed(challenger.address, market.token.address)
    claims.check(owed > 0, f"{names[challenger.address.lower()]} is owed the prover's share")
    say(
        f"{names[challenger.address.lower()]} challenged within the window: the verifiers "
        f"recomputed the scores from the committed updates and held-out set ({done.finding}); "
        f"{market.terms.threshold} of {len(market.verifiers)} signed the correction; round "
        f"{posted.round} corrected, the aggregator's bond of {done.bond_slashed // 10**18} CON "
        f"slashed ({owed // 10**18} CON to the challenger), the task halted"
    )
    return _Challenged(
        inflated,
        {
            "round": posted.round,
            "colluder": names[colluder],
            "challenger": names[challenger.address.lower()],
            "finding": done.finding,
            "inflated_payout_wei": promised,
            "bond_slashed": done.bond_slashed,
            "challenger_owed": owed,
            "corrected_payout_root": info.payout_root.hex(),
        },
    )


def run_federated(
    workdir: Path,
    rpc: str | None = None,
    *,
    on_step: Callable[[str], None] | None = None,
    rounds: int = ROUNDS,
) -> dict[str, Any]:
    """The whole federated example (module docstring) on the embedded chain, or on the
    development node at ``rpc``; the report as a dict, every claim in it read back and checked
    (:class:`~ailedger.demos._claims.ClaimFailed` otherwise)."""
    from flwr.client import ClientApp
    from flwr.common import Context, ndarrays_to_parameters
    from flwr.server import ServerApp, ServerAppComponents, ServerConfig
    from flwr.server.strategy import FedAvg
    from flwr.simulation import run_simulation

    say = on_step or quiet
    claims = Claims()
    _quiet_flower()
    with demo_world(workdir, "fl.demo/log", ["aggregator", "sponsor", "governor"], rpc) as world:
        keys = world.keys
        say(f"workspace, keys and LogAnchors ready on chain {world.chain.chain_id}")
        split = split_digits(len(BEHAVIOURS), seed=SEED, alpha=ALPHA)
        hx, hy = split.held_out
        keystore = Keystore(world.workspace.keys_dir)
        for role in ("aggregator", "sponsor"):
            keystore.add(role, keys[role], DEMO_PASSWORD, org=role)
        held = _register_held_out(world, keystore, workdir, hx, hy)
        first_anchor = anchor(world)
        say(
            f"held-out set ({held['size']} records) fingerprinted, salted root "
            f"{held['root'].hex()[:16]}… registered as {HELD_OUT_REF} (log entry "
            f"{held['log_index']}) and anchored "
            f"at log size {first_anchor.record.size} before round 1"
        )
        client_keys = [Secp256k1Signer.generate() for _ in BEHAVIOURS]
        addresses = [k.address.lower() for k in client_keys]
        names = {a: f"{b}-{i}" for i, (a, b) in enumerate(zip(addresses, BEHAVIOURS, strict=True))}
        for key in client_keys:
            world.chain.fund(key.address, 10**19)
        initial = initial_parameters()
        # each client's declared training data: a sorted, record-salted tree under its own
        # secret; joining commits its root and size, so it can later prove every held-out
        # record absent from it
        client_secrets = [secrets.token_bytes(32) for _ in BEHAVIOURS]
        trees = [
            RecordTree([_record(row, label) for row, label in zip(x, y, strict=True)], secret)
            for (x, y), secret in zip(split.partitions, client_secrets, strict=True)
        ]
        data_roots = [tree.commitment for tree in trees]
        market = open_market(
            world.chain,
            governor=keys["governor"],
            sponsor=keys["sponsor"],
            aggregator=keys["aggregator"],
            clients=client_keys,
            data_roots=data_roots,
            heldout_root=held["root"],
            initial_model=parameters_digest(initial),
            rounds=rounds,
            round_budget=POOL_PER_ROUND,
            tolerance=TOLERANCE,
        )
        task = market.rewards.task(market.task)
        claims.check(
            task.terms.heldout_root == held["root"] and task.clients == len(client_keys),
            "FLRewards holds the held-out root and all clients joined before round 1",
        )
        say(
            f"FLRewards task {market.task.hex()[:16]}… funded with "
            f"{rounds * POOL_PER_ROUND / 10**18:g} ETH (held-out root pre-registered at block "
            f"{task.created_block}); the aggregator bonded and {task.clients} clients staked "
            f"{STAKE // 10**18} CON each: {', '.join(names.values())}"
        )
        records: list[RoundRecord] = []
        log_path = world.log.path
        server_log: dict[str, TransparencyLog] = {}

        def utility(params: Any) -> float:
            return log_likelihood(params, hx, hy)

        # The ServerApp runs in a thread of its own; the chain connection lives in this one.
        # Each round's record is handed over as the round ends, and posted here while the
        # simulation (in another thread) trains the next round.
        finished: queue.Queue[RoundRecord] = queue.Queue()

        def on_round(record: RoundRecord) -> None:
            records.append(record)
            finished.put(record)
            if record.predicate.round == rounds:  # the last round: close in this thread
                server_log.pop("log").close()

        def server_fn(context: Context) -> ServerAppComponents:
            # The ServerApp runs in a thread of its own: it opens its own connection.
            server_log["log"] = TransparencyLog.open(log_path)
            inner = FedAvg(
                fraction_fit=1.0,
                fraction_evaluate=0.0,
                min_fit_clients=len(addresses),
                min_available_clients=len(addresses),
                initial_parameters=ndarrays_to_parameters(initial),
            )
            strategy = LedgerStrategy(
                inner,
                task=TASK,
                log=server_log["log"],
                aggregator=keys["aggregator"],
                clients=addresses,
                scorer=Scorer(utility, "loo"),
                held_out_root=held["root"],
                drop_below=-TOLERANCE,
                on_round=on_round,
                keep_updates=True,
            )
            return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds))

        factory = ClientFactory(
            split, tuple(k._secret() for k in client_keys), BEHAVIOURS, SEED * 1000
        )
        t0 = time.monotonic()
        attempts = start_ray(2, logging_level=logging.ERROR, log_to_driver=False)
        say(
            f"Flower's simulation engine (Ray) started in {time.monotonic() - t0:.1f} s "
            f"({attempts} attempt{'s' if attempts > 1 else ''}); 8 virtual clients"
        )
        failed: list[BaseException] = []

        def simulate() -> None:
            try:
                run_simulation(
                    ServerApp(server_fn=server_fn),
                    ClientApp(client_fn=factory),
                    num_supernodes=len(addresses),
                    backend_config={
                        "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
                        "init_args": {
                            "num_cpus": 2,
                            "include_dashboard": False,
                            "logging_level": logging.ERROR,
                            "log_to_driver": False,
                        },
                    },
                )
            except BaseException as exc:  # re-raised in the demo's thread
                failed.append(exc)

        # --- settle each round on FLRewards as it ends ---------------------------------------
        sponsor = keys["sponsor"]
        by_behaviour = {b: a for a, b in zip(addresses, BEHAVIOURS, strict=True) if b != "honest"}
        rider = by_behaviour["free-rider"]
        simulation = threading.Thread(target=simulate, name="flower-simulation", daemon=True)
        simulation.start()
        live = 0
        challenge: _Challenged | None = None
        try:
            while len(market.payouts) < rounds:
                try:
                    record = finished.get(timeout=0.5)
                except queue.Empty:
                    if simulation.is_alive():
                        continue
                    break
                rnd = record.predicate
                acc = accuracy(record.global_parameters, hx, hy)
                say(
                    f"round {rnd.round}: accuracy {acc:.3f}; "
                    f"{sum(c.aggregated for c in rnd.clients)} of {len(rnd.clients)} updates "
                    f"aggregated (log entry {record.log_index})"
                )
                if rnd.round < rounds:
                    settle_round(world.chain, market, rnd, keys["aggregator"], sponsor, TOLERANCE)
                    # observed, not claimed: whether the next round was still training
                    training = len(records) == rnd.round and simulation.is_alive()
                    live += training
                    block = market.rewards.round(market.task, rnd.round).posted_block
                    say(
                        f"round {rnd.round}'s record signed by the aggregator and posted to "
                        f"FLRewards at block {block}"
                        + (f" while round {rnd.round + 1} trains" if training else "")
                    )
                else:
                    challenge = _dishonest_last_round(
                        world, market, rnd, record, Scorer(utility, "loo"), rider,
                        client_keys[0], names, claims, say,
                    )  # fmt: skip
        finally:
            simulation.join()
        if failed:
            raise failed[0]
        claims.check(len(records) == rounds, f"the simulation ran {rounds} rounds")
        assert challenge is not None
        say(
            f"{rounds - 1} honest round records posted as their rounds ended, "
            f"{live} of them while the next round was still training"
        )

        # --- read every round back from the log and check it -----------------------------
        aggregator = keys["aggregator"].address
        logged: list[RoundPredicate] = []
        logged_updates: list[UpdatePredicate] = []
        previous = parameters_digest(initial).hex()
        round_rows: list[dict[str, Any]] = []
        for record in records:
            statement = _statement(world.log, record.log_index, aggregator)
            claims.check(statement is not None, f"log entry {record.log_index} is the aggregator's")
            assert statement is not None
            rnd = RoundPredicate.model_validate(statement.predicate)
            claims.check(
                rnd.base_model == previous,
                f"round {rnd.round} starts from the previous round's global model",
            )
            digest = parameters_digest(record.global_parameters).hex()
            claims.check(
                rnd.global_model == digest,
                f"round {rnd.round}'s global model hashes to the logged digest {digest[:16]}…",
            )
            claims.check(
                rnd.held_out_root == held["root"].hex(), "scored on the anchored held-out set"
            )
            for line in rnd.clients:
                if line.log_index is None:
                    continue
                update = _statement(world.log, line.log_index, line.client)
                claims.check(
                    update is not None, f"log entry {line.log_index} is signed by {line.client}"
                )
                assert update is not None
                pred = UpdatePredicate.model_validate(update.predicate)
                logged_updates.append(pred)
                claims.check(
                    (pred.task, pred.round, pred.base_model, pred.update)
                    == (TASK, rnd.round, rnd.base_model, line.update),
                    f"log entry {line.log_index} is {names[line.client]}'s "
                    f"round-{rnd.round} update",
                )
            claims.check(
                market.rewards.round(market.task, rnd.round).scores_root == scores_root(rnd),
                f"round {rnd.round}'s scores root on FLRewards is the logged statement's",
            )
            previous = rnd.global_model
            logged.append(rnd)
            round_rows.append(
                {
                    "round": rnd.round,
                    "accuracy": accuracy(record.global_parameters, hx, hy),
                    "held_out_log_likelihood": rnd.global_utility,
                    "global_model": rnd.global_model,
                    "log_index": record.log_index,
                    "aggregated": [names[c.client] for c in rnd.clients if c.aggregated],
                }
            )

        # --- the records on-chain are the logged statements; claims and slashes ------------
        # the held-out set was fixed before training: the root a verifier recomputes from the
        # set (and its salt secret) is the task's, registered before round 1's record
        recomputed = fingerprint_dataset(Path(held["path"]), secret=held["secret"]).root
        pre = verify_preregistered(market.rewards, market.task, recomputed)
        claims.check(
            pre.created_block < pre.round_one_block,
            f"the held-out root was registered at block {pre.created_block}, before round 1's "
            f"record (block {pre.round_one_block})",
        )
        # and no held-out record is in any client's committed training data
        held_records = [_record(row, label) for row, label in zip(hx, hy, strict=True)]
        for tree, secret, key in zip(trees, client_secrets, client_keys, strict=True):
            committed = market.rewards.client(market.task, key.address).data_root
            proofs = [tree.prove_absent(r) for r in held_records]
            check = verify_disjoint(proofs, held_records, committed, client_secret=secret)
            claims.check(
                check.records == len(held_records) and check.salts_checked,
                f"{names[key.address.lower()]}'s committed training data holds no held-out record",
            )
        say(
            f"held-out root fixed before training (block {pre.created_block} < "
            f"{pre.round_one_block}); {len(held_records) * len(trees)} non-membership proofs: no "
            "held-out record in any client's committed training data"
        )
        advance(world.chain, WINDOW + 1)
        by_address = {k.address.lower(): k for k in client_keys}
        try:  # the free rider tries the payout the dishonest record had promised it
            market.rewards.claim(
                market.task, rounds, challenge.inflated.proof(rider), signer=by_address[rider]
            )
            denied = ""
        except ContractReverted as exc:
            denied = exc.error_name
        claims.check(
            denied == "BadProof",
            f"the free rider cannot claim round {rounds}'s inflated payout any more "
            f"({denied or 'it was paid'})",
        )
        claimed: dict[str, int] = {}
        for number, payout_tree in market.payouts.items():
            for payout in payout_tree.payouts:
                who = payout.client.lower()
                got = market.rewards.claim(
                    market.task, number, payout_tree.proof(payout.client), signer=by_address[who]
                )
                claimed[who] = claimed.get(who, 0) + got
        for number, penalties in market.penalties.items():
            for penalty in penalties.penalties:
                market.rewards.slash_penalised(
                    market.task, number, penalties.proof(penalty.client), signer=sponsor
                )
        contribution, harmful = _contributions(logged)
        infos = {a: market.rewards.client(market.task, a) for a in addresses}
        paid = {a: info.paid for a, info in infos.items()}
        slashed = {a: info.slashed for a, info in infos.items()}
        expected_paid = dict.fromkeys(addresses, 0)
        for payout_tree in market.payouts.values():
            for payout in payout_tree.payouts:
                expected_paid[payout.client.lower()] += payout.amount
        claims.check(
            paid == expected_paid and all(claimed.get(a, 0) == paid[a] for a in addresses),
            "each client was paid on-chain exactly its logged rounds' payouts, claimed with proofs",
        )
        per_round = STAKE // rounds
        claims.check(
            all(slashed[a] == harmful.get(a, 0) * per_round for a in addresses),
            "each client lost exactly its harmful rounds' stake on-chain",
        )
        staked = {a: market.stakes.stake_of(a, market.token.address) for a in addresses}
        claims.check(
            all(staked[a].slashed == slashed[a] for a in addresses),
            "the StakeManager holds the same slashes",
        )
        claims.check(
            market.rewards.pool_left(market.task) == rounds * POOL_PER_ROUND - sum(paid.values()),
            "the pool left is the funded pool less what was paid",
        )
        honest = [a for a, b in zip(addresses, BEHAVIOURS, strict=True) if b == "honest"]
        first, last = round_rows[0]["accuracy"], round_rows[-1]["accuracy"]
        claims.check(last > first and last >= 0.85, f"the model learns: {first:.3f} -> {last:.3f}")
        claims.check(
            contribution.get(rider) == 0.0 and paid[rider] == 0 and slashed[rider] == 0,
            "the free rider's updates are the global model itself: contribution 0, paid 0",
        )
        penalised = sorted(a for a in addresses if slashed[a] > 0)
        claims.check(
            penalised == sorted([by_behaviour["poisoner"], by_behaviour["spammer"]]),
            "the poisoner and the spammer, and no one else, lost stake (harmful rounds: "
            + ", ".join(f"{names[c]} {n}" for c, n in sorted(harmful.items()))
            + ")",
        )
        claims.check(all(paid[a] > 0 for a in honest), "every honest client was paid")
        say(
            f"payouts claimed with Merkle proofs ({sum(paid.values()) / 10**18:g} ETH); "
            f"stake slashed: "
            + ", ".join(f"{names[a]} {slashed[a] / 10**18:g} CON" for a in penalised)
        )

        # --- the final model, its lineage and privacy accounting, the receipt ---------------
        final = records[-1].global_parameters
        model_dir = workdir / MODEL_DIR
        model_dir.mkdir()
        np.save(model_dir / "coef.npy", final[0])
        np.save(model_dir / "intercept.npy", final[1])
        lineage_params: dict[str, JsonValue] = {
            "federated_task": TASK,
            "fl_rewards_task": market.task.hex(),
            "strategy": "FedAvg",
            "scoring": "loo",
            "parameters_digest": parameters_digest(final).hex(),
            "round_log_indices": list[JsonValue]([r.log_index for r in records]),
            "clients": list[JsonValue](addresses),
        }
        accounting = _accounting(logged_updates)
        with Registry.open(world.workspace, keys=keystore.list_keys()) as reg:
            model_rec = reg.register_model(
                model_dir,
                MODEL_REF,
                keys["aggregator"],
                datasets=[HELD_OUT_REF],
                params=lineage_params,
                code_revision="ailedger demo federated",
                team="federated",
            )
            model_index = model_rec.log_index
            digest = str(model_rec.predicate["subject_digest"])
            privacy_env = statements.attest(
                accounting,
                [statements.subject_from_digest(f"sha256:{digest}", str(MODEL_REF))],
                [keys["aggregator"]],
            )
            privacy_index = reg.log.append(privacy_env.to_json())
            model_lineage = lineage(reg, MODEL_REF)
            refused = reg.gate(MODEL_REF, parse_policy(PRIVACY_POLICY), "prod", path=model_dir)
        fp = fingerprint_model(model_dir, tensors=False)
        claims.check(fp.subject_digest.hex() == digest, f"{MODEL_REF} is the model on disk")
        claims.check(
            any(
                ds["root"] == held["root"].hex()
                and str(HELD_OUT_REF) in map(str, ds["registered_as"])
                for ds in model_lineage.datasets
            ),
            f"{MODEL_REF}'s lineage reaches the held-out set {HELD_OUT_REF} by its root",
        )
        claims.check(
            any(item.log_index == privacy_index for item in model_lineage.evaluations),
            f"{MODEL_REF}'s lineage holds its privacy accounting (log entry {privacy_index})",
        )
        unmet = [u.code for u in refused.unmet]
        claims.check(
            unmet == ["privacy-budget-exceeded"],
            f"the gate with max_epsilon refuses {MODEL_REF}: clients trained without DP ({unmet})",
        )
        say(
            f"final model registered as {MODEL_REF} (sha256:{digest[:16]}…, log entry "
            f"{model_index}), its lineage reaching every round, client and {HELD_OUT_REF}; its "
            f"privacy accounting logged (entry {privacy_index}); a policy with max_epsilon = "
            f"{MAX_EPSILON:g} refuses it ({unmet[0]}: no client trained with DP)"
        )
        last_anchor = anchor(world)
        receipt_path = workdir / f"{MODEL_DIR}.receipt.json"
        offline, onchain = receipt_checked(
            world.log, world.workspace, world.anchors, keys["log"], model_index, receipt_path
        )
        refp = fingerprint_model(model_dir, tensors=False).subject_digest.hex()
        claims.check(
            offline.index == model_index and refp == fp.subject_digest.hex(),
            f"the receipt proves log entry {model_index}, the model on disk hashes to its subject",
        )
        say(
            f"receipt {receipt_path.name} verified offline and against anchor "
            f"#{onchain.anchor.index} (log size {onchain.anchor.size}, block "
            f"{onchain.anchor.block_number}); {claims.checked} claims "
            "read back: all hold"
        )
        clients = [
            {
                "name": names[a],
                "behaviour": b,
                "address": checksum_address(a),
                "contribution": contribution.get(a, 0.0),
                "harmful_rounds": harmful.get(a, 0),
                "penalised": a in penalised,
                "earned_wei": paid[a],
                "stake_lost": slashed[a],
            }
            for a, b in zip(addresses, BEHAVIOURS, strict=True)
        ]
        return {
            "demo": "federated",
            "workdir": str(workdir),
            "chain_id": world.chain.chain_id,
            "task": TASK,
            "held_out": {
                "ref": str(HELD_OUT_REF),
                "root": held["root"].hex(),
                "size": held["size"],
                "log_index": held["log_index"],
            },
            "rounds": round_rows,
            "clients": clients,
            "model": {
                "ref": str(MODEL_REF),
                "digest": fp.subject_digest.hex(),
                "log_index": model_index,
                "receipt": str(receipt_path),
                "privacy_log_index": privacy_index,
                "gate_unmet": unmet,
            },
            "tolerance": TOLERANCE,
            "pool_per_round_wei": POOL_PER_ROUND,
            "stake_per_client": STAKE,
            "contracts": {
                "fl_rewards": market.rewards.address,
                "stake_manager": market.stakes.address,
                "token": market.token.address,
            },
            "fl_task": market.task.hex(),
            "challenge": challenge.report,
            "rounds_posted_while_training": live,
            "pool_left_wei": market.rewards.pool_left(market.task),
            "anchors": [first_anchor.to_dict(), last_anchor.to_dict()],
            "claims_checked": claims.checked,
            "log_entries": world.log.size(),
        }
