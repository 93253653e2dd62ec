"""Accountable oracles in the crop-insurance demo (issue 15 item 4): every oracle stakes, the
feeds declare their terms with OracleJudge, a payout needs a feed whose oracles are all
staked (the policies name the judge, and ParametricEscrow itself refuses to pay otherwise:
:func:`refused_while_unstaked` shows it once), and a watcher challenges the lying oracle's
observation, which slashes it.

The slash is then read back from the chain and the log (:func:`verify_slash`): the
StakeManager's Slashed event and books (the liar's stake, the watcher's and the treasury's
shares, their sum, the prover's basis points rounded down), the judge's ObservationChallenged
event, and the evidence hash recomputed from the round's report statement in the log (the
observation signatures it carries, the report hash OracleFeeds stored); any claim that does
not hold raises :class:`~ailedger.demos._claims.ClaimFailed`.

The delays are short so that the demo runs in seconds: the StakeManager's unbonding and
governance delay and the challenge window are :data:`DELAY` seconds (a real deployment uses
days); the judge is registered at the start and acts once the governance delay has passed.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.attest import dsse
from ailedger.attest.statements import Statement
from ailedger.chain import Chain, ContractReverted
from ailedger.chain.eip712 import recover_signer
from ailedger.chain.escrow import ParametricEscrow, PolicyStatus
from ailedger.chain.oracle_judge import (
    DEFAULT_PROVER_BPS,
    REASON_OUT_OF_TOLERANCE,
    Challenge,
    FeedTerms,
    OracleJudge,
    deploy_oracle_judge,
    fault_id,
)
from ailedger.chain.oracle_report import (
    OracleReport,
    observation_digest,
    oracle_domain,
    report_hash,
)
from ailedger.chain.oracles import OracleFeeds
from ailedger.chain.stake import ETHER, StakeManager, deploy_stake_manager
from ailedger.demos._claims import Claims
from ailedger.errors import NodeUnavailable
from ailedger.identity.keys import Secp256k1Signer, checksum_address
from ailedger.log import TransparencyLog
from ailedger.oracle.round import RoundResult

__all__ = [
    "DELAY",
    "MIN_STAKE",
    "SLASH",
    "TOLERANCE",
    "Accountability",
    "challenge_liar",
    "refused_while_unstaked",
    "set_up_accountability",
    "verify_slash",
    "wait_for_judge",
]

#: Seconds: the StakeManager's unbonding and governance delays and the challenge window.
DELAY = 20
#: Each oracle stakes this (wei), and a fault costs all of it.
MIN_STAKE = 10**18
SLASH = MIN_STAKE
#: The largest distance (basis points) from the median that is not a fault.
TOLERANCE = 500


@dataclass
class Accountability:
    """The StakeManager, the judge and the roles around them."""

    stake: StakeManager
    judge: OracleJudge
    terms: FeedTerms
    governor: Secp256k1Signer
    treasury: str
    watcher: Secp256k1Signer


def set_up_accountability(
    chain: Chain,
    feeds: OracleFeeds,
    feed_ids: Sequence[bytes],
    oracles: Sequence[Secp256k1Signer],
    keys: dict[str, Secp256k1Signer],
) -> Accountability:
    """Deploy a StakeManager (``keys["governor"]`` governs, ``keys["treasury"]`` is the
    treasury) and an OracleJudge over ``feeds``, propose the judge (it acts after the
    governance delay), stake MIN_STAKE for every oracle and declare every feed's terms (the
    feeds' creator is ``keys["leader"]``)."""
    governor = keys["governor"].to_local_account()
    treasury = checksum_address(keys["treasury"].address)
    stake = StakeManager(
        chain,
        deploy_stake_manager(
            chain, governor, treasury=treasury, unbonding_delay=DELAY, governance_delay=DELAY
        ),
    )
    judge = OracleJudge(chain, deploy_oracle_judge(chain, stake.address, feeds.address, governor))
    chain.transact(
        stake.contract, "proposeJudge", judge.address, DEFAULT_PROVER_BPS, signer=governor
    )
    for oracle in oracles:
        chain.fund(oracle.address, MIN_STAKE + 10**17)
        stake.deposit(MIN_STAKE, signer=oracle.to_local_account())
    terms = FeedTerms(ETHER, DELAY, MIN_STAKE, SLASH, TOLERANCE)
    leader = keys["leader"].to_local_account()
    for fid in feed_ids:
        judge.declare_terms(fid, terms, signer=leader)
    return Accountability(stake, judge, terms, keys["governor"], treasury, keys["watcher"])


def wait_for_judge(chain: Chain, acc: Accountability, say: Callable[[str], None]) -> None:
    """Block until the judge's registration is in effect (a new block is mined each second
    so the chain's clock moves); at most DELAY + 30 seconds."""
    deadline = time.monotonic() + DELAY + 30
    waited = False
    while not acc.stake.is_judge(acc.judge.address):
        if time.monotonic() > deadline:
            raise NodeUnavailable(f"the judge {acc.judge.address} did not become active")
        if not waited:
            say(f"waiting for the judge's registration to take effect ({DELAY} s delay)")
            waited = True
        time.sleep(1)
        chain.fund(acc.watcher.address, 1)  # mines a block


def refused_while_unstaked(
    claims: Claims,
    chain: Chain,
    escrow: ParametricEscrow,
    acc: Accountability,
    oracle: Secp256k1Signer,
    policy_id: int,
    epoch: int,
    settler: Secp256k1Signer,
) -> dict[str, Any]:
    """Show the escrow's own refusal: ``oracle`` starts unbonding its whole stake, a settle of
    the triggered policy ``policy_id`` on round ``epoch`` reverts FeedNotAccountable (read
    back: the policy is still active, its holder owed nothing), then the oracle stakes again
    and the feed is accountable once more. The record for the demo's report."""
    info = escrow.policy(policy_id)
    assert info is not None  # written by the demo
    key = oracle.to_local_account()
    acc.stake.request_withdrawal(MIN_STAKE, signer=key)
    claims.check(
        not acc.judge.feed_accountable(info.feed_id),
        f"with {oracle.address} unbonding, the judge holds the feed unaccountable",
    )
    error = ""
    try:
        escrow.settle(policy_id, epoch, signer=settler.to_local_account())
    except ContractReverted as exc:
        error = exc.error_name
    after = escrow.policy(policy_id)
    claims.check(
        error == "FeedNotAccountable"
        and after is not None
        and after.status == PolicyStatus.ACTIVE
        and escrow.claimable(info.holder) == 0,
        f"ParametricEscrow refused to settle policy {policy_id} on epoch {epoch} "
        f"({error or 'no revert'}): still active, nothing credited",
    )
    chain.fund(oracle.address, MIN_STAKE)
    acc.stake.deposit(MIN_STAKE, signer=key)
    claims.check(
        acc.judge.feed_accountable(info.feed_id),
        f"{oracle.address} staked again: the feed is accountable",
    )
    return {
        "policy_id": policy_id,
        "epoch": epoch,
        "oracle": checksum_address(oracle.address),
        "judge": acc.judge.address,
        "error": error,
        "policy_status_after": after.status.name.lower() if after else None,
        "restaked": True,
    }


def challenge_liar(
    feeds: OracleFeeds, acc: Accountability, result: RoundResult, liar: str
) -> Challenge:
    """The watcher challenges ``liar``'s observation in the round ``result``."""
    roster = [checksum_address(s) for s in feeds.signers(result.report.feed_id)]
    position = list(result.report.observers).index(roster.index(checksum_address(liar)))
    signature = result.observation_signatures[checksum_address(liar)]
    return acc.judge.challenge(
        result.report, position, signature, signer=acc.watcher.to_local_account()
    )


def _logged_report(log: TransparencyLog, index: int) -> dict[str, Any]:
    envelope = dsse.Envelope.from_json(log.get(index).envelope)
    return dict(Statement.from_json(envelope.payload).predicate)


def verify_slash(
    claims: Claims,
    chain: Chain,
    feeds: OracleFeeds,
    acc: Accountability,
    challenge: Challenge,
    liar: str,
    log: TransparencyLog,
    report_index: int,
) -> dict[str, Any]:
    """Read the slash back from the chain and the log (module docstring); the demo's record."""
    liar = checksum_address(liar)
    watcher = checksum_address(acc.watcher.address)
    events = [
        e
        for e in chain.events(acc.stake.contract, "Slashed")
        if checksum_address(str(e.args["participant"])) == liar
    ]
    claims.check(len(events) == 1, f"the StakeManager slashed {liar} once")
    args = events[0].args
    amount, prover_share = int(args["amount"]), int(args["proverShare"])
    treasury_share = int(args["treasuryShare"])
    claims.check(
        (checksum_address(str(args["judge"])), checksum_address(str(args["prover"])))
        == (checksum_address(acc.judge.address), watcher),
        "the slash was made by the registered judge, for the watcher as prover",
    )
    claims.check(
        int(args["reasonCode"]) == REASON_OUT_OF_TOLERANCE,
        "the slash's reason is an observation out of tolerance",
    )
    claims.check(
        amount == challenge.slashed == SLASH
        and prover_share == amount * DEFAULT_PROVER_BPS // 10_000
        and prover_share + treasury_share == amount,
        f"{amount} wei slashed: {prover_share} to the prover "
        f"({DEFAULT_PROVER_BPS} bp, rounded down), {treasury_share} to the treasury",
    )
    info = acc.stake.stake_of(liar)
    claims.check(
        info.slashed == amount and info.free == MIN_STAKE - amount and info.balanced,
        f"{liar}'s stake shows the slash and balances",
    )
    claims.check(
        acc.stake.owed(watcher) == prover_share and acc.stake.owed(acc.treasury) == treasury_share,
        "the watcher and the treasury are owed their shares (pull payments)",
    )
    fid, epoch = challenge.feed_id, challenge.epoch
    claims.check(
        _hex(args["faultId"]) == fault_id(fid, epoch, liar).hex(),
        "the fault id is (feed, epoch, oracle)",
    )
    # The evidence, from the log alone: the round's report statement rebuilds the report the
    # chain stored, and the liar's signature in it is over the evidence hash.
    logged = _logged_report(log, report_index)
    roster = [checksum_address(s) for s in feeds.signers(fid)]
    report = OracleReport(
        bytes.fromhex(str(logged["feed_id"]).removeprefix("0x")),
        bytes.fromhex(str(logged["config_digest"]).removeprefix("0x")),
        int(logged["epoch"]),
        tuple(int(v) for v in logged["observations"]),
        bytes(roster.index(checksum_address(o)) for o in logged["observers"]),
        bytes.fromhex(str(logged["input_root"])),
        bytes.fromhex(str(logged["model_digest"])),
        int(logged["observations_timestamp"]),
    )
    stored, _accepted_at = feeds.accepted_report(fid, epoch)
    claims.check(
        report_hash(report)[:24] == stored
        and report_hash(report) == bytes.fromhex(str(logged["report_hash"])[2:]),
        f"the logged report of epoch {epoch} is the one OracleFeeds stored",
    )
    position = [checksum_address(o) for o in logged["observers"]].index(liar)
    value = report.observations[position]
    evidence = observation_digest(oracle_domain(chain.chain_id, feeds.address), report, value)
    signature = bytes.fromhex(str(logged["observation_signatures"][position])[2:])
    claims.check(
        _hex(args["evidenceHash"]) == evidence.hex()
        and recover_signer(evidence, signature) == liar,
        "the evidence hash is the liar's own signed observation in the logged report",
    )
    claims.check(
        abs(value - challenge.answer) > acc.terms.tolerance,
        f"the liar's {value} is more than {acc.terms.tolerance} from the median",
    )
    claims.check(
        not acc.judge.is_accountable(fid, liar), f"{liar} is no longer accountable (unstaked)"
    )
    return {
        **challenge.to_dict(),
        "judge": acc.judge.address,
        "stake_manager": acc.stake.address,
        "treasury": acc.treasury,
        "tolerance": acc.terms.tolerance,
        "challenge_window": acc.terms.challenge_window,
        "min_stake": acc.terms.min_stake,
        "liar_stake_after": info.to_dict(),
        "report_log_index": report_index,
        "proven_from_log": True,
    }


def _hex(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    return str(value).lower().removeprefix("0x")
