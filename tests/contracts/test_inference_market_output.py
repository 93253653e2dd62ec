"""InferenceMarket output disputes (issue 16): in an epoch whose verification failed, the
consumer proves one receipt's response wrong with the receipt, its inclusion proof and the
verifiers' threshold signatures over ``Mismatch``; the provider is slashed, the job ends and
the unpaid escrow (the failed epoch's calls included) is refunded.

The attacks that must fail: a Mismatch replayed on another job, chain or contract; a receipt
with a forged counter (or a Mismatch over another counter); a receipt signed by another key;
fewer than the threshold of verifiers; unsorted or duplicated signers; a signer outside the
job's verifier set; a dispute of a passed or unsettled epoch, after the job finished, or twice;
a "mismatch" whose expected response is the receipt's own; a bystander taking the dispute."""

from __future__ import annotations

from typing import Any

from contract_helpers import key
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from inference_helpers import (
    FAILED,
    FINISHED,
    MAX_CALLS,
    PRICE,
    SIGNER,
    SLASHED,
    STAKE,
    VERIFIERS,
    K,
    Market,
    books,
    finish_after_window,
)
from stake_helpers import PROVER_BPS

from _profiles import examples
from ailedger.markets.inference.receipt import market_domain, sign_receipt
from ailedger.markets.inference.settlement import Mismatch, sign_mismatch

EXPECTED = b"\x07" * 32
_U64 = 2**64 - 1
words = st.binary(min_size=32, max_size=32)


def _failed_job(m: Market, calls: int = 30) -> bytes:
    """An active job whose epoch 0 (counters 1..calls) failed its verification."""
    job = m.open()
    m.accept(job)
    m.commit(job, 0, 1, calls)
    m.draw(job, 0)
    m.chain.send(m.settle_call(job, 0, K - 1), m.bystander)
    assert m.epoch(job, 0)["status"] == FAILED
    return job


def _mismatch(m: Market, job: bytes, position: int, expected: bytes = EXPECTED) -> Mismatch:
    r = m.epochs[(job, 0)][position]
    return Mismatch(job, r.counter, r.request_digest, r.response_digest, expected)


def _dispute(
    m: Market,
    job: bytes,
    position: int = 3,
    *,
    epoch: int = 0,
    signers: list[Any] | None = None,
    sigs: list[bytes] | None = None,
    expected: bytes = EXPECTED,
    domain: Any = None,
) -> Any:
    r, sig, proof = m.proof(job, epoch, position)
    if sigs is None:
        receipt = m.epochs[(job, epoch)][position]
        mm = Mismatch(job, receipt.counter, receipt.request_digest, receipt.response_digest,
                      expected)  # fmt: skip
        sigs = sign_mismatch(mm, m.domain if domain is None else domain,
                             VERIFIERS[:2] if signers is None else signers)  # fmt: skip
    return m.f.proveWrongOutput(job, r, sig, proof, expected, sigs)


def test_a_proven_wrong_output_slashes_the_provider_and_refunds(im: Market) -> None:
    m, token = im, im.sm.token.address
    job = _failed_job(m)
    m.commit(job, 1, 31, 20)
    m.chain.send(m.f.approveEpoch(job, 1), m.consumer)  # epoch 1 is paid and stays paid
    treasury_before = m.sm.manager.functions.owed(m.consumer, token).call()
    receipt = m.chain.send(_dispute(m, job), m.consumer)
    (slashed,) = m.chain.events(m.market, "ProviderSlashed", receipt)
    assert slashed["args"]["reasonCode"] == 3 == m.f.REASON_WRONG_OUTPUT().call()
    assert slashed["args"]["slashed"] == STAKE
    assert slashed["args"]["refund"] == (MAX_CALLS - 20) * PRICE
    (proven,) = m.chain.events(m.market, "WrongOutputProven", receipt)
    r = m.epochs[(job, 0)][3]
    assert (proven["args"]["counter"], proven["args"]["responseDigest"]) == (
        r.counter,
        r.response_digest,
    )
    assert proven["args"]["expectedResponseDigest"] == EXPECTED
    assert m.job(job)["status"] == SLASHED
    # the failed epoch's 30 calls and the 50 never committed are refunded; epoch 1 is paid
    assert m.owed(m.consumer) == (MAX_CALLS - 20) * PRICE
    assert m.owed(m.provider) == 20 * PRICE
    prover_share = STAKE * PROVER_BPS // 10_000
    assert m.sm.manager.functions.owed(m.consumer, token).call() - treasury_before == prover_share
    assert m.sm.manager.functions.lockedBy(m.provider, token, m.market.address).call() == 0
    # no double slash, no finish, no more payments
    assert m.chain.revert_reason(_dispute(m, job, 4), m.consumer) == "WrongJobStatus"
    finish_after_window(m)
    assert m.chain.revert_reason(m.f.finish(job), m.provider) == "WrongJobStatus"
    m.chain.send(m.f.claim(token, m.consumer), m.consumer)
    m.chain.send(m.f.claim(token, m.provider), m.provider)
    assert m.f.held(token).call() == 0
    books(m, token)


def test_only_a_failed_epoch_can_be_disputed(im: Market) -> None:
    m = im
    job = m.open()
    m.accept(job)
    m.commit(job, 0, 1, 10)
    # committed (not drawn, not settled): the verifiers' result decides first
    assert m.chain.revert_reason(_dispute(m, job), m.consumer) == "EpochNotFailed"
    m.draw(job, 0)
    m.chain.send(m.settle_call(job, 0, K), m.bystander)  # passed: within the job's threshold
    assert m.chain.revert_reason(_dispute(m, job), m.consumer) == "EpochNotFailed"
    m.commit(job, 2, 11, 10)
    m.chain.send(m.f.approveEpoch(job, 2), m.consumer)  # approved by the consumer itself
    assert m.chain.revert_reason(_dispute(m, job, epoch=2), m.consumer) == "EpochNotFailed"
    # a receipt naming an epoch never committed
    forged = m.receipts(job, 1, 21, 4)
    m.epochs[(job, 1)] = forged
    assert m.chain.revert_reason(_dispute(m, job, 1, epoch=1), m.consumer) == "UnknownEpoch"


def test_a_matching_output_is_no_fault(im: Market) -> None:
    m = im
    job = _failed_job(m)
    own = m.epochs[(job, 0)][3].response_digest
    # the verifiers cannot even sign it (Mismatch refuses equal digests); forge the signatures
    digest = _raw_mismatch_digest(m, job, 3, own)
    sigs = [v.sign_digest(digest) for v in VERIFIERS[:2]]
    assert m.chain.revert_reason(_dispute(m, job, sigs=sigs, expected=own), m.consumer) == (
        "NotAFault"
    )


def _raw_mismatch_digest(m: Market, job: bytes, position: int, expected: bytes) -> bytes:
    r = m.epochs[(job, 0)][position]
    return bytes(
        m.f.mismatchDigest(job, r.counter, r.request_digest, r.response_digest, expected).call()
    )


def test_verifier_signatures_are_checked(im: Market) -> None:
    m = im
    job = _failed_job(m)
    mm = _mismatch(m, job, 3)
    digest = mm.digest(m.domain)
    reason = m.chain.revert_reason
    assert reason(_dispute(m, job, signers=VERIFIERS[:1]), m.consumer) == "TooFewSignatures"
    assert reason(_dispute(m, job, sigs=[]), m.consumer) == "TooFewSignatures"
    a, b = (v.sign_digest(digest) for v in VERIFIERS[:2])
    assert reason(_dispute(m, job, sigs=[b, a]), m.consumer) == "SignersNotSorted"
    assert reason(_dispute(m, job, sigs=[a, a]), m.consumer) == "SignersNotSorted"
    outsider = sorted([VERIFIERS[0], key(999)], key=lambda s: int(s.address, 16))
    assert reason(_dispute(m, job, signers=outsider), m.consumer) == "NotVerifier"
    # the provider's own key is no verifier
    with_provider = sorted([VERIFIERS[0], SIGNER], key=lambda s: int(s.address, 16))
    assert reason(_dispute(m, job, signers=with_provider), m.consumer) == "NotVerifier"
    # signatures over another expected response do not back this one
    other = Mismatch(mm.job, mm.counter, mm.request_digest, mm.response_digest, b"\x08" * 32)
    sigs = sign_mismatch(other, m.domain, VERIFIERS[:2])
    assert reason(_dispute(m, job, sigs=sigs), m.consumer) in ("NotVerifier", "SignersNotSorted")
    malformed = [b"\x00" * 65, b"\x01" * 65]
    assert reason(_dispute(m, job, sigs=malformed), m.consumer) == "BadSignature"
    m.chain.send(_dispute(m, job, signers=VERIFIERS), m.consumer)  # all three: fine
    assert m.job(job)["status"] == SLASHED


def test_a_mismatch_cannot_be_replayed_on_another_job_chain_or_contract(im: Market) -> None:
    m = im
    job = _failed_job(m)
    other = _failed_job(m)
    reason = m.chain.revert_reason
    # the verifiers' Mismatch for the other job's call 4 (same counter, same digests)
    theirs = sign_mismatch(_mismatch(m, other, 3), m.domain, VERIFIERS[:2])
    assert reason(_dispute(m, job, sigs=theirs), m.consumer) in ("NotVerifier", "SignersNotSorted")
    for domain in (market_domain(m.chain.chain_id + 1, m.market.address),
                   market_domain(m.chain.chain_id, m.sm.token.address)):  # fmt: skip
        got = reason(_dispute(m, job, domain=domain), m.consumer)
        assert got in ("NotVerifier", "SignersNotSorted")
    # the other job's receipt with its own valid Mismatch is refused for this job
    r, sig, proof = m.proof(other, 0, 3)
    assert (
        reason(m.f.proveWrongOutput(job, r, sig, proof, EXPECTED, theirs), m.consumer)
        == "ReceiptForOtherJob"
    )
    m.chain.send(_dispute(m, other), m.consumer)  # where it belongs it holds
    assert (m.job(other)["status"], m.job(job)["status"]) == (SLASHED, 2)


def test_forged_receipts_and_counters_are_refused(im: Market) -> None:
    m = im
    job = _failed_job(m)
    reason = m.chain.revert_reason
    r, sig, proof = m.proof(job, 0, 3)
    real = m.epochs[(job, 0)][3]
    # the consumer changes the counter (to one the verifiers signed a Mismatch for): the
    # provider's signature no longer recovers
    forged = list(r)
    forged[1] = real.counter + 1
    mm = Mismatch(job, real.counter + 1, real.request_digest, real.response_digest, EXPECTED)
    sigs = sign_mismatch(mm, m.domain, VERIFIERS[:2])
    call = m.f.proveWrongOutput(job, tuple(forged), sig, proof, EXPECTED, sigs)
    assert reason(call, m.consumer) == "WrongSigner"
    # the real receipt with a Mismatch over another counter
    call = m.f.proveWrongOutput(job, r, sig, proof, EXPECTED, sigs)
    assert reason(call, m.consumer) in ("NotVerifier", "SignersNotSorted")
    # a receipt signed by someone other than the job's receipt signer
    alien = sign_receipt(real, m.domain, key(998))
    good = sign_mismatch(_mismatch(m, job, 3), m.domain, VERIFIERS[:2])
    call = m.f.proveWrongOutput(job, r, alien, proof, EXPECTED, good)
    assert reason(call, m.consumer) == "WrongSigner"
    # a receipt the committed root does not hold (a wrong proof)
    call = m.f.proveWrongOutput(job, r, sig, proof[:-1], EXPECTED, good)
    assert reason(call, m.consumer) == "BadProof"
    moved = list(r)
    moved[9] = 4  # another position: another digest, the signature fails first
    call = m.f.proveWrongOutput(job, tuple(moved), sig, proof, EXPECTED, good)
    assert reason(call, m.consumer) == "WrongSigner"


def test_only_the_consumer_disputes_and_only_while_the_job_runs(im: Market) -> None:
    m = im
    job = _failed_job(m)
    reason = m.chain.revert_reason
    assert reason(_dispute(m, job), m.bystander) == "NotConsumer"
    assert reason(_dispute(m, job), m.provider) == "NotConsumer"
    finish_after_window(m)
    paid, refund = 0, MAX_CALLS * PRICE
    receipt = m.chain.send(m.f.finish(job), m.provider)
    (event,) = m.chain.events(m.market, "JobFinished", receipt)
    assert (event["args"]["paid"], event["args"]["refund"]) == (paid, refund)
    assert m.job(job)["status"] == FINISHED
    assert reason(_dispute(m, job), m.consumer) == "WrongJobStatus"
    assert reason(m.f.proveWrongOutput(b"\x01" * 32, *_args(m, job)), m.consumer) == "UnknownJob"


def _args(m: Market, job: bytes) -> tuple[Any, ...]:
    r, sig, proof = m.proof(job, 0, 3)
    sigs = sign_mismatch(_mismatch(m, job, 3), m.domain, VERIFIERS[:2])
    return r, sig, proof, EXPECTED, sigs


@settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(job=words, counter=st.integers(0, _U64), req=words, resp=words, expected=words)
def test_mismatch_digest_matches_python(
    im: Market, job: bytes, counter: int, req: bytes, resp: bytes, expected: bytes
) -> None:
    assume(resp != expected)
    onchain = bytes(im.f.mismatchDigest(job, counter, req, resp, expected).call())
    assert onchain == Mismatch(job, counter, req, resp, expected).digest(im.domain)
