"""The verifier's pieces without a chain: the checks a revealed call must pass (receipt
signature and job, inclusion under the committed root, the request's digest, the model it
names), re-execution (exact, or within the tolerance a model declares), the reveal and
attestation files (round trips; malformed input is a FormatError, never a crash), and what
settleEpoch and proveWrongOutput take from many attestations (threshold, one vote per
verifier, outsiders and other domains left out)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger import merkle
from ailedger.chain.inference_market import (
    EpochInfo,
    EpochStatus,
    JobInfo,
    JobStatus,
    JobTerms,
)
from ailedger.errors import ConflictError, FormatError, InvalidInput, SignatureInvalid
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.inference import (
    Attestation,
    Reveal,
    RevealedCall,
    Tolerance,
    gather_verification,
    gather_wrong_outputs,
    market_domain,
    model_tolerance,
    request_digest,
    response_digest,
)
from ailedger.markets.inference.attestation import SampleOutcome, SignedMismatch
from ailedger.markets.inference.models import Predictor, VerifiedModel
from ailedger.markets.inference.receipt import Receipt, SignedReceipt, sign_receipt
from ailedger.markets.inference.request import (
    InferenceRequest,
    SignedRequest,
    request_domain,
    sign_request,
)
from ailedger.markets.inference.settlement import (
    Mismatch,
    Verification,
    claim_report,
    hoeffding_confidence,
    sign_mismatch,
    sign_verification,
    zero_failure_confidence,
)
from ailedger.markets.inference.verifier import (
    EpochSample,
    check_call,
    judge_sampled_call,
    within_tolerance,
)

CHAIN = 31337
CONTRACT = "0x" + "cd" * 20
DOMAIN = market_domain(CHAIN, CONTRACT)
PROVIDER = Secp256k1Signer(bytes.fromhex("a7" * 32))
CONSUMER_KEY = Secp256k1Signer(bytes.fromhex("a8" * 32))
CONSUMER = CONSUMER_KEY.address
VERIFIERS = sorted(
    (Secp256k1Signer(bytes.fromhex(f"b{i}" * 32)) for i in range(1, 4)),
    key=lambda s: int(s.address, 16),
)
OUTSIDER = Secp256k1Signer(bytes.fromhex("bf" * 32))
JOB = b"\x4a" * 32
MODEL = b"\x3d" * 32
SEED = b"\x5e" * 32
INPUTS: list[Any] = [[1, 2], [3.5], [0, -1, 7], [10], [2, 2]]


class Doubler(Predictor):
    """The honest model of these tests: each number doubled."""

    kind = "callable"

    def predict(self, value: Any) -> Any:
        if not isinstance(value, list) or not all(isinstance(x, int | float) for x in value):
            raise InvalidInput("rows of numbers only")
        return [2 * x for x in value]


def _signed_request(r: Receipt, key: Secp256k1Signer = CONSUMER_KEY) -> SignedRequest:
    """The consumer's signature over the call ``r`` answers (as its client signs it)."""
    asked = InferenceRequest(
        r.job, PROVIDER.address, r.model_digest, r.request_digest, bytes([r.counter]) * 32, 99
    )
    return sign_request(asked, request_domain(CHAIN, CONTRACT), key)


def _epoch(outputs: list[Any], model: bytes = MODEL) -> tuple[EpochSample, list[RevealedCall]]:
    """An epoch of the job's calls 1..n (the provider answered ``outputs``), committed with
    its root; the calls as the consumer would reveal them."""
    receipts = [
        Receipt(JOB, i + 1, request_digest(v), response_digest(o), model, 5, 1, CONSUMER, 0, i)
        for i, (v, o) in enumerate(zip(INPUTS, outputs, strict=True))
    ]
    digests = [r.digest(DOMAIN) for r in receipts]
    root = merkle.root(digests)
    calls = [
        RevealedCall(
            SignedReceipt(r, DOMAIN, sign_receipt(r, DOMAIN, PROVIDER)),
            INPUTS[i],
            b"",
            outputs[i],
            True,
            tuple(merkle.inclusion_proof(digests, i)),
            _signed_request(r),
        )
        for i, r in enumerate(receipts)
    ]
    terms = JobTerms(
        PROVIDER.address, CONTRACT, CONTRACT, 1, MODEL, 5, 100, 10**10, k=len(INPUTS),
        threshold=2,
    )  # fmt: skip
    job = JobInfo(JOB, terms, CONSUMER, PROVIDER.address, JobStatus.ACTIVE, 5, 0, 0, 0, True)
    info = EpochInfo(EpochStatus.COMMITTED, len(receipts), 1, len(receipts), 7, root, SEED)
    sample = EpochSample(
        CONTRACT, CHAIN, job, 0, info, tuple(range(1, len(receipts) + 1)),
        tuple(v.address for v in VERIFIERS),
    )  # fmt: skip
    return sample, calls


HONEST = [[2 * x for x in v] for v in INPUTS]


def test_a_revealed_call_must_hold_together() -> None:
    sample, calls = _epoch(HONEST)
    assert check_call(calls[0], sample, 1) == ("", "")
    # another counter, no proof, a proof of another position, another request, a forged
    # signature, a receipt of another domain: withheld (counts as failed)
    assert check_call(calls[0], sample, 2)[0] == "withheld"
    c = calls[1]
    assert check_call(RevealedCall(c.receipt, c.input, b"", None, False, None), sample, 2) == (
        "withheld",
        "no inclusion proof was revealed",
    )
    moved = RevealedCall(c.receipt, c.input, b"", None, False, calls[2].proof)
    assert "not at its position" in check_call(moved, sample, 2)[1]
    lied = RevealedCall(c.receipt, [99], b"", None, False, c.proof)
    assert "does not hash" in check_call(lied, sample, 2)[1]
    salted = RevealedCall(c.receipt, c.input, b"\x01" * 32, None, False, c.proof)
    assert "does not hash" in check_call(salted, sample, 2)[1]
    forged = SignedReceipt(c.receipt.receipt, DOMAIN, sign_receipt(c.receipt.receipt, DOMAIN,
                                                                   OUTSIDER))  # fmt: skip
    assert "signed by" in check_call(RevealedCall(forged, c.input, b"", proof=c.proof), sample,
                                     2)[1]  # fmt: skip
    other = market_domain(CHAIN + 1, CONTRACT)
    foreign = SignedReceipt(c.receipt.receipt, other, sign_receipt(c.receipt.receipt, other,
                                                                   PROVIDER))  # fmt: skip
    assert check_call(RevealedCall(foreign, c.input, b"", proof=c.proof), sample, 2)[0] == (
        "withheld"
    )
    # the consumer's signature over the request: missing, by another key, or over another
    # call of the job (a provider revealing an input the consumer did not ask for)
    unsigned = RevealedCall(c.receipt, c.input, b"", None, False, c.proof)
    assert check_call(unsigned, sample, 2) == (
        "withheld",
        "the consumer's signed request was not revealed",
    )
    by_other = _signed_request(c.receipt.receipt, OUTSIDER)
    stranger = RevealedCall(c.receipt, c.input, b"", None, False, c.proof, by_other)
    assert "did not sign" in check_call(stranger, sample, 2)[1]
    borrowed = RevealedCall(c.receipt, c.input, b"", None, False, c.proof, calls[0].request)
    assert "did not sign" in check_call(borrowed, sample, 2)[1]
    # a receipt naming another model than the job's
    swapped, swapped_calls = _epoch(HONEST, model=b"\x99" * 32)
    assert check_call(swapped_calls[0], swapped, 1)[0] == "wrong-model"


def test_reexecution_finds_wrong_outputs_and_signs_mismatches() -> None:
    outputs = [*HONEST]
    outputs[1] = [8.0]  # the provider answered 8 where the model says 7
    sample, calls = _epoch(outputs)
    signer = VERIFIERS[0]
    assert judge_sampled_call([calls[0]], sample, 1, Doubler(), Tolerance(), signer)[0] == "ok"
    outcome, detail, signed = judge_sampled_call(
        [calls[1]], sample, 2, Doubler(), Tolerance(), signer
    )
    assert outcome == "wrong-output", detail
    assert signed is not None
    assert signed.mismatch.expected_response_digest == response_digest([7.0])
    assert signed.mismatch.response_digest == calls[1].receipt.receipt.response_digest
    # within a tolerance the model declares, the same answer passes
    loose = Tolerance(abs=1.5)
    assert judge_sampled_call([calls[1]], sample, 2, Doubler(), loose, signer)[0] == (
        "ok-within-tolerance"
    )
    # nobody revealed it / only a broken copy and a good one: the good one is used
    assert judge_sampled_call([], sample, 3, Doubler(), Tolerance(), signer)[0] == "withheld"
    broken = RevealedCall(calls[2].receipt, [0], b"", proof=calls[2].proof)
    assert judge_sampled_call([broken, calls[2]], sample, 3, Doubler(), Tolerance(), signer)[
        0
    ] == "ok"  # fmt: skip
    # an input the verifier's model refuses: failed, no Mismatch
    refused = judge_sampled_call(
        [calls[0]], sample, 1, _Refusing(), Tolerance(), signer
    )  # fmt: skip
    assert (refused[0], refused[2]) == ("refused", None)


class _Refusing(Predictor):
    kind = "callable"

    def predict(self, value: Any) -> Any:
        raise InvalidInput("not this")


def _model(tmp_path: Path, tolerance: bytes | None) -> VerifiedModel:
    files = {"model.pkl": b"weights"}
    if tolerance is not None:
        files["ailedger-inference.json"] = tolerance
    return VerifiedModel(tmp_path, b"\x00" * 32, files)


def test_a_model_declares_its_tolerance(tmp_path: Path) -> None:
    assert model_tolerance(_model(tmp_path, None)).exact
    tol = model_tolerance(_model(tmp_path, b'{"tolerance": {"abs": 0.01, "rel": 0.001}}'))
    assert (tol.abs, tol.rel) == (0.01, 0.001)
    for bad in (b"", b"[]", b'{"tolerance": 1}', b'{"tolerance": {"abs": -1}}',
                b'{"tolerance": {"abs": "1"}}', b'{"tolerance": {"x": 1}}',
                b'{"tolerance": {}, "more": 1}', b'{"tolerance": {"abs": NaN}}',
                b"\xff"):  # fmt: skip
        with pytest.raises(FormatError):
            model_tolerance(_model(tmp_path, bad))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**9), 10**9) | st.text(max_size=5)
    | st.floats(allow_nan=False, allow_infinity=False, width=32),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=3), inner,
                                                                  max_size=3),
    max_leaves=12,
)  # fmt: skip


@settings(max_examples=examples(100))
@given(json_values)
def test_tolerance_is_reflexive_and_exact_means_equal(value: Any) -> None:
    assert within_tolerance(value, value, Tolerance())
    assert within_tolerance(value, value, Tolerance(abs=1.0, rel=0.5))


@settings(max_examples=examples(100))
@given(
    st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=6),
    st.floats(0.0, 1.0),
    st.floats(0.0, 2.0),
)
def test_numbers_pass_within_the_tolerance_only(own: list[float], tol: float, off: float) -> None:
    got = [x + off for x in own]
    expected = all(
        math.isclose(g, x, rel_tol=0.0, abs_tol=tol) for g, x in zip(got, own, strict=True)
    )
    assert within_tolerance(got, own, Tolerance(abs=tol)) == expected
    assert not within_tolerance([*got, 1.0], own, Tolerance(abs=tol))  # another shape
    assert not within_tolerance({"a": got}, own, Tolerance(abs=tol))
    assert not within_tolerance([True for _ in own], own, Tolerance(abs=10.0))  # bools differ


def test_deep_nesting_never_matches_nor_crashes() -> None:
    deep: Any = 1
    for _ in range(10_000):
        deep = [deep]
    assert not within_tolerance(deep, deep, Tolerance(abs=1.0))


def test_reveal_round_trip_and_refusals() -> None:
    _, calls = _epoch(HONEST)
    reveal = Reveal(JOB, 0, tuple(calls))
    doc = json.loads(json.dumps(reveal.to_dict()))
    assert Reveal.from_dict(doc) == reveal
    for broken in ({**doc, "format": "x"}, {**doc, "epoch": -1}, {**doc, "extra": 1},
                   {**doc, "calls": "x"}, {**doc, "job": "0x12"}, []):  # fmt: skip
        with pytest.raises(FormatError):
            Reveal.from_dict(broken)
    call = doc["calls"][0]
    no_receipt = {k: v for k, v in call.items() if k != "receipt"}
    for broken in ({**call, "salt": "0x1234"}, {**call, "proof": ["0x00"]},
                   {**call, "proof": "x"}, no_receipt):  # fmt: skip
        with pytest.raises(FormatError):
            RevealedCall.from_dict(broken)


def _attestation(
    signer: Secp256k1Signer, passed: int, *, seed: bytes = SEED, mismatch: bool = True
) -> Attestation:
    outputs = [*HONEST]
    outputs[1] = [8.0]
    _, calls = _epoch(outputs)
    total = 4
    samples = tuple(
        SampleOutcome(i, i + 1, "ok" if i < passed else "wrong-output") for i in range(total)
    )
    result = Verification(JOB, 0, seed, passed, total)
    (sig,) = sign_verification(result, DOMAIN, [signer])
    r = calls[1].receipt.receipt
    mm = Mismatch(JOB, r.counter, r.request_digest, r.response_digest, response_digest([7.0]))
    (msig,) = sign_mismatch(mm, DOMAIN, [signer])
    mismatches = (SignedMismatch(mm, msig, calls[1].receipt, calls[1].proof or ()),)
    return Attestation(
        DOMAIN, signer.address, result, sig, samples, mismatches if mismatch else (),
        {"abs": 0.0, "rel": 0.0},
    )  # fmt: skip


def _gather(atts: list[Attestation], threshold: int = 2) -> Any:
    return gather_verification(
        atts, domain=DOMAIN, job=JOB, epoch=0, seed=SEED,
        verifiers=[v.address for v in VERIFIERS], threshold=threshold,
    )  # fmt: skip


def test_attestation_round_trip_and_tampering() -> None:
    att = _attestation(VERIFIERS[0], 3)
    doc = json.loads(json.dumps(att.to_dict()))
    assert Attestation.from_dict(doc) == att
    with pytest.raises(SignatureInvalid, match="is signed by"):
        Attestation.from_dict({**doc, "passed": 4, "samples": [
            {**s, "outcome": "ok"} for s in doc["samples"]]})  # fmt: skip
    with pytest.raises(FormatError, match="do not add up"):
        Attestation.from_dict({**doc, "samples": doc["samples"][:3]})
    with pytest.raises(SignatureInvalid):
        Attestation.from_dict({**doc, "verifier": OUTSIDER.address})
    m = doc["mismatches"][0]
    with pytest.raises(SignatureInvalid, match="mismatch of call"):
        Attestation.from_dict({**doc, "mismatches": [{**m, "expected_response_digest":
                                                       "0x" + "11" * 32}]})  # fmt: skip
    with pytest.raises(FormatError, match="not about its receipt"):
        Attestation.from_dict({**doc, "mismatches": [{**m, "counter": 3}]})


@settings(max_examples=examples(200))
@given(st.data())
def test_malformed_attestations_are_format_errors(data: st.DataObject) -> None:
    doc = _attestation(VERIFIERS[0], 3).to_dict()
    key = data.draw(st.sampled_from(sorted(doc)))
    value = data.draw(json_values)
    broken = {**doc, key: value}
    try:
        parsed = Attestation.from_dict(broken)
    except (FormatError, SignatureInvalid):
        return
    # accepted: what the verifier signed is untouched (only unsigned notes may differ)
    original = Attestation.from_dict(doc)
    assert (parsed.verifier, parsed.verification) == (original.verifier, original.verification)
    assert all(m in original.mismatches for m in parsed.mismatches)


def test_settlement_needs_the_threshold_of_distinct_verifiers() -> None:
    a, b, c = (_attestation(v, 3) for v in VERIFIERS)
    result, sigs, ignored = _gather([c, a])
    assert (result.passed, len(sigs), ignored) == (3, 2, [])
    assert sigs == [a.signature, c.signature]  # ordered by signer address
    with pytest.raises(ConflictError, match="at most 1 agree"):
        _gather([a])
    with pytest.raises(ConflictError, match="at most 1 agree"):
        _gather([a, a])  # one vote per verifier
    _, _, ignored = _gather([a, a, b])
    assert ignored == [f"{a.verifier}: a second attestation"]
    with pytest.raises(ConflictError, match="left out"):
        _gather([a, _attestation(OUTSIDER, 3)])
    with pytest.raises(ConflictError):
        _gather([a, _attestation(VERIFIERS[1], 3, seed=b"\x01" * 32)])  # another seed
    other = _attestation(VERIFIERS[1], 3)
    foreign = Attestation(market_domain(CHAIN + 1, CONTRACT), other.verifier, other.verification,
                          other.signature, other.samples, (), other.tolerance)  # fmt: skip
    with pytest.raises(ConflictError):
        _gather([a, foreign])
    # verifiers who disagree: the result with the threshold wins; a tie is refused
    result, _, _ = _gather([a, b, _attestation(VERIFIERS[2], 4, mismatch=False)])
    assert result.passed == 3
    with pytest.raises(ConflictError, match="disagree"):
        _gather([a, _attestation(VERIFIERS[2], 4, mismatch=False)], threshold=1)


def test_wrong_outputs_need_the_threshold_alike() -> None:
    a, b = (_attestation(v, 3) for v in VERIFIERS[:2])
    kw: dict[str, Any] = {
        "domain": DOMAIN, "job": JOB, "epoch": 0, "seed": SEED,
        "verifiers": [v.address for v in VERIFIERS], "threshold": 2,
    }  # fmt: skip
    (evidence,) = gather_wrong_outputs([a, b], **kw)
    job, receipt, _, proof, expected, sigs = evidence.args()
    assert (job, receipt[1], expected) == (JOB, 2, response_digest([7.0]))
    assert (len(proof), len(sigs)) == (3, 2)
    assert list(evidence.signers) == sorted((a.verifier, b.verifier), key=lambda s: int(s, 16))
    assert gather_wrong_outputs([a, a], **kw) == []
    assert gather_wrong_outputs([a, _attestation(VERIFIERS[1], 3, mismatch=False)], **kw) == []


def test_the_hoeffding_line() -> None:
    report = claim_report(8)
    assert (report["hoeffding_k"], report["zero_failure_k"]) == (14_979, 299)
    assert "needs 14,979 samples (Hoeffding) or 299 that all pass" in report["line"]
    assert claim_report(14_979)["hoeffding_confidence"] >= 0.95
    assert claim_report(14_978)["hoeffding_confidence"] < 0.95
    assert zero_failure_confidence(299, 0.01) >= 0.95 > zero_failure_confidence(298, 0.01)
    assert hoeffding_confidence(0, 0.01) == 0.0
    with pytest.raises(InvalidInput):
        claim_report(8, pass_bps=10_000)
