"""``ailedger.chain.anchoring`` without a chain: anchor records and the book, EIP-712 cosignature
files, the contract-code check, and which anchor a receipt carries. (On-chain anchoring and
verification on both backends: ``tests/chain/test_anchors.py``.)"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from _log_util import LOG_SIGNER, WITNESS_SIGNER, envelope
from ailedger.chain._anchor_code import code_matches
from ailedger.chain.anchoring import (
    COSIGNATURE_MEDIA_TYPE,
    AnchorBook,
    AnchorRecord,
    Eip712Cosignature,
    receipt_with_anchor,
)
from ailedger.chain.eip712 import Domain, cosignature_digest, log_id, sign_digest
from ailedger.errors import FormatError, SignatureInvalid
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import Checkpoint, Secp256k1NoteKey
from ailedger.log.receipt import Receipt, verify_receipt
from ailedger.merkle import verify_consistency

ORIGIN = "anchor.example/log"
CONTRACT = "0x" + "ab" * 20
SIGNER = LOG_SIGNER.address

origins = st.from_regex(r"[a-z0-9][a-z0-9./-]{0,40}", fullmatch=True)
records = st.builds(
    AnchorRecord,
    chain_id=st.integers(1, 2**64),
    contract=st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    origin=origins,
    log_signer=st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex()),
    index=st.integers(0, 2**32),
    size=st.integers(0, 2**63),
    root=st.binary(min_size=32, max_size=32),
    tx_hash=st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex()),
    block=st.integers(0, 2**40),
    consistency_checked=st.booleans(),
)


@given(records)
def test_anchor_record_round_trips(record: AnchorRecord) -> None:
    doc = json.loads(json.dumps(record.to_dict()))
    again = AnchorRecord.from_dict(doc, record.origin)
    assert again.to_dict() == record.to_dict()
    assert doc["log_id"] == "0x" + log_id(record.origin, record.log_signer).hex()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"root": "00" * 31}, "root"),
        ({"size": -1}, "size"),
        ({"size": 2**64}, "size"),
        ({"chain_id": 0}, "chain_id"),
        ({"size": True}, "size"),
        ({"contract": "not an address"}, "contract"),
        ({"transaction": ""}, "transaction"),
        ({"log_id": "0x" + "00" * 32}, "not the id of origin"),
        ({"log_signer": "nobody"}, "log_signer"),
    ],
)
def test_anchor_record_rejects_bad_fields(change: dict[str, object], message: str) -> None:
    good = AnchorRecord(
        1, CONTRACT, ORIGIN, SIGNER, 0, 3, b"\1" * 32, "0x" + "cd" * 32, 9
    ).to_dict()
    with pytest.raises(FormatError, match=message):
        AnchorRecord.from_dict(good | change, ORIGIN)
    with pytest.raises(FormatError):
        AnchorRecord.from_dict([good], ORIGIN)


def test_book_keeps_one_record_per_anchor(tmp_path: Path) -> None:
    book = AnchorBook(tmp_path / "anchors.json")
    assert book.records(ORIGIN) == []
    a = AnchorRecord(7, CONTRACT, ORIGIN, SIGNER, 0, 3, b"\1" * 32, "0x" + "01" * 32, 5)
    b = AnchorRecord(7, CONTRACT, ORIGIN, SIGNER, 1, 9, b"\2" * 32, "0x" + "02" * 32, 6)
    other_chain = AnchorRecord(8, CONTRACT, ORIGIN, SIGNER, 0, 4, b"\3" * 32, "0x" + "03" * 32, 2)
    for r in (b, a, other_chain, a):
        book.add(r)
    assert [r.size for r in book.records(ORIGIN)] == [3, 4, 9]
    assert book.records(ORIGIN, chain_id=7) == [a, b]
    assert book.records(ORIGIN, contract=CONTRACT.upper().replace("0X", "0x")) != []
    assert book.records("other.example/log") == []
    (tmp_path / "anchors.json").write_text("[1, 2")
    with pytest.raises(FormatError, match="not JSON"):
        book.records(ORIGIN)


def _cosignature(size: int = 3, root: bytes = b"\5" * 32) -> Eip712Cosignature:
    domain = Domain.log_anchors(7, CONTRACT)
    lid = log_id(ORIGIN, SIGNER)
    sig = sign_digest(cosignature_digest(domain, lid, size, root), WITNESS_SIGNER)
    return Eip712Cosignature(7, CONTRACT, ORIGIN, SIGNER, size, root, WITNESS_SIGNER.address, sig)


def test_cosignature_file_round_trip_and_tampering(tmp_path: Path) -> None:
    c = _cosignature()
    doc = c.to_dict()
    assert doc["mediaType"] == COSIGNATURE_MEDIA_TYPE
    path = tmp_path / "c.json"
    path.write_text(json.dumps(doc))
    assert Eip712Cosignature.load(path) == c.check()
    changes: tuple[tuple[str, object], ...] = (
        ("size", 4),
        ("root", "06" * 32),
        ("chain_id", 8),
        ("origin", "x.y/z"),
        ("log_signer", WITNESS_SIGNER.address),  # another key: another log
    )
    for field, value in changes:
        with pytest.raises(SignatureInvalid, match="made by"):
            Eip712Cosignature.from_dict(doc | {field: value})
    with pytest.raises(SignatureInvalid):
        Eip712Cosignature.from_dict(doc | {"signer": LOG_SIGNER.address})
    with pytest.raises(FormatError, match="mediaType"):
        Eip712Cosignature.from_dict(doc | {"mediaType": "text/plain"})
    with pytest.raises(FormatError, match="malformed"):
        Eip712Cosignature.from_dict(doc | {"signature": "0xzz"})
    path.write_text("{")
    with pytest.raises(FormatError, match="not JSON"):
        Eip712Cosignature.load(path)


@given(st.binary(min_size=1, max_size=200), st.integers(0, 200), st.data())
def test_code_check_ignores_only_immutable_slots(code: bytes, at: int, data: st.DataObject) -> None:
    slot = at % (len(code) + 1)
    expected = code[:slot] + b"\0" * 32 + code[slot:]
    filled = data.draw(st.binary(min_size=32, max_size=32))
    assert code_matches(expected, code[:slot] + filled + code[slot:])
    assert not code_matches(expected, expected + b"\0")
    assert not code_matches(b"", b"")
    nonzero = [i for i, b in enumerate(expected) if b != 0]
    if nonzero:  # a byte that is not inside a zero run is compared exactly
        i = data.draw(st.sampled_from(nonzero))
        changed = bytearray(expected)
        changed[i] = data.draw(st.integers(0, 255).filter(lambda v: v != expected[i]))
        assert not code_matches(expected, bytes(changed))


# --- which anchor a receipt carries ------------------------------------------------------


@pytest.fixture
def log(tmp_path: Path) -> TransparencyLog:
    return TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN)


def _grow(log: TransparencyLog, start: int, stop: int) -> Checkpoint:
    log.append_many([envelope(i) for i in range(start, stop)])
    note = log.checkpoint(Secp256k1NoteKey.from_signer(ORIGIN, LOG_SIGNER))
    return Checkpoint.parse(note.text)


def _record(index: int, cp: Checkpoint) -> AnchorRecord:
    tx = "0x" + "aa" * 32
    return AnchorRecord(7, CONTRACT, ORIGIN, SIGNER, index, cp.size, cp.root, tx, 10 + index)


def _key() -> Secp256k1NoteKey:
    return Secp256k1NoteKey(ORIGIN, LOG_SIGNER.address)


def _size(receipt: Receipt) -> int:
    return Checkpoint.parse(receipt.proof.checkpoint.text).size


def test_receipt_carries_the_anchor_that_covers_it(log: TransparencyLog, tmp_path: Path) -> None:
    book = AnchorBook(tmp_path / "anchors.json")
    first = _grow(log, 0, 4)
    assert receipt_with_anchor(log, 1, _key(), book).anchor is None  # nothing anchored yet
    book.add(_record(0, first))
    exact = receipt_with_anchor(log, 1, _key(), book)
    assert exact.anchor == _record(0, first).to_dict()
    verify_receipt(Receipt.from_json(exact.to_json()))  # still verifies offline

    # the log grows and gets a new checkpoint, not anchored yet: the receipt is made against
    # the anchored checkpoint (which covers entry 1), not the latest one
    _grow(log, 4, 9)
    older = receipt_with_anchor(log, 1, _key(), book)
    assert _size(older) == 4
    assert older.anchor == exact.anchor
    # entry 6 is not covered by any anchor
    assert receipt_with_anchor(log, 6, _key(), book).anchor is None

    # a later anchor larger than the latest checkpoint: carried with a consistency proof
    third = _grow(log, 9, 10)
    log.append_many([envelope(i) for i in range(10, 12)])
    bigger = Checkpoint(ORIGIN, 12, log.root(12))
    book.add(_record(1, bigger))
    proved = receipt_with_anchor(log, 6, _key(), book)
    assert _size(proved) == third.size
    assert proved.anchor is not None
    hashes = [bytes.fromhex(h) for h in proved.anchor["consistency"]]
    verify_consistency(third.size, 12, third.root, bigger.root, hashes)

    # a record that does not match this log's tree is ignored
    book.add(AnchorRecord(7, CONTRACT, ORIGIN, SIGNER, 2, 12, b"\0" * 32, "0x" + "bb" * 32, 30))
    assert receipt_with_anchor(log, 6, _key(), book).anchor == proved.anchor


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=8,
)


@example({"size": 2**64})
@example({"chain_id": 0})
@example({"signature": "0x" + "00" * 65})
@given(st.dictionaries(st.sampled_from(sorted(_cosignature().to_dict())), json_values))
def test_malformed_documents_fail_with_one_clear_error(overrides: dict[str, object]) -> None:
    """Any mangling of a cosignature file or anchor object is a FormatError or a
    SignatureInvalid, never another exception (and never accepted unless unchanged)."""
    cosig = _cosignature().to_dict()
    doc = cosig | overrides
    try:
        Eip712Cosignature.from_dict(doc)
    except (FormatError, SignatureInvalid):
        pass
    else:
        assert Eip712Cosignature.from_dict(doc) == _cosignature()
    record = AnchorRecord(
        1, CONTRACT, ORIGIN, SIGNER, 0, 3, b"\1" * 32, "0x" + "cd" * 32, 9
    ).to_dict()
    with contextlib.suppress(FormatError):
        AnchorRecord.from_dict(record | overrides, ORIGIN)
