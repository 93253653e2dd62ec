"""What the InferenceMarket contract settles an epoch with: the sample, the verifiers' signed
result, and how many samples a claim needs.

::

    Domain("ailedger InferenceMarket", "1", chainId, verifyingContract)
      Verification(bytes32 jobId,uint64 epoch,bytes32 seed,uint32 passed,uint32 total)
                                                                  signed by each verifier
      Mismatch(bytes32 jobId,uint64 counter,bytes32 requestDigest,bytes32 responseDigest,
               bytes32 expectedResponseDigest)                    signed by each verifier

A committed epoch holds the job's calls ``first .. first + calls - 1`` (receipt counters);
once the block after the commitment is mined its hash is the ``seed`` and sample ``i`` is
counter ``first + keccak256(seed || jobId || epoch || i) mod calls`` (32-byte words, as
Solidity's ``abi.encode``), with replacement. Verifiers re-execute those calls and sign how
many of the ``k`` passed; the contract pays the epoch when ``passed / k >= passBps / 10000``.
For each sampled call whose response they could not reproduce, they sign a :class:`Mismatch`
(the receipt's counter, request and response digests, and the response digest they computed);
in a failed epoch the consumer takes it, with the receipt and its inclusion proof, to
``proveWrongOutput`` and the provider is slashed.

How many samples back "at least 99 % of the calls are right, at 95 % confidence"?
:func:`hoeffding_sample_size` gives Hoeffding's bound for an observed pass rate to be within
``margin`` of the true rate with probability ``confidence``: ``k >= ln(1 / (1 - confidence))
/ (2 margin^2)``; :func:`zero_failure_sample_size` the much smaller count when every sampled
call must pass (the with-replacement miss bound of :mod:`ailedger.markets._sampling`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from Crypto.Hash import keccak as _keccak_mod

from ailedger.chain.eip712 import Domain
from ailedger.errors import InvalidInput
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets._sampling import sample_size

__all__ = [
    "MISMATCH_TYPE",
    "VERIFICATION_TYPE",
    "Mismatch",
    "Verification",
    "claim_report",
    "hoeffding_confidence",
    "hoeffding_sample_size",
    "passes",
    "sample_counters",
    "sign_mismatch",
    "sign_verification",
    "zero_failure_confidence",
    "zero_failure_sample_size",
]

VERIFICATION_TYPE = (
    "Verification(bytes32 jobId,uint64 epoch,bytes32 seed,uint32 passed,uint32 total)"
)
MISMATCH_TYPE = (
    "Mismatch(bytes32 jobId,uint64 counter,bytes32 requestDigest,bytes32 responseDigest,"
    "bytes32 expectedResponseDigest)"
)
BPS = 10_000
_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1


def _keccak(data: bytes) -> bytes:
    return bytes(_keccak_mod.new(digest_bits=256, data=data).digest())


_VERIFICATION_TYPEHASH = _keccak(VERIFICATION_TYPE.encode())
_MISMATCH_TYPEHASH = _keccak(MISMATCH_TYPE.encode())


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


@dataclass(frozen=True, slots=True)
class Verification:
    """A verifier's result for one epoch of one job: ``passed`` of ``total`` sampled calls."""

    job: bytes
    epoch: int
    seed: bytes
    passed: int
    total: int

    def __post_init__(self) -> None:
        if len(self.job) != 32 or len(self.seed) != 32:
            raise InvalidInput("job id and seed must be 32 bytes")
        if not 0 <= self.epoch <= _U64:
            raise InvalidInput(f"epoch {self.epoch} is not a uint64")
        if not 0 <= self.passed <= self.total <= _U32:
            raise InvalidInput(f"passed {self.passed} of {self.total} is not 0 <= passed <= total")

    def digest(self, domain: Domain | bytes) -> bytes:
        separator = domain if isinstance(domain, bytes) else domain.separator()
        struct = _keccak(
            _VERIFICATION_TYPEHASH
            + self.job
            + _word(self.epoch)
            + self.seed
            + _word(self.passed)
            + _word(self.total)
        )
        return _keccak(b"\x19\x01" + separator + struct)


def sign_verification(
    result: Verification, domain: Domain | bytes, signers: list[Secp256k1Signer]
) -> list[bytes]:
    """Each signer's signature over ``result``, ordered by signer address (the contract
    wants strictly increasing signers: no duplicates)."""
    digest = result.digest(domain)
    ordered = sorted(signers, key=lambda s: int(s.address, 16))
    return [s.sign_digest(digest) for s in ordered]


@dataclass(frozen=True, slots=True)
class Mismatch:
    """The verifiers' finding that call ``counter`` of ``job`` (the receipt's request and
    response digests) re-executed to ``expected_response_digest`` instead."""

    job: bytes
    counter: int
    request_digest: bytes
    response_digest: bytes
    expected_response_digest: bytes

    def __post_init__(self) -> None:
        for name in ("job", "request_digest", "response_digest", "expected_response_digest"):
            if len(getattr(self, name)) != 32:
                raise InvalidInput(f"{name.replace('_', ' ')} must be 32 bytes")
        if not 0 <= self.counter <= _U64:
            raise InvalidInput(f"counter {self.counter} is not a uint64")
        if self.response_digest == self.expected_response_digest:
            raise InvalidInput("a mismatch needs an expected response other than the receipt's")

    def digest(self, domain: Domain | bytes) -> bytes:
        separator = domain if isinstance(domain, bytes) else domain.separator()
        struct = _keccak(
            _MISMATCH_TYPEHASH
            + self.job
            + _word(self.counter)
            + self.request_digest
            + self.response_digest
            + self.expected_response_digest
        )
        return _keccak(b"\x19\x01" + separator + struct)


def sign_mismatch(
    result: Mismatch, domain: Domain | bytes, signers: list[Secp256k1Signer]
) -> list[bytes]:
    """Each signer's signature over ``result``, ordered by signer address."""
    digest = result.digest(domain)
    ordered = sorted(signers, key=lambda s: int(s.address, 16))
    return [s.sign_digest(digest) for s in ordered]


def sample_counters(
    seed: bytes, job: bytes, epoch: int, first: int, calls: int, k: int
) -> list[int]:
    """The receipt counters the contract samples from an epoch (in sample order)."""
    if calls < 1 or k < 0:
        raise InvalidInput("an epoch holds at least one call and k is not negative")
    prefix = seed + job + _word(epoch)
    return [first + int.from_bytes(_keccak(prefix + _word(i)), "big") % calls for i in range(k)]


def passes(passed: int, total: int, pass_bps: int) -> bool:
    """The contract's rule: ``passed * 10000 >= pass_bps * total``."""
    return passed * BPS >= pass_bps * total


def hoeffding_sample_size(margin: float, confidence: float) -> int:
    """The least ``k`` with ``exp(-2 k margin^2) <= 1 - confidence`` (Hoeffding): the observed
    pass rate of ``k`` samples is then below the true rate by more than ``margin`` with
    probability at most ``1 - confidence``."""
    if not 0.0 < margin < 1.0 or not 0.0 < confidence < 1.0:
        raise InvalidInput("margin and confidence must be in (0, 1)")
    d = 1.0 - confidence
    k = max(1, math.ceil(math.log(1.0 / d) / (2.0 * margin * margin)))
    while k > 1 and math.exp(-2.0 * (k - 1) * margin * margin) <= d:
        k -= 1
    while math.exp(-2.0 * k * margin * margin) > d:
        k += 1
    return k


def zero_failure_sample_size(bad_fraction: float, confidence: float) -> int:
    """The least ``k`` with ``(1 - bad_fraction)^k <= 1 - confidence``: if ``k`` sampled calls
    all pass, fewer than ``bad_fraction`` of the calls are bad at that confidence."""
    return sample_size(bad_fraction, 1.0 - confidence)


def hoeffding_confidence(k: int, margin: float) -> float:
    """The confidence ``1 - exp(-2 k margin^2)`` that ``k`` samples give Hoeffding's claim
    "the true pass rate is at least the observed one minus ``margin``"."""
    if k < 0 or not 0.0 < margin < 1.0:
        raise InvalidInput("k must be >= 0 and the margin in (0, 1)")
    return 1.0 - math.exp(-2.0 * k * margin * margin)


def zero_failure_confidence(k: int, bad_fraction: float) -> float:
    """The confidence ``1 - (1 - bad_fraction)^k`` that ``k`` sampled calls, all passing,
    give "fewer than ``bad_fraction`` of the calls are bad"."""
    if k < 0 or not 0.0 < bad_fraction < 1.0:
        raise InvalidInput("k must be >= 0 and the bad fraction in (0, 1)")
    return 1.0 - (1.0 - bad_fraction) ** k


def claim_report(k: int, pass_bps: int = 9_900, confidence: float = 0.95) -> dict[str, Any]:
    """How much ``k`` samples back the claim "at least ``pass_bps`` / 10000 of the calls are
    right": the samples the claim needs at ``confidence`` (Hoeffding with a margin of 1 -
    claim; and when every sampled call must pass) and the confidence ``k`` samples give.
    ``line`` says it in one sentence."""
    if not 0 < pass_bps < BPS:
        raise InvalidInput("the claim must be between 0 and 10000 basis points, exclusive")
    margin = 1.0 - pass_bps / BPS
    doc: dict[str, Any] = {
        "claim": pass_bps / BPS,
        "confidence": confidence,
        "k": k,
        "hoeffding_k": hoeffding_sample_size(margin, confidence),
        "zero_failure_k": zero_failure_sample_size(margin, confidence),
        "hoeffding_confidence": hoeffding_confidence(k, margin),
        "zero_failure_confidence": zero_failure_confidence(k, margin),
    }
    doc["line"] = (
        f"a {doc['claim']:.4g} claim at {confidence:.4g} confidence needs "
        f"{doc['hoeffding_k']:,} samples (Hoeffding) or {doc['zero_failure_k']:,} that all pass; "
        f"k = {k} gives {doc['hoeffding_confidence']:.2%} (Hoeffding) or "
        f"{doc['zero_failure_confidence']:.2%} if all {k} pass"
    )
    return doc
