"""Consumer-signed requests: what a consumer signs for every call it asks a provider for.

::

    Domain("ailedger InferenceRequest", "1", chainId, verifyingContract)
      InferenceRequest(bytes32 jobId,address provider,bytes32 modelDigest,
                       bytes32 requestDigest,bytes32 nonce,uint64 expires)
                                                                  signed by the consumer

A provider serves (and charges) a call only with the job's consumer's signature over it, so
someone who can reach the endpoint cannot spend a job's calls. The domain is the receipts'
chain and InferenceMarket contract under another name ("ailedger InferenceRequest"), so a
request signature is never a receipt signature and is worthless on another chain or market;
``jobId`` and ``provider`` bind it to one job at one provider, ``modelDigest`` to the model
paid for, ``requestDigest`` (``sha256(salt || JCS(input))``, as in the receipt) to the input.
``nonce`` is the consumer's choice (32 random bytes: concurrent callers need no coordination);
the provider refuses a nonce it already charged for the job (a replay), durably (the nonce is
stored with the receipt). ``expires`` (unix seconds) bounds how long an unsent request stays
usable. The provider keeps the signed request with the receipt it issued, so it can show that
the consumer asked for every call it bills. Receipts (:mod:`.receipt`) are unchanged.

:func:`verify_request` fails closed: an unsigned, malformed, wrongly signed, expired or
other-job request raises :class:`~ailedger.errors.SignatureInvalid` with a stable code
(``request-unsigned``, ``request-signature-invalid``, ``request-expired``).
"""

from __future__ import annotations

import functools
import secrets
from dataclasses import dataclass
from typing import Any

from Crypto.Hash import keccak as _keccak_mod

from ailedger.chain.eip712 import DOMAIN_VERSION, Domain
from ailedger.errors import FormatError, InvalidInput, SignatureInvalid
from ailedger.identity.keys import Secp256k1Signer, checksum_address, recover_digest

__all__ = [
    "INFERENCE_REQUEST_NAME",
    "REQUEST_TYPE",
    "InferenceRequest",
    "SignedRequest",
    "new_nonce",
    "request_domain",
    "sign_request",
    "verify_request",
]

INFERENCE_REQUEST_NAME = "ailedger InferenceRequest"
REQUEST_TYPE = (
    "InferenceRequest(bytes32 jobId,address provider,bytes32 modelDigest,bytes32 requestDigest,"
    "bytes32 nonce,uint64 expires)"
)
_U64 = (1 << 64) - 1


def _keccak(data: bytes) -> bytes:
    return bytes(_keccak_mod.new(digest_bits=256, data=data).digest())


_TYPEHASH = _keccak(REQUEST_TYPE.encode())
_checksum = functools.lru_cache(maxsize=4096)(checksum_address)


@functools.lru_cache(maxsize=64)
def _separator(domain: Domain) -> bytes:
    return domain.separator()


def request_domain(chain_id: int, contract: str) -> Domain:
    """The EIP-712 domain of requests to providers of the InferenceMarket at ``contract``."""
    return Domain(INFERENCE_REQUEST_NAME, DOMAIN_VERSION, chain_id, contract)


def _b32(value: object, what: str) -> bytes:
    if not isinstance(value, bytes) or len(value) != 32:
        raise InvalidInput(f"{what} must be 32 bytes")
    return value


@dataclass(frozen=True, slots=True)
class InferenceRequest:
    """The fields a consumer signs for one call (see the module docstring)."""

    job: bytes
    provider: str
    model_digest: bytes
    request_digest: bytes
    nonce: bytes
    expires: int

    def __post_init__(self) -> None:
        _b32(self.job, "job id")
        _b32(self.model_digest, "model digest")
        _b32(self.request_digest, "request digest")
        _b32(self.nonce, "nonce")
        if isinstance(self.expires, bool) or not isinstance(self.expires, int):
            raise InvalidInput(f"expires {self.expires!r} is not an integer")
        if not 0 <= self.expires <= _U64:
            raise InvalidInput(f"expires {self.expires} is not in 0..{_U64}")
        object.__setattr__(self, "provider", _checksum(self.provider))

    def struct_hash(self) -> bytes:
        """``hashStruct(InferenceRequest)``: keccak256 of the typehash and six static words."""
        return _keccak(
            _TYPEHASH
            + self.job
            + bytes(12)
            + bytes.fromhex(self.provider[2:])
            + self.model_digest
            + self.request_digest
            + self.nonce
            + self.expires.to_bytes(32, "big")
        )

    def digest(self, domain: Domain) -> bytes:
        """The EIP-712 digest the consumer signs."""
        return _keccak(b"\x19\x01" + _separator(domain) + self.struct_hash())

    def typed_data(self, domain: Domain) -> dict[str, Any]:
        """The full EIP-712 document (``eth_signTypedData_v4``, eth-account)."""
        fields = [
            {"name": name, "type": kind}
            for kind, name in (
                part.split(" ") for part in REQUEST_TYPE[len("InferenceRequest(") : -1].split(",")
            )
        ]
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "InferenceRequest": fields,
            },
            "primaryType": "InferenceRequest",
            "domain": domain.to_dict(),
            "message": {
                "jobId": "0x" + self.job.hex(),
                "provider": self.provider,
                "modelDigest": "0x" + self.model_digest.hex(),
                "requestDigest": "0x" + self.request_digest.hex(),
                "nonce": "0x" + self.nonce.hex(),
                "expires": self.expires,
            },
        }


def _hex(text: object, size: int, what: str) -> bytes:
    if not isinstance(text, str) or len(text) != 2 + 2 * size or text[:2] != "0x":
        raise FormatError(f"{what} must be 0x and {2 * size} hex digits")
    try:
        return bytes.fromhex(text[2:])
    except ValueError:
        raise FormatError(f"{what} must be 0x and {2 * size} hex digits") from None


@dataclass(frozen=True, slots=True)
class SignedRequest:
    """The consumer's authorisation of one call: its nonce, expiry and 65-byte signature
    (the job, provider, model and request digest are those of the call it rides with)."""

    nonce: bytes
    expires: int
    signature: bytes

    def to_dict(self) -> dict[str, Any]:
        """The request fields of a call's JSON body."""
        return {
            "nonce": "0x" + self.nonce.hex(),
            "expires": self.expires,
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> SignedRequest:
        """The signed request in a call's body; ``request-unsigned`` if a field is missing,
        :class:`FormatError` if one is malformed."""
        missing = [name for name in ("nonce", "expires", "signature") if name not in doc]
        if missing:
            raise SignatureInvalid(
                f"the request is not signed by the job's consumer (no {', '.join(missing)})",
                code="request-unsigned",
                hint="sign each call with the consumer's key (`ailedger market call --key`)",
            )
        expires = doc["expires"]
        if isinstance(expires, bool) or not isinstance(expires, int) or not 0 <= expires <= _U64:
            raise FormatError(f"expires must be an integer in 0..{_U64} (unix seconds)")
        return cls(
            _hex(doc["nonce"], 32, "nonce"), expires, _hex(doc["signature"], 65, "signature")
        )


def sign_request(
    request: InferenceRequest, domain: Domain, signer: Secp256k1Signer
) -> SignedRequest:
    """The consumer's signature (65 bytes, low s, v in {27, 28}) over ``request``."""
    return SignedRequest(request.nonce, request.expires, signer.sign_digest(request.digest(domain)))


def new_nonce() -> bytes:
    """32 random bytes: a fresh request nonce."""
    return secrets.token_bytes(32)


def verify_request(
    request: InferenceRequest,
    signed: SignedRequest,
    *,
    domain: Domain,
    consumer: str,
    now: int,
) -> None:
    """Check that ``consumer`` signed ``request`` for ``domain`` and that it has not expired
    at ``now`` (unix seconds); :class:`SignatureInvalid` otherwise."""
    if (signed.nonce, signed.expires) != (request.nonce, request.expires):
        raise SignatureInvalid(
            "the signed nonce and expiry are not the request's", code="request-signature-invalid"
        )
    if request.expires < now:
        raise SignatureInvalid(
            f"the request expired at {request.expires} (unix time; now {now})",
            code="request-expired",
            hint="sign the call again with a later expiry",
        )
    try:
        signer = recover_digest(request.digest(domain), signed.signature)
    except SignatureInvalid as exc:
        raise SignatureInvalid(
            f"the request's signature is malformed: {exc.message}",
            code="request-signature-invalid",
        ) from None
    if signer != _checksum(consumer):
        raise SignatureInvalid(
            f"the request is signed by {signer}, not by the job's consumer {_checksum(consumer)} "
            "(another key, job, provider, model, input, chain or market)",
            code="request-signature-invalid",
        )
