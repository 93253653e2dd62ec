"""The embedded chain: eth-tester's py-evm backend over a persistent SQLite database.

eth-tester builds its py-evm ``MiningChain`` over an in-memory dict
(``eth_tester.backends.pyevm.main.setup_tester_chain``). Here the same chain class
(the same fork, Prague, and the same chain id) runs over :class:`SQLiteKV` wrapped in
py-evm's ``AtomicDB``; every mined block (one per transaction: eth-tester auto-mines)
is committed in one SQLite transaction, and opening the directory again resumes from
the stored canonical head.

Genesis is deterministic: one faucet account, whose key is the well-known anvil/hardhat
development key :data:`DEV_FAUCET_KEY`, holds all the ether. The same address is funded
on a fresh anvil, so ``Chain.fund`` works the same on both. The key is public: never use
it, or a chain funded by it, for anything of value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eth.abc import VirtualMachineAPI
from eth.chains.base import MiningChain
from eth.constants import POST_MERGE_DIFFICULTY, POST_MERGE_MIX_HASH, POST_MERGE_NONCE
from eth.db.atomic import AtomicDB
from eth.exceptions import Revert
from eth.vm.forks.prague import PragueVM
from eth.vm.spoof import SpoofTransaction
from eth_keys.datatypes import PrivateKey
from eth_tester import EthereumTester, PyEVMBackend
from eth_tester.backends.pyevm.main import _get_vm_for_block_number
from eth_tester.exceptions import TransactionFailed
from eth_typing import BlockNumber
from eth_utils.address import to_canonical_address, to_checksum_address
from web3 import EthereumTesterProvider, Web3

from ailedger.chain._constants import DEV_FAUCET_ADDRESS, DEV_FAUCET_KEY, EMBEDDED_CHAIN_ID
from ailedger.chain._rpc import slim_middleware
from ailedger.chain._sqlite_db import DirectoryLock, SQLiteKV
from ailedger.errors import IntegrityError

__all__ = [
    "DEV_FAUCET_ADDRESS",
    "DEV_FAUCET_KEY",
    "EMBEDDED_CHAIN_ID",
    "EmbeddedNode",
    "EmbeddedRevert",
]

_FAUCET_BALANCE = 10**9 * 10**18  # one billion ether
_GENESIS_TIMESTAMP = 1_735_689_600  # 2025-01-01T00:00:00Z, so every workspace has one genesis
_GAS_LIMIT = 30_000_000
_DB_FILE = "chain.sqlite"


class EmbeddedRevert(TransactionFailed):  # type: ignore[misc]
    """eth-tester's TransactionFailed, keeping the raw revert data that it throws away."""

    def __init__(self, message: str, revert_data: bytes) -> None:
        super().__init__(message)
        self.revert_data = revert_data


def _failure(computation: Any) -> TransactionFailed:
    error = computation.error
    if isinstance(error, Revert):
        data = error.args[0] if error.args and isinstance(error.args[0], bytes) else b""
        return EmbeddedRevert("execution reverted", data)
    return TransactionFailed(f"execution failed: {error!r}")


class _EmbeddedChain(MiningChain):
    """eth-tester's ``MainnetTesterPosChain``, reproduced so it can be built on our database."""

    chain_id = EMBEDDED_CHAIN_ID
    vm_configuration: tuple[tuple[BlockNumber, type[VirtualMachineAPI]], ...] = (
        (BlockNumber(0), PragueVM),
    )

    def create_header_from_parent(self, parent_header: Any, **header_params: Any) -> Any:
        header_params["gas_limit"] = parent_header.gas_limit
        return super().create_header_from_parent(parent_header, **header_params)

    def get_transaction_builder(self) -> Any:
        return super().get_vm().get_transaction_builder()


def _genesis() -> tuple[dict[str, Any], Any]:
    params = {
        "coinbase": b"\x00" * 20,
        "difficulty": POST_MERGE_DIFFICULTY,
        "extra_data": b"ailedger embedded dev chain",
        "gas_limit": _GAS_LIMIT,
        "mix_hash": POST_MERGE_MIX_HASH,
        "nonce": POST_MERGE_NONCE,
        "timestamp": _GENESIS_TIMESTAMP,
    }
    state = {
        to_canonical_address(DEV_FAUCET_ADDRESS): {
            "balance": _FAUCET_BALANCE,
            "nonce": 0,
            "code": b"",
            "storage": {},
        }
    }
    return params, state


class _PersistentBackend(PyEVMBackend):  # type: ignore[misc]
    """PyEVMBackend whose chain lives in :class:`SQLiteKV`; each mined block is committed."""

    def __init__(self, kv: SQLiteKV) -> None:
        # PyEVMBackend.__init__ would build a fresh in-memory chain: set the fields ourselves.
        self._kv = kv
        self.account_keys = (PrivateKey(bytes.fromhex(DEV_FAUCET_KEY[2:])),)
        base_db = AtomicDB(kv)
        genesis_hash = kv.get_meta("genesis")
        if genesis_hash is None:
            params, state = _genesis()
            self.chain = _EmbeddedChain.from_genesis(base_db, params, state)
            genesis = self.chain.get_canonical_block_header_by_number(BlockNumber(0))
            kv.commit(
                meta={
                    "genesis": genesis.hash.hex(),
                    "chain_id": str(EMBEDDED_CHAIN_ID),
                    "fork": "prague",
                }
            )
        else:
            if kv.get_meta("chain_id") != str(EMBEDDED_CHAIN_ID):
                raise IntegrityError(
                    f"{kv.path} holds chain id {kv.get_meta('chain_id')}, "
                    f"expected {EMBEDDED_CHAIN_ID}"
                )
            self.chain = _EmbeddedChain(base_db)
            stored = self.chain.get_canonical_block_header_by_number(BlockNumber(0)).hash.hex()
            if stored != genesis_hash:
                raise IntegrityError(f"{kv.path}: genesis block does not match its record")

    def reset_to_genesis(self, *args: Any, **kwargs: Any) -> None:
        raise NotImplementedError("the embedded chain is persistent; delete its directory")

    # -- calls and gas estimates that keep revert data, with a fast gas estimate --------

    def _execute(self, transaction: dict[str, Any], block_number: Any, gas: int) -> Any:
        vm = _get_vm_for_block_number(self.chain, block_number)
        state = vm.state
        fields = {**transaction, "gas": gas}
        credit = 0
        if not any(k in fields for k in ("gas_price", "max_fee_per_gas")):
            # Like geth and anvil, a call that names no fee can come from any sender: pay
            # the base fee and lend the sender exactly that for the duration of the call.
            fields.update(max_fee_per_gas=state.base_fee, max_priority_fee_per_gas=0)
            credit = gas * state.base_fee
        unsigned = self._get_normalized_and_unsigned_evm_transaction(fields, block_number)
        spoofed = SpoofTransaction(unsigned, from_=transaction["from"])
        snapshot = state.snapshot()
        try:
            if credit:
                state.delta_balance(transaction["from"], credit)
            computation = state.apply_transaction(spoofed)
        finally:
            state.revert(snapshot)
        return spoofed, computation

    def call(self, transaction: dict[str, Any], block_number: Any = "latest") -> bytes:
        gas = transaction.get("gas", self._max_available_gas())
        _, computation = self._execute(transaction, block_number, gas)
        if computation.is_error:
            raise _failure(computation)
        return bytes(computation.output)

    def estimate_gas(self, transaction: dict[str, Any], block_number: Any = "latest") -> int:
        """One run at the block gas limit (and, after sub-calls, one to confirm the estimate).

        py-evm's own estimate is a binary search (a dozen runs); fall back to it only
        when the quick estimate turns out too low (deep call stacks under the 63/64 rule).
        """
        if block_number not in ("latest", "safe", "finalized"):
            return int(super().estimate_gas(transaction, block_number))
        limit = self._max_available_gas()
        spoofed, computation = self._execute(transaction, block_number, limit)
        if computation.is_error:
            raise _failure(computation)
        used = int(spoofed.intrinsic_gas) + int(computation.get_gas_used())
        estimate = min(limit, used + used // 5 + 10_000)
        if not computation.children:
            return int(estimate)  # no sub-calls: no 63/64 withholding, the margin covers stipends
        _, check = self._execute(transaction, block_number, estimate)
        if check.is_error:
            return int(super().estimate_gas(transaction, block_number))
        return int(estimate)

    def mine_blocks(self, num_blocks: int = 1, coinbase: bytes = b"\x00" * 20) -> Any:
        try:
            hashes = super().mine_blocks(num_blocks, coinbase)
        except BaseException:
            self._kv.rollback()
            self.chain = _EmbeddedChain(AtomicDB(self._kv))
            raise
        head = self.chain.get_canonical_head()
        self._kv.commit(meta={"head": json.dumps([head.block_number, head.hash.hex()])})
        return hashes


class EmbeddedNode:
    """An embedded chain opened from ``directory``: a ``Web3`` plus the lock and database.

    Keep it open for the duration of a command and :meth:`close` it (or use ``with``).
    """

    def __init__(
        self,
        directory: Path,
        *,
        lock_timeout: float = 10.0,
        durable: bool = False,
        read_only: bool = False,
    ):
        if not read_only:
            directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._lock = DirectoryLock(directory, lock_timeout, shared=read_only)
        try:
            self._kv = SQLiteKV(directory / _DB_FILE, durable=durable, read_only=read_only)
            self.backend = _PersistentBackend(self._kv)
        except BaseException:
            self._lock.release()
            raise
        self.tester = EthereumTester(backend=self.backend, auto_mine_transactions=True)
        self.w3 = slim_middleware(Web3(EthereumTesterProvider(self.tester)))

    def read_logs(self, first: int, last: int, addresses: list[str] | None) -> list[dict[str, Any]]:
        """Logs of ``addresses`` (``None``: of every contract) in blocks ``first..last``, read
        from stored receipts.

        Shaped like eth-tester's ``eth_getLogs`` answer (whose log index counts within a
        receipt; with one transaction per block that is the block's index too), without
        its cost: eth-tester finds each receipt by scanning back from the head.
        """
        wanted = None if addresses is None else {to_canonical_address(a) for a in addresses}
        chain = self.backend.chain
        out: list[dict[str, Any]] = []
        for number in range(first, last + 1):
            block = chain.get_canonical_block_by_number(BlockNumber(number))
            receipts = block.get_receipts(chain.chaindb)
            for tx_index, (tx, receipt) in enumerate(
                zip(block.transactions, receipts, strict=True)
            ):
                for log_index, log in enumerate(receipt.logs):
                    if wanted is not None and log.address not in wanted:
                        continue
                    out.append(
                        {
                            "address": to_checksum_address(log.address),
                            "topics": [t.to_bytes(32, "big") for t in log.topics],
                            "data": bytes(log.data),
                            "blockNumber": number,
                            "blockHash": block.hash,
                            "transactionHash": tx.hash,
                            "transactionIndex": tx_index,
                            "logIndex": log_index,
                        }
                    )
        return out

    @property
    def head_number(self) -> int:
        return int(self.backend.chain.get_canonical_head().block_number)

    def close(self) -> None:
        if self._kv.has_pending:
            self._kv.rollback()  # an unmined pending block is not part of the chain
        self._kv.close()
        self._lock.release()

    def __enter__(self) -> EmbeddedNode:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
