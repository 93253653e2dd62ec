"""A verifier's signed result for one epoch of one job, and what the contract takes from many.

An :class:`Attestation` (a JSON file, ``ailedger market attest``) holds the verifier's signed
:class:`.settlement.Verification` (passed of total sampled calls, bound to the epoch's seed),
the outcome of every sample, and one :class:`SignedMismatch` per call whose response the
verifier could not reproduce: the Mismatch, its signature, and the provider-signed receipt
with its inclusion proof (so the consumer can dispute from attestation files alone).

:func:`gather_verification` picks, from any number of attestation files, the result that at
least the job's threshold of its verifiers signed (signatures ordered by signer, as
``settleEpoch`` wants); :func:`gather_wrong_outputs` the Mismatches that a threshold of
verifiers signed alike (same call, same expected response), ready for ``proveWrongOutput``.
Both fail closed: a signature that does not recover to the verifier the file names, a signer
outside the job's set, or a file for another chain, contract, job, epoch or seed counts for
nothing, and too few agreeing verifiers is an error, never a pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.chain.eip712 import Domain
from ailedger.errors import AiledgerError, ConflictError, FormatError, SignatureInvalid
from ailedger.identity.keys import checksum_address, recover_digest
from ailedger.markets.inference.receipt import SignedReceipt
from ailedger.markets.inference.settlement import Mismatch, Verification

__all__ = [
    "ATTESTATION_FORMAT",
    "OUTCOMES",
    "Attestation",
    "SampleOutcome",
    "SignedMismatch",
    "WrongOutputEvidence",
    "gather_verification",
    "gather_wrong_outputs",
]

ATTESTATION_FORMAT = "ailedger-inference-attestation/1"
#: What a sampled call can come to; the first two pass.
OUTCOMES = ("ok", "ok-within-tolerance", "withheld", "wrong-model", "refused", "wrong-output")
_PASSING = frozenset(OUTCOMES[:2])
_U64 = (1 << 64) - 1


def _hex(text: object, size: int, what: str) -> bytes:
    if not isinstance(text, str) or len(text) != 2 + 2 * size or not text.startswith("0x"):
        raise FormatError(f"{what} must be 0x and {2 * size} hex digits")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise FormatError(f"{what} must be 0x and {2 * size} hex digits") from None


def _int(value: object, limit: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise FormatError(f"{what} must be an integer in 0..{limit}")
    return value


def _object(doc: object, fields: Iterable[str], what: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise FormatError(f"{what} must be a JSON object")
    want = set(fields)
    missing, unknown = sorted(want - set(doc)), sorted(set(doc) - want)
    if missing:
        raise FormatError(f"{what} has no {missing[0]!r}")
    if unknown:
        raise FormatError(f"{what} has an unknown field {unknown[0]!r}")
    return doc


def _domain(doc: object) -> Domain:
    d = _object(doc, ("name", "version", "chainId", "verifyingContract"), "domain")
    if not isinstance(d["name"], str) or not isinstance(d["version"], str):
        raise FormatError("domain name and version must be strings")
    if not isinstance(d["verifyingContract"], str):
        raise FormatError("domain verifyingContract must be an address")
    try:
        return Domain(
            d["name"], d["version"], _int(d["chainId"], (1 << 256) - 1, "chainId"),
            d["verifyingContract"],
        )  # fmt: skip
    except AiledgerError as exc:
        raise FormatError(f"malformed domain: {exc.message}") from None


@dataclass(frozen=True)
class SampleOutcome:
    """Sample ``index`` (counter ``counter``) came to ``outcome`` (one of :data:`OUTCOMES`)."""

    index: int
    counter: int
    outcome: str
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.outcome in _PASSING

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "counter": self.counter,
            "outcome": self.outcome,
            "detail": self.detail,
        }

    @classmethod
    def from_dict(cls, doc: object) -> SampleOutcome:
        d = _object(doc, ("index", "counter", "outcome", "detail"), "a sample outcome")
        if d["outcome"] not in OUTCOMES:
            raise FormatError(f"unknown sample outcome {d['outcome']!r}")
        if not isinstance(d["detail"], str) or len(d["detail"]) > 1000:
            raise FormatError("a sample's detail must be a string of at most 1000 characters")
        return cls(
            _int(d["index"], 1 << 16, "index"), _int(d["counter"], _U64, "counter"),
            d["outcome"], d["detail"],
        )  # fmt: skip


@dataclass(frozen=True)
class SignedMismatch:
    """A verifier's signed Mismatch, with the receipt (and its inclusion proof) it is about."""

    mismatch: Mismatch
    signature: bytes
    receipt: SignedReceipt
    proof: tuple[bytes, ...]

    def to_dict(self) -> dict[str, Any]:
        m = self.mismatch
        return {
            "counter": m.counter,
            "request_digest": "0x" + m.request_digest.hex(),
            "response_digest": "0x" + m.response_digest.hex(),
            "expected_response_digest": "0x" + m.expected_response_digest.hex(),
            "signature": "0x" + self.signature.hex(),
            "receipt": self.receipt.to_dict(),
            "proof": ["0x" + h.hex() for h in self.proof],
        }

    @classmethod
    def from_dict(cls, doc: object, job: bytes) -> SignedMismatch:
        d = _object(
            doc,
            ("counter", "request_digest", "response_digest", "expected_response_digest",
             "signature", "receipt", "proof"),
            "a mismatch",
        )  # fmt: skip
        proof = d["proof"]
        if not isinstance(proof, list) or len(proof) > 64:
            raise FormatError("a mismatch's proof must be a list of at most 64 hashes")
        try:
            mismatch = Mismatch(
                job,
                _int(d["counter"], _U64, "counter"),
                _hex(d["request_digest"], 32, "request_digest"),
                _hex(d["response_digest"], 32, "response_digest"),
                _hex(d["expected_response_digest"], 32, "expected_response_digest"),
            )
        except FormatError:
            raise
        except AiledgerError as exc:
            raise FormatError(f"a malformed mismatch: {exc.message}") from None
        return cls(
            mismatch,
            _hex(d["signature"], 65, "signature"),
            SignedReceipt.from_dict(d["receipt"]),
            tuple(_hex(h, 32, "a proof hash") for h in proof),
        )


@dataclass(frozen=True)
class Attestation:
    """One verifier's signed result for one epoch of one job (see the module docstring)."""

    domain: Domain
    verifier: str
    verification: Verification
    signature: bytes
    samples: tuple[SampleOutcome, ...]
    mismatches: tuple[SignedMismatch, ...]
    tolerance: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        v = self.verification
        return {
            "format": ATTESTATION_FORMAT,
            "domain": self.domain.to_dict(),
            "verifier": self.verifier,
            "job": "0x" + v.job.hex(),
            "epoch": v.epoch,
            "seed": "0x" + v.seed.hex(),
            "passed": v.passed,
            "total": v.total,
            "signature": "0x" + self.signature.hex(),
            "tolerance": self.tolerance,
            "samples": [s.to_dict() for s in self.samples],
            "mismatches": [m.to_dict() for m in self.mismatches],
        }

    @classmethod
    def from_dict(cls, doc: object) -> Attestation:
        """Parse an attestation file and check it holds together (:meth:`check`)."""
        d = _object(
            doc,
            ("format", "domain", "verifier", "job", "epoch", "seed", "passed", "total",
             "signature", "tolerance", "samples", "mismatches"),
            "an attestation",
        )  # fmt: skip
        if d["format"] != ATTESTATION_FORMAT:
            raise FormatError(
                f"not an attestation: format is {d['format']!r}, not {ATTESTATION_FORMAT!r}"
            )
        job = _hex(d["job"], 32, "job")
        samples, mismatches, tol = d["samples"], d["mismatches"], d["tolerance"]
        if not isinstance(samples, list) or not isinstance(mismatches, list):
            raise FormatError("samples and mismatches must be lists")
        if len(samples) > 1024 or len(mismatches) > 1024:
            raise FormatError("an attestation holds at most 1024 samples and mismatches")
        tol = _object(tol, ("abs", "rel"), "tolerance")
        if not all(isinstance(tol[k], int | float) and not isinstance(tol[k], bool) for k in tol):
            raise FormatError("tolerance abs and rel must be numbers")
        if not isinstance(d["verifier"], str):
            raise FormatError("verifier must be an address")
        try:
            verifier = checksum_address(d["verifier"])
            verification = Verification(
                job,
                _int(d["epoch"], _U64, "epoch"),
                _hex(d["seed"], 32, "seed"),
                _int(d["passed"], (1 << 32) - 1, "passed"),
                _int(d["total"], (1 << 32) - 1, "total"),
            )
        except FormatError:
            raise
        except AiledgerError as exc:
            raise FormatError(f"a malformed attestation: {exc.message}") from None
        out = cls(
            _domain(d["domain"]),
            verifier,
            verification,
            _hex(d["signature"], 65, "signature"),
            tuple(SampleOutcome.from_dict(s) for s in samples),
            tuple(SignedMismatch.from_dict(m, job) for m in mismatches),
            {"abs": float(tol["abs"]), "rel": float(tol["rel"])},
        )
        out.check()
        return out

    def check(self) -> None:
        """The signatures recover to ``verifier`` for ``domain``; the samples add up to the
        result; each Mismatch is about its receipt. :class:`SignatureInvalid` or
        :class:`FormatError` otherwise."""
        v = self.verification
        signer = _recover(v.digest(self.domain), self.signature)
        if signer != self.verifier:
            raise SignatureInvalid(
                f"the attestation's result is signed by {signer}, not by {self.verifier}",
                code="signature-invalid",
            )
        if len(self.samples) != v.total or sum(s.passed for s in self.samples) != v.passed:
            raise FormatError(
                f"the attestation's samples do not add up to {v.passed} passed of {v.total}"
            )
        for m in self.mismatches:
            r = m.receipt.receipt
            mm = m.mismatch
            if (r.job, r.counter, r.request_digest, r.response_digest) != (
                mm.job, mm.counter, mm.request_digest, mm.response_digest,
            ):  # fmt: skip
                raise FormatError(f"the mismatch of call {mm.counter} is not about its receipt")
            if m.receipt.domain != self.domain:
                raise FormatError(f"the receipt of call {mm.counter} is for another domain")
            if _recover(mm.digest(self.domain), m.signature) != self.verifier:
                raise SignatureInvalid(
                    f"the mismatch of call {mm.counter} is not signed by {self.verifier}",
                    code="signature-invalid",
                )


def _recover(digest: bytes, signature: bytes) -> str:
    try:
        return checksum_address(recover_digest(digest, signature))
    except AiledgerError as exc:
        raise SignatureInvalid(
            f"a malformed signature: {exc.message}", code="signature-malformed"
        ) from None


def _usable(
    attestations: Iterable[Attestation],
    *,
    domain: Domain,
    job: bytes,
    epoch: int,
    seed: bytes,
    verifiers: Sequence[str],
) -> tuple[list[Attestation], list[str]]:
    """The attestations that count (one per verifier of the job, for this epoch and seed),
    and why the others do not."""
    members = {checksum_address(v) for v in verifiers}
    seen: set[str] = set()
    out: list[Attestation] = []
    ignored: list[str] = []
    for a in attestations:
        v = a.verification
        if a.domain != domain:
            ignored.append(f"{a.verifier}: for chain {a.domain.chain_id} at "
                           f"{a.domain.verifying_contract}")  # fmt: skip
        elif (v.job, v.epoch, v.seed) != (job, epoch, seed):
            ignored.append(f"{a.verifier}: for another job, epoch or seed")
        elif a.verifier not in members:
            ignored.append(f"{a.verifier}: not a verifier of the job")
        elif a.verifier in seen:
            ignored.append(f"{a.verifier}: a second attestation")
        else:
            seen.add(a.verifier)
            out.append(a)
    return out, ignored


def _by_signer(pairs: Iterable[tuple[str, bytes]]) -> list[bytes]:
    return [sig for _, sig in sorted(pairs, key=lambda p: int(p[0], 16))]


def gather_verification(
    attestations: Iterable[Attestation],
    *,
    domain: Domain,
    job: bytes,
    epoch: int,
    seed: bytes,
    verifiers: Sequence[str],
    threshold: int,
) -> tuple[Verification, list[bytes], list[str]]:
    """The result at least ``threshold`` of the job's verifiers signed, their signatures
    ordered by signer, and notes on the attestations left out. :class:`ConflictError` when
    no result has the threshold, or two have it with as many signers."""
    usable, ignored = _usable(
        attestations, domain=domain, job=job, epoch=epoch, seed=seed, verifiers=verifiers
    )
    groups: dict[tuple[int, int], list[Attestation]] = {}
    for a in usable:
        groups.setdefault((a.verification.passed, a.verification.total), []).append(a)
    ranked = sorted(groups.values(), key=len, reverse=True)
    if not ranked or len(ranked[0]) < threshold:
        best = len(ranked[0]) if ranked else 0
        raise ConflictError(
            f"no result of epoch {epoch} is signed by {threshold} of the job's verifiers (at most "
            f"{best} agree)" + (f"; left out: {'; '.join(ignored)}" if ignored else ""),
            hint="collect the attestations of more of the job's verifiers",
        )
    if len(ranked) > 1 and len(ranked[1]) == len(ranked[0]):
        raise ConflictError(
            f"the job's verifiers disagree on epoch {epoch}: as many signed each of two results",
            hint="settle with the attestations of one result (settleEpoch accepts either)",
        )
    chosen = ranked[0]
    sigs = _by_signer((a.verifier, a.signature) for a in chosen)
    return chosen[0].verification, sigs, ignored


@dataclass(frozen=True)
class WrongOutputEvidence:
    """What ``proveWrongOutput`` takes: the receipt, its signature and proof, the expected
    response digest and the verifiers' Mismatch signatures (ordered by signer)."""

    receipt: SignedReceipt
    proof: tuple[bytes, ...]
    expected_response_digest: bytes
    signatures: tuple[bytes, ...]
    signers: tuple[str, ...]

    def args(self) -> tuple[bytes, tuple[Any, ...], bytes, list[bytes], bytes, list[bytes]]:
        """``(jobId, receipt, signature, proof, expected, verifierSignatures)``."""
        r = self.receipt.receipt
        struct = (
            r.job, r.counter, r.request_digest, r.response_digest, r.model_digest, r.price,
            r.time_ms, r.consumer, r.epoch, r.position,
        )  # fmt: skip
        return (
            r.job, struct, self.receipt.signature, list(self.proof),
            self.expected_response_digest, list(self.signatures),
        )  # fmt: skip


def gather_wrong_outputs(
    attestations: Iterable[Attestation],
    *,
    domain: Domain,
    job: bytes,
    epoch: int,
    seed: bytes,
    verifiers: Sequence[str],
    threshold: int,
) -> list[WrongOutputEvidence]:
    """Every call that ``threshold`` of the job's verifiers found wrong alike (same receipt,
    same expected response), by counter."""
    usable, _ = _usable(
        attestations, domain=domain, job=job, epoch=epoch, seed=seed, verifiers=verifiers
    )
    groups: dict[tuple[bytes, bytes], list[tuple[str, SignedMismatch]]] = {}
    for a in usable:
        for m in a.mismatches:
            key = (m.receipt.digest(), m.mismatch.expected_response_digest)
            groups.setdefault(key, []).append((a.verifier, m))
    out = []
    for members in groups.values():
        if len(members) < threshold:
            continue
        first = members[0][1]
        ordered = sorted(members, key=lambda p: int(p[0], 16))
        out.append(
            WrongOutputEvidence(
                first.receipt,
                first.proof,
                first.mismatch.expected_response_digest,
                tuple(m.signature for _, m in ordered),
                tuple(v for v, _ in ordered),
            )
        )
    return sorted(out, key=lambda e: e.receipt.receipt.counter)
