"""A verifier of the InferenceMarket: re-execute an epoch's sampled calls and sign the result.

For job ``J`` and a drawn epoch ``E`` the verifier reads from the chain the job (its model
digest, receipt signer, verifier set), the committed epoch (root, size, counters) and the
sample (``sampleCounters``, cross-checked against :func:`.settlement.sample_counters`). It then
needs, for every sampled counter, the call itself: the provider-signed receipt, the request
(input and salt), the response, and the receipt's inclusion proof in the epoch's tree.

Who hands the calls over. A receipt holds only the salted request digest, so the request can
come only from whoever kept it: the consumer's receipt wallet holds every call it made
(:func:`reveal_from_wallet` exports the sampled ones as a :class:`Reveal`, a JSON file:
``ailedger market reveal``), and the provider's receipt book keeps every call it served with
the consumer's signed request (:func:`reveal_from_book`: ``ailedger market reveal
--provider-store``), so a consumer who withholds a sampled call cannot fail the epoch by it.
The verifier takes any number of reveals; a call is verified from the first revealed copy that
holds together (the receipt's signature by the job's signer for this chain and contract, its
job, counter and epoch, its leaf at its position under the root committed on-chain, the
request hashing to the receipt's request digest, and the job's consumer's EIP-712 signature
over that request (:mod:`.request`), which proves the consumer asked for exactly that input:
a provider cannot reveal, for a receipt it signed, an input the consumer never sent). A
sampled call that nobody reveals, or only in pieces that do not hold together, counts as
failed (``withheld``). The response is
optional in a reveal (the receipt's digest binds it); a job with a tolerance needs it.

Re-execution. The verifier holds its own copy of the model paid for, loaded through the
fingerprint-checked plug-ins of :mod:`.models` (:func:`.models.verified_model` refuses files
whose subject digest is not the job's). The sampled input is run and the response digest
compared with the receipt's: equal is ``ok``. A model that is not deterministic declares its
tolerance in the model itself: a file ``ailedger-inference.json`` among the model's files,
``{"tolerance": {"abs": A, "rel": R}}``, is covered by the subject digest the job pays for, so
the job declares its tolerance by the model digest it names and nobody can change it later;
the revealed response then passes when it has the shape of the verifier's own output, equal
strings, booleans and nulls, and numbers within ``abs + rel * |own|`` (``math.isclose``).
Without that file (a single-file model included) responses must match exactly. Otherwise the
call is ``wrong-output`` and the verifier signs a :class:`.settlement.Mismatch` for it (the
receipt's digests and the digest of its own response), which the consumer takes to
``proveWrongOutput`` once the epoch has failed. An input the verifier's model refuses is
``refused`` (failed, no Mismatch: there is no right response to name); a receipt naming
another model than the job's is ``wrong-model`` (failed; ``proveWrongModel`` takes it).

:func:`verify_epoch` returns the signed :class:`.attestation.Attestation`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.chain.inference_market import EpochInfo, EpochStatus, InferenceMarket, JobInfo
from ailedger.errors import (
    AiledgerError,
    ConflictError,
    FormatError,
    IntegrityError,
    InvalidInput,
    NotFound,
    SignatureInvalid,
)
from ailedger.identity.keys import Secp256k1Signer, checksum_address
from ailedger.markets.inference._store import kept_calls
from ailedger.markets.inference.attestation import (
    Attestation,
    SampleOutcome,
    SignedMismatch,
)
from ailedger.markets.inference.client import ReceiptWallet
from ailedger.markets.inference.models import ModelRefused, Predictor, VerifiedModel, answer
from ailedger.markets.inference.receipt import (
    SignedReceipt,
    market_domain,
    request_digest,
    response_digest,
    verify_receipt,
)
from ailedger.markets.inference.request import (
    InferenceRequest,
    SignedRequest,
    request_domain,
    verify_request,
)
from ailedger.markets.inference.settlement import (
    Mismatch,
    Verification,
    sample_counters,
    sign_mismatch,
    sign_verification,
)
from ailedger.merkle import leaf_hash, verify_inclusion

__all__ = [
    "REVEAL_FORMAT",
    "TOLERANCE_FILE",
    "EpochSample",
    "Reveal",
    "RevealedCall",
    "Tolerance",
    "check_call",
    "judge_sampled_call",
    "model_tolerance",
    "read_sample",
    "reveal_from_book",
    "reveal_from_wallet",
    "verify_epoch",
    "within_tolerance",
]

REVEAL_FORMAT = "ailedger-inference-reveal/1"
TOLERANCE_FILE = "ailedger-inference.json"
_MAX_DEPTH = 64


# ------------------------------------------------------------------------------ tolerance


@dataclass(frozen=True)
class Tolerance:
    """How far a response's numbers may be from the verifier's own: ``abs + rel * |own|``."""

    abs: float = 0.0
    rel: float = 0.0

    def __post_init__(self) -> None:
        for name in ("abs", "rel"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise InvalidInput(f"tolerance {name} must be a number")
            if not math.isfinite(v) or v < 0:
                raise InvalidInput(f"tolerance {name} must be a finite number >= 0, not {v}")

    @property
    def exact(self) -> bool:
        return self.abs == 0.0 and self.rel == 0.0

    def to_dict(self) -> dict[str, float]:
        return {"abs": float(self.abs), "rel": float(self.rel)}


def model_tolerance(model: VerifiedModel) -> Tolerance:
    """The tolerance the model declares in :data:`TOLERANCE_FILE` (exact without one). The
    file is one of the fingerprinted files, so the job's model digest fixes it."""
    blob = model.files.get(TOLERANCE_FILE)
    if blob is None:
        return Tolerance()
    try:
        doc = json.loads(blob)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{model.path}/{TOLERANCE_FILE} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or set(doc) != {"tolerance"}:
        raise FormatError(f'{model.path}/{TOLERANCE_FILE} must be {{"tolerance": {{...}}}}')
    tol = doc["tolerance"]
    if not isinstance(tol, dict) or not set(tol) <= {"abs", "rel"}:
        raise FormatError(f"{model.path}/{TOLERANCE_FILE}: tolerance takes only abs and rel")
    try:
        return Tolerance(tol.get("abs", 0.0), tol.get("rel", 0.0))
    except InvalidInput as exc:
        raise FormatError(f"{model.path}/{TOLERANCE_FILE}: {exc.message}") from None


def within_tolerance(got: Any, own: Any, tolerance: Tolerance) -> bool:
    """Whether ``got`` (the provider's response) matches ``own`` (the verifier's): the same
    JSON shape, equal non-numbers, numbers within the tolerance. No recursion (a hostile
    response cannot exhaust the stack); nesting beyond 64 levels never matches."""
    stack: list[tuple[Any, Any, int]] = [(got, own, 0)]
    while stack:
        a, b, depth = stack.pop()
        if depth > _MAX_DEPTH:
            return False
        if _number(a) and _number(b):
            if not math.isclose(a, b, rel_tol=tolerance.rel, abs_tol=tolerance.abs):
                return False
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                return False
            stack.extend((x, y, depth + 1) for x, y in zip(a, b, strict=True))
        elif isinstance(a, dict) and isinstance(b, dict):
            if set(a) != set(b):
                return False
            stack.extend((a[k], b[k], depth + 1) for k in a)
        elif type(a) is not type(b) or a != b:
            return False
    return True


def _number(v: Any) -> bool:
    return not isinstance(v, bool) and isinstance(v, int | float)


# ------------------------------------------------------------------------------ reveals


def _hex(text: object, size: int | None, what: str) -> bytes:
    if not isinstance(text, str) or not text.startswith("0x"):
        raise FormatError(f"{what} must be 0x and hex digits")
    try:
        raw = bytes.fromhex(text[2:])
    except ValueError:
        raise FormatError(f"{what} must be 0x and hex digits") from None
    if size is not None and len(raw) != size:
        raise FormatError(f"{what} must be {size} bytes")
    return raw


def _object(
    doc: object, fields: set[str], what: str, optional: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise FormatError(f"{what} must be a JSON object")
    missing = sorted(fields - set(doc))
    if missing:
        raise FormatError(f"{what} has no {missing[0]!r}")
    unknown = sorted(set(doc) - fields - optional)
    if unknown:
        raise FormatError(f"{what} has an unknown field {unknown[0]!r}")
    return doc


@dataclass(frozen=True)
class RevealedCall:
    """One call handed to the verifiers: the signed receipt, the request's input and salt,
    the response (``has_output`` False when withheld), the receipt's inclusion proof
    (sibling hashes, leaf level first; None when not at hand) and the consumer's signed
    request (nonce, expiry, signature; a call revealed without it counts as withheld)."""

    receipt: SignedReceipt
    input: Any
    salt: bytes
    output: Any = None
    has_output: bool = False
    proof: tuple[bytes, ...] | None = None
    request: SignedRequest | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "receipt": self.receipt.to_dict(),
            "input": self.input,
            "salt": "0x" + self.salt.hex(),
            "proof": None if self.proof is None else ["0x" + h.hex() for h in self.proof],
        }
        if self.has_output:
            doc["output"] = self.output
        if self.request is not None:
            doc["request"] = self.request.to_dict()
        return doc

    @classmethod
    def from_dict(cls, doc: object) -> RevealedCall:
        d = _object(
            doc,
            {"receipt", "input", "salt", "proof"},
            "a revealed call",
            frozenset({"output", "request"}),
        )
        request = d.get("request")
        if request is not None:
            if not isinstance(request, dict) or not set(request) <= {
                "nonce",
                "expires",
                "signature",
            }:
                raise FormatError("request must be an object of nonce, expires and signature")
            try:
                request = SignedRequest.from_dict(request)
            except SignatureInvalid as exc:
                raise FormatError(exc.message) from None
        salt = _hex(d["salt"], None, "salt")
        if len(salt) not in (0, 32):
            raise FormatError("salt must be 0 or 32 bytes")
        proof = d["proof"]
        if proof is not None and (not isinstance(proof, list) or len(proof) > 64):
            raise FormatError("proof must be a list of at most 64 hashes, or null")
        return cls(
            SignedReceipt.from_dict(d["receipt"]),
            d["input"],
            salt,
            d.get("output"),
            "output" in d,
            None if proof is None else tuple(_hex(h, 32, "a proof hash") for h in proof),
            request,
        )


@dataclass(frozen=True)
class Reveal:
    """Calls of ``job`` in ``epoch`` handed to the verifiers (a JSON file)."""

    job: bytes
    epoch: int
    calls: tuple[RevealedCall, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": REVEAL_FORMAT,
            "job": "0x" + self.job.hex(),
            "epoch": self.epoch,
            "calls": [c.to_dict() for c in self.calls],
        }

    @classmethod
    def from_dict(cls, doc: object) -> Reveal:
        d = _object(doc, {"format", "job", "epoch", "calls"}, "a reveal")
        if d["format"] != REVEAL_FORMAT:
            raise FormatError(f"not a reveal: format is {d['format']!r}, not {REVEAL_FORMAT!r}")
        epoch = d["epoch"]
        if isinstance(epoch, bool) or not isinstance(epoch, int) or not 0 <= epoch < 1 << 64:
            raise FormatError("epoch must be an integer in 0..2^64-1")
        if not isinstance(d["calls"], list) or len(d["calls"]) > 4096:
            raise FormatError("calls must be a list of at most 4096 calls")
        return cls(
            _hex(d["job"], 32, "job"),
            epoch,
            tuple(RevealedCall.from_dict(c) for c in d["calls"]),
        )


def reveal_from_wallet(
    wallet: ReceiptWallet, job: bytes, epoch: int, counters: Iterable[int]
) -> tuple[Reveal, list[int]]:
    """The consumer's reveal of ``counters`` of ``job`` in ``epoch`` from its wallet, and the
    counters it cannot reveal (not kept, or kept in another epoch). A kept call without its
    inclusion proof is revealed without one (fetch proofs first: ``ailedger market verify
    --url``)."""
    wanted = set(counters)
    calls: list[RevealedCall] = []
    for row in wallet.rows(job):
        r = row.receipt.receipt
        if r.counter not in wanted or r.epoch != epoch:
            continue
        salt_text = row.request.get("salt")
        salt = _hex(salt_text, 32, "a kept salt") if isinstance(salt_text, str) else b""
        proof = None if row.proof is None else tuple(row.proof.hashes)
        try:
            signed_request: SignedRequest | None = SignedRequest.from_dict(row.request)
        except (AiledgerError, TypeError):
            signed_request = None  # a call kept without its signature: revealed as it is
        calls.append(
            RevealedCall(
                row.receipt,
                row.request.get("input"),
                salt,
                row.response,
                True,
                proof,
                signed_request,
            )
        )
    found = {c.receipt.receipt.counter for c in calls}
    return Reveal(job, epoch, tuple(calls)), sorted(wanted - found)


def reveal_from_book(
    path: Path, job: bytes, epoch: int, counters: Iterable[int]
) -> tuple[Reveal, list[int]]:
    """The provider's reveal of ``counters`` of ``job`` in ``epoch`` from its receipt book
    at ``path`` (read-only: the provider may keep serving), each call with the consumer's
    signed request and its inclusion proof, and the counters it cannot reveal (not in the
    book's epoch, or kept without the input or the consumer's signature). The response is
    not in the book (only its digest, in the receipt): re-execution does not need it."""
    wanted = set(counters)
    calls = tuple(
        RevealedCall(k.receipt, k.input, k.salt, None, False, k.proof, k.request)
        for k in kept_calls(path, job, epoch, wanted)
        if k.has_call and k.request is not None
    )
    found = {c.receipt.receipt.counter for c in calls}
    return Reveal(job, epoch, calls), sorted(wanted - found)


# ------------------------------------------------------------------------------ the epoch


@dataclass(frozen=True)
class EpochSample:
    """What the chain says about a drawn epoch: the job, the epoch and its sample."""

    market: str
    chain_id: int
    job: JobInfo
    epoch: int
    info: EpochInfo
    counters: tuple[int, ...]
    verifiers: tuple[str, ...]


def read_sample(market: InferenceMarket, job: bytes, epoch: int) -> EpochSample:
    """The job, the committed epoch and its drawn sample, read from ``market``."""
    info = market.job(job)
    e = market.epoch(job, epoch)
    if e.status == EpochStatus.NONE:
        raise NotFound(f"job 0x{job.hex()} has no committed epoch {epoch}")
    if not e.drawn:
        raise ConflictError(
            f"epoch {epoch} of job 0x{job.hex()} has no sample yet",
            hint="draw it (`ailedger market draw`) once the block after its commitment is mined",
        )
    counters = tuple(market.sample_counters(job, epoch))
    ours = sample_counters(e.seed, job, epoch, e.first, e.calls, info.terms.k)
    if list(counters) != ours:
        raise IntegrityError(
            f"the chain's sample of epoch {epoch} is not the one its seed gives: {market.address}"
            " is not the InferenceMarket this code knows"
        )
    return EpochSample(
        market.address,
        market.chain.chain_id,
        info,
        epoch,
        e,
        counters,
        tuple(checksum_address(v) for v in market.verifiers(job)),
    )


def check_call(call: RevealedCall, sample: EpochSample, counter: int) -> tuple[str, str]:
    """Whether ``call`` is sampled call ``counter`` of the epoch as committed: ``("", "")``
    when it holds together, else ``(outcome, detail)`` (``withheld`` or ``wrong-model``)."""
    signed, job = call.receipt, sample.job
    r = signed.receipt
    domain = market_domain(sample.chain_id, sample.market)
    if (r.job, r.counter, r.epoch) != (job.job_id, counter, sample.epoch):
        return "withheld", "the revealed receipt is for another job, counter or epoch"
    try:
        verify_receipt(signed, domain=domain, provider=job.signer, job=job.job_id)
    except AiledgerError as exc:
        return "withheld", exc.message
    if call.proof is None:
        return "withheld", "no inclusion proof was revealed"
    try:
        verify_inclusion(
            leaf_hash(signed.digest()), r.position, sample.info.size, call.proof, sample.info.root
        )
    except AiledgerError:
        return "withheld", "the receipt is not at its position under the committed root"
    try:
        if request_digest(call.input, call.salt) != r.request_digest:
            return "withheld", "the revealed request does not hash to the receipt's digest"
    except (InvalidInput, TypeError, ValueError, RecursionError):
        return "withheld", "the revealed request is not canonical JSON"
    if call.request is None:
        return "withheld", "the consumer's signed request was not revealed"
    asked = InferenceRequest(
        job.job_id, job.signer, r.model_digest, r.request_digest, call.request.nonce,
        call.request.expires,
    )  # fmt: skip
    try:  # expiry bounded when the call could be sent, not when it is revealed
        verify_request(
            asked,
            call.request,
            domain=request_domain(sample.chain_id, sample.market),
            consumer=job.consumer,
            now=0,
        )
    except SignatureInvalid as exc:
        return "withheld", f"the job's consumer did not sign the revealed request: {exc.message}"
    if r.model_digest != job.terms.model_digest:
        return "wrong-model", f"the receipt names model sha256:{r.model_digest.hex()}"
    return "", ""


def _output_matches(call: RevealedCall) -> bool:
    if not call.has_output:
        return False
    try:
        return response_digest(call.output) == call.receipt.receipt.response_digest
    except (InvalidInput, TypeError, ValueError, RecursionError):
        return False


def verify_epoch(
    market: InferenceMarket,
    job: bytes,
    epoch: int,
    *,
    model: VerifiedModel,
    predictor: Predictor,
    reveals: Sequence[Reveal],
    signer: Secp256k1Signer,
) -> Attestation:
    """Re-execute the sample of ``epoch`` of ``job`` and sign the result as ``signer`` (one
    of the job's verifiers); the :class:`Attestation` (Verification and Mismatches signed)."""
    sample = read_sample(market, job, epoch)
    if checksum_address(signer.address) not in sample.verifiers:
        raise ConflictError(
            f"{signer.address} is not a verifier of job 0x{job.hex()}",
            hint="attest with the key of one of the job's verifiers",
        )
    if model.subject_digest != sample.job.terms.model_digest:
        raise ModelRefused(
            f"{model.path}: the verifier's model is sha256:{model.subject_digest.hex()}, the job "
            f"pays for sha256:{sample.job.terms.model_digest.hex()}",
            hint="re-execute with a copy of the model the job names",
        )
    tolerance = model_tolerance(model)
    offered: dict[int, list[RevealedCall]] = {}
    for reveal in reveals:
        if (reveal.job, reveal.epoch) != (job, epoch):
            continue
        for call in reveal.calls:
            offered.setdefault(call.receipt.receipt.counter, []).append(call)
    judged: dict[int, tuple[str, str, SignedMismatch | None]] = {}
    domain = market_domain(sample.chain_id, sample.market)
    for counter in dict.fromkeys(sample.counters):
        judged[counter] = judge_sampled_call(
            offered.get(counter, []), sample, counter, predictor, tolerance, signer
        )
    outcomes = tuple(
        SampleOutcome(i, c, judged[c][0], judged[c][1]) for i, c in enumerate(sample.counters)
    )
    passed = sum(1 for o in outcomes if o.outcome in ("ok", "ok-within-tolerance"))
    result = Verification(job, epoch, sample.info.seed, passed, len(outcomes))
    (signature,) = sign_verification(result, domain, [signer])
    mismatches = tuple(m for _, _, m in judged.values() if m is not None)
    return Attestation(
        domain, checksum_address(signer.address), result, signature, outcomes, mismatches,
        tolerance.to_dict(),
    )  # fmt: skip


def judge_sampled_call(
    calls: list[RevealedCall],
    sample: EpochSample,
    counter: int,
    predictor: Predictor,
    tolerance: Tolerance,
    signer: Secp256k1Signer,
) -> tuple[str, str, SignedMismatch | None]:
    """The outcome of sampled call ``counter`` from the copies revealed of it: ``(outcome,
    detail, signed Mismatch or None)`` (the first copy that holds together is re-executed)."""
    if not calls:
        return "withheld", "nobody revealed the call", None
    problem = ("withheld", "")
    for call in calls:
        outcome, detail = check_call(call, sample, counter)
        if not outcome:
            return _reexecute(call, sample, predictor, tolerance, signer)
        if problem[1] == "" or outcome == "wrong-model":
            problem = (outcome, detail)
    return problem[0], problem[1], None


def _reexecute(
    call: RevealedCall,
    sample: EpochSample,
    predictor: Predictor,
    tolerance: Tolerance,
    signer: Secp256k1Signer,
) -> tuple[str, str, SignedMismatch | None]:
    r = call.receipt.receipt
    try:
        own, _ = answer(predictor, call.input)
        expected = response_digest(own)
    except InvalidInput as exc:
        return "refused", f"the job's model refuses the input: {exc.message}", None
    if expected == r.response_digest:
        return "ok", "", None
    if (
        not tolerance.exact
        and _output_matches(call)
        and within_tolerance(call.output, own, tolerance)
    ):
        return "ok-within-tolerance", "", None
    mismatch = Mismatch(r.job, r.counter, r.request_digest, r.response_digest, expected)
    domain = market_domain(sample.chain_id, sample.market)
    (signature,) = sign_mismatch(mismatch, domain, [signer])
    detail = (
        f"re-executed, the response digest is {expected.hex()[:16]}..., the receipt's "
        f"{r.response_digest.hex()[:16]}..."
    )
    return (
        "wrong-output",
        detail,
        SignedMismatch(mismatch, signature, call.receipt, call.proof or ()),
    )
