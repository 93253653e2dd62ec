"""Chain constants that cost nothing to import (no web3, no py-evm)."""

from __future__ import annotations

__all__ = ["ANVIL_CHAIN_ID", "DEV_FAUCET_ADDRESS", "DEV_FAUCET_KEY", "EMBEDDED_CHAIN_ID"]

#: eth-tester's chain id, kept so web3's EthereumTesterProvider (which answers
#: ``eth_chainId`` with this constant) and the chain agree.
EMBEDDED_CHAIN_ID = 131277322940537
#: anvil's default chain id.
ANVIL_CHAIN_ID = 31337
#: Anvil's and hardhat's first development key (mnemonic "test test ... junk"). Public.
DEV_FAUCET_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
#: The address of :data:`DEV_FAUCET_KEY` (tests/chain/test_backends.py derives it again).
DEV_FAUCET_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
