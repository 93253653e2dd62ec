"""Vouched datasets: the workflow around ``contracts/DatasetVouching.sol``
(:class:`ailedger.chain.vouching.DatasetVouching`).

- A dataset's owner lists a dataset root of a model version it registered, with terms and
  record checks; :func:`check_listing` compares a listing with a local fingerprint (root, size,
  salt length) before a curator vouches: the contract cannot see the data, and a listing
  whose size is wrong samples only part of the tree or none of it.
- A challenger opens an audit of ``k`` records; :func:`sample_size` says how many records back
  "fewer than p bad at confidence 1 - d" (:mod:`ailedger.markets._sampling`).
- The owner answers: :func:`build_answer` reads the sampled records from the fingerprinted
  data (input order: record number = leaf index), with their salts and inclusion proofs, and
  :func:`answer_audit` evaluates the declared checks locally (:func:`evaluate_record`, the
  contract's rules) before sending, so the outcome is known in advance.
- :func:`audit_outcome` reads an audit back from the chain: status, the failing record's
  reason and evidence, and each curator's vouch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.chain._types import AccountSource, Signer
from ailedger.chain.vouching import AuditInfo, AuditStatus, DatasetInfo, DatasetVouching
from ailedger.errors import IntegrityError, InvalidInput
from ailedger.fingerprint._leaves import SALT_SIZE, UNSALTED, leaf_entry
from ailedger.fingerprint.dataset import ORDER_INPUT, DatasetFingerprint, prove_record
from ailedger.fingerprint.proofs import MembershipProof
from ailedger.markets._checks import REASONS, RecordChecks, evaluate_record
from ailedger.markets._sampling import (
    miss_probability,
    sample_indices,
    sample_size,
    sample_size_without_replacement,
)

__all__ = [
    "REASONS",
    "Answer",
    "AuditOutcome",
    "RecordChecks",
    "answer_audit",
    "audit_outcome",
    "build_answer",
    "check_listing",
    "evaluate_record",
    "miss_probability",
    "salt_length_of",
    "sample_indices",
    "sample_size",
    "sample_size_without_replacement",
]


def salt_length_of(fp: DatasetFingerprint) -> int:
    """The salt bytes before each record in a leaf entry: 0 unsalted, else 32."""
    return 0 if fp.scheme == UNSALTED else SALT_SIZE


def check_listing(listing: DatasetInfo, fp: DatasetFingerprint) -> None:
    """Raise ``IntegrityError`` unless ``listing`` names ``fp``'s root, size and salt length
    (a curator's check before vouching)."""
    problems = []
    if listing.root != fp.root:
        problems.append(f"root {listing.root.hex()} is not the fingerprint's {fp.root.hex()}")
    if listing.terms.size != fp.size:
        problems.append(f"size {listing.terms.size} is not the fingerprint's {fp.size}")
    if listing.terms.salt_length != salt_length_of(fp):
        problems.append(f"salt length {listing.terms.salt_length} does not fit {fp.scheme}")
    if problems:
        raise IntegrityError(f"dataset {listing.dataset_id.hex()}: " + "; ".join(problems))


@dataclass(frozen=True)
class Answer:
    """The sampled leaf entries and proofs, and what the checks say of each record."""

    indices: tuple[int, ...]
    entries: tuple[bytes, ...]
    proofs: tuple[tuple[bytes, ...], ...]
    reasons: tuple[int, ...]

    @property
    def first_failure(self) -> int | None:
        """The first sample whose record fails a check (the contract stops there)."""
        return next((i for i, r in enumerate(self.reasons) if r), None)


def build_answer(
    path: Path,
    indices: Sequence[int],
    checks: RecordChecks,
    *,
    secret: bytes | None,
    salt_length: int,
) -> Answer:
    """Read records ``indices`` (tree positions) of the dataset at ``path`` with their salts
    and inclusion proofs (through its sidecar index when it has one). Input order only: a
    sorted tree's positions are not record numbers."""
    entries: list[bytes] = []
    proofs: list[tuple[bytes, ...]] = []
    reasons: list[int] = []
    cache: dict[int, tuple[bytes, tuple[bytes, ...], int]] = {}
    for index in indices:
        if index not in cache:
            proof = prove_record(path, secret=secret, index=index, sort_leaves=False)
            if not isinstance(proof, MembershipProof) or proof.record is None:
                raise InvalidInput(f"record {index} of {path} has no membership proof")
            if proof.inclusion.leaf_index != index:
                raise InvalidInput(f"{path}: vouched datasets are fingerprinted in {ORDER_INPUT}")
            if len(proof.salt or b"") != salt_length:
                raise InvalidInput(f"{path}: leaves are not salted with {salt_length} bytes")
            entry = leaf_entry(proof.record, proof.salt)
            cache[index] = (entry, proof.inclusion.hashes, evaluate_record(proof.record, checks))
        entry, hashes, reason = cache[index]
        entries.append(entry)
        proofs.append(tuple(hashes))
        reasons.append(reason)
    return Answer(tuple(indices), tuple(entries), tuple(proofs), tuple(reasons))


def answer_audit(
    vouching: DatasetVouching,
    audit_id: int,
    path: Path,
    *,
    secret: bytes | None,
    signer: Signer | AccountSource,
) -> Answer:
    """Answer audit ``audit_id`` (drawn) from the data at ``path``: the sampled records, their
    salts and proofs, checked locally first (the answer is sent either way: a failing record
    is the truth, and not answering would slash the curators too)."""
    audit = vouching.audit(audit_id)
    listing = vouching.dataset(audit.dataset_id)
    indices = vouching.sample_indices(audit_id)
    answer = build_answer(
        path,
        indices,
        listing.checks,
        secret=secret,
        salt_length=listing.terms.salt_length,
    )
    vouching.answer(audit_id, answer.entries, answer.proofs, signer=signer)
    return answer


@dataclass(frozen=True)
class AuditOutcome:
    """An audit as read back from the chain, with the curators' vouches now."""

    audit: AuditInfo
    dataset: DatasetInfo
    vouches: dict[str, int]

    @property
    def reason(self) -> str | None:
        return REASONS.get(self.audit.reason_code) if self.audit.reason_code else None

    @property
    def passed(self) -> bool:
        return self.audit.status == AuditStatus.PASSED

    @property
    def slashed(self) -> bool:
        return self.audit.status == AuditStatus.SLASHED

    def to_dict(self) -> dict[str, Any]:
        return {
            "audit": self.audit.to_dict(),
            "reason": self.reason,
            "dataset": self.dataset.to_dict(),
            "vouches": dict(self.vouches),
        }


def audit_outcome(vouching: DatasetVouching, audit_id: int) -> AuditOutcome:
    audit = vouching.audit(audit_id)
    listing = vouching.dataset(audit.dataset_id)
    vouches = {c: vouching.vouched(audit.dataset_id, c) for c in listing.curators}
    return AuditOutcome(audit, listing, vouches)
