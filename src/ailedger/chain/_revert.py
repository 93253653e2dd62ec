"""Revert data: where each backend hides it, and how to name it from contract ABIs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ailedger.chain._hex import keccak, to_checksum_address
from ailedger.chain._revert_hints import explain
from ailedger.errors import TransactionReverted

__all__ = ["ContractReverted", "decode_revert", "revert_data_of", "revert_error"]

_ERROR_STRING = bytes.fromhex("08c379a0")  # Error(string)
_PANIC = bytes.fromhex("4e487b71")  # Panic(uint256)
_PANIC_CODES = {
    0x01: "assertion failed",
    0x11: "arithmetic overflow or underflow",
    0x12: "division or modulo by zero",
    0x21: "invalid enum value",
    0x22: "corrupt storage byte array",
    0x31: "pop on empty array",
    0x32: "array index out of bounds",
    0x41: "out of memory",
    0x51: "call to a zero-initialized function",
}


class ContractReverted(TransactionReverted):
    """A transaction or call reverted; carries the decoded error.

    ``error_name`` is the custom error's name (``"Error"`` for ``require`` reasons,
    ``"Panic"`` for panics, ``""`` when nothing could be decoded), ``error_args`` its
    arguments by name, ``data`` the raw revert bytes and ``tx_hash`` the mined
    transaction (``None`` for calls and for transactions refused before sending).
    """

    def __init__(
        self,
        message: str,
        *,
        error_name: str,
        error_args: dict[str, Any],
        data: bytes,
        tx_hash: str | None = None,
        hint: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.error_name = error_name
        self.error_args = error_args
        self.data = data
        self.tx_hash = tx_hash


def _to_bytes(value: Any) -> bytes | None:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if isinstance(value, str) and value.startswith("0x"):
        try:
            from hexbytes import HexBytes

            return bytes(HexBytes(value))
        except ValueError:
            return None
    if isinstance(value, dict):  # some nodes nest it: {"data": "0x..."} or {"message":..}
        return _to_bytes(value.get("data"))
    return None


def revert_data_of(exc: BaseException) -> bytes | None:
    """The revert bytes an exception from either backend carries, or None if not a revert."""
    # The embedded backend raises EmbeddedRevert; web3's tester provider re-raises it as a
    # plain TransactionFailed, so look down the chain of causes too.
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        data = getattr(current, "revert_data", None)
        if isinstance(data, bytes):
            return data
        current = current.__cause__ or current.__context__
    from web3.exceptions import ContractLogicError, Web3RPCError

    if isinstance(exc, ContractLogicError):
        return _to_bytes(exc.data) or b""
    if isinstance(exc, Web3RPCError):
        response = exc.rpc_response or {}
        error = response.get("error") if isinstance(response, dict) else None
        if isinstance(error, dict) and "revert" in str(error.get("message", "")).lower():
            return _to_bytes(error.get("data")) or b""
    return None


def _render(value: Any) -> str:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_render(v) for v in value) + ")"
    if isinstance(value, str):
        return repr(value)
    return str(value)


def _checksum(abi_type: str, value: Any) -> Any:
    """Addresses as checksummed strings, like web3 decodes them everywhere else."""
    if abi_type == "address":
        return to_checksum_address(value)
    if abi_type.startswith("address[") and isinstance(value, tuple | list):
        inner = abi_type[: abi_type.rindex("[")]
        return [_checksum(inner, v) for v in value]
    return value


def decode_revert(data: bytes, abis: Iterable[list[dict[str, Any]]]) -> tuple[str, dict[str, Any]]:
    """Name revert ``data`` from the custom errors in ``abis``: ``(name, {arg: value})``."""
    from eth_abi.abi import decode as abi_decode
    from eth_abi.exceptions import DecodingError
    from eth_utils.abi import abi_to_signature, get_abi_input_names, get_abi_input_types

    selector, payload = data[:4], data[4:]
    try:
        if selector == _ERROR_STRING:
            return "Error", {"reason": abi_decode(["string"], payload)[0]}
        if selector == _PANIC:
            code = abi_decode(["uint256"], payload)[0]
            return "Panic", {"code": code, "meaning": _PANIC_CODES.get(code, "unknown")}
        for abi in abis:
            for item in abi:
                entry: Any = item  # eth-utils wants its TypedDicts; an ABI is plain JSON
                if entry.get("type") != "error":
                    continue
                if keccak(text=abi_to_signature(entry))[:4] != selector:
                    continue
                types = get_abi_input_types(entry)
                raw = abi_decode(types, payload)
                values = [_checksum(t, v) for t, v in zip(types, raw, strict=True)]
                names = get_abi_input_names(entry)
                named = {
                    n or f"arg{k}": v for k, (n, v) in enumerate(zip(names, values, strict=True))
                }
                return str(entry["name"]), named
    except DecodingError:
        pass
    return "", {}


def revert_error(
    what: str,
    data: bytes,
    abis: Iterable[list[dict[str, Any]]],
    *,
    tx_hash: str | None = None,
) -> ContractReverted:
    """Build the error for ``what`` (e.g. ``"Probe.store"``) reverting with ``data``."""
    name, args = decode_revert(data, abis)
    where = f" in transaction {tx_hash}" if tx_hash else ""
    explained = (
        explain(what.split(".")[0], name, args) if name not in ("", "Error", "Panic") else None
    )
    if explained is not None:  # a shipped contract's error: what it means, what to do
        message, hint = explained
        return ContractReverted(
            f"{what} reverted{where}: {name}: {message}",
            error_name=name,
            error_args=args,
            data=data,
            tx_hash=tx_hash,
            hint=hint,
        )
    if name == "Error":
        detail = f"{args['reason']}"
    elif name == "Panic":
        detail = f"panic 0x{args['code']:02x} ({args['meaning']})"
    elif name:
        detail = name + "(" + ", ".join(f"{k}={_render(v)}" for k, v in args.items()) + ")"
    elif data:
        detail = f"unknown error 0x{data.hex()}"
    else:
        detail = "no reason given"
    return ContractReverted(
        f"{what} reverted{where}: {detail}",
        error_name=name,
        error_args=args,
        data=data,
        tx_hash=tx_hash,
    )
