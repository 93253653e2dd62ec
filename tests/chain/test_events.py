"""The SQLite event index on its own: decoding, filters, persistence, rewinds."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_abi.abi import encode
from eth_utils.abi import event_abi_to_log_topic
from eth_utils.address import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st
from web3 import Web3

from _chain_util import ARTIFACTS
from _profiles import examples
from ailedger.chain import load_artifact
from ailedger.chain._events import EventIndex, LogReader
from ailedger.errors import IntegrityError

CHAIN_ID = 7
PROBE = load_artifact("Probe", ARTIFACTS)
ADDRESS = to_checksum_address("0x" + "ab" * 20)
STORED: Any = next(e for e in PROBE.abi if e.get("name") == "Stored")
W3 = Web3()  # no provider: the index only needs it for scans, which these tests avoid


def _stored_log(
    block: int, index: int, sender: bytes, value: int, tag: bytes, note: str
) -> dict[str, Any]:
    return {
        "address": ADDRESS,
        "topics": [
            event_abi_to_log_topic(STORED),
            b"\x00" * 12 + sender,
            value.to_bytes(32, "big"),
        ],
        "data": encode(["bytes32", "string"], [tag, note]),
        "blockNumber": block,
        "blockHash": block.to_bytes(32, "big"),
        "transactionHash": (block * 1000 + index).to_bytes(32, "big"),
        "logIndex": index,
    }


def _index(path: Path | None, read_logs: LogReader | None = None) -> EventIndex:
    index = EventIndex(path, read_logs)
    index.set_cursor(CHAIN_ID, 0, "0x" + "00" * 32)  # so tracking does not need a node
    index.track(W3, CHAIN_ID, ADDRESS, "Probe", PROBE.abi, from_block=1)
    return index


_events = st.lists(
    st.tuples(
        st.binary(min_size=20, max_size=20),
        st.integers(min_value=0, max_value=2**256 - 1),
        st.binary(min_size=32, max_size=32),
        st.text(max_size=30),
    ),
    max_size=12,
)


@settings(max_examples=examples(50))
@given(events=_events, pick=st.integers(min_value=0, max_value=11))
def test_logs_decode_and_filter_like_the_abi_says(
    events: list[tuple[bytes, int, bytes, str]], pick: int
) -> None:
    index = _index(None)
    logs = [_stored_log(i + 1, 0, *e) for i, e in enumerate(events)]
    records = index.add_logs(CHAIN_ID, logs)
    assert len(records) == len(events)
    stored = index.query(CHAIN_ID, address=ADDRESS, event="Stored")
    assert [(r.args["sender"], r.args["value"], r.args["tag"], r.args["note"]) for r in stored] == [
        (to_checksum_address(s), v, "0x" + t.hex(), n) for s, v, t, n in events
    ]
    assert stored == records
    if events:
        value = events[pick % len(events)][1]
        wanted = [r for r in stored if r.args["value"] == value]
        assert index.query(CHAIN_ID, args={"value": value}) == wanted
    index.close()


def test_untracked_and_undecodable_logs(tmp_path: Path) -> None:
    index = _index(tmp_path / "events.sqlite")
    other = _stored_log(1, 0, b"\x01" * 20, 1, b"\x02" * 32, "x")
    other["address"] = "0x" + "cd" * 20
    assert index.add_logs(CHAIN_ID, [other]) == []  # not tracked: not stored
    odd = _stored_log(2, 0, b"\x01" * 20, 1, b"\x02" * 32, "x")
    odd["topics"][0] = b"\x99" * 32  # an event the ABI does not know
    [record] = index.add_logs(CHAIN_ID, [odd])
    assert (record.event, record.args) == ("", {})
    assert record.topics[0] == "0x" + "99" * 32
    index.close()
    reopened = EventIndex(tmp_path / "events.sqlite")
    assert reopened.tracked(CHAIN_ID) == [ADDRESS]
    assert reopened.name_of(CHAIN_ID, ADDRESS.lower()) == "Probe"
    assert [r.block_number for r in reopened.query(CHAIN_ID)] == [2]
    reopened.close()


def test_sync_rewinds_blocks_the_chain_no_longer_has() -> None:
    index = _index(None, read_logs=lambda first, last, addresses: [])  # nothing new there
    logs = [_stored_log(b, 0, b"\x01" * 20, b, b"\x02" * 32, f"b{b}") for b in (1, 2, 3)]
    index.add_logs(CHAIN_ID, logs)
    index.set_cursor(CHAIN_ID, 3, "0x" + (3).to_bytes(32, "big").hex())
    # the node now says block 2 and 3 have other hashes and there are no logs of ours there
    hashes = {0: 0, 1: 1, 2: 22, 3: 33}

    def block_hash(n: int) -> str:
        return "0x" + hashes[n].to_bytes(32, "big").hex()

    index.sync(W3, CHAIN_ID, 3, block_hash)
    assert [r.args["note"] for r in index.query(CHAIN_ID)] == ["b1"]
    assert index.cursor(CHAIN_ID) == (3, block_hash(3))
    index.close()


def test_a_corrupt_index_is_an_integrity_error(tmp_path: Path) -> None:
    (tmp_path / "events.sqlite").write_bytes(b"garbage" * 1000)
    with pytest.raises(IntegrityError):
        EventIndex(tmp_path / "events.sqlite")
