"""The transparency log: appends, stored tree vs. the reference Merkle functions, queries,
bad input and corruption detection."""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _log_util import ALICE, BOB, ORIGIN, PREDICATE, envelope
from _profiles import examples
from ailedger import merkle
from ailedger.attest.dsse import Envelope, Signature, signature_check
from ailedger.errors import (
    FormatError,
    IntegrityError,
    InvalidInput,
    NotFound,
    SignatureInvalid,
)
from ailedger.identity.keys import P256Signer, recover_address
from ailedger.log import LogSizeChanged, TransparencyLog
from ailedger.log._envelope import canonical_envelope, check_ethereum_signature, known_keys_check


@pytest.fixture
def log(tmp_path: Path) -> TransparencyLog:
    return TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN)


@pytest.fixture(scope="module")
def envelopes() -> list[bytes]:
    return [envelope(i) for i in range(40)]


def _leaves(log: TransparencyLog) -> list[bytes]:
    return [merkle.leaf_hash(log.get(i).envelope) for i in range(log.size())]


def test_append_returns_consecutive_indexes_and_reopens(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    with TransparencyLog.open(path, ORIGIN) as log:
        assert log.append(envelope(0)) == 0
        assert log.append_many([envelope(1), envelope(2)]) == [1, 2]
        assert log.append_many([]) == []
        root = log.root()
    with TransparencyLog.open(path) as again:
        assert again.origin == ORIGIN
        assert again.size() == 3
        assert again.root() == root


def test_wal_mode_and_full_sync(log: TransparencyLog) -> None:
    db = sqlite3.connect(log.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    assert log._store.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL


def test_leaf_is_rfc9162_hash_of_canonical_envelope(log: TransparencyLog) -> None:
    raw = envelope(7)
    index = log.append(json.dumps(json.loads(raw), indent=3).encode())  # same envelope, spaced
    entry = log.get(index)
    doc = json.loads(raw)
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    assert entry.envelope == canonical
    assert entry.leaf_hash == merkle.leaf_hash(canonical)


def test_stored_tree_matches_reference(log: TransparencyLog, envelopes: list[bytes]) -> None:
    log.append_many(envelopes[:17])
    for e in envelopes[17:]:
        log.append(e)
    leaves = _leaves(log)
    for n in range(1, len(leaves) + 1):
        assert log.root(n) == merkle.root_from_leaf_hashes(leaves[:n])
        for i in range(n):
            proof = log.inclusion_proof(i, n)
            assert list(proof.hashes) == merkle.inclusion_proof_from_leaf_hashes(leaves[:n], i)
            proof.verify()
        for m in range(n + 1):
            c = log.consistency_proof(m, n)
            assert list(c.hashes) == merkle.consistency_proof_from_leaf_hashes(leaves[:n], m)
            c.verify()
    assert log.root(0) == merkle.EMPTY_ROOT


@settings(
    max_examples=examples(25),
    suppress_health_check=[*settings().suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(batches=st.lists(st.integers(min_value=1, max_value=9), min_size=1, max_size=8))
def test_any_batching_gives_the_same_tree(
    tmp_path_factory: pytest.TempPathFactory, envelopes: list[bytes], batches: list[int]
) -> None:
    path = tmp_path_factory.mktemp("b") / "log.sqlite"
    with TransparencyLog.open(path, ORIGIN) as log:
        pos = 0
        for size in batches:
            log.append_many(envelopes[pos : pos + size])
            pos += size
        leaves = _leaves(log)
        assert log.root() == merkle.root_from_leaf_hashes(leaves)
        last = log.size() - 1
        assert log.inclusion_proof(last).hashes == tuple(
            merkle.inclusion_proof_from_leaf_hashes(leaves, last)
        )
        log.verify()


def test_proof_arguments_out_of_range(log: TransparencyLog) -> None:
    log.append_many([envelope(i) for i in range(3)])
    with pytest.raises(InvalidInput):
        log.inclusion_proof(3)
    with pytest.raises(InvalidInput):
        log.inclusion_proof(0, 4)
    with pytest.raises(InvalidInput):
        log.consistency_proof(4)
    with pytest.raises(NotFound):
        log.get(3)


def test_queries(log: TransparencyLog) -> None:
    digest = "ab" * 32
    log.append_many(
        [
            envelope(0),
            envelope(1, (ALICE, BOB), digest=digest),
            envelope(2, (BOB,), predicate="https://ailedger.dev/other/v1"),
            envelope(3, digest=digest),
        ]
    )
    assert [e.index for e in log.query(subject=digest)] == [1, 3]
    assert [e.index for e in log.query(subject=f"sha256:{digest.upper()}")] == [1, 3]
    assert [e.index for e in log.query(signer=BOB.keyid)] == [1, 2]
    assert [e.index for e in log.query(signer=ALICE.keyid.lower())] == [0, 1, 3]
    assert [e.index for e in log.query(predicate_type=PREDICATE)] == [0, 1, 3]
    assert [e.index for e in log.query(subject=digest, signer=BOB.keyid)] == [1]
    now = datetime.now(UTC)
    assert len(log.query(since=now - timedelta(minutes=5))) == 4
    assert log.query(until=now - timedelta(minutes=5)) == []
    assert [e.index for e in log.query(limit=2)] == [0, 1]
    entry = log.get(1)
    assert entry.signers == (ALICE.keyid.lower(), BOB.keyid.lower())
    assert entry.to_dict()["subjects"] == [{"digest": f"sha256:{digest}", "name": "artifact-1"}]
    # the indexes of a few predicate types in a range, without reading the entries
    other = "https://ailedger.dev/other/v1"
    assert log.indexes_of_types([PREDICATE]) == [0, 1, 3]
    assert log.indexes_of_types([PREDICATE, other]) == [0, 1, 2, 3]
    assert log.indexes_of_types({other, PREDICATE}, 1, 3) == [1, 2]
    assert log.indexes_of_types([PREDICATE], 2) == [3]
    assert log.indexes_of_types(["https://ailedger.dev/none/v1"]) == []
    assert log.indexes_of_types([]) == []


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"subject": "sha256:00"}, r"SEARCH entry_subjects USING PRIMARY KEY \(digest=\?\)"),
        ({"signer": "0xabc"}, r"SEARCH entry_signers USING PRIMARY KEY \(keyid=\?\)"),
        ({"predicate_type": "p"}, r"SEARCH entries USING (COVERING )?INDEX entries_by_predicate"),
        ({"since_ms": 1, "until_ms": 2}, r"SEARCH entries USING (COVERING )?INDEX entries_by_time"),
    ],
)
def test_queries_use_an_index(
    log: TransparencyLog, filters: dict[str, object], expected: str
) -> None:
    log.append_many([envelope(i) for i in range(3)])
    full: dict[str, object] = {
        "subject": None,
        "predicate_type": None,
        "signer": None,
        "since_ms": None,
        "until_ms": None,
        "limit": 10,
    }
    sql, args = log._store.query_sql(**{**full, **filters})  # type: ignore[arg-type]
    plan = " | ".join(r[3] for r in log._store.db.execute("EXPLAIN QUERY PLAN " + sql, args))
    assert re.search(expected, plan), plan
    assert "SCAN" not in plan, plan


# --- bad input --------------------------------------------------------------------------------


def test_truncated_envelope_is_a_format_error(log: TransparencyLog) -> None:
    with pytest.raises(FormatError, match="truncated"):
        log.append(envelope(0)[:-20])
    assert log.size() == 0


def test_tampered_envelope_is_rejected(log: TransparencyLog) -> None:
    doc = json.loads(envelope(0))
    body = json.loads(base64.b64decode(doc["payload"]))
    body["predicate"]["n"] = 999
    doc["payload"] = base64.b64encode(json.dumps(body).encode()).decode()
    with pytest.raises(SignatureInvalid, match="does not verify"):
        log.append(json.dumps(doc))
    assert log.size() == 0


def test_a_bad_envelope_rejects_the_whole_batch(log: TransparencyLog) -> None:
    with pytest.raises(FormatError):
        log.append_many([envelope(0), b"{}", envelope(1)])
    assert log.size() == 0


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    p256 = P256Signer.generate()
    raw = envelope(0, (p256,))
    with (
        TransparencyLog.open(tmp_path / "a.sqlite", ORIGIN) as log,
        pytest.raises(SignatureInvalid, match="unknown key"),
    ):
        log.append(raw)
    known = signature_check([p256.public_key])
    with TransparencyLog.open(tmp_path / "b.sqlite", ORIGIN, check_signature=known) as log:
        assert log.append(raw) == 0
        assert log.get(0).signers == (p256.keyid,)


def test_envelope_without_signatures_is_rejected(log: TransparencyLog) -> None:
    doc = json.loads(envelope(0))
    doc["signatures"] = []
    with pytest.raises(FormatError, match="no signatures"):
        log.append(json.dumps(doc))


def test_origin_mismatch_and_missing_database(tmp_path: Path) -> None:
    TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN).close()
    with pytest.raises(InvalidInput, match="has origin"):
        TransparencyLog.open(tmp_path / "log.sqlite", "other.example/log")
    with pytest.raises(NotFound):
        TransparencyLog.open(tmp_path / "missing.sqlite")


def test_garbage_database_is_an_integrity_error(tmp_path: Path) -> None:
    path = tmp_path / "log.sqlite"
    path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(IntegrityError):
        TransparencyLog.open(path)


# --- corruption -------------------------------------------------------------------------------


def _corrupt(log: TransparencyLog, sql: str, *args: object) -> None:
    db = sqlite3.connect(log.path)
    db.execute(sql, args)
    db.commit()
    db.close()


@pytest.fixture
def full_log(log: TransparencyLog, envelopes: list[bytes]) -> TransparencyLog:
    log.append_many(envelopes[:21])
    log.verify()
    return log


def test_flipped_byte_in_an_entry_is_detected(full_log: TransparencyLog) -> None:
    stored = bytearray(full_log.get(5).envelope)
    stored[40] ^= 0x01
    _corrupt(full_log, "UPDATE entries SET envelope = ? WHERE idx = 5", bytes(stored))
    with pytest.raises(IntegrityError, match="entry 5"):
        full_log.verify()


def test_an_entry_rewritten_as_text_is_detected(full_log: TransparencyLog) -> None:
    # SQL string functions turn a BLOB into TEXT: corruption, not a crash.
    sql = "UPDATE entries SET envelope = replace(envelope, X'41', X'42') WHERE idx = 5"
    _corrupt(full_log, sql)
    with pytest.raises(IntegrityError, match="entry 5"):
        full_log.verify()


def test_deleted_row_is_detected(full_log: TransparencyLog) -> None:
    _corrupt(full_log, "DELETE FROM entries WHERE idx = 9")
    with pytest.raises(IntegrityError, match="missing"):
        full_log.verify()
    with pytest.raises(IntegrityError):
        full_log.inclusion_proof(9)


def test_deleted_last_row_is_detected_against_nodes(full_log: TransparencyLog) -> None:
    _corrupt(full_log, "DELETE FROM entries WHERE idx = 20")
    with pytest.raises(IntegrityError):
        full_log.verify()


def test_changed_node_hash_is_detected(full_log: TransparencyLog) -> None:
    _corrupt(full_log, "UPDATE nodes SET hash = ? WHERE level = 2 AND idx = 1", b"\x00" * 32)
    with pytest.raises(IntegrityError, match=r"node \(2, 1\)"):
        full_log.verify()


def test_changed_leaf_hash_is_detected(full_log: TransparencyLog) -> None:
    _corrupt(full_log, "UPDATE entries SET leaf_hash = ? WHERE idx = 3", b"\x01" * 32)
    with pytest.raises(IntegrityError, match="leaf hash"):
        full_log.verify()


def test_corruption_is_never_repaired(full_log: TransparencyLog) -> None:
    _corrupt(full_log, "DELETE FROM nodes WHERE level = 1 AND idx = 0")
    for _ in range(2):
        with pytest.raises(IntegrityError):
            full_log.verify()
    assert full_log.size() == 21


# --- the hot-path helpers agree with the reference implementations ----------------------------


@given(
    payload_type=st.text(min_size=1),
    payload=st.binary(max_size=64),
    keyids=st.lists(st.text(), min_size=1, max_size=3),
)
def test_fast_canonical_form_is_rfc8785(
    payload_type: str, payload: bytes, keyids: list[str]
) -> None:
    env = Envelope(payload_type, payload, tuple(Signature(k, b"sig") for k in keyids))
    try:
        expected = env.canonical_json()
    except Exception:  # rfc8785 refuses lone surrogates; so must we
        with pytest.raises(UnicodeEncodeError):
            canonical_envelope(env)
        return
    assert canonical_envelope(env) == expected


@given(message=st.binary(max_size=64), flip=st.integers(min_value=0, max_value=64 * 8))
def test_fast_recovery_matches_keys_module(message: bytes, flip: int) -> None:
    sig = bytearray(ALICE.sign(message))
    if flip < 65 * 8:
        sig[flip // 8] ^= 1 << (flip % 8)
    try:
        expected = recover_address(message, bytes(sig)).lower()
    except SignatureInvalid:
        with pytest.raises(SignatureInvalid):
            check_ethereum_signature(ALICE.keyid, message, bytes(sig))
        return
    if expected == ALICE.keyid.lower():
        check_ethereum_signature(ALICE.keyid, message, bytes(sig))
    else:
        with pytest.raises(SignatureInvalid):
            check_ethereum_signature(ALICE.keyid, message, bytes(sig))


def test_known_keys_check_admits_workspace_keys_and_addresses(tmp_path: Path) -> None:
    p256 = P256Signer.generate()
    check = known_keys_check([p256.public_key])
    with TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN, check_signature=check) as log:
        assert log.append_many([envelope(0, (p256,)), envelope(1, (ALICE,))]) == [0, 1]
        stranger = P256Signer.generate()
        with pytest.raises(SignatureInvalid, match="unknown key"):
            log.append(envelope(2, (stranger,)))
        forged = json.loads(envelope(3, (p256,)))
        forged["signatures"][0]["sig"] = base64.b64encode(
            b"\x30\x06\x02\x01\x01\x02\x01\x01"
        ).decode()
        with pytest.raises(SignatureInvalid):
            log.append(json.dumps(forged))


def test_parallel_verification_gives_the_same_log(tmp_path: Path, envelopes: list[bytes]) -> None:
    many = [envelopes[i % len(envelopes)] for i in range(100)]
    many[57] = envelope(57, (P256Signer.generate(),))
    with (
        ProcessPoolExecutor(2) as ex,
        TransparencyLog.open(tmp_path / "a.sqlite", ORIGIN) as par,
        TransparencyLog.open(tmp_path / "b.sqlite", ORIGIN) as seq,
    ):
        with pytest.raises(SignatureInvalid):
            par.append_many(many, executor=ex)
        assert par.size() == 0
        many[57] = envelopes[0]
        assert par.append_many(many, executor=ex) == list(range(100))
        seq.append_many(many)
        assert par.root() == seq.root()
        assert [par.get(i).leaf_hash for i in range(100)] == [
            seq.get(i).leaf_hash for i in range(100)
        ]


def test_incremental_verify_checks_new_entries(full_log: TransparencyLog) -> None:
    assert full_log.verify(start=21).entries == 0
    full_log.append_many([envelope(i) for i in range(21, 30)])
    assert full_log.verify(start=21).entries == 9
    stored = bytearray(full_log.get(25).envelope)
    stored[50] ^= 0x02
    _corrupt(full_log, "UPDATE entries SET envelope = ? WHERE idx = 25", bytes(stored))
    with pytest.raises(IntegrityError, match="entry 25"):
        full_log.verify(start=21)
    assert full_log.verify(start=26).entries == 4  # earlier entries are taken as verified
    with pytest.raises(IntegrityError):
        full_log.verify()
    with pytest.raises(InvalidInput):
        full_log.verify(start=31)


def test_append_with_an_expected_size_is_a_compare_and_swap(log: TransparencyLog) -> None:
    first, second = envelope(1), envelope(2, (BOB,))
    assert log.append(first, expect_size=0) == 0
    with pytest.raises(LogSizeChanged, match="has 1 entries, not the 0 expected") as caught:
        log.append(second, expect_size=0)
    assert caught.value.size == 1
    assert caught.value.exit_code == 10  # a ConflictError
    assert log.size() == 1  # nothing written
    assert log.append_many([second, first], expect_size=1) == [1, 2]
    with pytest.raises(LogSizeChanged):
        log.append_many([second], expect_size=4)
    assert log.size() == 3
