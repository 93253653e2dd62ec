"""Usage receipts: what a provider signs for every inference call (EIP-712, for a contract).

::

    Domain("ailedger InferenceMarket", "1", chainId, verifyingContract)
      Receipt(bytes32 jobId,uint64 counter,bytes32 requestDigest,bytes32 responseDigest,
              bytes32 modelDigest,uint256 price,uint64 timeMs,address consumer,
              uint64 epoch,uint64 position)                       signed by the provider
      EpochRoot(uint64 epoch,uint64 size,bytes32 root)            signed by the provider

    digest = keccak256(0x19 0x01 || domain separator || struct hash)

``verifyingContract`` is the InferenceMarket the receipts are for (``contracts/
InferenceMarket.sol``, which checks them). Every field is a static
32-byte ABI word, so the struct hash is ``keccak256(typehash || word || ...)`` built here
by concatenation, byte for byte what ``abi.encode`` gives (the tests check it against
eth-abi and eth-account's ``encode_typed_data``).

- ``jobId`` names the job (the consumer's choice; later the InferenceMarket's escrow id);
  ``counter`` numbers the job's calls 1, 2, 3, ... with no gap, so a consumer holding
  receipts 1..n knows there is no receipt it was not given;
- ``requestDigest = sha256(salt || JCS(input))`` (RFC 8785; the salt, 0 or 32 bytes, is the
  consumer's, so a third party who sees the receipt cannot guess the input),
  ``responseDigest = sha256(JCS(output))``, ``modelDigest`` the served model's subject digest;
- ``epoch`` and ``position`` place the receipt in the provider's epoch tree: the receipt's
  EIP-712 digest is leaf ``position`` of the RFC 9162 tree whose root the provider signs as
  ``EpochRoot(epoch, size, root)`` and commits on-chain (``commitEpoch``). A root that omits
  or alters a signed receipt is disproven by the receipt and the inclusion proof of whatever
  the root holds at that position.

:func:`verify_receipt` fails closed: a receipt for another domain (chain, contract), another
job, signer or model raises :class:`~ailedger.errors.VerificationFailed` with a stable code.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any

import rfc8785
from Crypto.Hash import keccak as _keccak_mod

from ailedger.chain.eip712 import DOMAIN_VERSION, Domain
from ailedger.errors import FormatError, InvalidInput, ProofInvalid, SignatureInvalid
from ailedger.identity.keys import Secp256k1Signer, checksum_address, recover_digest
from ailedger.merkle import InclusionProof, leaf_hash

__all__ = [
    "EPOCH_ROOT_TYPE",
    "INFERENCE_MARKET_NAME",
    "RECEIPT_TYPE",
    "EpochRoot",
    "Receipt",
    "SignedEpochRoot",
    "SignedReceipt",
    "market_domain",
    "request_digest",
    "response_digest",
    "sign_epoch_root",
    "sign_receipt",
    "verify_epoch_root",
    "verify_inclusion_in_epoch",
    "verify_receipt",
]

INFERENCE_MARKET_NAME = "ailedger InferenceMarket"
RECEIPT_TYPE = (
    "Receipt(bytes32 jobId,uint64 counter,bytes32 requestDigest,bytes32 responseDigest,"
    "bytes32 modelDigest,uint256 price,uint64 timeMs,address consumer,uint64 epoch,"
    "uint64 position)"
)
EPOCH_ROOT_TYPE = "EpochRoot(uint64 epoch,uint64 size,bytes32 root)"

_U64 = (1 << 64) - 1
_U256 = (1 << 256) - 1


def _keccak(data: bytes) -> bytes:
    return bytes(_keccak_mod.new(digest_bits=256, data=data).digest())


_RECEIPT_TYPEHASH = _keccak(RECEIPT_TYPE.encode())
#: EIP-55 forms of the consumers seen (each call names one; a keccak each time is measurable).
_checksum = functools.lru_cache(maxsize=4096)(checksum_address)
_EPOCH_ROOT_TYPEHASH = _keccak(EPOCH_ROOT_TYPE.encode())


def market_domain(chain_id: int, contract: str) -> Domain:
    """The EIP-712 domain of the InferenceMarket at ``contract`` on chain ``chain_id``."""
    return Domain(INFERENCE_MARKET_NAME, DOMAIN_VERSION, chain_id, contract)


def _b32(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidInput(f"{what} must be 32 bytes")
    return value


def _uint(value: object, limit: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise InvalidInput(f"{what} {value!r} is not an integer in 0..{limit}")
    return value


def _hex32(text: object, what: str) -> bytes:
    if not isinstance(text, str) or len(text) != 66 or text[:2] != "0x":
        raise FormatError(f"{what} must be 0x and 64 hex digits")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise FormatError(f"{what} must be 0x and 64 hex digits") from None


def _json_uint(value: object, limit: int, what: str) -> int:
    """An integer field of a JSON document: a JSON integer, or a decimal string (uint256)."""
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) <= 78:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise FormatError(f"{what} must be an integer in 0..{limit}")
    return value


def _field(doc: dict[str, Any], name: str) -> Any:
    if name not in doc:
        raise FormatError(f"the document has no {name!r}")
    return doc[name]


@dataclass(frozen=True, slots=True)
class Receipt:
    """The fields a provider signs for one call (see the module docstring)."""

    job: bytes
    counter: int
    request_digest: bytes
    response_digest: bytes
    model_digest: bytes
    price: int
    time_ms: int
    consumer: str
    epoch: int
    position: int

    def __post_init__(self) -> None:
        _b32(self.job, "job id")
        _uint(self.counter, _U64, "counter")
        if self.counter == 0:
            raise InvalidInput("counters start at 1")
        _b32(self.request_digest, "request digest")
        _b32(self.response_digest, "response digest")
        _b32(self.model_digest, "model digest")
        _uint(self.price, _U256, "price")
        _uint(self.time_ms, _U64, "time")
        _uint(self.epoch, _U64, "epoch")
        _uint(self.position, _U64, "position")
        object.__setattr__(self, "consumer", _checksum(self.consumer))

    def struct_hash(self) -> bytes:
        """``hashStruct(Receipt)``: keccak256 of the typehash and ten static words."""
        return _keccak(
            _RECEIPT_TYPEHASH
            + self.job
            + self.counter.to_bytes(32, "big")
            + self.request_digest
            + self.response_digest
            + self.model_digest
            + self.price.to_bytes(32, "big")
            + self.time_ms.to_bytes(32, "big")
            + bytes(12)
            + bytes.fromhex(self.consumer[2:])
            + self.epoch.to_bytes(32, "big")
            + self.position.to_bytes(32, "big")
        )

    def digest(self, domain: Domain | bytes) -> bytes:
        """The EIP-712 digest the provider signs (``domain``: a Domain or its separator);
        also the receipt's leaf in its epoch tree."""
        separator = domain if isinstance(domain, bytes) else domain.separator()
        return _keccak(b"\x19\x01" + separator + self.struct_hash())

    def message(self) -> dict[str, Any]:
        """The EIP-712 ``message`` (hex strings, integers; price as a JSON integer)."""
        return {
            "jobId": "0x" + self.job.hex(),
            "counter": self.counter,
            "requestDigest": "0x" + self.request_digest.hex(),
            "responseDigest": "0x" + self.response_digest.hex(),
            "modelDigest": "0x" + self.model_digest.hex(),
            "price": self.price,
            "timeMs": self.time_ms,
            "consumer": self.consumer,
            "epoch": self.epoch,
            "position": self.position,
        }

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The full EIP-712 document (``eth_signTypedData_v4``, eth-account)."""
        fields = [
            {"name": name, "type": kind}
            for kind, name in (
                part.split(" ") for part in RECEIPT_TYPE[len("Receipt(") : -1].split(",")
            )
        ]
        return {
            "types": {"EIP712Domain": _DOMAIN_FIELDS, "Receipt": fields},
            "primaryType": "Receipt",
            "domain": domain.to_dict(),
            "message": self.message(),
        }

    @classmethod
    def from_message(cls, doc: object) -> Receipt:
        """The receipt of a ``message`` document; :class:`FormatError` if malformed."""
        if not isinstance(doc, dict):
            raise FormatError("a receipt message must be a JSON object")
        consumer = _field(doc, "consumer")
        if not isinstance(consumer, str):
            raise FormatError("consumer must be an address")
        try:
            return cls(
                job=_hex32(_field(doc, "jobId"), "jobId"),
                counter=_json_uint(_field(doc, "counter"), _U64, "counter"),
                request_digest=_hex32(_field(doc, "requestDigest"), "requestDigest"),
                response_digest=_hex32(_field(doc, "responseDigest"), "responseDigest"),
                model_digest=_hex32(_field(doc, "modelDigest"), "modelDigest"),
                price=_json_uint(_field(doc, "price"), _U256, "price"),
                time_ms=_json_uint(_field(doc, "timeMs"), _U64, "timeMs"),
                consumer=consumer,
                epoch=_json_uint(_field(doc, "epoch"), _U64, "epoch"),
                position=_json_uint(_field(doc, "position"), _U64, "position"),
            )
        except FormatError:
            raise
        except InvalidInput as exc:
            raise FormatError(f"malformed receipt: {exc.message}") from None


_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]


def _domain_from_dict(doc: object) -> Domain:
    if not isinstance(doc, dict):
        raise FormatError("domain must be a JSON object")
    name, version = _field(doc, "name"), _field(doc, "version")
    contract = _field(doc, "verifyingContract")
    if not all(isinstance(v, str) for v in (name, version, contract)):
        raise FormatError("domain name, version and verifyingContract must be strings")
    try:
        return Domain(name, version, _json_uint(_field(doc, "chainId"), _U256, "chainId"), contract)
    except InvalidInput as exc:
        raise FormatError(f"malformed domain: {exc.message}") from None


def _signature(text: object) -> bytes:
    if not isinstance(text, str) or len(text) != 132 or text[:2] != "0x":
        raise FormatError("signature must be 0x and 130 hex digits (r || s || v)")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise FormatError("signature must be 0x and 130 hex digits (r || s || v)") from None


@dataclass(frozen=True, slots=True)
class SignedReceipt:
    """A receipt, the domain it was signed for, and the provider's 65-byte signature."""

    receipt: Receipt
    domain: Domain
    signature: bytes

    def digest(self) -> bytes:
        return self.receipt.digest(self.domain)

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain.to_dict(),
            "message": self.receipt.message(),
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, doc: object) -> SignedReceipt:
        if not isinstance(doc, dict):
            raise FormatError("a signed receipt must be a JSON object")
        return cls(
            Receipt.from_message(_field(doc, "message")),
            _domain_from_dict(_field(doc, "domain")),
            _signature(_field(doc, "signature")),
        )


def sign_receipt(receipt: Receipt, domain: Domain | bytes, signer: Secp256k1Signer) -> bytes:
    """The provider's signature (65 bytes, low s, v in {27, 28}) over the receipt's digest."""
    return signer.sign_digest(receipt.digest(domain))


def verify_receipt(
    signed: SignedReceipt,
    *,
    domain: Domain,
    provider: str,
    model_digest: bytes | None = None,
    job: bytes | None = None,
) -> str:
    """Check a receipt for ``domain`` signed by ``provider``; with ``model_digest`` and
    ``job``, that it names them. The provider's address, or a :class:`VerificationFailed`."""
    if signed.domain != domain:
        raise SignatureInvalid(
            f"the receipt is for {signed.domain.name!r} on chain {signed.domain.chain_id} at "
            f"{signed.domain.verifying_contract}, not on chain {domain.chain_id} at "
            f"{domain.verifying_contract}",
            code="receipt-domain-mismatch",
        )
    signer = recover_digest(signed.receipt.digest(domain), signed.signature)
    if signer != checksum_address(provider):
        raise SignatureInvalid(
            f"the receipt is signed by {signer}, not by the provider {checksum_address(provider)}",
            code="receipt-signer-mismatch",
        )
    if model_digest is not None and signed.receipt.model_digest != model_digest:
        raise SignatureInvalid(
            f"the receipt names model sha256:{signed.receipt.model_digest.hex()}, not the "
            f"expected sha256:{model_digest.hex()}",
            code="receipt-model-mismatch",
        )
    if job is not None and signed.receipt.job != job:
        raise SignatureInvalid(
            f"the receipt is for job 0x{signed.receipt.job.hex()}, not 0x{job.hex()}",
            code="receipt-job-mismatch",
        )
    return signer


def request_digest(value: Any, salt: bytes = b"") -> bytes:
    """``sha256(salt || JCS(value))``: the request digest of input ``value``."""
    if len(salt) not in (0, 32):
        raise InvalidInput("a request salt is 32 bytes (or none)")
    return hashlib.sha256(salt + _canonical(value)).digest()


def response_digest(value: Any) -> bytes:
    """``sha256(JCS(value))``: the response digest of output ``value``."""
    return hashlib.sha256(_canonical(value)).digest()


_SAFE = 1 << 53


def _flat(values: list[Any]) -> str | None:
    """JCS text of a flat list of ints and integral floats below 2^53 (C loops), else None."""
    if not all(type(x) is float or type(x) is int for x in values):
        return None
    if not all(type(x) is int or x.is_integer() for x in values):
        return None
    if values and not (min(values) > -_SAFE and max(values) < _SAFE):
        return None
    return "[" + ",".join(map(str, map(int, values))) + "]"


def _numbers(value: Any, out: list[str]) -> bool:
    """Append the JCS text of ``value`` if it is (nested lists of) numbers that JCS writes as
    integers: ints and integral floats below 2^53, as ECMAScript prints them. False for
    anything else (the caller then uses the full RFC 8785 serializer)."""
    if type(value) is not list:
        text = _flat([value])
        if text is None:
            return False
        out.append(text[1:-1])
        return True
    flat = _flat(value)
    if flat is not None:
        out.append(flat)
        return True
    out.append("[")
    for i, item in enumerate(value):
        if i:
            out.append(",")
        if not _numbers(item, out):
            return False
    out.append("]")
    return True


def _canonical(value: Any) -> bytes:
    """RFC 8785 (JCS) bytes of ``value``; rows of integral numbers (images, counts, class
    labels) take a fast path that writes the same bytes (a property test checks it)."""
    out: list[str] = []
    try:
        if _numbers(value, out):
            return "".join(out).encode()
        return bytes(rfc8785.dumps(value))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InvalidInput(f"the value has no canonical JSON form: {exc}") from None
    except RecursionError:  # both serializers recurse: a value nested ~1,000 levels deep
        raise InvalidInput("the value is nested too deeply for a canonical JSON form") from None


@dataclass(frozen=True, slots=True)
class EpochRoot:
    """The root of one epoch's tree of receipt digests: ``size`` leaves."""

    epoch: int
    size: int
    root: bytes

    def __post_init__(self) -> None:
        _uint(self.epoch, _U64, "epoch")
        _uint(self.size, _U64, "size")
        _b32(self.root, "root")

    def digest(self, domain: Domain | bytes) -> bytes:
        separator = domain if isinstance(domain, bytes) else domain.separator()
        struct = _keccak(
            _EPOCH_ROOT_TYPEHASH
            + self.epoch.to_bytes(32, "big")
            + self.size.to_bytes(32, "big")
            + self.root
        )
        return _keccak(b"\x19\x01" + separator + struct)


@dataclass(frozen=True, slots=True)
class SignedEpochRoot:
    """An epoch root, its domain and the provider's signature."""

    epoch_root: EpochRoot
    domain: Domain
    signature: bytes

    def to_dict(self) -> dict[str, Any]:
        return {
            "domain": self.domain.to_dict(),
            "message": {
                "epoch": self.epoch_root.epoch,
                "size": self.epoch_root.size,
                "root": "0x" + self.epoch_root.root.hex(),
            },
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, doc: object) -> SignedEpochRoot:
        if not isinstance(doc, dict):
            raise FormatError("a signed epoch root must be a JSON object")
        msg = _field(doc, "message")
        if not isinstance(msg, dict):
            raise FormatError("an epoch root message must be a JSON object")
        root = EpochRoot(
            _json_uint(_field(msg, "epoch"), _U64, "epoch"),
            _json_uint(_field(msg, "size"), _U64, "size"),
            _hex32(_field(msg, "root"), "root"),
        )
        return cls(
            root, _domain_from_dict(_field(doc, "domain")), _signature(_field(doc, "signature"))
        )


def sign_epoch_root(root: EpochRoot, domain: Domain, signer: Secp256k1Signer) -> SignedEpochRoot:
    return SignedEpochRoot(root, domain, signer.sign_digest(root.digest(domain)))


def verify_epoch_root(signed: SignedEpochRoot, *, domain: Domain, provider: str) -> EpochRoot:
    """The epoch root, if ``provider`` signed it for ``domain``; else VerificationFailed."""
    if signed.domain != domain:
        raise SignatureInvalid(
            "the epoch root is for another chain or contract", code="receipt-domain-mismatch"
        )
    signer = recover_digest(signed.epoch_root.digest(domain), signed.signature)
    if signer != checksum_address(provider):
        raise SignatureInvalid(
            f"the epoch root is signed by {signer}, not by the provider "
            f"{checksum_address(provider)}",
            code="receipt-signer-mismatch",
        )
    return signed.epoch_root


def verify_inclusion_in_epoch(
    signed: SignedReceipt, epoch_root: EpochRoot, proof: InclusionProof
) -> None:
    """Check that the receipt is leaf ``position`` of the epoch's tree (the one it names),
    under ``epoch_root``; :class:`ProofInvalid` otherwise. Signatures are checked by
    :func:`verify_receipt` and :func:`verify_epoch_root`."""
    receipt = signed.receipt
    if receipt.epoch != epoch_root.epoch:
        raise ProofInvalid(
            f"the receipt is in epoch {receipt.epoch}, the root is of epoch {epoch_root.epoch}",
            code="receipt-epoch-mismatch",
        )
    if (proof.leaf_index, proof.tree_size, proof.root) != (
        receipt.position,
        epoch_root.size,
        epoch_root.root,
    ):
        raise ProofInvalid(
            f"the proof is for leaf {proof.leaf_index} of a tree of {proof.tree_size}, not for the "
            f"receipt's position {receipt.position} under the epoch's root of {epoch_root.size}",
            code="receipt-epoch-mismatch",
        )
    if proof.leaf_hash != leaf_hash(signed.digest()):
        raise ProofInvalid(
            "the proof is for another leaf than the receipt", code="receipt-epoch-mismatch"
        )
    proof.verify(epoch_root.root)
