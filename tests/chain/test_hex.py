"""chain._hex gives what eth-utils and eth-abi give, without importing them at start-up."""

from __future__ import annotations

import subprocess
import sys

import pytest
from eth_abi.abi import encode
from eth_utils.address import to_checksum_address as eth_checksum
from eth_utils.crypto import keccak as eth_keccak
from hypothesis import given
from hypothesis import strategies as st

from ailedger.chain._hex import abi_encode, keccak, to_checksum_address
from ailedger.errors import InvalidInput


@given(st.binary(max_size=300))
def test_keccak_of_bytes_and_hex(data: bytes) -> None:
    assert keccak(data) == eth_keccak(data)
    assert keccak(hexstr="0x" + data.hex()) == eth_keccak(hexstr="0x" + data.hex())


@given(st.text(max_size=100))
def test_keccak_of_text(text: str) -> None:
    assert keccak(text=text) == eth_keccak(text=text)


def test_keccak_takes_exactly_one_input() -> None:
    with pytest.raises(TypeError):
        keccak()
    with pytest.raises(TypeError):
        keccak(b"a", text="a")


@given(st.binary(min_size=20, max_size=20))
def test_checksum_address_of_bytes_and_any_case(raw: bytes) -> None:
    expected = eth_checksum(raw)
    assert to_checksum_address(raw) == expected
    assert to_checksum_address("0x" + raw.hex().upper()) == expected
    assert to_checksum_address("0X" + raw.hex()) == expected
    assert to_checksum_address(expected) == expected


@pytest.mark.parametrize("value", [b"\x00" * 19, "0x" + "0" * 39, "nope", 42])
def test_checksum_address_refuses_non_addresses(value: object) -> None:
    with pytest.raises(InvalidInput):
        to_checksum_address(value)  # type: ignore[arg-type]


@given(st.text(max_size=40), st.integers(min_value=0, max_value=2**256 - 1))
def test_abi_encode_is_eth_abi(text: str, number: int) -> None:
    assert abi_encode(["string", "uint256"], [text, number]) == encode(
        ["string", "uint256"], [text, number]
    )


@pytest.mark.parametrize(
    "command", ["chain", "rollback", "deploy", "anchor", "log", "verify", "gate", "trace"]
)
def test_commands_that_open_no_chain_import_no_web3(command: str) -> None:
    """Loading a command's modules imports neither web3, eth-account, py-evm nor eth-abi:
    they load when a chain is opened (issue 9: start-up under half a second)."""
    code = (
        "import sys\n"
        "from ailedger.cli._app import load_commands\n"
        f"load_commands([{command!r}])\n"
        "heavy = ['web3', 'eth_account', 'eth', 'eth_tester', 'eth_abi', 'eth_utils']\n"
        "print(' '.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == ""
