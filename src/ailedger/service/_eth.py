"""The ``eth_*`` methods of ``POST /rpc``, answered by the embedded chain.

The embedded chain is already an ``EthereumTester`` over our persistent py-evm backend
(:class:`~ailedger.chain.EmbeddedNode`); this module only does what a node's RPC layer does
around it: it checks each parameter's wire form (:mod:`._wire`), calls the tester, and writes
the answer in the wire form. ``eth_feeHistory``, ``eth_getLogs`` and receipts' ``logsBloom`` are
read from the stored blocks and receipts (eth-tester's are stubs, or scan every block).

A bad parameter raises :class:`RpcError` ``-32602``; a transaction the chain refuses
``-32000``; a reverted call ``3`` with the revert data (as geth). The service holds no client
key: ``eth_sendTransaction``, ``eth_sign*`` and ``personal_*`` are ``-32601`` and
``eth_accounts`` is empty; only transactions signed by the client reach the chain
(``eth_sendRawTransaction``), and only for this chain's id (no unprotected legacy ones).
Log queries read the stored receipts of a bounded block range (:attr:`EthMethods.max_log_blocks`)
and stop at :attr:`EthMethods.max_logs` results.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ailedger import __version__
from ailedger.chain import EMBEDDED_CHAIN_ID
from ailedger.service._wire import (
    EXECUTION_REVERTED,
    INVALID_PARAMS,
    LIMIT_EXCEEDED,
    METHOD_NOT_FOUND,
    REFUSED,
    RpcError,
    address_param,
    bad_param,
    block_id,
    block_out,
    boolean,
    call_block,
    data_hex,
    fixed,
    log_out,
    positional,
    quantity,
    receipt_out,
    storage_slot,
    to_wire,
    topic_filter,
    tx_out,
    tx_params,
)

if TYPE_CHECKING:
    from ailedger.chain import EmbeddedNode

__all__ = ["EthMethods"]

_ERROR_STRING = bytes.fromhex("08c379a0")  # selector of Error(string)
_KEYLESS = (
    "eth_sendTransaction, eth_sign, eth_signTransaction and eth_signTypedData are not "
    "served: this node holds no keys; sign locally and use eth_sendRawTransaction"
)


def _revert_message(data: bytes) -> str:
    """geth's message: ``execution reverted`` and, for ``Error(string)``, its reason."""
    if data[:4] == _ERROR_STRING:
        from eth_abi.abi import decode
        from eth_abi.exceptions import DecodingError

        try:
            (reason,) = decode(["string"], data[4:])
        except (DecodingError, UnicodeDecodeError, ValueError):
            return "execution reverted"
        return f"execution reverted: {str(reason)[:200]}"
    return "execution reverted"


def _rank(values: Sequence[int], percentile: float) -> int:
    if not values:
        return 0
    index = min(len(values) - 1, max(0, -(-int(percentile * len(values)) // 100) - 1))
    return values[index]


def _next_base_fee(block: Mapping[str, Any]) -> int:
    """EIP-1559: the base fee of the block after ``block`` (elasticity 2, change 1/8)."""
    fee, used, target = (
        int(block["base_fee_per_gas"]),
        int(block["gas_used"]),
        int(block["gas_limit"]) // 2,
    )
    if used == target:
        return fee
    if used > target:
        return fee + max(1, fee * (used - target) // target // 8)
    return fee - fee * (target - used) // target // 8


class EthMethods:
    """The method table over one open :class:`EmbeddedNode` (call from one thread only)."""

    def __init__(
        self, node: EmbeddedNode, *, max_log_blocks: int = 2000, max_logs: int = 10_000
    ) -> None:
        self.node = node
        self.tester = node.tester
        self.max_log_blocks = max_log_blocks
        self.max_logs = max_logs
        self.table: dict[str, Callable[[list[object]], Any]] = {
            "eth_accounts": self._none(lambda: []),
            "eth_blockNumber": self._none(lambda: hex(self.node.head_number)),
            "eth_call": self.call,
            "eth_chainId": self._none(lambda: hex(EMBEDDED_CHAIN_ID)),
            "eth_estimateGas": self.estimate_gas,
            "eth_feeHistory": self.fee_history,
            "eth_gasPrice": self._none(self.gas_price),
            "eth_getBalance": self._state(self.tester.get_balance),
            "eth_getBlockByHash": self.block_by_hash,
            "eth_getBlockByNumber": self.block_by_number,
            "eth_getCode": self._state(self.tester.get_code),
            "eth_getLogs": self.get_logs,
            "eth_getStorageAt": self.storage_at,
            "eth_getTransactionByHash": self.transaction,
            "eth_getTransactionCount": self._state(self.tester.get_nonce),
            "eth_getTransactionReceipt": self.receipt,
            "eth_maxPriorityFeePerGas": self._none(lambda: hex(self._priority_fee())),
            "eth_sendRawTransaction": self.send_raw,
            "eth_syncing": self._none(lambda: False),
            "net_listening": self._none(lambda: True),
            "net_version": self._none(lambda: str(EMBEDDED_CHAIN_ID)),
            "web3_clientVersion": self._none(
                lambda: f"ailedger/{__version__}/embedded-py-evm/chain-{EMBEDDED_CHAIN_ID}"
            ),
        }
        for name in (
            "eth_sendTransaction",
            "eth_sign",
            "eth_signTransaction",
            "eth_signTypedData",
            "eth_signTypedData_v3",
            "eth_signTypedData_v4",
            "personal_sign",
            "personal_sendTransaction",
            "personal_unlockAccount",
        ):
            self.table[name] = self._keyless

    def dispatch(self, method: str, params: list[object]) -> Any:
        """The ``result`` of ``method(params)``, or :class:`RpcError`."""
        fn = self.table.get(method)
        if fn is None:
            raise RpcError(METHOD_NOT_FOUND, f"the method {method[:64]} does not exist")
        from eth.exceptions import HeaderNotFound, PyEVMError
        from eth_tester.exceptions import BlockNotFound, TransactionFailed
        from eth_tester.exceptions import ValidationError as TesterValidation
        from eth_utils.exceptions import ValidationError

        from ailedger.chain import EmbeddedRevert

        try:
            return fn(params)
        except EmbeddedRevert as exc:
            data = bytes(exc.revert_data)
            raise RpcError(EXECUTION_REVERTED, _revert_message(data), "0x" + data.hex()) from None
        except TransactionFailed as exc:
            raise RpcError(REFUSED, str(exc) or "execution failed") from None
        except (BlockNotFound, HeaderNotFound):
            raise RpcError(REFUSED, "header not found") from None
        except NotImplementedError as exc:
            raise RpcError(REFUSED, f"not supported: {str(exc)[:120]}") from None
        except TesterValidation as exc:
            raise RpcError(INVALID_PARAMS, str(exc)[:200]) from None
        except (ValidationError, PyEVMError) as exc:  # py-evm refusing (nonce, funds, gas)
            raise RpcError(REFUSED, str(exc)[:200] or type(exc).__name__) from None

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _none(fn: Callable[[], Any]) -> Callable[[list[object]], Any]:
        def call(params: list[object]) -> Any:
            positional(params, 0)
            return fn()

        return call

    @staticmethod
    def _state(fn: Callable[[str, int | str], Any]) -> Callable[[list[object]], Any]:
        def call(params: list[object]) -> Any:
            account, block = positional(params, 1, 1)
            return to_wire(fn(address_param(account), block_id(block, "latest")))

        return call

    @staticmethod
    def _keyless(params: list[object]) -> Any:
        raise RpcError(METHOD_NOT_FOUND, _KEYLESS)

    def _priority_fee(self) -> int:
        return 10**9

    def gas_price(self) -> str:
        """The next block's largest possible base fee plus the suggested tip."""
        base = int(self.tester.get_block_by_number("latest")["base_fee_per_gas"])
        return hex(base + base // 8 + self._priority_fee())

    # --- methods ---------------------------------------------------------------------------

    def call(self, params: list[object]) -> Any:
        tx, block = positional(params, 1, 1)
        return self.tester.call(tx_params(tx), call_block(block))

    def estimate_gas(self, params: list[object]) -> Any:
        tx, block = positional(params, 1, 1)
        found = self.tester.estimate_gas(tx_params(tx), call_block(block))
        return hex(int(found))

    def fee_history(self, params: list[object]) -> Any:
        """``eth_feeHistory`` from the stored blocks (eth-tester's own is a stub): base fees
        (and the next block's), gas used ratios, and each block's tips at the percentiles
        (nearest rank over its transactions: the embedded chain mines one per block)."""
        count, newest, percentiles = positional(params, 2, 1)
        blocks = quantity(count, "block count")
        if not 1 <= blocks <= 1024:
            raise RpcError(INVALID_PARAMS, "block count must be 1 to 1024")
        wanted: list[float] | None = None
        if percentiles is not None:
            if not isinstance(percentiles, list) or len(percentiles) > 100:
                raise bad_param("reward percentiles", percentiles)
            wanted = []
            for p in percentiles:
                if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100:
                    raise bad_param("reward percentile", p)
                if wanted and p < wanted[-1]:
                    raise RpcError(INVALID_PARAMS, "reward percentiles must increase")
                wanted.append(float(p))
        head = self.node.head_number
        block_id(newest)  # a tag or a quantity, else -32602
        last = self._log_bound(newest, head)
        if last > head:
            raise RpcError(REFUSED, "header not found")
        first = max(0, last - blocks + 1)
        base: list[int] = []
        ratio: list[float] = []
        reward: list[list[int]] = []
        for number in range(first, last + 1):
            block = self.tester.get_block_by_number(number, True)
            fee = int(block["base_fee_per_gas"])
            base.append(fee)
            ratio.append(int(block["gas_used"]) / int(block["gas_limit"]))
            if wanted is not None:
                tips = sorted(int(tx["gas_price"]) - fee for tx in block["transactions"])
                reward.append([_rank(tips, p) for p in wanted])
        base.append(_next_base_fee(block))
        doc: dict[str, Any] = {
            "oldestBlock": hex(first),
            "baseFeePerGas": [hex(b) for b in base],
            "gasUsedRatio": ratio,
        }
        if wanted is not None:
            doc["reward"] = [[hex(r) for r in row] for row in reward]
        return doc

    def storage_at(self, params: list[object]) -> Any:
        account, slot, block = positional(params, 2, 1)
        return self.tester.get_storage_at(
            address_param(account), storage_slot(slot), block_id(block, "latest")
        )

    def block_by_number(self, params: list[object]) -> Any:
        number, full = positional(params, 2)
        from eth_tester.exceptions import BlockNotFound

        try:
            block = self.tester.get_block_by_number(block_id(number), boolean(full, "full flag"))
        except BlockNotFound:
            return None
        return block_out(block)

    def block_by_hash(self, params: list[object]) -> Any:
        block_hash, full = positional(params, 2)
        from eth_tester.exceptions import BlockNotFound

        try:
            block = self.tester.get_block_by_hash(
                fixed(block_hash, 32, "block hash"), boolean(full, "full flag")
            )
        except BlockNotFound:
            return None
        return block_out(block)

    def transaction(self, params: list[object]) -> Any:
        (tx_hash,) = positional(params, 1)
        from eth_tester.exceptions import TransactionNotFound

        try:
            return tx_out(
                self.tester.get_transaction_by_hash(fixed(tx_hash, 32, "transaction hash"))
            )
        except TransactionNotFound:
            return None

    def receipt(self, params: list[object]) -> Any:
        (tx_hash,) = positional(params, 1)
        from eth_tester.exceptions import TransactionNotFound

        try:
            found = self.tester.get_transaction_receipt(fixed(tx_hash, 32, "transaction hash"))
        except TransactionNotFound:
            return None
        number = found.get("block_number")
        if number is None:
            return None
        from eth_typing import BlockNumber

        chain = self.node.backend.chain
        block = chain.get_canonical_block_by_number(BlockNumber(int(number)))
        stored = block.get_receipts(chain.chaindb)[int(found["transaction_index"])]
        return receipt_out(found, int(stored.bloom).to_bytes(256, "big"))

    def send_raw(self, params: list[object]) -> Any:
        (raw,) = positional(params, 1)
        data = data_hex(raw, "raw transaction")
        from eth.exceptions import PyEVMError
        from eth_keys.exceptions import BadSignature
        from eth_utils.exceptions import ValidationError
        from rlp.exceptions import (  # type: ignore[import-untyped]
            DeserializationError,
            RLPException,
        )

        builder = self.node.backend.chain.get_vm().get_transaction_builder()
        try:
            tx = builder.decode(bytes.fromhex(data[2:]))
        except (RLPException, DeserializationError, PyEVMError, ValidationError, ValueError):
            raise RpcError(INVALID_PARAMS, "the raw transaction does not decode") from None
        try:
            tx.check_signature_validity()
            _ = tx.sender
        except (PyEVMError, ValidationError, BadSignature, ValueError):
            raise RpcError(INVALID_PARAMS, "the raw transaction's signature is invalid") from None
        chain_id = getattr(tx, "chain_id", None)
        if chain_id != EMBEDDED_CHAIN_ID:
            raise RpcError(
                REFUSED,
                f"the transaction is signed for chain id {chain_id}, this chain is "
                f"{EMBEDDED_CHAIN_ID} (unprotected transactions are refused)",
            )
        return self.tester.send_raw_transaction(data)

    def get_logs(self, params: list[object]) -> Any:
        (query,) = positional(params, 1)
        if not isinstance(query, Mapping):
            raise bad_param("filter", query)
        unknown = set(query) - {"fromBlock", "toBlock", "address", "topics", "blockHash"}
        if unknown:
            raise bad_param("filter field", sorted(unknown)[0])
        head = self.node.head_number
        if query.get("blockHash") is not None:
            if query.get("fromBlock") is not None or query.get("toBlock") is not None:
                raise RpcError(INVALID_PARAMS, "blockHash excludes fromBlock and toBlock")
            block_hash = fixed(query["blockHash"], 32, "block hash")
            from eth_tester.exceptions import BlockNotFound

            try:
                first = last = int(self.tester.get_block_by_hash(block_hash)["number"])
            except BlockNotFound:
                raise RpcError(REFUSED, "unknown block") from None
        else:
            first = self._log_bound(query.get("fromBlock"), head)
            last = self._log_bound(query.get("toBlock"), head)
        given = query.get("address")
        addresses: list[str] | None
        if given is None:
            addresses = None
        elif isinstance(given, list) and len(given) <= 1000:
            addresses = [address_param(a) for a in given]
        elif isinstance(given, str):
            addresses = [address_param(given)]
        else:
            raise bad_param("address filter", given)
        wanted = topic_filter(query.get("topics"))
        last = min(last, head)
        if first > last:
            return []
        if last - first + 1 > self.max_log_blocks:
            raise RpcError(
                LIMIT_EXCEEDED,
                f"query spans {last - first + 1} blocks; at most {self.max_log_blocks}",
            )
        out: list[dict[str, Any]] = []
        for log in self.node.read_logs(first, last, addresses):
            found = ["0x" + t.hex() for t in log["topics"]]
            if any(
                want is not None and (i >= len(found) or found[i] not in want)
                for i, want in enumerate(wanted)
            ):
                continue
            if len(out) >= self.max_logs:
                raise RpcError(LIMIT_EXCEEDED, f"query returns more than {self.max_logs} logs")
            out.append(log_out(log))
        return out

    def _log_bound(self, value: object, head: int) -> int:
        if value is None or value in ("latest", "pending", "safe", "finalized"):
            return head
        if value == "earliest":
            return 0
        return quantity(value, "block number or tag")
