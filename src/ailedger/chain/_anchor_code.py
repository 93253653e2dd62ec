"""Is the contract at an address really ailedger's LogAnchors?

A receipt names the contract that holds its anchor; a forged receipt could name a contract
that answers whatever it likes. The runtime code at that address must equal the shipped
artifact's ``deployedBytecode`` byte for byte, except inside the zero-filled 32-byte slots
where solc places immutables (the EIP-712 domain cache, set per deployment).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ailedger.errors import ProofInvalid

if TYPE_CHECKING:
    from ailedger.chain.anchors import LogAnchors

__all__ = ["check_contract_code", "code_matches"]

_WORD = 32


def _zero_runs(code: bytes) -> list[bool]:
    """For each byte: is it inside a run of at least 32 zero bytes?"""
    mask = [False] * len(code)
    i = 0
    while i < len(code):
        if code[i] != 0:
            i += 1
            continue
        j = i
        while j < len(code) and code[j] == 0:
            j += 1
        if j - i >= _WORD:
            for k in range(i, j):
                mask[k] = True
        i = j
    return mask


def code_matches(expected: bytes, actual: bytes) -> bool:
    """``actual`` equals ``expected`` outside ``expected``'s 32-byte zero runs."""
    if len(expected) != len(actual) or not expected:
        return False
    mask = _zero_runs(expected)
    return all(e == a or m for e, a, m in zip(expected, actual, mask, strict=True))


def check_contract_code(anchors: LogAnchors) -> None:
    """Raise :class:`ProofInvalid` unless ``anchors`` runs the shipped LogAnchors code."""
    expected = bytes.fromhex(
        anchors.chain.artifacts.get("LogAnchors").deployed_bytecode.removeprefix("0x")
    )
    actual = anchors.chain.code(anchors.address)
    if not code_matches(expected, actual):
        raise ProofInvalid(
            f"the contract at {anchors.address} is not ailedger's LogAnchors "
            f"({len(actual)} bytes of other code)"
            if actual
            else f"there is no contract at {anchors.address} on chain {anchors.chain.chain_id}"
        )
