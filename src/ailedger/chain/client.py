"""One client over every EVM backend: deploy, transact, call, balances, blocks, events.

A :class:`Chain` wraps an injected ``Web3`` (built by :func:`ailedger.chain.open_embedded`
or :func:`ailedger.chain.connect_rpc` at the edge). Transactions are signed locally by
the caller's key (any object with ``address`` and ``sign_transaction``, such as an
eth-account ``LocalAccount``), nonces come from the node's pending count and are kept
per sender so consecutive sends never collide, gas is estimated (which also catches a
revert before anything is sent), and every error is one of ``ailedger.errors``:

* :class:`~ailedger.errors.NodeUnavailable` when the node does not answer (after retries);
* :class:`ContractReverted` (a :class:`~ailedger.errors.TransactionReverted`) with the
  decoded custom error when a transaction or call reverts;
* :class:`~ailedger.errors.ChainError` for everything else the node refuses.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ailedger.chain._artifacts import Artifact, ArtifactStore
from ailedger.chain._constants import ANVIL_CHAIN_ID, DEV_FAUCET_KEY, EMBEDDED_CHAIN_ID
from ailedger.chain._events import EventIndex, EventRecord
from ailedger.chain._hex import keccak, to_checksum_address
from ailedger.chain._revert import revert_data_of, revert_error
from ailedger.chain._rpc import Retry
from ailedger.chain._types import AccountSource, DeployedContract, Receipt, Signer, tx_signer
from ailedger.errors import ChainError, InvalidInput, StorageError

if TYPE_CHECKING:
    from web3 import Web3
    from web3.types import BlockIdentifier, TxParams

__all__ = ["ANVIL_CHAIN_ID", "AccountSource", "Chain", "DeployedContract", "Receipt", "Signer"]

#: anvil's default chain id; its first dev account is the same faucet as the embedded chain's.
_DEV_CHAINS = (EMBEDDED_CHAIN_ID, ANVIL_CHAIN_ID)
_DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei
_FEE_REUSE = 3  # sends that may reuse fetched fees on an exclusive chain


def _message(exc: BaseException) -> str:
    text = str(exc)
    message = getattr(exc, "message", None)
    from web3.exceptions import Web3Exception

    if isinstance(exc, Web3Exception) and message:
        text = str(message)
    return text.splitlines()[0] if text else type(exc).__name__


class Chain:
    """The client. Build it with ``open_embedded``/``connect_rpc``, or inject a ``Web3``.

    ``backend`` names the kind of node (``"embedded"`` or ``"rpc"``), ``endpoint`` where it
    is (a directory or a URL). ``confirmations`` is how many blocks must follow a
    transaction's block before it counts. ``one_tx_per_block`` tells the event index
    that a block holding our transaction holds nothing else (auto-mining chains);
    ``exclusive`` that no other process sends on this chain (so nonces can be counted
    locally after the first query).
    """

    def __init__(
        self,
        w3: Web3,
        *,
        index: EventIndex,
        backend: str = "rpc",
        endpoint: str = "",
        artifacts: ArtifactStore | None = None,
        confirmations: int = 0,
        receipt_timeout: float = 120.0,
        poll_interval: float = 0.1,
        retries: int = 4,
        backoff: float = 0.25,
        one_tx_per_block: bool = False,
        exclusive: bool = False,
        on_close: Callable[[], None] | None = None,
    ) -> None:
        if confirmations < 0:
            raise InvalidInput("confirmations must be >= 0")
        self.w3 = w3
        self.backend = backend
        self.endpoint = endpoint
        self.artifacts = artifacts or ArtifactStore()
        self.confirmations = confirmations
        self.receipt_timeout = receipt_timeout
        self.poll_interval = poll_interval
        self._retry = Retry(endpoint or backend, retries, backoff)
        self._index = index
        self._one_tx_per_block = one_tx_per_block
        self._exclusive = exclusive
        self._on_close = on_close
        self._nonces: dict[str, int] = {}
        self._lock = threading.RLock()
        self._chain_id: int | None = None
        self._priority_fee: int | None = None
        self._fee_cache: tuple[dict[str, int], int] | None = None

    # -- plumbing ----------------------------------------------------------------------

    def _rpc(self, fn: Callable[[], Any], what: str) -> Any:
        try:
            return self._retry(fn)
        except (ChainError, StorageError):
            raise
        except Exception as exc:
            if revert_data_of(exc) is not None:
                raise
            fault = StorageError.from_exception(exc)  # the embedded chain's disk, not the chain
            if fault is not None:
                raise fault from exc
            raise ChainError(f"{what} failed on {self.endpoint}: {_message(exc)}") from exc

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = int(self._rpc(lambda: self.w3.eth.chain_id, "eth_chainId"))
        return self._chain_id

    def block_number(self) -> int:
        return int(self._rpc(lambda: self.w3.eth.block_number, "eth_blockNumber"))

    def block_timestamp(self, block: BlockIdentifier = "latest") -> int:
        """The timestamp (seconds) of ``block``: the chain's clock, which may differ from ours."""
        found = self._rpc(lambda: self.w3.eth.get_block(block), "eth_getBlockByNumber")
        return int(found["timestamp"])

    def balance(self, address: str, block: BlockIdentifier = "latest") -> int:
        addr = to_checksum_address(address)
        return int(self._rpc(lambda: self.w3.eth.get_balance(addr, block), "eth_getBalance"))

    def nonce(self, address: str) -> int:
        addr = to_checksum_address(address)
        return int(
            self._rpc(
                lambda: self.w3.eth.get_transaction_count(addr, "pending"),
                "eth_getTransactionCount",
            )
        )

    def code(self, address: str) -> bytes:
        addr = to_checksum_address(address)
        return bytes(self._rpc(lambda: self.w3.eth.get_code(addr), "eth_getCode"))

    def _block_hash(self, number: int) -> str:
        block = self._rpc(lambda: self.w3.eth.get_block(number), "eth_getBlockByNumber")
        return "0x" + bytes(block["hash"]).hex()

    def _abis(self, first: list[dict[str, Any]] | None = None) -> list[list[dict[str, Any]]]:
        abis = [first] if first else []
        for name in self.artifacts.names():
            try:
                abis.append(self.artifacts.get(name).abi)
            except Exception:  # an unreadable artifact must not hide the revert
                continue
        return abis

    # -- contracts ---------------------------------------------------------------------

    def _artifact(self, artifact: str | Artifact) -> Artifact:
        return artifact if isinstance(artifact, Artifact) else self.artifacts.get(artifact)

    def at(
        self, artifact: str | Artifact, address: str, *, from_block: int = 0, track: bool = True
    ) -> DeployedContract:
        """The contract described by ``artifact`` at ``address``; its events get indexed
        from ``from_block`` on, unless ``track`` is false (for calls only: no log scan)."""
        art = self._artifact(artifact)
        addr = to_checksum_address(address)
        contract = self.w3.eth.contract(address=addr, abi=art.abi)
        if not track:
            return DeployedContract(art.name, addr, art, from_block, contract)
        self._rpc(
            lambda: self._index.track(self.w3, self.chain_id, addr, art.name, art.abi, from_block),
            "eth_getLogs",
        )
        return DeployedContract(art.name, addr, art, from_block, contract)

    def deploy(
        self, artifact: str | Artifact, *args: Any, signer: Signer | AccountSource, value: int = 0
    ) -> DeployedContract:
        """Deploy ``artifact`` with constructor ``args``; wait for it; track its events."""
        art = self._artifact(artifact)
        if not art.deployable:
            raise InvalidInput(f"{art.name} is abstract or an interface: nothing to deploy")
        factory = self.w3.eth.contract(abi=art.abi, bytecode=art.bytecode)
        try:
            data = factory.constructor(*args).data_in_transaction
        except Exception as exc:
            raise InvalidInput(f"bad constructor arguments for {art.name}: {exc}") from exc
        receipt = self._send({"data": data, "value": value}, signer, f"deploy {art.name}", art.abi)
        if receipt.contract_address is None:
            raise ChainError(f"deploying {art.name} created no contract ({receipt.tx_hash})")
        deployed = self.at(art, receipt.contract_address, from_block=receipt.block_number)
        return dataclasses.replace(deployed, tx_hash=receipt.tx_hash)

    def _encode(self, contract: DeployedContract, fn: str, args: tuple[Any, ...]) -> str:
        try:
            return str(contract.contract.encode_abi(fn, args=list(args)))
        except Exception as exc:
            raise InvalidInput(f"bad call {contract.name}.{fn}{args!r}: {exc}") from exc

    def transact(
        self,
        contract: DeployedContract,
        fn: str,
        *args: Any,
        signer: Signer | AccountSource,
        value: int = 0,
        gas: int | None = None,
    ) -> Receipt:
        """Send ``contract.fn(*args)`` signed by ``signer`` and wait for its receipt.

        Raises :class:`ContractReverted` (with the decoded error) if it would revert
        (checked by gas estimation before sending) or if it reverted once mined.
        """
        data = self._encode(contract, fn, args)
        tx = {"to": contract.address, "data": data, "value": value}
        if gas is not None:
            tx["gas"] = gas
        return self._send(tx, signer, f"{contract.name}.{fn}", contract.abi)

    def call(
        self,
        contract: DeployedContract,
        fn: str,
        *args: Any,
        sender: str | None = None,
        block: BlockIdentifier = "latest",
    ) -> Any:
        """Run ``contract.fn(*args)`` without a transaction; returns the decoded result."""
        try:
            bound = contract.contract.functions[fn](*args)
        except Exception as exc:
            raise InvalidInput(f"bad call {contract.name}.{fn}{args!r}: {exc}") from exc
        params: TxParams = {} if sender is None else {"from": to_checksum_address(sender)}
        try:
            return self._rpc(lambda: bound.call(params, block_identifier=block), "eth_call")
        except ChainError:
            raise
        except Exception as exc:
            data = revert_data_of(exc)
            if data is None:
                raise
            raise revert_error(f"{contract.name}.{fn}", data, self._abis(contract.abi)) from exc

    # -- value -------------------------------------------------------------------------

    def send_value(
        self, to: str, wei: int, *, signer: Signer | AccountSource | AccountSource
    ) -> Receipt:
        """Transfer ``wei`` to ``to``."""
        if wei < 0:
            raise InvalidInput("cannot send a negative amount")
        tx = {"to": to_checksum_address(to), "value": wei, "data": "0x"}
        return self._send(tx, signer, "transfer", None)

    def fund(self, address: str, wei: int) -> Receipt:
        """Send ``wei`` from the development faucet (embedded chain and anvil only)."""
        if self.chain_id not in _DEV_CHAINS:
            raise ChainError(
                f"chain {self.chain_id} has no development faucet",
                hint="fund the address from an account that holds ether on that network",
            )
        from eth_account import Account

        return self.send_value(address, wei, signer=Account.from_key(DEV_FAUCET_KEY))

    # -- sending -----------------------------------------------------------------------

    def _fees(self) -> dict[str, int]:
        if self._exclusive and self._fee_cache is not None and self._fee_cache[1] > 0:
            # Only we send here, and the base fee moves at most 12.5% a block: fees from
            # a few blocks ago (with their 2x headroom) still clear it.
            fees, uses = self._fee_cache
            self._fee_cache = (fees, uses - 1)
            return fees
        fees = self._fetch_fees()
        self._fee_cache = (fees, _FEE_REUSE)
        return fees

    def _fetch_fees(self) -> dict[str, int]:
        block = self._rpc(lambda: self.w3.eth.get_block("latest"), "eth_getBlockByNumber")
        base = block.get("baseFeePerGas")
        if base is None:  # a pre-London or permissioned chain: legacy gas price
            return {"gasPrice": int(self._rpc(lambda: self.w3.eth.gas_price, "eth_gasPrice"))}
        if self._priority_fee is None:
            try:
                self._priority_fee = int(self._retry(lambda: self.w3.eth.max_priority_fee))
            except Exception:
                self._priority_fee = _DEFAULT_PRIORITY_FEE
        return {
            "maxFeePerGas": 2 * int(base) + self._priority_fee,
            "maxPriorityFeePerGas": self._priority_fee,
        }

    def _estimate(self, tx: dict[str, Any], what: str, abi: list[dict[str, Any]] | None) -> int:
        try:
            estimate = int(self._retry(lambda: self.w3.eth.estimate_gas(tx)))  # type: ignore[arg-type]
        except ChainError:
            raise
        except Exception as exc:
            data = revert_data_of(exc)
            if data is not None:
                raise revert_error(what, data, self._abis(abi)) from exc
            raise ChainError(f"{what}: gas estimation failed: {_message(exc)}") from exc
        return estimate + estimate // 10

    def _next_nonce(self, sender: str) -> int:
        cached = self._nonces.get(sender)
        if cached is not None and self._exclusive:
            return cached  # nobody else can send on a chain we hold the lock of
        return max(cached or 0, self.nonce(sender))

    def _send(
        self,
        fields: dict[str, Any],
        signer: Signer | AccountSource,
        what: str,
        abi: list[dict[str, Any]] | None,
    ) -> Receipt:
        signer = tx_signer(signer)
        sender = to_checksum_address(signer.address)
        with self._lock:
            tx: dict[str, Any] = {**fields, "from": sender, "chainId": self.chain_id}
            tx.update(self._fees())
            if "gas" not in tx:
                tx["gas"] = self._estimate(tx, what, abi)
            for attempt in (0, 1):
                tx["nonce"] = self._next_nonce(sender)
                raw = bytes(signer.sign_transaction(tx).raw_transaction)
                tx_hash = "0x" + keccak(raw).hex()
                try:
                    self._rpc(lambda r=raw: self.w3.eth.send_raw_transaction(r), what)  # type: ignore[misc]
                except ChainError as exc:
                    self._fee_cache = None  # refetch fees for whatever comes next
                    text = str(exc).lower()
                    if "already known" in text or "already imported" in text:
                        break  # a retried send that had reached the node the first time
                    if attempt == 0 and "nonce" in text:
                        self._nonces.pop(sender, None)  # someone else used it: ask again
                        continue
                    raise
                break
            self._nonces[sender] = tx["nonce"] + 1
        return self._finish(tx_hash, tx, what, abi)

    def _receipt(self, tx_hash: str) -> Any:
        from web3.exceptions import TransactionNotFound

        def fetch() -> Any:
            try:
                return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
            except TransactionNotFound:
                return None

        return self._rpc(fetch, "eth_getTransactionReceipt")

    def receipt(self, tx_hash: str) -> Any:
        """The receipt of transaction ``tx_hash`` as the node gives it (None: unknown)."""
        return self._receipt(tx_hash)

    def _wait_receipt(self, tx_hash: str) -> Any:
        deadline = time.monotonic() + self.receipt_timeout
        while True:
            receipt = self._receipt(tx_hash)
            if receipt is not None and receipt.get("blockNumber") is not None:
                if self.confirmations == 0:
                    return receipt
                if self.block_number() >= receipt["blockNumber"] + self.confirmations:
                    again = self._receipt(tx_hash)  # still there, in the same block?
                    if again is not None and again["blockHash"] == receipt["blockHash"]:
                        return again
            if time.monotonic() >= deadline:
                raise ChainError(
                    f"transaction {tx_hash} not confirmed after {self.receipt_timeout:g} s",
                    hint="it may still be mined; check it later by its hash",
                )
            time.sleep(self.poll_interval)

    def _finish(
        self, tx_hash: str, tx: dict[str, Any], what: str, abi: list[dict[str, Any]] | None
    ) -> Receipt:
        raw = self._wait_receipt(tx_hash)
        block_number = int(raw["blockNumber"])
        if raw["status"] != 1:
            replay = {k: v for k, v in tx.items() if k in ("from", "to", "data", "value", "gas")}
            data = b""
            try:
                self._retry(lambda: self.w3.eth.call(replay, block_number - 1))  # type: ignore[arg-type]
            except Exception as exc:
                data = revert_data_of(exc) or b""
            raise revert_error(what, data, self._abis(abi), tx_hash=tx_hash)
        chain_id = self.chain_id
        events = self._index.add_logs(chain_id, raw["logs"])
        from hexbytes import HexBytes

        block_hash = "0x" + bytes(HexBytes(raw["blockHash"])).hex()
        if self._one_tx_per_block:
            cursor = self._index.cursor(chain_id)
            if cursor is not None and cursor[0] == block_number - 1:
                self._index.set_cursor(chain_id, block_number, block_hash)
        contract_address = raw.get("contractAddress")
        return Receipt(
            tx_hash=tx_hash,
            block_number=block_number,
            block_hash=block_hash,
            sender=str(raw["from"]),
            to=None if raw.get("to") is None else str(raw["to"]),
            contract_address=None if contract_address is None else str(contract_address),
            gas_used=int(raw["gasUsed"]),
            effective_gas_price=int(raw.get("effectiveGasPrice", 0)),
            events=tuple(events),
        )

    # -- events ------------------------------------------------------------------------

    def sync_events(self) -> int:
        """Index tracked contracts' logs up to the head; returns the head indexed."""
        head = self.block_number()
        self._rpc(
            lambda: self._index.sync(self.w3, self.chain_id, head, self._block_hash), "eth_getLogs"
        )
        return head

    def events(
        self,
        contract: DeployedContract | str | None = None,
        event: str | None = None,
        *,
        from_block: int = 0,
        to_block: int | None = None,
        args: Mapping[str, Any] | None = None,
    ) -> list[EventRecord]:
        """Indexed events (synced to the head first), oldest first, filtered as asked."""
        self.sync_events()
        address = contract.address if isinstance(contract, DeployedContract) else contract
        return self._index.query(
            self.chain_id,
            address=address,
            event=event,
            from_block=from_block,
            to_block=to_block,
            args=args,
        )

    # -- lifetime ----------------------------------------------------------------------

    def status(self) -> dict[str, Any]:
        """What ``ailedger chain status --json`` reports."""
        head = self.block_number()
        return {
            "backend": self.backend,
            "endpoint": self.endpoint,
            "chain_id": self.chain_id,
            "block_number": head,
            "tracked_contracts": {
                a: self._index.name_of(self.chain_id, a) for a in self._index.tracked(self.chain_id)
            },
        }

    def close(self) -> None:
        self._index.close()
        if self._on_close is not None:
            self._on_close()
            self._on_close = None

    def __enter__(self) -> Chain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
