"""EIP-712 typed data checked by the contracts (``contracts/LogAnchors.sol``,
``contracts/ModelRegistry.sol``), byte for byte.

::

    Domain(name, version, chain_id, verifying_contract)   -> separator()
      LogAnchors:    Checkpoint(bytes32 logId,uint64 size,bytes32 root)     signed by the log key
                     Cosignature(bytes32 logId,uint64 size,bytes32 root)    signed by each witness
                     LogRegistration(bytes32 logId,address admin)           the log key consents
      ModelRegistry: Approval(bytes32 versionId,bytes32 subjectDigest,bytes32 env,bytes32 role,
                              bytes32 orgId,address approver,uint256 nonce,uint256 deadline)
      Membership:    Join(bytes32 orgId,address account,uint256 nonce,uint256 deadline)

    digest = keccak256(0x19 0x01 || domain separator || struct hash)

Every digest is bound to the chain id and the contract address, so a signature made for one
deployment is worthless on another chain or another contract. Signatures are 65 bytes
``r || s || v`` with low ``s`` and ``v`` in {27, 28}, the only form the contracts accept.
``*_typed_data`` return the full JSON document for wallets (``eth_signTypedData_v4``) and
eth-account's ``encode_typed_data``; the tests check both routes give the same digest.

Identifiers: ``log_id(origin, signer) = keccak256(abi.encode(origin, signer))``,
``role_id(name) = keccak256(name)``,
``version_id(org, name, version) = keccak256(abi.encode(orgId, name, version))`` (names are
namespaced by the owning organisation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeAlias

from ailedger.chain._hex import abi_encode, keccak
from ailedger.errors import InvalidInput
from ailedger.identity.keys import Secp256k1Signer, checksum_address, recover_digest

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount

__all__ = [
    "APPROVAL_TYPE",
    "CHECKPOINT_TYPE",
    "COSIGNATURE_TYPE",
    "DOMAIN_TYPE",
    "DOMAIN_VERSION",
    "JOIN_TYPE",
    "LOG_ANCHORS_NAME",
    "MEMBERSHIP_NAME",
    "MODEL_REGISTRY_NAME",
    "REGISTRATION_TYPE",
    "Domain",
    "SigningKey",
    "approval_digest",
    "approval_typed_data",
    "checkpoint_digest",
    "checkpoint_typed_data",
    "cosignature_digest",
    "cosignature_typed_data",
    "join_digest",
    "join_typed_data",
    "log_id",
    "recover_signer",
    "registration_digest",
    "registration_typed_data",
    "role_id",
    "sign_digest",
    "sort_by_signer",
    "version_id",
]

DOMAIN_TYPE = "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
CHECKPOINT_TYPE = "Checkpoint(bytes32 logId,uint64 size,bytes32 root)"
COSIGNATURE_TYPE = "Cosignature(bytes32 logId,uint64 size,bytes32 root)"
REGISTRATION_TYPE = "LogRegistration(bytes32 logId,address admin)"
APPROVAL_TYPE = (
    "Approval(bytes32 versionId,bytes32 subjectDigest,bytes32 env,bytes32 role,bytes32 orgId,"
    "address approver,uint256 nonce,uint256 deadline)"
)
JOIN_TYPE = "Join(bytes32 orgId,address account,uint256 nonce,uint256 deadline)"
LOG_ANCHORS_NAME = "ailedger LogAnchors"
MODEL_REGISTRY_NAME = "ailedger ModelRegistry"
MEMBERSHIP_NAME = "ailedger Membership"
DOMAIN_VERSION = "1"

_DOMAIN_TYPEHASH = keccak(text=DOMAIN_TYPE)
_CHECKPOINT_TYPEHASH = keccak(text=CHECKPOINT_TYPE)
_COSIGNATURE_TYPEHASH = keccak(text=COSIGNATURE_TYPE)
_APPROVAL_TYPEHASH = keccak(text=APPROVAL_TYPE)
_REGISTRATION_TYPEHASH = keccak(text=REGISTRATION_TYPE)
_JOIN_TYPEHASH = keccak(text=JOIN_TYPE)
_UINT64_MAX = (1 << 64) - 1
_UINT256_MAX = (1 << 256) - 1

#: What can sign: an ailedger signer, an eth-account LocalAccount, or a raw 32-byte key.
SigningKey: TypeAlias = "Secp256k1Signer | LocalAccount | bytes"


@dataclass(frozen=True)
class Domain:
    """An EIP-712 domain: contract name and version, chain id, contract address."""

    name: str
    version: str
    chain_id: int
    verifying_contract: str

    def __post_init__(self) -> None:
        if not 0 < self.chain_id <= _UINT256_MAX:
            raise InvalidInput(f"chain id {self.chain_id} is out of range")
        object.__setattr__(self, "verifying_contract", checksum_address(self.verifying_contract))

    @classmethod
    def log_anchors(cls, chain_id: int, contract: str) -> Domain:
        return cls(LOG_ANCHORS_NAME, DOMAIN_VERSION, chain_id, contract)

    @classmethod
    def model_registry(cls, chain_id: int, contract: str) -> Domain:
        return cls(MODEL_REGISTRY_NAME, DOMAIN_VERSION, chain_id, contract)

    @classmethod
    def membership(cls, chain_id: int, contract: str) -> Domain:
        return cls(MEMBERSHIP_NAME, DOMAIN_VERSION, chain_id, contract)

    def separator(self) -> bytes:
        """keccak256 of the encoded domain, as ``domainSeparator()`` returns it."""
        return keccak(
            abi_encode(
                ["bytes32", "bytes32", "bytes32", "uint256", "address"],
                [
                    _DOMAIN_TYPEHASH,
                    keccak(text=self.name),
                    keccak(text=self.version),
                    self.chain_id,
                    self.verifying_contract,
                ],
            )
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "chainId": self.chain_id,
            "verifyingContract": self.verifying_contract,
        }


def _bytes32(value: bytes, what: str) -> bytes:
    if not isinstance(value, bytes | bytearray) or len(value) != 32:
        raise InvalidInput(f"{what} must be 32 bytes")
    return bytes(value)


def _uint(value: int, limit: int, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
        raise InvalidInput(f"{what} {value!r} is not an integer in 0..{limit}")
    return value


def _digest(domain: Domain, struct_hash: bytes) -> bytes:
    return keccak(b"\x19\x01" + domain.separator() + struct_hash)


def _checkpoint_struct(typehash: bytes, log: bytes, size: int, root: bytes) -> bytes:
    return keccak(
        abi_encode(
            ["bytes32", "bytes32", "uint64", "bytes32"],
            [
                typehash,
                _bytes32(log, "log id"),
                _uint(size, _UINT64_MAX, "tree size"),
                _bytes32(root, "root hash"),
            ],
        )
    )


def checkpoint_digest(domain: Domain, log: bytes, size: int, root: bytes) -> bytes:
    """The digest the log key signs: ``Checkpoint(logId, size, root)``."""
    return _digest(domain, _checkpoint_struct(_CHECKPOINT_TYPEHASH, log, size, root))


def cosignature_digest(domain: Domain, log: bytes, size: int, root: bytes) -> bytes:
    """The digest each witness signs: ``Cosignature(logId, size, root)``."""
    return _digest(domain, _checkpoint_struct(_COSIGNATURE_TYPEHASH, log, size, root))


def registration_digest(domain: Domain, log: bytes, admin: str) -> bytes:
    """The digest the log key signs to let ``admin`` register the log:
    ``LogRegistration(logId, admin)``."""
    struct_hash = keccak(
        abi_encode(
            ["bytes32", "bytes32", "address"],
            [_REGISTRATION_TYPEHASH, _bytes32(log, "log id"), checksum_address(admin)],
        )
    )
    return _digest(domain, struct_hash)


def approval_digest(
    domain: Domain,
    version: bytes,
    subject: bytes,
    env: bytes,
    role: bytes,
    org: bytes,
    approver: str,
    nonce: int,
    deadline: int,
) -> bytes:
    """The digest an approver signs: ``Approval(versionId, subjectDigest, env, role, orgId,
    approver, nonce, deadline)`` (``env`` all zero: every environment)."""
    struct_hash = keccak(
        abi_encode(
            [
                "bytes32",
                "bytes32",
                "bytes32",
                "bytes32",
                "bytes32",
                "bytes32",
                "address",
                "uint256",
                "uint256",
            ],
            [
                _APPROVAL_TYPEHASH,
                _bytes32(version, "version id"),
                _bytes32(subject, "subject digest"),
                _bytes32(env, "environment id"),
                _bytes32(role, "role id"),
                _bytes32(org, "organisation id"),
                checksum_address(approver),
                _uint(nonce, _UINT256_MAX, "nonce"),
                _uint(deadline, _UINT256_MAX, "deadline"),
            ],
        )
    )
    return _digest(domain, struct_hash)


def join_digest(domain: Domain, org: bytes, account: str, nonce: int, deadline: int) -> bytes:
    """The digest an account signs to consent to joining an organisation:
    ``Join(orgId, account, nonce, deadline)`` (Membership's domain)."""
    struct_hash = keccak(
        abi_encode(
            ["bytes32", "bytes32", "address", "uint256", "uint256"],
            [
                _JOIN_TYPEHASH,
                _bytes32(org, "organisation id"),
                checksum_address(account),
                _uint(nonce, _UINT256_MAX, "nonce"),
                _uint(deadline, _UINT256_MAX, "deadline"),
            ],
        )
    )
    return _digest(domain, struct_hash)


_DOMAIN_FIELDS = [
    {"name": "name", "type": "string"},
    {"name": "version", "type": "string"},
    {"name": "chainId", "type": "uint256"},
    {"name": "verifyingContract", "type": "address"},
]
_CHECKPOINT_FIELDS = [
    {"name": "logId", "type": "bytes32"},
    {"name": "size", "type": "uint64"},
    {"name": "root", "type": "bytes32"},
]


def _typed(domain: Domain, primary: str, fields: list[dict[str, str]], msg: dict[str, Any]) -> Any:
    return {
        "types": {"EIP712Domain": _DOMAIN_FIELDS, primary: fields},
        "primaryType": primary,
        "domain": domain.to_dict(),
        "message": msg,
    }


def checkpoint_typed_data(domain: Domain, log: bytes, size: int, root: bytes) -> dict[str, Any]:
    """The full EIP-712 document of a log checkpoint (for wallets and eth-account)."""
    message = {"logId": "0x" + log.hex(), "size": size, "root": "0x" + root.hex()}
    return dict(_typed(domain, "Checkpoint", _CHECKPOINT_FIELDS, message))


def cosignature_typed_data(domain: Domain, log: bytes, size: int, root: bytes) -> dict[str, Any]:
    """The full EIP-712 document of a witness cosignature."""
    message = {"logId": "0x" + log.hex(), "size": size, "root": "0x" + root.hex()}
    return dict(_typed(domain, "Cosignature", _CHECKPOINT_FIELDS, message))


def registration_typed_data(domain: Domain, log: bytes, admin: str) -> dict[str, Any]:
    """The full EIP-712 document of a log registration consent."""
    fields = [{"name": "logId", "type": "bytes32"}, {"name": "admin", "type": "address"}]
    message = {"logId": "0x" + log.hex(), "admin": checksum_address(admin)}
    return dict(_typed(domain, "LogRegistration", fields, message))


def approval_typed_data(
    domain: Domain,
    version: bytes,
    subject: bytes,
    env: bytes,
    role: bytes,
    org: bytes,
    approver: str,
    nonce: int,
    deadline: int,
) -> dict[str, Any]:
    """The full EIP-712 document of a model-version approval."""
    fields = [
        {"name": "versionId", "type": "bytes32"},
        {"name": "subjectDigest", "type": "bytes32"},
        {"name": "env", "type": "bytes32"},
        {"name": "role", "type": "bytes32"},
        {"name": "orgId", "type": "bytes32"},
        {"name": "approver", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
    message = {
        "versionId": "0x" + version.hex(),
        "subjectDigest": "0x" + subject.hex(),
        "env": "0x" + env.hex(),
        "role": "0x" + role.hex(),
        "orgId": "0x" + org.hex(),
        "approver": checksum_address(approver),
        "nonce": nonce,
        "deadline": deadline,
    }
    return dict(_typed(domain, "Approval", fields, message))


def join_typed_data(
    domain: Domain, org: bytes, account: str, nonce: int, deadline: int
) -> dict[str, Any]:
    """The full EIP-712 document of a membership consent."""
    fields = [
        {"name": "orgId", "type": "bytes32"},
        {"name": "account", "type": "address"},
        {"name": "nonce", "type": "uint256"},
        {"name": "deadline", "type": "uint256"},
    ]
    message = {
        "orgId": "0x" + org.hex(),
        "account": checksum_address(account),
        "nonce": nonce,
        "deadline": deadline,
    }
    return dict(_typed(domain, "Join", fields, message))


def sign_digest(digest: bytes, key: SigningKey) -> bytes:
    """Sign a 32-byte digest: 65 bytes ``r || s || v``, low ``s``, ``v`` in {27, 28}."""
    if isinstance(key, Secp256k1Signer):
        signer = key
    elif isinstance(key, bytes | bytearray):
        signer = Secp256k1Signer(bytes(key))
    else:
        from eth_account.signers.local import LocalAccount  # only callers that have one pay

        if not isinstance(key, LocalAccount):
            raise InvalidInput(f"cannot sign with a {type(key).__name__}")
        signer = Secp256k1Signer(bytes(key.key))
    return signer.sign_digest(_bytes32(digest, "digest"))


def recover_signer(digest: bytes, signature: bytes) -> str:
    """The checksummed address that signed ``digest``, under the contracts' rules
    (raises :class:`~ailedger.errors.SignatureInvalid` otherwise)."""
    return recover_digest(_bytes32(digest, "digest"), signature)


def sort_by_signer(digest: bytes, signatures: list[bytes]) -> list[bytes]:
    """``signatures`` ordered by signer address, ascending, as ``LogAnchors.anchor`` wants."""
    return sorted(signatures, key=lambda sig: int(recover_signer(digest, sig), 16))


def log_id(origin: str, signer: str) -> bytes:
    """The id of the log named ``origin`` whose checkpoints ``signer`` (an address) signs:
    ``keccak256(abi.encode(origin, signer))``, as ``LogAnchors.logIdOf``. Origin and key
    together: a key that is not the log's cannot take the log's id."""
    return keccak(abi_encode(["string", "address"], [origin, checksum_address(signer)]))


def role_id(name: str) -> bytes:
    """The id of a role: keccak256 of its name (``role_id("qa")``)."""
    return keccak(text=name)


def version_id(org: bytes, name: str, version: str) -> bytes:
    """The id of model version ``name`` ``version`` owned by organisation ``org`` (its id):
    keccak256(abi.encode(orgId, name, version))."""
    return keccak(
        abi_encode(
            ["bytes32", "string", "string"], [_bytes32(org, "organisation id"), name, version]
        )
    )
