"""JSON-RPC wire forms for ``/rpc``: parameters in (checked, into eth-tester's form) and
answers out (hex quantities, camelCase keys, ``input`` and ``miner`` where the spec says so).

A parameter that is not in its wire form raises :class:`RpcError` ``-32602``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "EXECUTION_REVERTED",
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "LIMIT_EXCEEDED",
    "METHOD_NOT_FOUND",
    "REFUSED",
    "RpcError",
    "address_param",
    "bad_param",
    "block_id",
    "block_out",
    "boolean",
    "call_block",
    "camel",
    "data_hex",
    "fixed",
    "log_out",
    "positional",
    "quantity",
    "receipt_out",
    "storage_slot",
    "to_wire",
    "topic_filter",
    "tx_out",
    "tx_params",
]

#: JSON-RPC 2.0 error codes (and the two Ethereum nodes use).
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
#: A transaction or state query the chain refuses (geth's generic server error).
REFUSED = -32000
#: A query over a node's limits (EIP-1474).
LIMIT_EXCEEDED = -32005
#: ``eth_call`` / ``eth_estimateGas`` reverted; ``data`` holds the revert data (geth).
EXECUTION_REVERTED = 3

_TAGS = frozenset({"latest", "earliest", "pending", "safe", "finalized"})
_QUANTITY = re.compile(r"0x(0|[1-9a-fA-F][0-9a-fA-F]{0,63})")
_DATA = re.compile(r"0x(?:[0-9a-fA-F]{2})*")
_HEX_DIGITS = re.compile(r"0x[0-9a-fA-F]{1,64}")
#: Keys a transaction object may carry (ethers and web3.py send some of each).
_TX_KEYS = {
    "from": "from",
    "to": "to",
    "gas": "gas",
    "gasPrice": "gas_price",
    "maxFeePerGas": "max_fee_per_gas",
    "maxPriorityFeePerGas": "max_priority_fee_per_gas",
    "value": "value",
    "data": "data",
    "input": "data",
    "nonce": "nonce",
}
#: Keys accepted and ignored for calls and estimates (they do not change the outcome here).
_TX_IGNORED = frozenset({"type", "chainId", "accessList"})


class RpcError(Exception):
    """A JSON-RPC error answer: ``code``, ``message`` and optional ``data``."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.data = data

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.data is not None:
            doc["data"] = self.data
        return doc


def bad_param(what: str, value: object) -> RpcError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return RpcError(INVALID_PARAMS, f"invalid {what}: {shown}")


# --- parameters: the wire form in, the tester's form out ------------------------------------


def quantity(value: object, what: str = "quantity") -> int:
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise bad_param(what, value)
    return int(value, 16)


def data_hex(value: object, what: str = "data") -> str:
    if not isinstance(value, str) or not _DATA.fullmatch(value):
        raise bad_param(what, value)
    return value.lower()


def fixed(value: object, size: int, what: str) -> str:
    text = data_hex(value, what)
    if len(text) != 2 + 2 * size:
        raise bad_param(what, value)
    return text


def address_param(value: object) -> str:
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address(fixed(value, 20, "address")))


def storage_slot(value: object) -> str:
    if not isinstance(value, str) or not _HEX_DIGITS.fullmatch(value):
        raise bad_param("storage slot", value)
    return value


def block_id(value: object, default: int | str | None = None) -> int | str:
    """A block tag or number (``None`` is ``default``, where the parameter is optional)."""
    if value is None and default is not None:
        return default
    if isinstance(value, str) and value in _TAGS:
        return value
    return quantity(value, "block number or tag")


def boolean(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise bad_param(what, value)
    return value


def positional(params: Sequence[object], required: int, optional: int = 0) -> list[object]:
    if not required <= len(params) <= required + optional:
        want = str(required) if not optional else f"{required} to {required + optional}"
        raise RpcError(INVALID_PARAMS, f"expected {want} parameters, got {len(params)}")
    return [*params, *([None] * (required + optional - len(params)))]


def tx_params(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise bad_param("transaction object", value)
    out: dict[str, Any] = {}
    for key, raw in value.items():
        if key in _TX_IGNORED or raw is None:
            continue
        name = _TX_KEYS.get(key)
        if name is None:
            raise bad_param("transaction field", key)
        if name in ("from", "to"):
            out[name] = address_param(raw)
        elif name == "data":
            if "data" in out and out["data"] != data_hex(raw, key):
                raise RpcError(INVALID_PARAMS, "data and input differ")
            out["data"] = data_hex(raw, key)
        else:
            out[name] = quantity(raw, key)
    out.setdefault("from", "0x" + "00" * 20)
    # A call pays one price: an EIP-1559 fee cap stands for it (py-evm runs calls as legacy).
    tip = out.pop("max_priority_fee_per_gas", None)
    cap = out.pop("max_fee_per_gas", None)
    if "gas_price" in out and (cap is not None or tip is not None):
        raise RpcError(INVALID_PARAMS, "both gasPrice and maxFeePerGas/maxPriorityFeePerGas")
    if cap is not None:
        out["gas_price"] = cap
    return out


def call_block(value: object) -> int | str:
    """A block for calls and estimates: blocks are mined at once, so pending is latest."""
    if value is None:
        return "latest"
    block = block_id(value)
    return "latest" if block == "pending" else block


def topic_filter(value: object) -> list[set[str] | None]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 4:
        raise bad_param("topics", value)
    out: list[set[str] | None] = []
    for item in value:
        if item is None:
            out.append(None)
        elif isinstance(item, list) and item:
            out.append({fixed(t, 32, "topic") for t in item})
        elif isinstance(item, list):
            out.append(None)
        else:
            out.append({fixed(item, 32, "topic")})
    return out


# --- answers: the tester's form in, the wire form out ---------------------------------------


def camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def to_wire(value: Any) -> Any:
    if value is None or isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {camel(str(k)): to_wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_wire(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__}")  # pragma: no cover - a bug


def tx_out(tx: Mapping[str, Any]) -> dict[str, Any]:
    doc = dict(tx)
    doc["input"] = doc.pop("data", "0x")
    if doc.get("to") == "":
        doc["to"] = None
    out: dict[str, Any] = to_wire(doc)
    return out


def block_out(block: Mapping[str, Any]) -> dict[str, Any]:
    doc = dict(block)
    doc["miner"] = doc.pop("coinbase")
    bloom = doc.get("logs_bloom")
    if isinstance(bloom, int):
        doc["logs_bloom"] = bloom.to_bytes(256, "big")
    txs = doc.get("transactions", [])
    doc["transactions"] = [tx_out(t) if isinstance(t, Mapping) else t for t in txs]
    out: dict[str, Any] = to_wire({k: v for k, v in doc.items() if k != "transactions"})
    out["transactions"] = [t if isinstance(t, dict) else to_wire(t) for t in doc["transactions"]]
    return out


def log_out(log: Mapping[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in log.items() if k != "type"}  # eth-tester's filter bookkeeping
    out: dict[str, Any] = to_wire({**doc, "removed": False})
    return out


def receipt_out(receipt: Mapping[str, Any], bloom: bytes) -> dict[str, Any]:
    doc = {k: v for k, v in receipt.items() if k not in ("state_root", "logs")}
    doc["logs_bloom"] = bloom
    out: dict[str, Any] = to_wire(doc)
    out["logs"] = [log_out(log) for log in receipt.get("logs", ())]
    return out
