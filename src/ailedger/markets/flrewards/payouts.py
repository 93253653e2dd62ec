"""A round's payout and penalty trees, their proofs, and the split of a budget by contribution.

A payout is an RFC 9162 leaf over ``client (20 bytes) || amount (uint256, big-endian)``
(``abi.encodePacked(address, uint256)``, 52 bytes), a penalty a leaf over
``client || amount || reason (uint32)`` (56 bytes), exactly as FLRewards rebuilds them from a
claim. Leaves are ordered by client address, so the same payouts always give the same root;
a client appears at most once per tree (the contract also allows one claim per client and
round). The aggregator posts ``(root, size, total)``; each client claims its own payout with
:meth:`PayoutTree.proof`, so the gas of a round does not grow with the number of clients.

:func:`split_budget` shares a round's budget in proportion to positive contributions (integer
scores, e.g. held-out loss reductions in millionths from :func:`quantise`), rounding each share
down: the shares never add up to more than the budget, and what rounding leaves stays in the
pool (the sponsor gets it back when the task finishes).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ailedger import merkle
from ailedger.errors import InvalidInput, NotFound
from ailedger.identity.keys import checksum_address

__all__ = [
    "REASON_HURT_HELDOUT",
    "REASON_REPEATED_OUTLIER",
    "SCORE_SCALE",
    "Payout",
    "PayoutProof",
    "PayoutTree",
    "Penalty",
    "PenaltyProof",
    "PenaltyTree",
    "quantise",
    "split_budget",
]

#: Penalty reason: the update raised the held-out loss by more than the task's tolerance.
REASON_HURT_HELDOUT = 1
#: Penalty reason: the robust aggregation rule rejected the update as an outlier repeatedly.
REASON_REPEATED_OUTLIER = 2
#: Scores are integers: a float score times this, rounded toward zero (:func:`quantise`).
SCORE_SCALE = 10**6
_U32 = (1 << 32) - 1
_U256 = (1 << 256) - 1


def _address(value: str) -> str:
    try:
        return checksum_address(value)
    except (InvalidInput, ValueError):
        raise InvalidInput(f"not an Ethereum address: {value!r}") from None


def _amount(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= _U256:
        raise InvalidInput(f"{what} {value!r} is not a positive uint256")
    return value


@dataclass(frozen=True, slots=True)
class Payout:
    """``amount`` (in the pool's smallest unit) for ``client`` in one round."""

    client: str
    amount: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "client", _address(self.client))
        _amount(self.amount, "a payout")

    def entry(self) -> bytes:
        return bytes.fromhex(self.client[2:]) + self.amount.to_bytes(32, "big")


@dataclass(frozen=True, slots=True)
class Penalty:
    """``client`` is to lose up to ``amount`` of its stake, for ``reason``."""

    client: str
    amount: int
    reason: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "client", _address(self.client))
        _amount(self.amount, "a penalty")
        if isinstance(self.reason, bool) or not isinstance(self.reason, int):
            raise InvalidInput(f"a penalty reason must be an integer, not {self.reason!r}")
        if not 0 < self.reason <= _U32:
            raise InvalidInput(f"penalty reason {self.reason} is not in 1..{_U32}")

    def entry(self) -> bytes:
        return (
            bytes.fromhex(self.client[2:])
            + self.amount.to_bytes(32, "big")
            + self.reason.to_bytes(4, "big")
        )

    def as_tuple(self) -> tuple[str, int, int]:
        """The contract's ``Penalty`` struct."""
        return (self.client, self.amount, self.reason)


@dataclass(frozen=True, slots=True)
class PayoutProof:
    """What a client sends to ``claim``: its amount, its leaf index and the sibling hashes."""

    payout: Payout
    index: int
    size: int
    root: bytes
    hashes: tuple[bytes, ...]

    def verify(self, root: bytes | None = None) -> None:
        """Raise ``ProofInvalid`` unless the payout is leaf ``index`` of ``root`` (default:
        the root the proof was made for)."""
        leaf = merkle.leaf_hash(self.payout.entry())
        merkle.verify_inclusion(leaf, self.index, self.size, self.hashes, root or self.root)


@dataclass(frozen=True, slots=True)
class PenaltyProof:
    """What ``slashPenalised`` takes for one penalised client."""

    penalty: Penalty
    index: int
    size: int
    root: bytes
    hashes: tuple[bytes, ...]

    def verify(self, root: bytes | None = None) -> None:
        leaf = merkle.leaf_hash(self.penalty.entry())
        merkle.verify_inclusion(leaf, self.index, self.size, self.hashes, root or self.root)


class _Tree:
    def __init__(self, entries: list[bytes], clients: list[str]) -> None:
        if len(set(clients)) != len(clients):
            raise InvalidInput("a client appears at most once in a round's tree")
        self._leaves = merkle.leaf_hashes(entries)
        self._index = {c: i for i, c in enumerate(clients)}
        self.root = merkle.root_from_leaf_hashes(self._leaves)
        self.size = len(self._leaves)

    def _find(self, client: str) -> tuple[int, tuple[bytes, ...]]:
        i = self._index.get(_address(client))
        if i is None:
            raise NotFound(f"{client} has no leaf in this round's tree")
        return i, tuple(merkle.inclusion_proof_from_leaf_hashes(self._leaves, i))


class PayoutTree(_Tree):
    """The payout tree of one round (leaves ordered by client address)."""

    def __init__(self, payouts: Iterable[Payout]) -> None:
        self.payouts = sorted(payouts, key=lambda p: int(p.client, 16))
        super().__init__([p.entry() for p in self.payouts], [p.client for p in self.payouts])
        self.total = sum(p.amount for p in self.payouts)

    def proof(self, client: str) -> PayoutProof:
        i, hashes = self._find(client)
        return PayoutProof(self.payouts[i], i, self.size, self.root, hashes)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root.hex(),
            "size": self.size,
            "total": self.total,
            "payouts": {p.client: p.amount for p in self.payouts},
        }


class PenaltyTree(_Tree):
    """The penalty tree of one round (leaves ordered by client address)."""

    def __init__(self, penalties: Iterable[Penalty]) -> None:
        self.penalties = sorted(penalties, key=lambda p: int(p.client, 16))
        super().__init__([p.entry() for p in self.penalties], [p.client for p in self.penalties])

    def proof(self, client: str) -> PenaltyProof:
        i, hashes = self._find(client)
        return PenaltyProof(self.penalties[i], i, self.size, self.root, hashes)


def quantise(score: float, scale: int = SCORE_SCALE) -> int:
    """A float score as an integer (``score * scale`` rounded toward zero); NaN and infinities
    are refused (a score that is not a number must not read as zero)."""
    if not math.isfinite(score):
        raise InvalidInput(f"score {score!r} is not a finite number")
    return int(score * scale)


def split_budget(contributions: Mapping[str, int], budget: int) -> list[Payout]:
    """Share ``budget`` among clients in proportion to their positive contributions (integer
    scores), each share rounded down; clients with no positive contribution, or whose share
    rounds to 0, get no payout. The shares add up to at most ``budget``."""
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 0:
        raise InvalidInput(f"budget {budget!r} is not a non-negative integer")
    positive: dict[str, int] = {}
    seen: set[str] = set()
    for client, score in contributions.items():
        if isinstance(score, bool) or not isinstance(score, int):
            raise InvalidInput(f"the score of {client} is not an integer (see quantise)")
        address = _address(client)
        if address in seen:
            raise InvalidInput(f"{address} has two scores")
        seen.add(address)
        if score > 0:
            positive[address] = score
    total = sum(positive.values())
    out: list[Payout] = []
    for client, score in positive.items():
        share = budget * score // total
        if share > 0:
            out.append(Payout(client, share))
    return out
