"""Records of anchors and of EIP-712 witness cosignatures, as files.

* :class:`AnchorRecord` / :class:`AnchorBook`: the anchors this workspace submitted, kept in
  ``.ailedger/anchors.json`` so receipts can carry them without asking the chain.
* :class:`Eip712Cosignature`: a witness's EIP-712 ``Cosignature`` of one checkpoint for one
  LogAnchors deployment, as a small JSON document a remote witness sends to the anchorer
  (``ailedger chain cosign`` writes one; ``ailedger anchor --cosignature FILE`` reads it).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.chain._hex import to_checksum_address
from ailedger.chain.eip712 import Domain, cosignature_digest, log_id, recover_signer
from ailedger.errors import FormatError, SignatureInvalid

__all__ = [
    "ANCHORS_FILE",
    "COSIGNATURE_MEDIA_TYPE",
    "AnchorBook",
    "AnchorRecord",
    "Eip712Cosignature",
]

#: The anchor book inside a workspace's ``.ailedger/``.
ANCHORS_FILE = "anchors.json"
COSIGNATURE_MEDIA_TYPE = "application/vnd.ailedger.eip712-cosignature.v1+json"


def _hex32(doc: dict[str, Any], key: str, what: str) -> bytes:
    value = doc.get(key)
    try:
        raw = bytes.fromhex(str(value).removeprefix("0x"))
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise FormatError(f"{what} {key!r} must be 32 bytes of hex")
    return raw


_UINT64_MAX = (1 << 64) - 1


def _int(doc: dict[str, Any], key: str, what: str, low: int = 0, high: int = _UINT64_MAX) -> int:
    value = doc.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise FormatError(f"{what} {key!r} must be an integer in {low}..{high}")
    return value


def _str(doc: dict[str, Any], key: str, what: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not value:
        raise FormatError(f"{what} {key!r} must be a non-empty string")
    return value


@dataclass(frozen=True)
class AnchorRecord:
    """One anchor on-chain: checkpoint (size, root) of log ``origin`` signed by
    ``log_signer``, stored as anchor number ``index`` of ``contract`` on chain ``chain_id`` by
    ``tx_hash`` in ``block``; ``consistency_checked``: whether the contract had verified, when
    this was recorded, that it extends the previous anchor (the chain's flag is authoritative:
    ``verify receipt --rpc`` reads it)."""

    chain_id: int
    contract: str
    origin: str
    log_signer: str
    index: int
    size: int
    root: bytes
    tx_hash: str
    block: int
    consistency_checked: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "contract", to_checksum_address(self.contract))
        object.__setattr__(self, "log_signer", to_checksum_address(self.log_signer))

    @property
    def log_id(self) -> bytes:
        return log_id(self.origin, self.log_signer)

    def to_dict(self) -> dict[str, Any]:
        """The receipt's ``anchor`` object (and the book's entry)."""
        return {
            "chain_id": self.chain_id,
            "contract": self.contract,
            "log_id": "0x" + self.log_id.hex(),
            "log_signer": self.log_signer,
            "index": self.index,
            "size": self.size,
            "root": self.root.hex(),
            "transaction": self.tx_hash,
            "block": self.block,
            "consistency_checked": self.consistency_checked,
        }

    @classmethod
    def from_dict(cls, doc: Any, origin: str) -> AnchorRecord:
        what = "anchor"
        if not isinstance(doc, dict):
            raise FormatError("an anchor must be a JSON object")
        try:
            contract = to_checksum_address(_str(doc, "contract", what))
            signer = to_checksum_address(_str(doc, "log_signer", what))
        except ValueError:
            raise FormatError("anchor contract or log_signer is no address") from None
        record = cls(
            chain_id=_int(doc, "chain_id", what, 1, (1 << 256) - 1),
            contract=contract,
            origin=origin,
            log_signer=signer,
            index=_int(doc, "index", what),
            size=_int(doc, "size", what),
            root=_hex32(doc, "root", what),
            tx_hash=_str(doc, "transaction", what),
            block=_int(doc, "block", what),
            consistency_checked=bool(doc.get("consistency_checked", False)),
        )
        if "log_id" in doc and _hex32(doc, "log_id", what) != record.log_id:
            raise FormatError(
                f"anchor log_id is not the id of origin {origin!r} and signer {signer}"
            )
        return record


class AnchorBook:
    """Anchors by log origin in one JSON file (written atomically)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, list[Any]]:
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise FormatError(f"{self.path} is not JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise FormatError(f"{self.path} must hold a JSON object")
        return {str(k): list(v) for k, v in doc.items() if isinstance(v, list)}

    def records(
        self, origin: str, *, chain_id: int | None = None, contract: str | None = None
    ) -> list[AnchorRecord]:
        """Anchors of ``origin`` (optionally on one chain / contract), by growing size."""
        out = [AnchorRecord.from_dict(d, origin) for d in self._read().get(origin, [])]
        if chain_id is not None:
            out = [r for r in out if r.chain_id == chain_id]
        if contract is not None:
            out = [r for r in out if r.contract.lower() == contract.lower()]
        return sorted(out, key=lambda r: (r.size, r.block))

    def add(self, record: AnchorRecord) -> None:
        doc = self._read()
        entries = [
            d
            for d in doc.get(record.origin, [])
            if not (
                d.get("chain_id") == record.chain_id
                and str(d.get("contract", "")).lower() == record.contract.lower()
                and d.get("index") == record.index
            )
        ]
        entries.append(record.to_dict())
        doc[record.origin] = entries
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        os.replace(tmp, self.path)


@dataclass(frozen=True)
class Eip712Cosignature:
    """A witness's EIP-712 cosignature of checkpoint (size, root) of log ``origin`` signed
    by ``log_signer``."""

    chain_id: int
    contract: str
    origin: str
    log_signer: str
    size: int
    root: bytes
    signer: str
    signature: bytes

    def __post_init__(self) -> None:
        object.__setattr__(self, "contract", to_checksum_address(self.contract))
        object.__setattr__(self, "signer", to_checksum_address(self.signer))
        object.__setattr__(self, "log_signer", to_checksum_address(self.log_signer))

    @property
    def domain(self) -> Domain:
        return Domain.log_anchors(self.chain_id, self.contract)

    @property
    def log_id(self) -> bytes:
        return log_id(self.origin, self.log_signer)

    def check(self) -> Eip712Cosignature:
        """Raise :class:`SignatureInvalid` unless ``signer`` made ``signature``."""
        digest = cosignature_digest(self.domain, self.log_id, self.size, self.root)
        recovered = recover_signer(digest, self.signature)
        if recovered.lower() != self.signer.lower():
            raise SignatureInvalid(
                f"cosignature claims signer {self.signer} but was made by {recovered}"
            )
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "mediaType": COSIGNATURE_MEDIA_TYPE,
            "chain_id": self.chain_id,
            "contract": self.contract,
            "origin": self.origin,
            "log_signer": self.log_signer,
            "log_id": "0x" + self.log_id.hex(),
            "size": self.size,
            "root": self.root.hex(),
            "signer": self.signer,
            "signature": "0x" + self.signature.hex(),
        }

    @classmethod
    def from_dict(cls, doc: Any) -> Eip712Cosignature:
        what = "cosignature"
        if not isinstance(doc, dict) or doc.get("mediaType") != COSIGNATURE_MEDIA_TYPE:
            raise FormatError(f"not an EIP-712 cosignature (mediaType {COSIGNATURE_MEDIA_TYPE})")
        try:
            signature = bytes.fromhex(_str(doc, "signature", what).removeprefix("0x"))
            contract = to_checksum_address(_str(doc, "contract", what))
            signer = to_checksum_address(_str(doc, "signer", what))
            log_signer = to_checksum_address(_str(doc, "log_signer", what))
        except ValueError:
            raise FormatError(
                "cosignature signature, contract, signer or log_signer is malformed"
            ) from None
        return cls(
            chain_id=_int(doc, "chain_id", what, 1, (1 << 256) - 1),
            contract=contract,
            origin=_str(doc, "origin", what),
            log_signer=log_signer,
            size=_int(doc, "size", what),
            root=_hex32(doc, "root", what),
            signer=signer,
            signature=signature,
        ).check()

    @classmethod
    def load(cls, path: Path) -> Eip712Cosignature:
        try:
            return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
        except ValueError as exc:
            if isinstance(exc, FormatError):
                raise
            raise FormatError(f"{path} is not JSON: {exc}") from None
