"""Keccak, EIP-55 addresses and ABI encoding without importing eth-utils, eth-abi or web3.

eth-utils costs about a tenth of a second to import and eth-abi more; commands that only read
the log or the workspace must not pay for them. These functions give the same results as
eth-utils' ``keccak`` / ``to_checksum_address`` and eth-abi's ``encode`` (which is imported on
first use); tests/chain/test_hex.py checks that they agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from ailedger.errors import InvalidInput
from ailedger.identity.keys import checksum_address, keccak256

if TYPE_CHECKING:
    from eth_typing import ChecksumAddress

__all__ = ["abi_encode", "keccak", "to_checksum_address"]


def keccak(
    primitive: bytes | bytearray | None = None,
    *,
    text: str | None = None,
    hexstr: str | None = None,
) -> bytes:
    """Keccak-256 of exactly one of ``primitive`` bytes, UTF-8 ``text`` or ``hexstr``."""
    given = [v for v in (primitive, text, hexstr) if v is not None]
    if len(given) != 1:
        raise TypeError("keccak takes exactly one of primitive, text or hexstr")
    if text is not None:
        data = text.encode("utf-8")
    elif hexstr is not None:
        body = hexstr[2:] if hexstr[:2] in ("0x", "0X") else hexstr
        data = bytes.fromhex(("0" + body) if len(body) % 2 else body)
    else:
        assert primitive is not None
        data = bytes(primitive)
    return keccak256(data)


def to_checksum_address(value: str | bytes | bytearray) -> ChecksumAddress:
    """The EIP-55 form of a 20-byte address given as bytes or as hex (any case)."""
    if isinstance(value, bytes | bytearray):
        if len(value) != 20:
            raise InvalidInput(f"an address has 20 bytes, not {len(value)}")
        text = "0x" + bytes(value).hex()
    elif isinstance(value, str):
        text = "0x" + value[2:].lower() if value[:2] in ("0x", "0X") else value
    else:
        raise InvalidInput(f"not an Ethereum address: {value!r}")
    return cast("ChecksumAddress", checksum_address(text))


def abi_encode(types: Sequence[str], args: Sequence[Any]) -> bytes:
    """eth-abi's ``encode`` (Solidity's ``abi.encode``), imported on first use."""
    from eth_abi.abi import encode

    return bytes(encode(list(types), list(args)))
