"""``ailedger demo crop-insurance``: parametric crop insurance paid by oracles, for real.

In a fresh workspace on the embedded chain: a season of weather batches for five farms (two
in drought) is fingerprinted, stated in the log and anchored; a drought model is trained and
fingerprinted; OracleFeeds (one feed per farm, 4 oracles, f=1) and a ParametricEscrow funded
by an insurer (one policy per farm: pays when the drought score is above the threshold) are
deployed; four oracle node processes (the last one lying by a large amount) score every batch;
the demo process leads each round, settles triggered policies, and the farmers withdraw.
The report traces every payout to the batch root, the model digest and the signers.

The oracles are accountable (:mod:`ailedger.demos._oracle_stakes`): each stakes in a
StakeManager before the season, every feed declares its terms with an OracleJudge, every
policy names the judge, so that ParametricEscrow itself refuses to pay on a feed whose oracles
are not all staked (shown once: an honest oracle starts unbonding, a settle reverts
FeedNotAccountable, the oracle stakes again, the settle goes through), and after the season a
watcher challenges the lying oracle's signed observation in the last round: the judge slashes
its stake, split between the watcher and the treasury, and the slash is read back from the
chain and the log.

The node processes are ``python -m ailedger.demos.crop_insurance node`` (each serves every feed
with one
key, handed over through a pipe on standard input); they are stopped by PID, also on error. The
shared parts (workspace, log, anchoring, nodes) are used by :mod:`ailedger.demos.safety_bonus` too.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ailedger.attest import statements
from ailedger.attest.predicates import DatasetPredicate, ModelPredicate, TrainingMetadata
from ailedger.chain import Chain, DeployedContract, LogAnchors
from ailedger.chain.anchoring import ANCHORS_FILE, AnchorBook, AnchorResult, anchor_checkpoint
from ailedger.chain.backends import open_workspace_chain
from ailedger.chain.deployments import (
    DEPLOYMENTS_FILE,
    ContractRecord,
    DeploymentBook,
    deploy_contracts,
)
from ailedger.chain.escrow import ParametricEscrow, PolicyStatus, Totals, Trigger
from ailedger.chain.oracle_report import feed_id
from ailedger.chain.oracles import OracleFeeds
from ailedger.demos._claims import (
    Claims,
    RoundExpectation,
    verify_anchor,
    verify_books,
    verify_logged_dataset,
    verify_logged_model,
    verify_policies,
    verify_round,
)
from ailedger.demos._oracle_stakes import (
    DELAY,
    MIN_STAKE,
    challenge_liar,
    refused_while_unstaked,
    set_up_accountability,
    verify_slash,
    wait_for_judge,
)
from ailedger.errors import NodeUnavailable
from ailedger.fingerprint.model import fingerprint_model
from ailedger.identity.keys import Secp256k1Signer, checksum_address
from ailedger.log import TransparencyLog, open_workspace_log
from ailedger.log.checkpoint import Secp256k1NoteKey
from ailedger.oracle.round import run_round
from ailedger.oracle.sensors import DEFAULT_FARMS, Batch, WeatherConfig, write_weather_batches
from ailedger.workspace import Workspace

__all__ = [
    "CONFIG_DELAY",
    "DROUGHT_FARMS",
    "LIE_BY",
    "ORACLES",
    "THRESHOLD",
    "DemoWorld",
    "OracleProcesses",
    "anchor",
    "create_feeds",
    "demo_world",
    "feed_creator",
    "log_dataset",
    "log_model",
    "oracle_processes",
    "quiet",
    "run_crop_insurance",
    "verify_published",
]

ORACLES = 4
#: The scores of the lying oracle (the last one) are off by this much.
LIE_BY = 6000
THRESHOLD = 8000
DROUGHT_FARMS = ("farm-2", "farm-4")
ETHER = 10**18
PAYOUT = 2 * ETHER
#: Seconds between proposing a new oracle set and its taking effect (OracleFeeds).
CONFIG_DELAY = 86400


@dataclass
class DemoWorld:
    """The workspace, its log, the chain, the keys and LogAnchors."""

    workspace: Workspace
    log: TransparencyLog
    chain: Chain
    keys: dict[str, Secp256k1Signer]
    oracles: list[Secp256k1Signer]
    anchors: LogAnchors
    anchored: list[dict[str, Any]] = field(default_factory=list)
    rpc: str | None = None

    @property
    def oracle_addresses(self) -> list[str]:
        return [checksum_address(k.address) for k in self.oracles]

    def deploy(self, name: str, *args: Any, signer: Secp256k1Signer) -> DeployedContract:
        """Deploy ``name`` and record it in the workspace's deployment book, so that what
        reads the workspace later (``serve``, the explorer) finds it there."""
        deployed = self.chain.deploy(name, *args, signer=signer)
        book = DeploymentBook(self.workspace.path / DEPLOYMENTS_FILE)
        deployment = book.require(self.chain.chain_id)
        deployment.contracts[name] = ContractRecord.of(deployed)
        book.put(deployment)
        return deployed


@contextmanager
def demo_world(
    workdir: Path, origin: str, roles: Sequence[str], rpc: str | None = None
) -> Iterator[DemoWorld]:
    """A fresh workspace at ``workdir`` with the embedded chain (or the development node at
    ``rpc``, e.g. anvil), funded keys for ``roles`` (plus ``log``, ``witness`` and
    ``leader``), four oracle keys and LogAnchors deployed."""
    workspace = Workspace.init(workdir, origin=origin)
    keys = {r: Secp256k1Signer.generate() for r in ("log", "witness", "leader", *roles)}
    oracles = sorted(
        (Secp256k1Signer.generate() for _ in range(ORACLES)), key=lambda k: int(k.address, 16)
    )
    opened = open_workspace_chain(workspace, rpc)  # the embedded chain unless --rpc
    with opened as chain, open_workspace_log(workspace) as log:
        for name, key in keys.items():
            if name != "witness":
                chain.fund(key.address, 100 * ETHER)
        deployment = deploy_contracts(chain, keys["log"])
        DeploymentBook(workspace.path / DEPLOYMENTS_FILE).put(deployment)
        anchors = LogAnchors(chain, deployment.open(chain, "LogAnchors"))
        yield DemoWorld(workspace, log, chain, keys, oracles, anchors, rpc=rpc)


def anchor(world: DemoWorld) -> AnchorResult:
    """Checkpoint the whole log with the log key and anchor it, cosigned by the witness."""
    log_key = world.keys["log"]
    world.log.checkpoint(Secp256k1NoteKey.from_signer(world.log.origin, log_key))
    result = anchor_checkpoint(
        world.log,
        world.anchors,
        log_key,
        witness_keys=[world.keys["witness"]],
        book=AnchorBook(world.workspace.path / ANCHORS_FILE),
    )
    world.anchored.append(result.to_dict())
    return result


def log_dataset(world: DemoWorld, batch: Batch, signer: Secp256k1Signer) -> int:
    """Append the batch's dataset statement (its Merkle root) to the log; its index."""
    fp = batch.fingerprint
    predicate = DatasetPredicate(root=fp.root.hex(), size=fp.size, scheme=fp.scheme, format="jsonl")
    envelope = statements.attest(
        predicate,
        [statements.subject_from_digest(f"sha256:{fp.data_sha256}", batch.path.name)],
        [signer],
    )
    return world.log.append(envelope.to_json())


def log_model(world: DemoWorld, model_dir: Path, roots: Sequence[bytes], team: str) -> int:
    fp = fingerprint_model(model_dir, tensors=False)
    training = TrainingMetadata(
        dataset_roots=[r.hex() for r in roots],
        code_revision="demo",
        training_date=datetime.now(UTC),
        team=team,
    )
    envelope = statements.attest(
        ModelPredicate.from_manifest(fp.to_dict(), training),
        [statements.subject_from_digest(f"sha256:{fp.subject_digest.hex()}", model_dir.name)],
        [world.keys["trainer"]],
    )
    return world.log.append(envelope.to_json())


@dataclass
class OracleProcesses:
    """The node processes; ``urls[i][feed]`` is oracle i's endpoint for ``feed``."""

    procs: list[subprocess.Popen[str]]
    urls: list[dict[str, str]]

    def peers(self, feed: str) -> list[str]:
        return [u[feed] for u in self.urls]


@contextmanager
def oracle_processes(
    world: DemoWorld, feeds: Sequence[str], args: Sequence[str], lie_by: int
) -> Iterator[OracleProcesses]:
    """Start one node process per oracle key (the last lies by ``lie_by``); stop each by PID."""
    procs: list[subprocess.Popen[str]] = []
    try:
        for i, key in enumerate(world.oracles):
            lie = str(lie_by if i == ORACLES - 1 else 0)
            cmd = [
                sys.executable,
                "-m",
                "ailedger.demos.crop_insurance",
                "node",
                "--feeds",
                ",".join(feeds),
            ]
            cmd += [*args, "--lie-by", lie]
            proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
            procs.append(proc)
            assert proc.stdin is not None
            # The key goes through a pipe, never argv or the environment (both readable in /proc).
            proc.stdin.write(key._secret().hex() + "\n")
            proc.stdin.close()
        urls = []
        for proc in procs:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line:
                raise NodeUnavailable(f"oracle node process {proc.pid} exited with {proc.wait()}")
            urls.append({str(k): str(v) for k, v in json.loads(line)["urls"].items()})
        yield OracleProcesses(procs, urls)
    finally:
        for proc in procs:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()


def create_feeds(world: DemoWorld, feeds: Sequence[str], bounds: tuple[int, int]) -> OracleFeeds:
    """Deploy OracleFeeds (a new oracle set takes effect after CONFIG_DELAY) and create each
    feed in the leader's namespace, the leader its only transmitter."""
    admin = world.keys["leader"]
    contract = OracleFeeds(world.chain, world.deploy("OracleFeeds", CONFIG_DELAY, signer=admin))
    for name in feeds:
        contract.create_feed(
            name,
            world.oracle_addresses,
            1,
            bounds,
            3600,
            transmitters=[admin.address],
            signer=admin.to_local_account(),
        )
    return contract


def feed_creator(world: DemoWorld) -> str:
    """The account whose namespace holds the demo's feeds (the round leader)."""
    return checksum_address(world.keys["leader"].address)


def quiet(_line: str) -> None:
    """An ``on_step`` that prints nothing."""


def verify_published(
    claims: Claims,
    world: DemoWorld,
    batches: Sequence[Batch],
    dataset_index: dict[bytes, int],
    model_index: int,
    digest: str,
    last_anchor: AnchorResult,
    say: Callable[[str], None],
) -> None:
    """Read back what the demo published: each batch's dataset statement, the model statement,
    and the chain's anchor covering the whole log."""
    for batch in batches:
        verify_logged_dataset(
            claims, world.log, dataset_index[batch.root], batch.root, batch.path.name
        )
    verify_logged_model(claims, world.log, model_index, digest)
    verify_anchor(claims, world.anchors, world.log, last_anchor)
    say(f"{claims.checked} claims read back from the chain and the log: all hold")


def run_crop_insurance(
    workdir: Path, rpc: str | None = None, *, on_step: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """The whole crop insurance example (module docstring) on the embedded chain, or on the
    development node at ``rpc``; the report as a dict, every claim in it read back from the
    chain or the log and checked (:mod:`ailedger.demos._claims`: :class:`ClaimFailed`
    otherwise). ``on_step`` gets one line per step as it happens."""
    from ailedger.oracle.scoring import load_verified, train_drought_model

    say = on_step or quiet
    claims = Claims()
    farms = DEFAULT_FARMS
    roles = ["trainer", "sensors", "insurer", "governor", "treasury", "watcher"]
    with demo_world(workdir, "crop.demo/log", roles, rpc) as world:
        keys = world.keys
        say(f"workspace, keys and LogAnchors ready on chain {world.chain.chain_id}")
        # Feeds and stakes first: the judge's registration takes DELAY seconds to take effect.
        names = {f.farm_id: f"drought/{f.farm_id}" for f in farms}
        feeds = create_feeds(world, list(names.values()), (-10_000, 20_000))
        creator = feed_creator(world)
        feed_ids = {farm_id: feed_id(creator, name) for farm_id, name in names.items()}
        acc = set_up_accountability(
            world.chain, feeds, list(feed_ids.values()), world.oracles, keys
        )
        say(
            f"OracleFeeds ({len(names)} feeds, {ORACLES} oracles, f=1), StakeManager and "
            f"OracleJudge deployed; each oracle staked {_eth(MIN_STAKE)}; each feed declared "
            f"tolerance {acc.terms.tolerance} and a {DELAY} s challenge window"
        )
        cfg = WeatherConfig(drought_farms=DROUGHT_FARMS)
        batches = write_weather_batches(workdir / "batches", farms, cfg, seed=2026)
        dataset_index = {b.root: log_dataset(world, b, keys["sensors"]) for b in batches}
        say(f"{len(batches)} weather batches of {len(farms)} farms fingerprinted and logged")
        model_dir = train_drought_model(workdir / "drought-model", seed=7, seasons=10)
        digest = fingerprint_model(model_dir, tensors=False).subject_digest.hex()
        model_index = log_model(world, model_dir, [], "insurer-risk")
        say(f"drought model trained: sha256:{digest[:16]}… (log entry {model_index})")
        first_anchor = anchor(world)
        say(f"log anchored at size {world.log.size()}")

        # The expectation, computed here without the chain or the nodes: each batch scored by
        # the fingerprinted model; a policy pays on the first epoch above the threshold.
        model = load_verified(model_dir, digest)
        honest = {(b.key, b.epoch + 1): model.score(b.path) for b in batches}
        paid_epochs: dict[str, int | None] = {f.farm_id: None for f in farms}
        for (farm_id, epoch), score in sorted(honest.items(), key=lambda kv: kv[0][1]):
            if score > THRESHOLD and paid_epochs[farm_id] is None:
                paid_epochs[farm_id] = epoch
        expected_paid = sorted(f for f, e in paid_epochs.items() if e is not None)
        claims.check(
            expected_paid == sorted(DROUGHT_FARMS),
            f"the model scores above {THRESHOLD} exactly the farms in drought "
            f"({', '.join(DROUGHT_FARMS)}), not {', '.join(expected_paid) or 'none'}",
        )

        # A policy with a judge is written only on a feed the judge holds accountable.
        wait_for_judge(world.chain, acc, say)
        escrow_c = world.deploy("ParametricEscrow", feeds.address, signer=keys["leader"])
        escrow = ParametricEscrow(world.chain, escrow_c)
        insurer = keys["insurer"].to_local_account()
        pool = escrow.create_pool(PAYOUT * len(farms), signer=insurer)
        farmers = {f.farm_id: Secp256k1Signer.generate() for f in farms}
        now = int(time.time())
        policies = {}
        for farm_id, farmer in farmers.items():
            world.chain.fund(farmer.address, ETHER)
            fid = feed_id(creator, names[farm_id])
            config = feeds.feed(fid)
            assert config is not None  # created just above
            policies[farm_id] = escrow.create_policy(
                pool,
                farmer.address,
                fid,
                config.config_digest,
                Trigger.ABOVE,
                THRESHOLD,
                PAYOUT,
                now - 3600,
                now + 30 * 86400,
                signer=insurer,
                judge=acc.judge.address,
            )
            claims.check(
                escrow.judge_of(policies[farm_id]) == acc.judge.address,
                f"{farm_id}'s policy pays only while the judge holds its feed accountable",
            )
        say(
            f"ParametricEscrow deployed; {len(policies)} policies of {_eth(PAYOUT)} written, "
            "each paying only on a feed whose oracles are all staked"
        )

        args = ["--model-dir", str(model_dir), "--digest", digest, "--feed-creator", creator]
        rounds: list[dict[str, Any]] = []
        liar = world.oracle_addresses[-1]
        last = None
        refusal: dict[str, Any] | None = None
        with oracle_processes(world, list(names.values()), args, LIE_BY) as nodes:
            node_pids = [proc.pid for proc in nodes.procs]
            say(f"{ORACLES} oracle node processes started (the last, {liar}, lies)")
            for batch in batches:
                feed = names[batch.key]
                result = run_round(
                    world.chain,
                    feeds.contract,
                    feed,
                    batch.epoch + 1,
                    batch.path,
                    nodes.peers(feed),
                    model_digest=digest,
                    creator=creator,
                    transmitter=keys["leader"],
                    log=world.log,
                )
                last = result
                expected = RoundExpectation(
                    feed,
                    result.epoch,
                    honest[(batch.key, result.epoch)],
                    batch.root,
                    digest,
                    liar,
                    LIE_BY,
                )
                checked = verify_round(
                    claims, world.chain, feeds, creator, expected, world.log, result.log_indices
                )
                checked.update(
                    farm=batch.key,
                    dataset_log_index=dataset_index[batch.root],
                    left_out=result.failures,
                )
                rounds.append(checked)
                line = (
                    f"{batch.key} epoch {result.epoch}: stored median "
                    f"{checked['stored_answer']} (liar said {checked['lying'][0]})"
                )
                policy = escrow.policy(policies[batch.key])
                active = policy is not None and policy.status == PolicyStatus.ACTIVE
                if checked["stored_answer"] > THRESHOLD and active:
                    if refusal is None:
                        unbonding = world.oracles[0]  # honest; the liar is the last
                        refusal = refused_while_unstaked(
                            claims,
                            world.chain,
                            escrow,
                            acc,
                            unbonding,
                            policies[batch.key],
                            result.epoch,
                            keys["leader"],
                        )
                        say(
                            f"{unbonding.address} started unbonding: settling {batch.key}'s "
                            f"policy reverted {refusal['error']}; it staked again"
                        )
                    escrow.settle(policies[batch.key], result.epoch, signer=keys["leader"])
                    line += f" > {THRESHOLD}: policy settled"
                say(line)
        assert last is not None  # there are batches
        wait_for_judge(world.chain, acc, say)
        challenge = challenge_liar(feeds, acc, last, liar)
        say(
            f"watcher challenged {liar}'s {challenge.value} in {last.feed} epoch "
            f"{challenge.epoch} (median {challenge.answer}, tolerance {acc.terms.tolerance}): "
            f"slashed {_eth(challenge.slashed)} (reason {challenge.reason_code}); watcher "
            f"earns {_eth(challenge.prover_share)}, treasury {_eth(challenge.treasury_share)}"
        )
        for farm_id, farmer in farmers.items():
            if escrow.claimable(farmer.address):
                escrow.withdraw(signer=farmer.to_local_account())
                say(f"{farm_id}'s farmer withdrew")
        last_anchor = anchor(world)
        say(f"log anchored at size {world.log.size()}")

        settled = verify_policies(
            claims,
            world.chain,
            escrow,
            policies,
            {f: k.address for f, k in farmers.items()},
            paid_epochs,
        )
        deposited = PAYOUT * len(farms)
        paid_total = PAYOUT * len(expected_paid)
        totals = verify_books(
            claims, world.chain, escrow, Totals(deposited, paid_total, 0, deposited - paid_total)
        )
        slash = verify_slash(
            claims, world.chain, feeds, acc, challenge, liar, world.log, last.log_indices[-1]
        )
        verify_published(
            claims, world, batches, dataset_index, model_index, digest, last_anchor, say
        )
        farms_out = []
        for farm in farms:
            mine = [r for r in rounds if r["farm"] == farm.farm_id]
            out = settled[farm.farm_id]
            why: dict[str, Any] | None = None
            if out["paid_wei"]:
                epoch = out["policy"]["settled_epoch"]
                why = {
                    **next(r for r in mine if r["epoch"] == epoch),
                    "settle_transaction": out["settle_transaction"],
                    "withdrawn_wei": out["paid_wei"],
                    "withdraw_transaction": out["withdraw_transaction"],
                }
            farms_out.append(
                {
                    "farm": farm.farm_id,
                    "in_drought": farm.farm_id in DROUGHT_FARMS,
                    "farmer": checksum_address(farmers[farm.farm_id].address),
                    "policy": out["policy"],
                    "scores": [r["stored_answer"] for r in mine],
                    "paid_wei": out["paid_wei"],
                    "why": why,
                }
            )
        return {
            "demo": "crop-insurance",
            "workdir": str(workdir),
            "chain_id": world.chain.chain_id,
            "threshold": THRESHOLD,
            "oracles": world.oracle_addresses,
            "lying_oracle": liar,
            "lie_by": LIE_BY,
            "model_digest": digest,
            "model_log_index": model_index,
            "contracts": {
                "feeds": feeds.address,
                "escrow": escrow.address,
                "stake_manager": acc.stake.address,
                "judge": acc.judge.address,
            },
            "slash": slash,
            "refused_while_unstaked": refusal,
            "farms": farms_out,
            "rounds": rounds,
            "paid": sorted(f["farm"] for f in farms_out if f["paid_wei"]),
            "totals": totals.to_dict(),
            "balanced": totals.balanced,
            "claims_checked": claims.checked,
            "anchors": [first_anchor.to_dict(), last_anchor.to_dict()],
            "log_entries": world.log.size(),
            "node_pids": node_pids,
        }


def _eth(wei: int) -> str:
    return f"{wei / ETHER:g} ETH"


# -- the node process ---------------------------------------------------------------------


def _node_main(argv: Sequence[str]) -> None:
    from ailedger.oracle.node import OracleNode, serve

    parser = argparse.ArgumentParser(prog="python -m ailedger.demos.crop_insurance node")
    parser.add_argument("--feeds", required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--digest", required=True)
    parser.add_argument("--feed-creator", required=True)
    parser.add_argument("--lie-by", type=int, default=0)
    parser.add_argument("--incidents", type=float, default=None, help="incident rule threshold")
    ns = parser.parse_args(argv)
    signer = Secp256k1Signer(bytes.fromhex(sys.stdin.readline().strip()))
    servers = {}
    for feed in ns.feeds.split(","):
        node: OracleNode
        if ns.incidents is None:
            node = OracleNode(
                feed, signer, ns.model_dir, ns.digest, creator=ns.feed_creator, lie_by=ns.lie_by
            )
        else:
            from ailedger.oracle.incidents import IncidentNode

            node = IncidentNode(
                feed,
                signer,
                ns.model_dir,
                ns.digest,
                creator=ns.feed_creator,
                lie_by=ns.lie_by,
                threshold=ns.incidents,
            )
        node.check_model()
        servers[feed] = serve(node)
    print(json.dumps({"urls": {f: s.url for f, s in servers.items()}}), flush=True)
    try:
        threading.Event().wait()
    finally:
        for server in servers.values():
            server.stop()


if __name__ == "__main__":
    if sys.argv[1:2] != ["node"]:
        sys.exit(
            "usage: python -m ailedger.demos.crop_insurance node"
            " --feeds A,B --model-dir D --digest X --feed-creator ADDRESS"
        )
    _node_main(sys.argv[2:])
