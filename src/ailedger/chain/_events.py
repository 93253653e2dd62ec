"""Our own index of contract logs in SQLite.

Log filters over py-evm (``eth_getLogs``) walk every block and every receipt; this index
keeps each log of the contracts we track once, decoded, keyed by chain id, so queries
never touch the node. It is filled from the receipts of transactions we send and by
scanning the blocks after the last indexed one (``sync``). If the block the cursor
points at changes hash (a reorg, or a node restarted without its state), the index
walks back to the last block it still agrees with and drops everything above it.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hexbytes import HexBytes

from ailedger._sqlite import connect_read_only
from ailedger.chain._hex import to_checksum_address
from ailedger.errors import IntegrityError, StorageError

if TYPE_CHECKING:
    from web3 import Web3

__all__ = ["EventIndex", "EventRecord", "LogReader"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contracts (
    chain_id INTEGER NOT NULL, address TEXT NOT NULL, name TEXT NOT NULL,
    abi TEXT NOT NULL, from_block INTEGER NOT NULL, PRIMARY KEY (chain_id, address));
CREATE TABLE IF NOT EXISTS logs (
    chain_id INTEGER NOT NULL, block_number INTEGER NOT NULL, log_index INTEGER NOT NULL,
    block_hash TEXT NOT NULL, tx_hash TEXT NOT NULL, address TEXT NOT NULL,
    topic0 TEXT, topic1 TEXT, topic2 TEXT, topic3 TEXT, data BLOB NOT NULL,
    event TEXT, args TEXT, PRIMARY KEY (chain_id, tx_hash, log_index));
CREATE INDEX IF NOT EXISTS logs_by_block ON logs (chain_id, block_number, log_index);
CREATE INDEX IF NOT EXISTS logs_by_address ON logs (chain_id, address, topic0, block_number);
CREATE TABLE IF NOT EXISTS cursor (
    chain_id INTEGER PRIMARY KEY, block_number INTEGER NOT NULL, block_hash TEXT NOT NULL);
"""
_SCAN_CHUNK = 2000  # blocks per eth_getLogs request


@functools.cache
def _codec() -> Any:
    """web3's ABI codec, built on first use (importing web3 costs about a second)."""
    from web3 import Web3

    return Web3().codec


def _jsonable(value: Any) -> Any:
    if isinstance(value, bytes):
        return "0x" + value.hex()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


@dataclass(frozen=True)
class EventRecord:
    """One indexed log. ``event``/``args`` are empty when no tracked ABI names it."""

    address: str
    event: str
    args: dict[str, Any]
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    topics: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "event": self.event,
            "args": self.args,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "tx_hash": self.tx_hash,
            "log_index": self.log_index,
            "topics": list(self.topics),
        }


def _hex(value: Any) -> str:
    return "0x" + bytes(HexBytes(value)).hex()


def _block_hash(w3: Web3, number: int) -> str:
    return _hex(w3.eth.get_block(number)["hash"])


#: ``(first_block, last_block, addresses) -> logs``, shaped like eth_getLogs results.
LogReader = Callable[[int, int, list[str]], Sequence[Mapping[str, Any]]]


class EventIndex:
    """A SQLite event index (``path=None``: in memory, rebuilt by scanning each time).

    ``read_logs`` replaces ``eth_getLogs`` for scans (the embedded chain reads its
    receipts directly).
    """

    def __init__(
        self, path: Path | None, read_logs: LogReader | None = None, *, read_only: bool = False
    ) -> None:
        self._read_logs = read_logs
        try:
            target: str | Path = ":memory:" if path is None or read_only else path
            self._db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
            if read_only and path is not None and path.is_file():
                # a copy in memory, brought up to date there: the file is not touched
                source = connect_read_only(path)
                try:
                    source.backup(self._db)
                finally:
                    source.close()
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as exc:
            fault = StorageError.from_exception(exc, path)
            raise fault or IntegrityError(f"cannot open event index {path}: {exc}") from exc
        self._abis: dict[tuple[int, str], tuple[str, dict[bytes, dict[str, Any]]]] = {}
        for chain_id, address, name, abi in self._db.execute(
            "SELECT chain_id, address, name, abi FROM contracts"
        ):
            self._remember(chain_id, address, name, json.loads(abi))

    def _remember(self, chain_id: int, address: str, name: str, abi: list[dict[str, Any]]) -> None:
        from eth_utils.abi import event_abi_to_log_topic

        topics = {
            event_abi_to_log_topic(e): e  # type: ignore[arg-type]
            for e in abi
            if e.get("type") == "event" and not e.get("anonymous")
        }
        self._abis[(chain_id, address)] = (name, topics)

    # -- tracking ----------------------------------------------------------------------

    def tracked(self, chain_id: int) -> list[str]:
        return sorted(a for (c, a) in self._abis if c == chain_id)

    def name_of(self, chain_id: int, address: str) -> str | None:
        entry = self._abis.get((chain_id, to_checksum_address(address)))
        return None if entry is None else entry[0]

    def cursor(self, chain_id: int) -> tuple[int, str] | None:
        row = self._db.execute(
            "SELECT block_number, block_hash FROM cursor WHERE chain_id=?", (chain_id,)
        ).fetchone()
        return None if row is None else (int(row[0]), str(row[1]))

    def track(
        self,
        w3: Web3,
        chain_id: int,
        address: str,
        name: str,
        abi: list[dict[str, Any]],
        from_block: int,
    ) -> None:
        """Index ``address``'s logs from ``from_block`` on (backfilling up to the cursor)."""
        address = to_checksum_address(address)
        if (chain_id, address) in self._abis:
            return
        if self.cursor(chain_id) is None:  # nothing tracked yet: index from the head on
            self.sync(w3, chain_id, int(w3.eth.block_number), lambda n: _block_hash(w3, n))
        self._db.execute(
            "INSERT OR REPLACE INTO contracts VALUES (?, ?, ?, ?, ?)",
            (chain_id, address, name, json.dumps(abi, sort_keys=True), from_block),
        )
        self._remember(chain_id, address, name, abi)
        cursor = self.cursor(chain_id)
        if cursor is not None and from_block <= cursor[0]:
            self._scan(w3, chain_id, [address], from_block, cursor[0])

    # -- filling -----------------------------------------------------------------------

    def _decode(self, chain_id: int, log: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        entry = self._abis.get((chain_id, to_checksum_address(log["address"])))
        topics = log.get("topics") or []
        if entry is None or not topics:
            return "", {}
        event_abi = entry[1].get(bytes(HexBytes(topics[0])))
        if event_abi is None:
            return "", {}
        try:
            # get_event_data wants every field of a receipt log; only topics and data matter
            complete = {"transactionIndex": 0, "logIndex": 0, **log}
            from web3._utils.events import get_event_data

            decoded = get_event_data(_codec(), event_abi, complete)
        except Exception:  # a log that does not match its own ABI: keep it, undecoded
            return "", {}
        return str(decoded["event"]), _jsonable(dict(decoded["args"]))

    def add_logs(self, chain_id: int, logs: Iterable[Mapping[str, Any]]) -> list[EventRecord]:
        """Store ``logs`` (receipt or eth_getLogs entries) of tracked contracts; return them."""
        records = []
        rows = []
        for log in logs:
            address = to_checksum_address(log["address"])
            if (chain_id, address) not in self._abis:
                continue
            event, args = self._decode(chain_id, log)
            topics = tuple(_hex(t) for t in log.get("topics") or [])
            record = EventRecord(
                address=address,
                event=event,
                args=args,
                block_number=int(log["blockNumber"]),
                block_hash=_hex(log["blockHash"]),
                tx_hash=_hex(log["transactionHash"]),
                log_index=int(log["logIndex"]),
                topics=topics,
            )
            records.append(record)
            padded = [*topics, None, None, None, None][:4]
            rows.append(
                (
                    chain_id,
                    record.block_number,
                    record.log_index,
                    record.block_hash,
                    record.tx_hash,
                    address,
                    *padded,
                    bytes(HexBytes(log["data"])),
                    event or None,
                    json.dumps(args, sort_keys=True) if event else None,
                )
            )
        if rows:
            self._db.executemany(
                "INSERT OR REPLACE INTO logs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
            )
        return records

    def set_cursor(self, chain_id: int, block_number: int, block_hash: str) -> None:
        self._db.execute(
            "INSERT OR REPLACE INTO cursor VALUES (?, ?, ?)", (chain_id, block_number, block_hash)
        )

    def _scan(
        self, w3: Web3, chain_id: int, addresses: Sequence[str], start: int, end: int
    ) -> None:
        for lo in range(start, end + 1, _SCAN_CHUNK):
            hi = min(end, lo + _SCAN_CHUNK - 1)
            if self._read_logs is not None:
                self.add_logs(chain_id, self._read_logs(lo, hi, list(addresses)))
                continue
            logs = w3.eth.get_logs(
                {
                    "fromBlock": lo,
                    "toBlock": hi,
                    "address": [to_checksum_address(a) for a in addresses],
                }
            )
            self.add_logs(chain_id, logs)

    def sync(self, w3: Web3, chain_id: int, head: int, block_hash: Callable[[int], str]) -> None:
        """Index every tracked log in blocks after the cursor up to ``head``."""
        cursor = self.cursor(chain_id)
        start = 0
        if cursor is not None:
            number, known = cursor
            if number <= head and block_hash(number) == known:
                start = number + 1
            else:
                start = self._rewind(chain_id, min(number, head), block_hash)
        row = self._db.execute(
            "SELECT MIN(from_block) FROM contracts WHERE chain_id=?", (chain_id,)
        ).fetchone()
        if row[0] is not None:  # nothing to find before the oldest tracked contract
            start = max(start, int(row[0]))
        if start > head:
            if cursor is None or cursor[0] > head:
                self.set_cursor(chain_id, head, block_hash(head))
            return
        addresses = self.tracked(chain_id)
        self._db.execute("BEGIN")
        try:
            if addresses:
                self._scan(w3, chain_id, addresses, start, head)
            self.set_cursor(chain_id, head, block_hash(head))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def _rewind(self, chain_id: int, top: int, block_hash: Callable[[int], str]) -> int:
        """Drop logs from blocks the chain no longer has; return the first block to rescan."""
        rows = self._db.execute(
            "SELECT DISTINCT block_number, block_hash FROM logs WHERE chain_id=? "
            "ORDER BY block_number DESC",
            (chain_id,),
        ).fetchall()
        keep = -1
        for number, known in rows:
            if keep >= 0 and number < keep:
                break  # below the newest block we still agree with: assumed settled
            if number <= top and block_hash(int(number)) == known:
                keep = int(number)
                continue
            self._db.execute(
                "DELETE FROM logs WHERE chain_id=? AND block_number=? AND block_hash=?",
                (chain_id, number, known),
            )
        self._db.execute("DELETE FROM cursor WHERE chain_id=?", (chain_id,))
        return keep + 1

    # -- queries -----------------------------------------------------------------------

    def query(
        self,
        chain_id: int,
        *,
        address: str | None = None,
        event: str | None = None,
        from_block: int = 0,
        to_block: int | None = None,
        args: Mapping[str, Any] | None = None,
    ) -> list[EventRecord]:
        sql = "SELECT * FROM logs WHERE chain_id=? AND block_number>=?"
        params: list[Any] = [chain_id, from_block]
        if to_block is not None:
            sql += " AND block_number<=?"
            params.append(to_block)
        if address is not None:
            sql += " AND address=?"
            params.append(to_checksum_address(address))
        if event is not None:
            sql += " AND event=?"
            params.append(event)
        sql += " ORDER BY block_number, log_index"
        wanted = _jsonable(dict(args or {}))
        out = []
        for row in self._db.execute(sql, params):
            decoded = json.loads(row[12]) if row[12] else {}
            if any(decoded.get(k) != v for k, v in wanted.items()):
                continue
            topics = tuple(t for t in row[6:10] if t is not None)
            out.append(
                EventRecord(
                    address=row[5],
                    event=row[11] or "",
                    args=decoded,
                    block_number=row[1],
                    block_hash=row[3],
                    tx_hash=row[4],
                    log_index=row[2],
                    topics=topics,
                )
            )
        return out

    def close(self) -> None:
        self._db.close()
