"""A typed client for ``contracts/DatasetVouching.sol``: curators vouch for a dataset root of a
registered model version with stake locked in the StakeManager; anyone audits it with a bond;
the sample comes from a future block hash; the owner answers with the sampled leaf entries and
their RFC 9162 inclusion proofs; the contract checks the records, and settling slashes or
rewards the curators (pull payments, :meth:`DatasetVouching.claim`).

:class:`VouchTerms` and :class:`RecordChecks` are the contract's ``Terms`` and ``Checks``
structs; :mod:`ailedger.markets.vouch` evaluates the same checks off-chain and builds answers
from a fingerprinted dataset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from ailedger.chain._hex import to_checksum_address
from ailedger.chain._types import AccountSource, DeployedContract, Receipt, Signer, tx_signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.client import Chain
from ailedger.chain.stake import Token
from ailedger.errors import ChainError, InvalidInput

__all__ = [
    "VOUCH_PROVER_BPS",
    "AuditInfo",
    "AuditStatus",
    "DatasetInfo",
    "DatasetVouching",
    "RecordChecks",
    "VouchTerms",
    "deploy_dataset_vouching",
    "register_with_stake_manager",
]

#: The challenger's (prover's) share of a curator's slash when `ailedger chain deploy`
#: registers DatasetVouching as a judge; the rest goes to the treasury.
VOUCH_PROVER_BPS = 5_000
_UINT32 = 2**32 - 1
_UINT64 = 2**64 - 1
_ZERO32 = b"\0" * 32


def _bytes(value: Any) -> bytes:
    """Bytes from a call result (bytes) or an indexed event argument (a 0x hex string)."""
    if isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    return bytes(value)


class AuditStatus(IntEnum):
    """``DatasetVouching.Status``: ``SLASHED`` is a failed audit once settled."""

    NONE = 0
    OPEN = 1
    ANSWERED = 2
    FAILED = 3
    PASSED = 4
    SLASHED = 5


@dataclass(frozen=True)
class VouchTerms:
    """The contract's ``Terms``: the stake asset (an ERC-20), the dataset's size and salt
    length, the share of a vouch a failed audit slashes, the answer and dispute windows
    (seconds), the minimum vouch, the challenger's bond and the reward per passed audit."""

    asset: str
    size: int
    salt_length: int
    slash_bps: int
    answer_window: int
    dispute_window: int
    min_vouch: int
    bond: int
    audit_reward: int

    def as_tuple(self) -> tuple[str, int, int, int, int, int, int, int, int]:
        return (
            to_checksum_address(self.asset), self.size, self.salt_length, self.slash_bps,
            self.answer_window, self.dispute_window, self.min_vouch, self.bond,
            self.audit_reward,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "asset": self.asset,
            "size": self.size,
            "salt_length": self.salt_length,
            "slash_bps": self.slash_bps,
            "answer_window": self.answer_window,
            "dispute_window": self.dispute_window,
            "min_vouch": self.min_vouch,
            "bond": self.bond,
            "audit_reward": self.audit_reward,
        }


@dataclass(frozen=True)
class RecordChecks:
    """The contract's ``Checks``: what every record (a leaf entry after its salt) must
    satisfy (see :mod:`ailedger.markets.vouch` for the rules)."""

    min_length: int = 0
    max_length: int = _UINT32
    prefix: bytes = b""
    label_prefix: bytes = b""
    label_suffix: bytes = b""
    label_min: int = 0
    label_max: int = _UINT64
    test_root: bytes = _ZERO32
    test_size: int = 0
    test_salt_length: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.min_length <= self.max_length <= _UINT32:
            raise InvalidInput("record lengths need 0 <= min <= max < 2^32")
        if not 0 <= self.label_min <= self.label_max <= _UINT64:
            raise InvalidInput("labels need 0 <= min <= max < 2^64")
        if len(self.test_root) != 32:
            raise InvalidInput("a test-set root is 32 bytes")
        if self.test_salt_length not in (0, 32):
            raise InvalidInput("a test-set salt is 0 or 32 bytes")
        if self.has_test_set and self.test_size < 1:
            raise InvalidInput("a test-set root needs its size")

    @property
    def has_test_set(self) -> bool:
        return self.test_root != _ZERO32

    def as_tuple(self) -> tuple[int, int, bytes, bytes, bytes, int, int, bytes, int, int]:
        """The ABI tuple, in the struct's field order."""
        return (
            self.min_length, self.max_length, self.prefix, self.label_prefix,
            self.label_suffix, self.label_min, self.label_max, self.test_root,
            self.test_size, self.test_salt_length,
        )  # fmt: skip

    @classmethod
    def from_tuple(cls, raw: Sequence[Any]) -> RecordChecks:
        return cls(
            int(raw[0]), int(raw[1]), bytes(raw[2]), bytes(raw[3]), bytes(raw[4]),
            int(raw[5]), int(raw[6]), bytes(raw[7]), int(raw[8]), int(raw[9]),
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "min_length": self.min_length,
            "max_length": self.max_length,
            "prefix": self.prefix.decode("utf-8", "replace"),
            "label_prefix": self.label_prefix.decode("utf-8", "replace"),
            "label_suffix": self.label_suffix.decode("utf-8", "replace"),
            "label_min": self.label_min,
            "label_max": self.label_max,
            "test_root": self.test_root.hex() if self.has_test_set else None,
            "test_size": self.test_size,
            "test_salt_length": self.test_salt_length,
        }


@dataclass(frozen=True)
class DatasetInfo:
    """A listed dataset: its registry version, root, owner, open audit (0: none), total
    vouched, reward pool, terms, checks and curators."""

    dataset_id: bytes
    version_id: bytes
    root: bytes
    owner: str
    open_audit: int
    total_vouched: int
    pool: int
    terms: VouchTerms
    checks: RecordChecks
    curators: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset_id": self.dataset_id.hex(),
            "version_id": self.version_id.hex(),
            "root": self.root.hex(),
            "owner": self.owner,
            "open_audit": self.open_audit,
            "total_vouched": self.total_vouched,
            "pool": self.pool,
            "terms": self.terms.to_dict(),
            "checks": self.checks.to_dict(),
            "curators": list(self.curators),
        }


@dataclass(frozen=True)
class AuditInfo:
    """One audit as the contract holds it (``seed`` is zero until drawn)."""

    audit_id: int
    dataset_id: bytes
    challenger: str
    seed_block: int
    k: int
    status: AuditStatus
    deadline: int
    answered_at: int
    reason_code: int
    failed_sample: int
    prover: str
    seed: bytes
    leaves_digest: bytes
    evidence: bytes
    bond: int

    @property
    def drawn(self) -> bool:
        return self.seed != _ZERO32

    def to_dict(self) -> dict[str, Any]:
        return {
            "audit_id": self.audit_id,
            "dataset_id": self.dataset_id.hex(),
            "challenger": self.challenger,
            "seed_block": self.seed_block,
            "k": self.k,
            "status": self.status.name.lower(),
            "deadline": self.deadline,
            "answered_at": self.answered_at,
            "reason_code": self.reason_code,
            "failed_sample": self.failed_sample,
            "prover": self.prover,
            "seed": self.seed.hex() if self.drawn else None,
            "evidence": self.evidence.hex() if self.evidence != _ZERO32 else None,
            "bond": self.bond,
        }


class DatasetVouching(ContractWrapper):
    """The DatasetVouching contract at ``contract`` on ``chain``."""

    def _send(self, fn: str, *args: Any, signer: Signer | AccountSource) -> Receipt:
        return self.chain.transact(self.contract, fn, *args, signer=signer)

    def _event(self, receipt: Receipt, name: str) -> Any:
        for record in receipt.events:
            if record.event == name and record.address == self.address:
                return record.args
        raise ChainError(f"transaction {receipt.tx_hash} emitted no {name} event")

    def _approve(self, asset: str, amount: int, signer: Signer | AccountSource) -> None:
        token = Token.at(self.chain, asset)
        sender = to_checksum_address(tx_signer(signer).address)
        if token.allowance(sender, self.address) < amount:
            token.approve(self.address, amount, signer=signer)

    def dataset_id_of(self, version_id: bytes, root_index: int) -> bytes:
        return bytes(self.chain.call(self.contract, "datasetIdOf", version_id, root_index))

    def list_dataset(
        self,
        version_id: bytes,
        root_index: int,
        terms: VouchTerms,
        checks: RecordChecks,
        *,
        signer: Signer | AccountSource,
    ) -> bytes:
        """List dataset root ``root_index`` of registered version ``version_id`` (the sender
        registered it); its dataset id."""
        receipt = self._send(
            "list", version_id, root_index, terms.as_tuple(), checks.as_tuple(), signer=signer
        )
        return _bytes(self._event(receipt, "Listed")["datasetId"])

    def vouch(self, dataset_id: bytes, amount: int, *, signer: Signer | AccountSource) -> Receipt:
        return self._send("vouch", dataset_id, amount, signer=signer)

    def request_unvouch(self, dataset_id: bytes, *, signer: Signer | AccountSource) -> int:
        """Announce leaving; returns when :meth:`unvouch` is allowed (unix time)."""
        receipt = self._send("requestUnvouch", dataset_id, signer=signer)
        return int(self._event(receipt, "UnvouchRequested")["at"])

    def unvouch(self, dataset_id: bytes, amount: int, *, signer: Signer | AccountSource) -> Receipt:
        """Withdraw ``amount`` of the sender's vouch, announced a notice period before."""
        return self._send("unvouch", dataset_id, amount, signer=signer)

    def fund(self, dataset_id: bytes, amount: int, *, signer: Signer | AccountSource) -> int:
        """Add ``amount`` to the dataset's reward pool (approving first); what arrived."""
        self._approve(self.dataset(dataset_id).terms.asset, amount, signer)
        receipt = self._send("fund", dataset_id, amount, signer=signer)
        return int(self._event(receipt, "Funded")["amount"])

    def open_audit(
        self,
        dataset_id: bytes,
        k: int,
        *,
        signer: Signer | AccountSource,
        seed_block: int | None = None,
        bond: int | None = None,
    ) -> int:
        """Open an audit of ``k`` records seeded by ``seed_block`` (default: two blocks
        ahead), posting ``bond`` (default: the dataset's; approved first); its id."""
        terms = self.dataset(dataset_id).terms
        sent = terms.bond if bond is None else bond
        self._approve(terms.asset, sent, signer)
        block = self.chain.block_number() + 2 if seed_block is None else seed_block
        receipt = self._send("openAudit", dataset_id, block, k, sent, signer=signer)
        return int(self._event(receipt, "AuditOpened")["auditId"])

    def draw(self, audit_id: int, *, signer: Signer | AccountSource) -> bool:
        """Fix the sample (True), or re-seed a lost block hash (False)."""
        receipt = self._send("draw", audit_id, signer=signer)
        return any(r.event == "SampleDrawn" for r in receipt.events)

    def answer(
        self,
        audit_id: int,
        entries: Sequence[bytes],
        proofs: Sequence[Sequence[bytes]],
        *,
        signer: Signer | AccountSource,
    ) -> Receipt:
        """The owner's answer: leaf entries (salt || record) and inclusion proofs, in sample
        order."""
        return self._send(
            "answer", audit_id, list(entries), [list(p) for p in proofs], signer=signer
        )

    def prove_duplicate(
        self,
        audit_id: int,
        leaves: Sequence[bytes],
        sample: int,
        entry: bytes,
        test_entry: bytes,
        test_index: int,
        test_proof: Sequence[bytes],
        *,
        signer: Signer | AccountSource,
    ) -> Receipt:
        dup = (sample, entry, test_entry, test_index, list(test_proof))
        return self._send("proveDuplicate", audit_id, list(leaves), dup, signer=signer)

    def settle(self, audit_id: int, *, signer: Signer | AccountSource) -> Receipt:
        return self._send("settle", audit_id, signer=signer)

    def claim(self, asset: str, to: str | None = None, *, signer: Signer | AccountSource) -> int:
        """Send what the contract owes the sender in ``asset`` to ``to``; the amount."""
        recipient = to_checksum_address(to or tx_signer(signer).address)
        receipt = self._send("claim", to_checksum_address(asset), recipient, signer=signer)
        return int(self._event(receipt, "Claimed")["amount"])

    # -- views --------------------------------------------------------------------------

    def dataset(self, dataset_id: bytes) -> DatasetInfo:
        raw = self.chain.call(self.contract, "getDataset", dataset_id)
        if int(raw[2], 16) == 0:
            raise InvalidInput(f"dataset {dataset_id.hex()} is not listed")
        t = raw[6]
        terms = VouchTerms(str(t[0]), *(int(v) for v in t[1:]))
        return DatasetInfo(
            dataset_id, bytes(raw[0]), bytes(raw[1]), str(raw[2]), int(raw[3]), int(raw[4]),
            int(raw[5]), terms, RecordChecks.from_tuple(raw[7]), tuple(str(c) for c in raw[8]),
        )  # fmt: skip

    def audit(self, audit_id: int) -> AuditInfo:
        raw = self.chain.call(self.contract, "getAudit", audit_id)
        if int(raw[4]) == AuditStatus.NONE:
            raise InvalidInput(f"there is no audit {audit_id}")
        return AuditInfo(
            audit_id, bytes(raw[0]), str(raw[1]), int(raw[2]), int(raw[3]),
            AuditStatus(int(raw[4])), int(raw[5]), int(raw[6]), int(raw[7]), int(raw[8]),
            str(raw[9]), bytes(raw[10]), bytes(raw[11]), bytes(raw[12]), int(raw[13]),
        )  # fmt: skip

    def sample_indices(self, audit_id: int) -> list[int]:
        return [int(i) for i in self.chain.call(self.contract, "sampleIndices", audit_id)]

    def vouched(self, dataset_id: bytes, curator: str) -> int:
        return int(
            self.chain.call(self.contract, "vouched", dataset_id, to_checksum_address(curator))
        )

    def owed(self, account: str, asset: str) -> int:
        return int(
            self.chain.call(
                self.contract, "owed", to_checksum_address(account), to_checksum_address(asset)
            )
        )

    def held(self, asset: str) -> int:
        return int(self.chain.call(self.contract, "held", to_checksum_address(asset)))

    def audit_count(self) -> int:
        return int(self.chain.call(self.contract, "auditCount"))

    def evaluate(self, dataset_id: bytes, record: bytes) -> int:
        return int(self.chain.call(self.contract, "evaluate", dataset_id, record))


def deploy_dataset_vouching(
    chain: Chain, signer: Signer | AccountSource, *, stake_manager: str, registry: str
) -> DeployedContract:
    """Deploy DatasetVouching over ``stake_manager`` and ``registry``. Governance must still
    register it in the StakeManager as a judge and a market (``proposeJudge``,
    ``proposeMarket``), which take effect after the governance delay."""
    return chain.deploy(
        "DatasetVouching",
        to_checksum_address(stake_manager),
        to_checksum_address(registry),
        signer=signer,
    )


def register_with_stake_manager(
    chain: Chain,
    stake_manager: str,
    vouching: str,
    *,
    prover_bps: int,
    signer: Signer | AccountSource,
) -> list[Receipt]:
    """Propose ``vouching`` to the StakeManager's governance (``signer``) as a judge (the
    prover gets ``prover_bps`` of each slash) and as a market; both act after the
    StakeManager's governance delay."""
    if not 0 <= prover_bps <= 10_000:
        raise InvalidInput(f"prover basis points must be 0..10000, not {prover_bps}")
    manager = chain.at("StakeManager", stake_manager, track=False)
    address = to_checksum_address(vouching)
    return [
        chain.transact(manager, "proposeJudge", address, prover_bps, signer=signer),
        chain.transact(manager, "proposeMarket", address, signer=signer),
    ]
