"""``ailedger oracle challenge`` on the embedded chain: a lying oracle's observation in a
logged round is slashed (prover's share rounded down, the rest to the treasury); an honest
oracle, a second challenge, an entry that is not a report and an oracle that did not observe
are refused with one line and their documented exit codes. ``chain deploy`` proposes its
OracleJudge to its StakeManager."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

import ailedger.cli._chain
import ailedger.cli._oracle  # noqa: F401  (importing registers the commands)
from _cli import PASSWORD, fails, ok
from _log_util import ALICE
from _workflow_util import NewWorkspace
from ailedger.attest.predicates import DatasetPredicate
from ailedger.attest.statements import Subject, make_statement, sign_statement
from ailedger.chain.backends import open_workspace_chain
from ailedger.chain.oracle_judge import (
    DEFAULT_PROVER_BPS,
    FeedTerms,
    OracleJudge,
    deploy_oracle_judge,
)
from ailedger.chain.oracle_report import report_hash
from ailedger.chain.oracles import OracleFeeds
from ailedger.chain.stake import ETHER, StakeManager, deploy_stake_manager
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import open_workspace_log
from ailedger.oracle.round import OracleReportPredicate, report_time
from ailedger.workspace import Workspace

ETH = 10**18
BOB = Secp256k1Signer(bytes.fromhex("78" * 32))
ORACLES = sorted(
    (Secp256k1Signer(bytes([0x40 + i]) * 32) for i in range(4)), key=lambda k: int(k.address, 16)
)
VALUES = [500, 510, 520, 900]  # oracle i observes VALUES[i]; the last one lies
#: The StakeManager's unbonding and governance delays and the challenge window (seconds).
DELAY = 6
SLASH = ETH // 2 + 1  # odd: the prover's half is rounded down


@pytest.fixture
def ws(new_workspace: NewWorkspace, tmp_path: Path) -> Workspace:
    ws, store = new_workspace("example.com/cli-oracle")
    store.add("admin", ALICE, PASSWORD)
    store.add("bob", BOB, PASSWORD)
    return ws


def _round(ws: Workspace) -> tuple[dict[str, str], int, int]:
    """A StakeManager with short delays, OracleFeeds, an OracleJudge proposed at once, four
    staked oracles, round 1 transmitted and its report statement logged: the addresses, the
    log index and when the judge was proposed (wall clock)."""
    alice = ALICE.to_local_account()
    with open_workspace_chain(ws) as chain, open_workspace_log(ws) as log:
        chain.fund(ALICE.address, 100 * ETH)
        chain.fund(BOB.address, ETH)
        stake = StakeManager(
            chain,
            deploy_stake_manager(chain, alice, unbonding_delay=DELAY, governance_delay=DELAY),
        )
        feeds = OracleFeeds(chain, chain.deploy("OracleFeeds", 3600, signer=alice))
        judge = OracleJudge(chain, deploy_oracle_judge(chain, stake.address, feeds.address, alice))
        chain.transact(stake.contract, "proposeJudge", judge.address, 5000, signer=alice)
        proposed = time.time()
        for oracle in ORACLES:
            chain.fund(oracle.address, 2 * ETH)
            stake.deposit(ETH, signer=oracle.to_local_account())
        fid = feeds.create_feed(
            "drought/cli",
            [k.address for k in ORACLES],
            1,
            (0, 10_000),
            3600,
            transmitters=[ALICE.address],
            signer=alice,
        )
        judge.declare_terms(fid, FeedTerms(ETHER, DELAY, ETH, SLASH, 100), signer=alice)
        # transmit late enough that the window (from acceptance) outlasts the judge's delay
        time.sleep(max(0.0, proposed + DELAY - 1.5 - time.time()))
        stamp = report_time(int(time.time()), chain.block_timestamp(), 3600)
        observed = {k.address: v for k, v in zip(ORACLES, VALUES, strict=True)}
        report = feeds.build_report(fid, 1, observed, b"\x11" * 32, b"\x22" * 32, stamp)
        keys = {k.address: k for k in ORACLES}
        signatures = {a: feeds.sign_observation(report, v, keys[a]) for a, v in observed.items()}
        sigs = [feeds.sign(report, k) for k in ORACLES[:2]]
        receipt = feeds.transmit(report, sigs, signatures, signer=alice)
        roster = feeds.signers(fid)
        observers = [roster[i] for i in report.observers]
        predicate = OracleReportPredicate(
            feed="drought/cli",
            feed_id="0x" + fid.hex(),
            epoch=1,
            answer=report.median,
            observations=list(report.observations),
            observers=observers,
            signers=[k.address for k in ORACLES[:2]],
            signatures=["0x" + s.hex() for s in sigs],
            input_root=report.input_root.hex(),
            model_digest=report.model_digest.hex(),
            observations_timestamp=stamp,
            config_digest="0x" + report.config_digest.hex(),
            config_version=1,
            chain_id=chain.chain_id,
            contract=feeds.address,
            transaction=receipt.tx_hash,
            block=receipt.block_number,
            observation_envelopes=[],
            observation_signatures=["0x" + signatures[o].hex() for o in observers],
            report_hash="0x" + report_hash(report).hex(),
        )
        subject = Subject(name="batch", digest={"sha256": "33" * 32})
        envelope = sign_statement(make_statement([subject], predicate), [ALICE])
        dataset = DatasetPredicate(root="44" * 32, size=1, scheme="rfc9162", format="jsonl")
        log.append(sign_statement(make_statement([subject], dataset), [ALICE]).to_json())
        index = log.append(envelope.to_json())
        addresses = {
            "stake": stake.address,
            "feeds": feeds.address,
            "judge": judge.address,
            "treasury": ALICE.address,
        }
    return addresses, index, int(proposed)


def _mine_after(ws: Workspace, when: float) -> None:
    """Wait until ``when`` and mine a block, so the chain's clock has passed it (the embedded
    chain stamps a block with the time the one before it was mined)."""
    time.sleep(max(0.0, when - time.time()))
    with open_workspace_chain(ws) as chain:
        chain.fund(BOB.address, 1)
        chain.fund(BOB.address, 1)


def test_deploy_proposes_the_oracle_judge(ws: Workspace) -> None:
    doc = ok(["chain", "deploy", "--key", "admin", "--unbonding-delay", "3600"])
    contracts = doc["contracts"]
    with open_workspace_chain(ws) as chain:
        stake = chain.at("StakeManager", contracts["StakeManager"]["address"], track=False)
        judge = contracts["OracleJudge"]["address"]
        active_from, bps = chain.call(stake, "judgeInfo", judge)
        assert active_from > chain.block_timestamp()  # proposed, acting after the delay
        assert bps == DEFAULT_PROVER_BPS
        wired = chain.at("OracleJudge", judge, track=False)
        assert chain.call(wired, "feeds") == contracts["OracleFeeds"]["address"]
        assert chain.call(wired, "stakes") == contracts["StakeManager"]["address"]


def test_challenge_slashes_the_liar_and_refuses_the_rest(ws: Workspace) -> None:
    addresses, index, proposed = _round(ws)
    base = ["oracle", "challenge", "--judge", addresses["judge"], "--contract"]
    base += [addresses["feeds"], "--key", "bob"]
    liar, honest = ORACLES[3].address, ORACLES[0].address
    _mine_after(ws, proposed + DELAY + 1)
    doc = ok([*base, "--log-index", index, "--oracle", liar])
    assert (doc["oracle"], doc["challenger"]) == (liar, BOB.address)
    assert (doc["value"], doc["answer"], doc["deviation"]) == (900, 520, 380)
    assert doc["slashed"] == SLASH
    assert doc["prover_share"] == SLASH * DEFAULT_PROVER_BPS // 10_000 == ETH // 4
    assert doc["prover_share"] + doc["treasury_share"] == SLASH
    with open_workspace_chain(ws) as chain:
        stake = StakeManager(chain, chain.at("StakeManager", addresses["stake"], track=False))
        assert stake.stake_of(liar).slashed == SLASH
        assert stake.owed(BOB.address) == doc["prover_share"]
        assert stake.owed(addresses["treasury"]) == doc["treasury_share"]
    out = fails([*base, "--log-index", index, "--oracle", liar], 9, "AlreadySlashed", "hint:")
    assert len(out.strip().splitlines()) == 2  # one line and its hint
    fails([*base, "--log-index", index, "--oracle", honest], 9, "WithinTolerance", "hint:")
    fails([*base, "--log-index", index, "--oracle", BOB.address], 4, "no observation")
    fails([*base, "--log-index", index - 1, "--oracle", liar], 3, "not an oracle report")
    fails([*base, "--log-index", 999, "--oracle", liar], 4, "no entry 999")
