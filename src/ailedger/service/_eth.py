"""The ``eth_*`` methods of ``POST /rpc``, answered by the embedded chain.

The embedded chain is already an ``EthereumTester`` over our persistent py-evm backend
(:class:`~ailedger.chain.EmbeddedNode`); this module only does what a node's RPC layer does
around it: it checks each parameter's wire form (hex quantities, 20-byte addresses, 32-byte
hashes, block tags), calls the tester, and writes the answer in the wire form (quantities as
``0x`` hex, camelCase keys, ``input`` and ``miner`` where the JSON-RPC spec says so).

A bad parameter raises :class:`RpcError` ``-32602``; a transaction the chain refuses
``-32000``; a reverted call ``3`` with the revert data (as geth). The service holds no client
key: ``eth_sendTransaction``, ``eth_sign*`` and ``personal_*`` are ``-32601`` and
``eth_accounts`` is empty; only transactions signed by the client reach the chain
(``eth_sendRawTransaction``), and only for this chain's id (no unprotected legacy ones).
Log queries read the stored receipts of a bounded block range (:attr:`EthMethods.max_log_blocks`)
and stop at :attr:`EthMethods.max_logs` results.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ailedger import __version__
from ailedger.chain import EMBEDDED_CHAIN_ID

if TYPE_CHECKING:
    from ailedger.chain import EmbeddedNode

__all__ = [
    "INVALID_PARAMS",
    "INVALID_REQUEST",
    "LIMIT_EXCEEDED",
    "METHOD_NOT_FOUND",
    "REFUSED",
    "EthMethods",
    "RpcError",
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

_ERROR_STRING = bytes.fromhex("08c379a0")  # selector of Error(string)
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
_KEYLESS = (
    "eth_sendTransaction, eth_sign, eth_signTransaction and eth_signTypedData are not "
    "served: this node holds no keys; sign locally and use eth_sendRawTransaction"
)


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


def _bad(what: str, value: object) -> RpcError:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return RpcError(INVALID_PARAMS, f"invalid {what}: {shown}")


# --- parameters: the wire form in, the tester's form out ------------------------------------


def _quantity(value: object, what: str = "quantity") -> int:
    if not isinstance(value, str) or not _QUANTITY.fullmatch(value):
        raise _bad(what, value)
    return int(value, 16)


def _data(value: object, what: str = "data") -> str:
    if not isinstance(value, str) or not _DATA.fullmatch(value):
        raise _bad(what, value)
    return value.lower()


def _fixed(value: object, size: int, what: str) -> str:
    text = _data(value, what)
    if len(text) != 2 + 2 * size:
        raise _bad(what, value)
    return text


def _address(value: object) -> str:
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address(_fixed(value, 20, "address")))


def _block(value: object) -> int | str:
    if isinstance(value, str) and value in _TAGS:
        return value
    return _quantity(value, "block number or tag")


def _bool(value: object, what: str) -> bool:
    if not isinstance(value, bool):
        raise _bad(what, value)
    return value


def _args(params: Sequence[object], required: int, optional: int = 0) -> list[object]:
    if not required <= len(params) <= required + optional:
        want = str(required) if not optional else f"{required} to {required + optional}"
        raise RpcError(INVALID_PARAMS, f"expected {want} parameters, got {len(params)}")
    return [*params, *([None] * (required + optional - len(params)))]


def _tx(value: object) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _bad("transaction object", value)
    out: dict[str, Any] = {}
    for key, raw in value.items():
        if key in _TX_IGNORED or raw is None:
            continue
        name = _TX_KEYS.get(key)
        if name is None:
            raise _bad("transaction field", key)
        if name in ("from", "to"):
            out[name] = _address(raw)
        elif name == "data":
            if "data" in out and out["data"] != _data(raw, key):
                raise RpcError(INVALID_PARAMS, "data and input differ")
            out["data"] = _data(raw, key)
        else:
            out[name] = _quantity(raw, key)
    out.setdefault("from", "0x" + "00" * 20)
    # A call pays one price: an EIP-1559 fee cap stands for it (py-evm runs calls as legacy).
    tip = out.pop("max_priority_fee_per_gas", None)
    cap = out.pop("max_fee_per_gas", None)
    if "gas_price" in out and (cap is not None or tip is not None):
        raise RpcError(INVALID_PARAMS, "both gasPrice and maxFeePerGas/maxPriorityFeePerGas")
    if cap is not None:
        out["gas_price"] = cap
    return out


def _call_block(value: object) -> int | str:
    """A block for calls and estimates: blocks are mined at once, so pending is latest."""
    if value is None:
        return "latest"
    block = _block(value)
    return "latest" if block == "pending" else block


def _topics(value: object) -> list[set[str] | None]:
    if value is None:
        return []
    if not isinstance(value, list) or len(value) > 4:
        raise _bad("topics", value)
    out: list[set[str] | None] = []
    for item in value:
        if item is None:
            out.append(None)
        elif isinstance(item, list) and item:
            out.append({_fixed(t, 32, "topic") for t in item})
        elif isinstance(item, list):
            out.append(None)
        else:
            out.append({_fixed(item, 32, "topic")})
    return out


# --- answers: the tester's form in, the wire form out ---------------------------------------


def _camel(key: str) -> str:
    head, *rest = key.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _wire(value: Any) -> Any:
    if value is None or isinstance(value, bool | float | str):
        return value
    if isinstance(value, int):
        return hex(value)
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, Mapping):
        return {_camel(str(k)): _wire(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_wire(v) for v in value]
    raise TypeError(f"cannot encode {type(value).__name__}")  # pragma: no cover - a bug


def _tx_out(tx: Mapping[str, Any]) -> dict[str, Any]:
    doc = dict(tx)
    doc["input"] = doc.pop("data", "0x")
    if doc.get("to") == "":
        doc["to"] = None
    out: dict[str, Any] = _wire(doc)
    return out


def _block_out(block: Mapping[str, Any]) -> dict[str, Any]:
    doc = dict(block)
    doc["miner"] = doc.pop("coinbase")
    bloom = doc.get("logs_bloom")
    if isinstance(bloom, int):
        doc["logs_bloom"] = bloom.to_bytes(256, "big")
    txs = doc.get("transactions", [])
    doc["transactions"] = [_tx_out(t) if isinstance(t, Mapping) else t for t in txs]
    out: dict[str, Any] = _wire({k: v for k, v in doc.items() if k != "transactions"})
    out["transactions"] = [t if isinstance(t, dict) else _wire(t) for t in doc["transactions"]]
    return out


def _log_out(log: Mapping[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in log.items() if k != "type"}  # eth-tester's filter bookkeeping
    out: dict[str, Any] = _wire({**doc, "removed": False})
    return out


def _receipt_out(receipt: Mapping[str, Any], bloom: bytes) -> dict[str, Any]:
    doc = {k: v for k, v in receipt.items() if k not in ("state_root", "logs")}
    doc["logs_bloom"] = bloom
    out: dict[str, Any] = _wire(doc)
    out["logs"] = [_log_out(log) for log in receipt.get("logs", ())]
    return out


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
        except BlockNotFound:
            raise RpcError(REFUSED, "header not found") from None
        except NotImplementedError as exc:
            raise RpcError(REFUSED, f"not supported: {str(exc)[:120]}") from None
        except TesterValidation as exc:
            raise RpcError(INVALID_PARAMS, str(exc)[:200]) from None
        except ValidationError as exc:  # py-evm refusing a transaction (nonce, funds, gas)
            raise RpcError(REFUSED, str(exc)[:200]) from None

    # --- helpers -------------------------------------------------------------------------

    @staticmethod
    def _none(fn: Callable[[], Any]) -> Callable[[list[object]], Any]:
        def call(params: list[object]) -> Any:
            _args(params, 0)
            return fn()

        return call

    @staticmethod
    def _state(fn: Callable[[str, int | str], Any]) -> Callable[[list[object]], Any]:
        def call(params: list[object]) -> Any:
            account, block = _args(params, 1, 1)
            return _wire(fn(_address(account), "latest" if block is None else _block(block)))

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
        tx, block = _args(params, 1, 1)
        return self.tester.call(_tx(tx), _call_block(block))

    def estimate_gas(self, params: list[object]) -> Any:
        tx, block = _args(params, 1, 1)
        found = self.tester.estimate_gas(_tx(tx), _call_block(block))
        return hex(int(found))

    def fee_history(self, params: list[object]) -> Any:
        """``eth_feeHistory`` from the stored blocks (eth-tester's own is a stub): base fees
        (and the next block's), gas used ratios, and each block's tips at the percentiles
        (nearest rank over its transactions: the embedded chain mines one per block)."""
        count, newest, percentiles = _args(params, 2, 1)
        blocks = _quantity(count, "block count")
        if not 1 <= blocks <= 1024:
            raise RpcError(INVALID_PARAMS, "block count must be 1 to 1024")
        wanted: list[float] | None = None
        if percentiles is not None:
            if not isinstance(percentiles, list) or len(percentiles) > 100:
                raise _bad("reward percentiles", percentiles)
            wanted = []
            for p in percentiles:
                if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p <= 100:
                    raise _bad("reward percentile", p)
                if wanted and p < wanted[-1]:
                    raise RpcError(INVALID_PARAMS, "reward percentiles must increase")
                wanted.append(float(p))
        head = self.node.head_number
        _block(newest)  # a tag or a quantity, else -32602
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
        account, slot, block = _args(params, 2, 1)
        if not isinstance(slot, str) or not _HEX_DIGITS.fullmatch(slot):
            raise _bad("storage slot", slot)
        return self.tester.get_storage_at(
            _address(account), slot, "latest" if block is None else _block(block)
        )

    def block_by_number(self, params: list[object]) -> Any:
        number, full = _args(params, 2)
        from eth_tester.exceptions import BlockNotFound

        try:
            block = self.tester.get_block_by_number(_block(number), _bool(full, "full flag"))
        except BlockNotFound:
            return None
        return _block_out(block)

    def block_by_hash(self, params: list[object]) -> Any:
        block_hash, full = _args(params, 2)
        from eth_tester.exceptions import BlockNotFound

        try:
            block = self.tester.get_block_by_hash(
                _fixed(block_hash, 32, "block hash"), _bool(full, "full flag")
            )
        except BlockNotFound:
            return None
        return _block_out(block)

    def transaction(self, params: list[object]) -> Any:
        (tx_hash,) = _args(params, 1)
        from eth_tester.exceptions import TransactionNotFound

        try:
            return _tx_out(
                self.tester.get_transaction_by_hash(_fixed(tx_hash, 32, "transaction hash"))
            )
        except TransactionNotFound:
            return None

    def receipt(self, params: list[object]) -> Any:
        (tx_hash,) = _args(params, 1)
        from eth_tester.exceptions import TransactionNotFound

        try:
            found = self.tester.get_transaction_receipt(_fixed(tx_hash, 32, "transaction hash"))
        except TransactionNotFound:
            return None
        number = found.get("block_number")
        if number is None:
            return None
        from eth_typing import BlockNumber

        chain = self.node.backend.chain
        block = chain.get_canonical_block_by_number(BlockNumber(int(number)))
        stored = block.get_receipts(chain.chaindb)[int(found["transaction_index"])]
        return _receipt_out(found, int(stored.bloom).to_bytes(256, "big"))

    def send_raw(self, params: list[object]) -> Any:
        (raw,) = _args(params, 1)
        data = _data(raw, "raw transaction")
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
        (query,) = _args(params, 1)
        if not isinstance(query, Mapping):
            raise _bad("filter", query)
        unknown = set(query) - {"fromBlock", "toBlock", "address", "topics", "blockHash"}
        if unknown:
            raise _bad("filter field", sorted(unknown)[0])
        head = self.node.head_number
        if query.get("blockHash") is not None:
            if query.get("fromBlock") is not None or query.get("toBlock") is not None:
                raise RpcError(INVALID_PARAMS, "blockHash excludes fromBlock and toBlock")
            block_hash = _fixed(query["blockHash"], 32, "block hash")
            from eth_tester.exceptions import BlockNotFound

            try:
                first = last = int(self.tester.get_block_by_hash(block_hash)["number"])
            except BlockNotFound:
                raise RpcError(REFUSED, "unknown block") from None
        else:
            first = self._log_bound(query.get("fromBlock"), head)
            last = self._log_bound(query.get("toBlock"), head)
        address = query.get("address")
        addresses: list[str] | None
        if address is None:
            addresses = None
        elif isinstance(address, list) and len(address) <= 1000:
            addresses = [_address(a) for a in address]
        elif isinstance(address, str):
            addresses = [_address(address)]
        else:
            raise _bad("address filter", address)
        topics = _topics(query.get("topics"))
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
                for i, want in enumerate(topics)
            ):
                continue
            if len(out) >= self.max_logs:
                raise RpcError(LIMIT_EXCEEDED, f"query returns more than {self.max_logs} logs")
            out.append(_log_out(log))
        return out

    def _log_bound(self, value: object, head: int) -> int:
        if value is None or value in ("latest", "pending", "safe", "finalized"):
            return head
        if value == "earliest":
            return 0
        return _quantity(value, "block number or tag")
