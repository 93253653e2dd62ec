"""The messages FLRewards checks (EIP-712), byte for byte.

::

    Domain("ailedger FLRewards", "1", chainId, verifyingContract)
      RoundRecord(bytes32 taskId,uint32 round,bytes32 modelBefore,bytes32 modelAfter,
                  bytes32 heldoutRoot,bytes32 scoresRoot,bytes32 payoutRoot,uint64 payoutCount,
                  uint256 payoutTotal,bytes32 penaltyRoot,uint64 penaltyCount)
                                                              signed by the aggregator
      Correction(bytes32 taskId,uint32 round,bytes32 recordDigest,bytes32 scoresRoot,
                 bytes32 payoutRoot,uint64 payoutCount,uint256 payoutTotal,bytes32 penaltyRoot,
                 uint64 penaltyCount,address challenger)      signed by each verifier

    digest = keccak256(0x19 0x01 || domain separator || struct hash)

Every field is a static ABI word, so the struct hash is keccak256 of the type hash and the
words concatenated (``abi.encode``). The domain binds chain id and contract address, and the
record names its task, so a record signed for one task, contract or chain is refused by any
other. ``recordDigest`` in a correction is the digest of the record it corrects, and
``challenger`` the client that asked for it: only that client can use it (nobody can
front-run its challenge for the prover's share of the aggregator's bond).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from ailedger.chain.eip712 import DOMAIN_VERSION, Domain, recover_signer, sign_digest
from ailedger.chain.eip712 import SigningKey as SigningKey
from ailedger.errors import InvalidInput
from ailedger.identity.keys import checksum_address, keccak256

__all__ = [
    "CORRECTION_TYPE",
    "FL_REWARDS_NAME",
    "ROUND_RECORD_TYPE",
    "Correction",
    "RoundRecord",
    "fl_rewards_domain",
    "sign_correction",
    "sign_round_record",
]

FL_REWARDS_NAME = "ailedger FLRewards"
ROUND_RECORD_TYPE = (
    "RoundRecord(bytes32 taskId,uint32 round,bytes32 modelBefore,bytes32 modelAfter,"
    "bytes32 heldoutRoot,bytes32 scoresRoot,bytes32 payoutRoot,uint64 payoutCount,"
    "uint256 payoutTotal,bytes32 penaltyRoot,uint64 penaltyCount)"
)
CORRECTION_TYPE = (
    "Correction(bytes32 taskId,uint32 round,bytes32 recordDigest,bytes32 scoresRoot,"
    "bytes32 payoutRoot,uint64 payoutCount,uint256 payoutTotal,bytes32 penaltyRoot,"
    "uint64 penaltyCount,address challenger)"
)
_ROUND_RECORD_TYPEHASH = keccak256(ROUND_RECORD_TYPE.encode())
_CORRECTION_TYPEHASH = keccak256(CORRECTION_TYPE.encode())
_U32 = (1 << 32) - 1
_U64 = (1 << 64) - 1
_U256 = (1 << 256) - 1


def fl_rewards_domain(chain_id: int, contract: str) -> Domain:
    """The EIP-712 domain of the FLRewards contract at ``contract`` on chain ``chain_id``."""
    return Domain(FL_REWARDS_NAME, DOMAIN_VERSION, chain_id, contract)


def _b32(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidInput(f"{what} must be 32 bytes")
    return value


def _uint(value: object, limit: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise InvalidInput(f"{what} {value!r} is not an integer in 0..{limit}")
    return value


def _word(value: bytes | int) -> bytes:
    return value if isinstance(value, bytes) else value.to_bytes(32, "big")


def _fields(type_string: str) -> list[dict[str, str]]:
    """The EIP-712 member list of ``Name(type name,...)``."""
    body = type_string[type_string.index("(") + 1 : -1]
    return [dict(zip(("type", "name"), m.split(" "), strict=True)) for m in body.split(",")]


def _typed(domain: Domain, type_string: str, values: Sequence[Any]) -> dict[str, Any]:
    members = _fields(type_string)
    message = {
        m["name"]: ("0x" + v.hex() if isinstance(v, bytes) else v)
        for m, v in zip(members, values, strict=True)
    }
    return {
        "types": {
            "EIP712Domain": [
                {"name": "name", "type": "string"},
                {"name": "version", "type": "string"},
                {"name": "chainId", "type": "uint256"},
                {"name": "verifyingContract", "type": "address"},
            ],
            type_string[: type_string.index("(")]: members,
        },
        "primaryType": type_string[: type_string.index("(")],
        "domain": domain.to_dict(),
        "message": message,
    }


def _check_roots(obj: Any, names: Sequence[str]) -> None:
    for name in names:
        _b32(getattr(obj, name), name.replace("_", " "))


@dataclass(frozen=True, slots=True)
class RoundRecord:
    """What the aggregator signs for one round (see the module docstring). ``model_before``
    must be the task's current global model; ``heldout_root`` the task's registered one."""

    task_id: bytes
    round: int
    model_before: bytes
    model_after: bytes
    heldout_root: bytes
    scores_root: bytes
    payout_root: bytes
    payout_count: int
    payout_total: int
    penalty_root: bytes
    penalty_count: int

    def __post_init__(self) -> None:
        _check_roots(
            self,
            ("task_id", "model_before", "model_after", "heldout_root", "scores_root",
             "payout_root", "penalty_root"),
        )  # fmt: skip
        if _uint(self.round, _U32, "round") == 0:
            raise InvalidInput("rounds are numbered from 1")
        _uint(self.payout_count, _U64, "payout count")
        _uint(self.payout_total, _U256, "payout total")
        _uint(self.penalty_count, _U64, "penalty count")

    def as_tuple(self) -> tuple[Any, ...]:
        """The contract's ``RoundRecord`` struct."""
        return tuple(getattr(self, f.name) for f in fields(self))

    def struct_hash(self) -> bytes:
        return keccak256(_ROUND_RECORD_TYPEHASH + b"".join(_word(v) for v in self.as_tuple()))

    def digest(self, domain: Domain) -> bytes:
        """The EIP-712 digest the aggregator signs (``roundRecordDigest``)."""
        return keccak256(b"\x19\x01" + domain.separator() + self.struct_hash())

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The full EIP-712 document (for wallets: ``eth_signTypedData_v4``)."""
        return _typed(domain, ROUND_RECORD_TYPE, self.as_tuple())

    def to_dict(self) -> dict[str, Any]:
        return {
            f.name: (v.hex() if isinstance(v, bytes) else v)
            for f in fields(self)
            for v in (getattr(self, f.name),)
        }


@dataclass(frozen=True, slots=True)
class Correction:
    """The verifiers' recomputed result for the round whose record has ``record_digest``,
    for the client ``challenger`` (the only one who can submit it)."""

    task_id: bytes
    round: int
    record_digest: bytes
    scores_root: bytes
    payout_root: bytes
    payout_count: int
    payout_total: int
    penalty_root: bytes
    penalty_count: int
    challenger: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "challenger", checksum_address(self.challenger))
        _check_roots(
            self, ("task_id", "record_digest", "scores_root", "payout_root", "penalty_root")
        )
        if _uint(self.round, _U32, "round") == 0:
            raise InvalidInput("rounds are numbered from 1")
        _uint(self.payout_count, _U64, "payout count")
        _uint(self.payout_total, _U256, "payout total")
        _uint(self.penalty_count, _U64, "penalty count")

    def as_tuple(self) -> tuple[Any, ...]:
        """The contract's ``Correction`` struct."""
        return tuple(getattr(self, f.name) for f in fields(self))

    def struct_hash(self) -> bytes:
        words = [_word(v) for v in self.as_tuple()[:-1]]
        words.append(bytes(12) + bytes.fromhex(self.challenger[2:]))
        return keccak256(_CORRECTION_TYPEHASH + b"".join(words))

    def digest(self, domain: Domain) -> bytes:
        """The EIP-712 digest each verifier signs (``correctionDigest``)."""
        return keccak256(b"\x19\x01" + domain.separator() + self.struct_hash())

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The full EIP-712 document (for wallets: ``eth_signTypedData_v4``)."""
        return _typed(domain, CORRECTION_TYPE, self.as_tuple())


def sign_round_record(record: RoundRecord, domain: Domain, key: SigningKey) -> bytes:
    """The aggregator's 65-byte signature of ``record`` under ``domain``."""
    return sign_digest(record.digest(domain), key)


def sign_correction(
    correction: Correction, domain: Domain, keys: Sequence[SigningKey]
) -> list[bytes]:
    """Each verifier's signature of ``correction``, ordered by signer address (as the
    contract wants them); duplicate signers are refused here already."""
    digest = correction.digest(domain)
    signed = [(recover_signer(digest, s), s) for s in (sign_digest(digest, k) for k in keys)]
    signers = [int(a, 16) for a, _ in signed]
    if len(set(signers)) != len(signers):
        raise InvalidInput("a verifier signs a correction once")
    return [s for _, s in sorted(signed, key=lambda p: int(p[0], 16))]
