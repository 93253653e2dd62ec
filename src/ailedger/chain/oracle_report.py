"""Oracle reports as ``contracts/OracleFeeds.sol`` checks them, byte for byte.

::

    Domain("ailedger OracleFeeds", "1", chain_id, contract)
    Report(bytes32 feedId,bytes32 configDigest,uint64 epoch,int256[] observations,
           bytes observers,bytes32 inputRoot,bytes32 modelDigest,uint64 observationsTimestamp)

    struct hash = keccak256(abi.encode(typehash, feedId, configDigest, epoch,
                            keccak256(observations as 32-byte words), keccak256(observers),
                            inputRoot, modelDigest, observationsTimestamp))
    config digest = keccak256(abi.encode(chainId, contract, feedId, configVersion, signers))
    feed id = keccak256(abi.encode(creator, label)),  label = keccak256(utf-8 name)

Observations are sorted ascending; ``observers[i]`` is the index (in the configured,
ascending signer list) of the oracle that observed ``observations[i]``. The contract needs at
least 2f+1 observations from distinct oracles and f+1 signatures from distinct oracles, sorted
by signer address (:func:`sign_report`). The stored answer is ``observations[len // 2]``.

``transmit`` takes the signatures concatenated, 65 bytes each (:func:`pack_signatures`), and
the configuration's signer set and values (f, minAnswer, maxAnswer, maxAge), which the
contract checks against the configuration's commitment, stored for each of its transmitters
(:func:`config_commitment`)::

    commitment = keccak256(configDigest || f || minAnswer || maxAnswer || maxAge
                           || signers[0] || ... || signers[n-1])     (32-byte words)
A round is stored in one slot (answer, observation time, config version); its input root
and model digest are in its ReportAccepted event, committed by the feed's rounds head, a
hash chain over the feed's rounds (:func:`rounds_head`)::

    head = bytes24(keccak256(abi.encode(previous head, epoch, answer, observationsTimestamp,
                                        configVersion, inputRoot, modelDigest)))

The signatures attribute the whole report to its f+1 signers. Each observation also carries
its observer's own EIP-712 signature (:func:`observation_digest`, :func:`sign_observation`),
which ``transmit`` verifies (``observationSignatures``: 65 bytes per observation, in
observation order), so ``observations[i]`` is what the oracle at ``observers[i]`` signed::

    Observation(bytes32 feedId,bytes32 configDigest,uint64 epoch,int256 value,
                uint64 observationsTimestamp,bytes32 inputRoot,bytes32 modelDigest)

The contract stores each accepted report's struct hash (:func:`report_hash`), against which
``OracleJudge`` checks a challenged observation.

A feed lives in its creator's namespace (:func:`feed_id`): nobody can create the id another
account's feed will have.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.chain._hex import abi_encode, keccak
from ailedger.chain.eip712 import DOMAIN_VERSION, Domain, SigningKey, recover_signer, sign_digest
from ailedger.errors import InvalidInput
from ailedger.identity.keys import checksum_address

__all__ = [
    "MAX_ORACLES",
    "OBSERVATION_TYPE",
    "ORACLE_FEEDS_NAME",
    "REPORT_TYPE",
    "OracleReport",
    "config_commitment",
    "config_digest",
    "feed_id",
    "feed_label",
    "observation_digest",
    "oracle_domain",
    "pack_signatures",
    "report_digest",
    "report_hash",
    "report_typed_data",
    "rounds_head",
    "sign_observation",
    "sign_report",
]

ORACLE_FEEDS_NAME = "ailedger OracleFeeds"
REPORT_TYPE = (
    "Report(bytes32 feedId,bytes32 configDigest,uint64 epoch,int256[] observations,"
    "bytes observers,bytes32 inputRoot,bytes32 modelDigest,uint64 observationsTimestamp)"
)
OBSERVATION_TYPE = (
    "Observation(bytes32 feedId,bytes32 configDigest,uint64 epoch,int256 value,"
    "uint64 observationsTimestamp,bytes32 inputRoot,bytes32 modelDigest)"
)
MAX_ORACLES = 31

_REPORT_TYPEHASH = keccak(text=REPORT_TYPE)
_OBSERVATION_TYPEHASH = keccak(text=OBSERVATION_TYPE)
_UINT64_MAX = (1 << 64) - 1
_INT256_MIN = -(1 << 255)
_INT256_MAX = (1 << 255) - 1
_REPORT_FIELDS = [
    {"name": "feedId", "type": "bytes32"},
    {"name": "configDigest", "type": "bytes32"},
    {"name": "epoch", "type": "uint64"},
    {"name": "observations", "type": "int256[]"},
    {"name": "observers", "type": "bytes"},
    {"name": "inputRoot", "type": "bytes32"},
    {"name": "modelDigest", "type": "bytes32"},
    {"name": "observationsTimestamp", "type": "uint64"},
]
_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def _bytes32(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InvalidInput(f"{what} must be 32 bytes")
    return bytes(value)


def _uint64(value: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT64_MAX:
        raise InvalidInput(f"{what} {value!r} is not an integer in 0..{_UINT64_MAX}")
    return value


def feed_label(name: str) -> bytes:
    """A feed's label inside its creator's namespace: keccak256 of its UTF-8 name."""
    if not name:
        raise InvalidInput("a feed name must not be empty")
    return keccak(text=name)


def feed_id(creator: str, name: str | bytes) -> bytes:
    """The id of feed ``name`` (a name, or its 32-byte label) created by ``creator``:
    ``keccak256(abi.encode(creator, label))`` (``feedIdOf`` on-chain)."""
    label = feed_label(name) if isinstance(name, str) else _bytes32(name, "feed label")
    return keccak(abi_encode(["address", "bytes32"], [checksum_address(creator), label]))


def oracle_domain(chain_id: int, contract: str) -> Domain:
    """The EIP-712 domain of the OracleFeeds contract at ``contract`` on ``chain_id``."""
    return Domain(ORACLE_FEEDS_NAME, DOMAIN_VERSION, chain_id, contract)


def config_digest(
    chain_id: int, contract: str, feed: bytes, version: int, signers: Sequence[str]
) -> bytes:
    """``configDigestOf``: binds a report to the chain, contract, feed and oracle set."""
    return keccak(
        abi_encode(
            ["uint256", "address", "bytes32", "uint32", "address[]"],
            [
                chain_id,
                checksum_address(contract),
                _bytes32(feed, "feed id"),
                version,
                [checksum_address(s) for s in signers],
            ],
        )
    )


def config_commitment(
    digest: bytes, f: int, bounds: tuple[int, int], max_age: int, signers: Sequence[str]
) -> bytes:
    """``configCommitmentOf``: what ``transmit`` checks the signer set and values it is
    given against (one word each: digest, f, min and max answer, max age, each signer)."""
    lo, hi = bounds
    addresses = [checksum_address(s) for s in signers]
    return keccak(
        abi_encode(
            ["bytes32", "uint8", "int256", "int256", "uint32"] + ["address"] * len(addresses),
            [_bytes32(digest, "config digest"), f, lo, hi, max_age, *addresses],
        )
    )


@dataclass(frozen=True)
class OracleReport:
    """A report as ``transmit`` takes it (signatures travel separately)."""

    feed_id: bytes
    config_digest: bytes
    epoch: int
    observations: tuple[int, ...]
    observers: bytes
    input_root: bytes
    model_digest: bytes
    observations_timestamp: int

    def __post_init__(self) -> None:
        _bytes32(self.feed_id, "feed id")
        _bytes32(self.config_digest, "config digest")
        _bytes32(self.input_root, "input root")
        _bytes32(self.model_digest, "model digest")
        _uint64(self.epoch, "epoch")
        _uint64(self.observations_timestamp, "observations timestamp")
        for value in self.observations:
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"observation {value!r} is not an integer")
            if not _INT256_MIN <= value <= _INT256_MAX:
                raise InvalidInput(f"observation {value} does not fit in int256")
        if len(self.observers) != len(self.observations):
            raise InvalidInput("a report needs one observer index per observation")

    @classmethod
    def build(
        cls,
        feed: bytes,
        digest: bytes,
        epoch: int,
        observed: Mapping[str, int],
        signers: Sequence[str],
        input_root: bytes,
        model_digest: bytes,
        timestamp: int,
    ) -> OracleReport:
        """A report from ``observed`` (oracle address -> value), sorted as the contract wants,
        with each observer's index in the configured ``signers`` list."""
        index = {checksum_address(s): i for i, s in enumerate(signers)}
        pairs = []
        for address, value in observed.items():
            who = checksum_address(address)
            if who not in index:
                raise InvalidInput(f"{who} is not in the oracle set")
            pairs.append((value, index[who]))
        pairs.sort()
        return cls(
            feed,
            digest,
            epoch,
            tuple(v for v, _ in pairs),
            bytes(i for _, i in pairs),
            input_root,
            model_digest,
            timestamp,
        )

    @property
    def median(self) -> int:
        """The answer the contract stores: ``observations[len // 2]`` of the sorted values."""
        if not self.observations:
            raise InvalidInput("a report without observations has no median")
        return sorted(self.observations)[len(self.observations) // 2]

    def as_tuple(self) -> tuple[bytes, bytes, int, list[int], bytes, bytes, bytes, int]:
        return (
            self.feed_id,
            self.config_digest,
            self.epoch,
            list(self.observations),
            self.observers,
            self.input_root,
            self.model_digest,
            self.observations_timestamp,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "feed_id": "0x" + self.feed_id.hex(),
            "config_digest": "0x" + self.config_digest.hex(),
            "epoch": self.epoch,
            "observations": list(self.observations),
            "observers": list(self.observers),
            "input_root": self.input_root.hex(),
            "model_digest": self.model_digest.hex(),
            "observations_timestamp": self.observations_timestamp,
        }


def report_hash(report: OracleReport) -> bytes:
    """The report's EIP-712 struct hash (``reportHash``; its first 24 bytes are stored per
    round: ``acceptedReport``)."""
    words = b"".join(v.to_bytes(32, "big", signed=True) for v in report.observations)
    return keccak(
        abi_encode(
            ["bytes32"] * 3 + ["uint64", "bytes32", "bytes32", "bytes32", "bytes32", "uint64"],
            [
                _REPORT_TYPEHASH,
                report.feed_id,
                report.config_digest,
                report.epoch,
                keccak(words),
                keccak(report.observers),
                report.input_root,
                report.model_digest,
                report.observations_timestamp,
            ],
        )
    )


def report_digest(domain: Domain, report: OracleReport) -> bytes:
    """The EIP-712 digest each signing oracle signs (``reportDigest`` on-chain)."""
    return keccak(b"\x19\x01" + domain.separator() + report_hash(report))


def observation_digest(domain: Domain, report: OracleReport, value: int) -> bytes:
    """The EIP-712 digest an oracle signs for its own ``value`` in the round of ``report``
    (``observationDigest`` on-chain): the report's feed, config digest, epoch, time, input
    root and model, not its other observations, so ``report`` may be a template without
    observations."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"observation {value!r} is not an integer")
    if not _INT256_MIN <= value <= _INT256_MAX:
        raise InvalidInput(f"observation {value} does not fit in int256")
    struct_hash = keccak(
        abi_encode(
            ["bytes32", "bytes32", "bytes32", "uint64", "int256", "uint64", "bytes32", "bytes32"],
            [
                _OBSERVATION_TYPEHASH,
                report.feed_id,
                report.config_digest,
                report.epoch,
                value,
                report.observations_timestamp,
                report.input_root,
                report.model_digest,
            ],
        )
    )
    return keccak(b"\x19\x01" + domain.separator() + struct_hash)


def sign_observation(domain: Domain, report: OracleReport, value: int, key: SigningKey) -> bytes:
    """``key``'s signature of its observation ``value`` in the round of ``report``."""
    return sign_digest(observation_digest(domain, report, value), key)


def report_typed_data(domain: Domain, report: OracleReport) -> dict[str, Any]:
    """The full EIP-712 document of a report (for wallets and eth-account)."""
    message = {
        "feedId": "0x" + report.feed_id.hex(),
        "configDigest": "0x" + report.config_digest.hex(),
        "epoch": report.epoch,
        "observations": list(report.observations),
        "observers": "0x" + report.observers.hex(),
        "inputRoot": "0x" + report.input_root.hex(),
        "modelDigest": "0x" + report.model_digest.hex(),
        "observationsTimestamp": report.observations_timestamp,
    }
    return {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, "Report": _REPORT_FIELDS},
        "primaryType": "Report",
        "domain": domain.to_dict(),
        "message": message,
    }


def sign_report(domain: Domain, report: OracleReport, keys: Sequence[SigningKey]) -> list[bytes]:
    """Signatures of ``report`` by ``keys``, ordered by signer address as ``transmit`` wants."""
    digest = report_digest(domain, report)
    signatures = [sign_digest(digest, k) for k in keys]
    return sorted(signatures, key=lambda sig: int(recover_signer(digest, sig), 16))


def pack_signatures(signatures: Sequence[bytes]) -> bytes:
    """``signatures`` as ``transmit`` takes them: 65-byte (r, s, v) signatures, concatenated
    in the order given (:func:`sign_report` orders them by signer)."""
    for sig in signatures:
        if len(sig) != 65:
            raise InvalidInput(f"a report signature is 65 bytes, not {len(sig)}")
    return b"".join(signatures)


def rounds_head(
    previous: bytes,
    epoch: int,
    answer: int,
    observations_timestamp: int,
    config_version: int,
    input_root: bytes,
    model_digest: bytes,
) -> bytes:
    """The feed's rounds head (24 bytes) after the round given, from the head before it
    (24 zero bytes before a feed's first round), as ``OracleFeeds.roundsHeadOf`` computes it."""
    if len(previous) != 24:
        raise InvalidInput(f"a rounds head is 24 bytes, not {len(previous)}")
    encoded = abi_encode(
        ["bytes24", "uint64", "int192", "uint32", "uint32", "bytes32", "bytes32"],
        [
            previous,
            _uint64(epoch, "epoch"),
            answer,
            observations_timestamp,
            config_version,
            _bytes32(input_root, "input root"),
            _bytes32(model_digest, "model digest"),
        ],
    )
    return keccak(encoded)[:24]
