"""The labeling market's formats, shared by the requester, the labelers and any verifier.

- **Labels**: one byte per batch item (the label, ``0..254``; ``ABSTAIN`` = 0xff).
- **Commitment**: ``keccak256(abi.encode(chainId, market, taskId, labeler, keccak256(labels),
  salt))``: bound to the chain, the market contract, the task and the labeler, so a copied
  commitment or copied revealed labels never open for the copier.
- **Gold set**: entries ``salt (32 bytes) || record``, ``record = uint32 item index || uint8
  label`` (big endian), in an RFC 9162 SHA-256 tree (the salted-leaf form of dataset
  fingerprints); the task commits to its root, the requester later reveals every entry with its
  inclusion proof, and the contract scores each labeler on them.
- **Aggregation**: per item, the label with the greatest sum of the gold accuracies of the
  labelers who gave it (ties: the smaller label), and who gave it: the provenance of each record.

Pure: bytes in, bytes out; the chain client is :mod:`ailedger.chain.labeling`.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from eth_abi.abi import encode
from eth_utils.crypto import keccak

from ailedger.attest.predicates import PREDICATE_URI_PREFIX, Predicate
from ailedger.errors import InvalidInput
from ailedger.merkle import inclusion_proof, leaf_hash, root, verify_inclusion

__all__ = [
    "ABSTAIN",
    "LATE",
    "LOW_ACCURACY",
    "REASONS",
    "RECORD_SIZE",
    "SETTLEMENT_PREDICATE_TYPE",
    "AggregatedLabel",
    "GoldSet",
    "SettlementPredicate",
    "aggregate",
    "gold_accuracy",
    "gold_record",
    "labels_commitment",
    "parse_gold_records",
]

#: The label byte of an item a labeler abstains from.
ABSTAIN = 0xFF
#: StakeManager reason codes of LabelingMarket's slashes.
LOW_ACCURACY = 1
LATE = 2
REASONS = {LOW_ACCURACY: "accuracy on the gold set below the threshold", LATE: "did not reveal"}
#: Bytes of one gold record: uint32 item index, uint8 label.
RECORD_SIZE = 5
SALT_SIZE = 32


def gold_record(item: int, label: int) -> bytes:
    """The 5-byte record of gold item ``item`` with ``label``."""
    if not 0 <= item < 2**32 or not 0 <= label < ABSTAIN:
        raise InvalidInput(f"gold item {item} label {label} is out of range")
    return struct.pack(">IB", item, label)


def parse_gold_records(records: bytes) -> list[tuple[int, int]]:
    """``(item, label)`` pairs of concatenated gold records."""
    if len(records) % RECORD_SIZE:
        raise InvalidInput(f"gold records are {len(records)} bytes, not a multiple of 5")
    return [
        struct.unpack(">IB", records[i : i + RECORD_SIZE])
        for i in range(0, len(records), RECORD_SIZE)
    ]


def labels_commitment(
    chain_id: int, market: str, task_id: int, labeler: str, labels: bytes, salt: bytes
) -> bytes:
    """The commitment ``LabelingMarket.commitmentOf`` computes for these labels and salt."""
    if len(salt) != SALT_SIZE:
        raise InvalidInput(f"the salt is {len(salt)} bytes, expected {SALT_SIZE}")
    return keccak(
        encode(
            ["uint256", "address", "uint256", "address", "bytes32", "bytes32"],
            [chain_id, market, task_id, labeler, keccak(labels), salt],
        )
    )


def gold_accuracy(labels: bytes, gold: Sequence[tuple[int, int]]) -> int:
    """How many gold items ``labels`` got right (what the contract's ``score`` counts)."""
    return sum(1 for item, label in gold if labels[item] == label)


@dataclass(frozen=True)
class GoldSet:
    """A hidden gold set: ``(item, label)`` pairs and one 32-byte salt per entry."""

    items: tuple[tuple[int, int], ...]
    salts: tuple[bytes, ...]

    @classmethod
    def derive(cls, items: Sequence[tuple[int, int]], secret: bytes) -> GoldSet:
        """Salts ``sha256(secret || uint32 entry number)``: reproducible by the holder of
        ``secret`` and unguessable without it."""
        if len(secret) < 16:
            raise InvalidInput("the gold secret must be at least 16 bytes")
        salts = tuple(
            hashlib.sha256(secret + struct.pack(">I", i)).digest() for i in range(len(items))
        )
        return cls(tuple((int(a), int(b)) for a, b in items), salts)

    def __post_init__(self) -> None:
        if not self.items or len(self.items) != len(self.salts):
            raise InvalidInput("a gold set needs one salt per item, and at least one item")
        if any(len(s) != SALT_SIZE for s in self.salts):
            raise InvalidInput("gold salts are 32 bytes")

    def entries(self) -> list[bytes]:
        return [
            s + gold_record(i, label) for s, (i, label) in zip(self.salts, self.items, strict=True)
        ]

    def root(self) -> bytes:
        return root(self.entries())

    def records(self) -> bytes:
        return b"".join(gold_record(i, label) for i, label in self.items)

    def proofs(self) -> list[list[bytes]]:
        entries = self.entries()
        return [inclusion_proof(entries, i) for i in range(len(entries))]

    def verify(self, gold_root: bytes) -> None:
        """Raise :class:`~ailedger.errors.ProofInvalid` unless every entry is in ``gold_root``."""
        entries = self.entries()
        for i, proof in enumerate(self.proofs()):
            verify_inclusion(leaf_hash(entries[i]), i, len(entries), proof, gold_root)


@dataclass(frozen=True)
class AggregatedLabel:
    """One item's aggregated label and its provenance: the labelers who gave that label."""

    item: int
    label: int
    weight: float
    labelers: tuple[str, ...]


def aggregate(
    labels: Mapping[str, bytes], accuracy: Mapping[str, float], item_count: int
) -> list[AggregatedLabel]:
    """Majority per item, each vote weighted by its labeler's gold accuracy (0..1); labelers
    without an accuracy (or of accuracy 0) do not vote. An item nobody labels gets ABSTAIN."""
    out: list[AggregatedLabel] = []
    voters = sorted(w for w in labels if accuracy.get(w, 0.0) > 0)
    for item in range(item_count):
        tally: dict[int, float] = {}
        for who in voters:
            label = labels[who][item]
            if label != ABSTAIN:
                tally[label] = tally.get(label, 0.0) + accuracy[who]
        if not tally:
            out.append(AggregatedLabel(item, ABSTAIN, 0.0, ()))
            continue
        best = min(tally, key=lambda lab: (-tally[lab], lab))
        given = tuple(w for w in voters if labels[w][item] == best)
        out.append(AggregatedLabel(item, best, tally[best], given))
    return out


SETTLEMENT_PREDICATE_TYPE = PREDICATE_URI_PREFIX + "labeling-settlement/v1"


class SettlementPredicate(Predicate):
    """A settled labeling task, as its requester states it in the log: the task on the chain,
    its commitments and, per labeler, the outcome (``paid``, ``low-accuracy``, ``late``), the
    score, the reward or the StakeManager fault id and evidence hash of its slash. Not a
    registry record (it is not registered with the predicate registry)."""

    NAME: ClassVar[str] = "labeling-settlement"
    PREDICATE_TYPE: ClassVar[str] = SETTLEMENT_PREDICATE_TYPE
    PURPOSE: ClassVar[str] = "the outcome of a labeling task: who was paid, who was slashed, why"

    chain_id: int
    market: str
    task_id: int
    batch_root: str
    gold_root: str
    gold_digest: str
    labelers: list[dict[str, Any]]
