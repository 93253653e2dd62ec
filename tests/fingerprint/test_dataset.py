"""Dataset fingerprints: readers, leaf encodings, salts, sorted order and the sidecar index."""

from __future__ import annotations

import datetime
import decimal
import hashlib
import json
import os
import stat
import sys
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger import merkle
from ailedger.demos.samples import SAMPLE_DATA
from ailedger.errors import FormatError, IntegrityError, InvalidInput, NotFound, ProofInvalid
from ailedger.fingerprint import _leaves
from ailedger.fingerprint._formats import _stdlib_loads, encode_record_file, read_records
from ailedger.fingerprint._index import read_index
from ailedger.fingerprint.dataset import (
    ORDER_SORTED,
    default_index_path,
    fingerprint_dataset,
    prove_record,
    write_index_file,
)

SECRET = b"an example dataset secret, 32+ bytes"
SAMPLE = SAMPLE_DATA


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- JSONL -------------------------------------------------------------------------------------


def test_unsalted_jsonl_root_is_the_rfc9162_root_of_the_lines(tmp_path: Path) -> None:
    lines = [b'{"a":1}', b'{"b": [1, 2]}', b'"x"']
    path = _write(tmp_path, "d.jsonl", b"\n".join(lines) + b"\n")
    fp = fingerprint_dataset(path, secret=None)
    assert fp.root == merkle.root(lines)
    assert (fp.size, fp.scheme, fp.leaf_encoding) == (3, "unsalted-v1", "jsonl-line-v1")
    assert fp.data_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_jsonl_crlf_missing_final_newline_and_blank_lines_give_the_same_root(
    tmp_path: Path,
) -> None:
    a = _write(tmp_path, "a.jsonl", b'{"a":1}\n{"a":2}\n')
    b = _write(tmp_path, "b.jsonl", b'{"a":1}\r\n\r\n{"a":2}')
    assert fingerprint_dataset(a, secret=SECRET).root == fingerprint_dataset(b, secret=SECRET).root


def test_canonical_json_ignores_spacing_and_key_order(tmp_path: Path) -> None:
    a = _write(tmp_path, "a.jsonl", b'{"a":1,"b":2}\n')
    b = _write(tmp_path, "b.jsonl", b'{ "b": 2, "a": 1 }\n')
    assert fingerprint_dataset(a, secret=None).root != fingerprint_dataset(b, secret=None).root
    ca = fingerprint_dataset(a, secret=None, canonical_json=True)
    assert ca.root == fingerprint_dataset(b, secret=None, canonical_json=True).root
    assert ca.leaf_encoding == "jsonl-jcs-v1"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"a":1}\n{"a":\xff}\n', "line 2: invalid UTF-8"),
        (b'{"a":1}\n\n{"a":}\n', "line 3: invalid JSON"),
        (b"NaN\n", "line 1: invalid JSON"),
        (b"   \n", "line 1: invalid JSON"),
    ],
)
def test_bad_jsonl_names_the_line(tmp_path: Path, data: bytes, message: str) -> None:
    path = _write(tmp_path, "bad.jsonl", data)
    with pytest.raises(FormatError, match=message):
        fingerprint_dataset(path, secret=None)


@pytest.mark.parametrize("with_orjson", [True, False])
def test_jsonl_validation_without_orjson_gives_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, with_orjson: bool
) -> None:
    if not with_orjson:
        monkeypatch.setitem(sys.modules, "orjson", None)  # as if it were not installed
    good = _write(tmp_path, "g.jsonl", b'{"a": [1, 2.5, "\xc3\xa9"]}\n')
    assert fingerprint_dataset(good, secret=None).root == merkle.root([good.read_bytes()[:-1]])
    bad = _write(tmp_path, "b.jsonl", b'{"a": 1}\n{"a": 1e999}\n')
    with pytest.raises(FormatError, match="line 2: invalid JSON"):
        fingerprint_dataset(bad, secret=None)


def test_canonical_jsonl_rejects_integers_json_cannot_hold_exactly(tmp_path: Path) -> None:
    path = _write(tmp_path, "big.jsonl", b'{"id": 1}\n{"id": 9007199254740993}\n')
    assert fingerprint_dataset(path, secret=None).size == 2  # byte-exact lines keep them
    with pytest.raises(FormatError, match="line 2: not canonical JSON"):
        fingerprint_dataset(path, secret=None, canonical_json=True)


def test_empty_dataset_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no records"):
        fingerprint_dataset(_write(tmp_path, "e.jsonl", b"\n\n"), secret=None)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=8,
)


@given(value=_json)
def test_stdlib_fallback_and_orjson_agree_on_valid_json(value: object) -> None:
    orjson = pytest.importorskip("orjson")
    line = json.dumps(value, ensure_ascii=False).encode("utf-8")
    assert _stdlib_loads(line) == orjson.loads(line) == value


@given(line=st.binary(max_size=12))
def test_stdlib_fallback_and_orjson_agree_on_random_bytes(line: bytes) -> None:
    orjson = pytest.importorskip("orjson")

    def ok(fn: object) -> bool:
        try:
            fn(line)  # type: ignore[operator]
        except ValueError:
            return False
        return True

    if b"\\u" not in line and b"e" not in line.lower():  # lone surrogates, huge exponents
        assert ok(_stdlib_loads) == ok(orjson.loads)


# --- CSV, Parquet, directories ------------------------------------------------------------------


def test_csv_rows_are_canonical_json_arrays_and_the_header_is_metadata(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.csv", b'id,text\n1,"multi\nline, quoted"\n\n2,plain\n')
    recs = read_records(path, "csv", "csv-row-jcs-v1")
    assert recs.records == [rfc8785.dumps(["1", "multi\nline, quoted"]), b'["2","plain"]']
    assert recs.metadata["header"] == ["id", "text"]
    assert recs.metadata["header_sha256"] == hashlib.sha256(b'["id","text"]').hexdigest()


def test_ragged_csv_row_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "r.csv", b'a,b\n1,2\n3,"x\ny"\n4\n')
    with pytest.raises(FormatError, match=r"line 5: ragged row with 1 fields, the header has 2"):
        fingerprint_dataset(path, secret=None)


def test_csv_with_only_a_header_is_empty(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="no records"):
        fingerprint_dataset(_write(tmp_path, "h.csv", b"a,b\n"), secret=None)


def test_tsv_and_csv_of_the_same_rows_share_leaves(tmp_path: Path) -> None:
    c = _write(tmp_path, "d.csv", b"a,b\n1,2\n")
    t = _write(tmp_path, "d.tsv", b"a\tb\n1\t2\n")
    assert fingerprint_dataset(c, secret=None).root == fingerprint_dataset(t, secret=None).root


def test_a_record_file_is_read_with_the_datasets_delimiter(tmp_path: Path) -> None:
    """Found by the round-trip property: a one-field CSV row holding a tab was guessed to be
    TSV (two empty fields). A record file is read as the dataset is; a proof of a TSV dataset
    checks a record file in either form."""
    assert encode_record_file(b'""\r\n\t\r\n', "csv-row-jcs-v1") == rfc8785.dumps(["\t"])
    tsv = _write(tmp_path, "d.tsv", b"a\tb\n1\t2\n3\t4\n")
    proof = prove_record(tsv, secret=SECRET, index=1, include_record=False)
    row = _write(tmp_path, "row.tsv", b"3\t4\n")
    assert proof.verify(record=row.read_bytes()).record_checked
    other = _write(tmp_path, "other.tsv", b"3\t5\n")
    with pytest.raises(ProofInvalid, match="do not hash to the proven leaf"):
        proof.verify(record=other.read_bytes())


def test_parquet_rows(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "id": [1, 2**60],
            "name": ["a", None],
            "blob": [b"\x00\x01", b""],
            "when": [datetime.date(2026, 1, 2), datetime.date(2026, 1, 3)],
            "price": pa.array([decimal.Decimal("1.50"), decimal.Decimal("2.00")]),
            "tags": [["x"], []],
        }
    )
    path = tmp_path / "d.parquet"
    pq.write_table(table, path)
    recs = read_records(path, "parquet", "parquet-row-jcs-v1")
    first = json.loads(recs.records[0])
    assert first == {
        "id": 1, "name": "a", "blob": "AAE=", "when": "2026-01-02", "price": "1.50", "tags": ["x"]
    }  # fmt: skip
    assert json.loads(recs.records[1])["id"] == str(2**60)
    assert [c for c, _ in recs.metadata["schema"]] == list(table.column_names)
    record = _write(tmp_path, "r.json", json.dumps(first, indent=1).encode())
    assert encode_record_file(record.read_bytes(), "parquet-row-jcs-v1") == recs.records[0]


def test_parquet_that_is_not_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    with pytest.raises(FormatError, match="not a readable Parquet file"):
        fingerprint_dataset(_write(tmp_path, "x.parquet", b"nope"), secret=None)


def test_directory_leaves_are_digest_and_relative_path(tmp_path: Path) -> None:
    root = tmp_path / "imgs"
    (root / "b").mkdir(parents=True)
    (root / "b" / "2.png").write_bytes(b"two")
    (root / "1.png").write_bytes(b"one")
    recs = read_records(root, "files", "file-sha256-path-v1")
    assert recs.records == [
        hashlib.sha256(b"one").digest() + b"1.png",
        hashlib.sha256(b"two").digest() + b"b/2.png",
    ]
    (root / "loop").symlink_to(root)
    with pytest.raises(FormatError, match="symlink to a directory"):
        fingerprint_dataset(root, secret=None)


def test_missing_and_unknown_inputs(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        fingerprint_dataset(tmp_path / "absent.jsonl", secret=None)
    with pytest.raises(InvalidInput, match="cannot tell the dataset format"):
        fingerprint_dataset(_write(tmp_path, "d.txt", b"x"), secret=None)


# --- Salts -------------------------------------------------------------------------------------


@given(secret=st.binary(min_size=16, max_size=40), index=st.integers(0, 5000))
@settings(max_examples=examples(50))
def test_index_salt_is_the_slice_of_the_bulk_stream(secret: bytes, index: int) -> None:
    key = _leaves.derive_key(secret, _leaves.SALTED_BY_INDEX)
    stream = _leaves.index_salts(key, index + 1)
    assert _leaves.index_salt(key, index) == stream[32 * index :]


@given(
    records=st.lists(st.binary(max_size=20), min_size=1, max_size=20),
    secret=st.binary(min_size=16, max_size=20),
)
@settings(max_examples=examples(50))
def test_leaf_hashes_match_the_documented_construction(records: list[bytes], secret: bytes) -> None:
    k_index = _leaves.derive_key(secret, _leaves.SALTED_BY_INDEX)
    k_record = _leaves.derive_key(secret, _leaves.SALTED_BY_RECORD)
    by_index = _leaves.leaf_hashes(records, _leaves.SALTED_BY_INDEX, secret)
    by_record = _leaves.leaf_hashes(records, _leaves.SALTED_BY_RECORD, secret)
    for i, r in enumerate(records):
        assert by_index[i] == merkle.leaf_hash(_leaves.index_salt(k_index, i) + r)
        assert by_record[i] == merkle.leaf_hash(_leaves.record_salt(k_record, r) + r)
    assert _leaves.leaf_hashes(records, _leaves.UNSALTED, None) == merkle.leaf_hashes(records)


def test_salts_depend_on_the_secret_and_keys_are_domain_separated() -> None:
    a = _leaves.derive_key(SECRET, _leaves.SALTED_BY_INDEX)
    assert a != _leaves.derive_key(SECRET, _leaves.SALTED_BY_RECORD)
    assert a != _leaves.derive_key(SECRET + b"!", _leaves.SALTED_BY_INDEX)
    with pytest.raises(InvalidInput, match="at least 16"):
        _leaves.derive_key(b"short", _leaves.SALTED_BY_INDEX)


def test_secret_file_is_created_private_and_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "s"
    secret = _leaves.create_secret_file(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert _leaves.read_secret_file(path) == secret
    assert len(secret) == 64
    with pytest.raises(InvalidInput, match="refusing to overwrite"):
        _leaves.create_secret_file(path)
    with pytest.raises(NotFound):
        _leaves.read_secret_file(tmp_path / "absent")


# --- Sorted order and the index ------------------------------------------------------------------


def test_sorted_leaves_are_ordered_and_map_back_to_records(tmp_path: Path) -> None:
    path = SAMPLE / "events.jsonl"
    fp = fingerprint_dataset(path, secret=SECRET, sort_leaves=True)
    assert fp.order == ORDER_SORTED
    assert fp.scheme == "salted-blake3-record-v1"
    assert fp.leaf_hashes == sorted(fp.leaf_hashes)
    assert sorted(fp.record_numbers) == list(range(fp.size))
    unsorted = fingerprint_dataset(path, secret=None, sort_leaves=False)
    assert unsorted.size == fp.size == 200


def test_index_round_trip_and_use(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.jsonl", b"".join(b'{"n":%d}\n' % i for i in range(50)))
    fp = fingerprint_dataset(path, secret=SECRET, sort_leaves=True)
    index = write_index_file(fp)
    assert index == default_index_path(path)
    header, leaves, numbers = read_index(index)
    assert header["root"] == fp.root.hex()
    assert header["secret_id"] == _leaves.secret_id(SECRET)
    assert leaves == fp.leaf_hashes
    assert list(numbers) == list(fp.record_numbers)
    proof = prove_record(path, secret=SECRET, index=7)
    assert proof.dataset.root == fp.root
    proof.verify(fp.root)


def test_damaged_index_is_an_integrity_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.jsonl", b'{"a":1}\n{"a":2}\n')
    index = write_index_file(fingerprint_dataset(path, secret=None))
    raw = bytearray(index.read_bytes())
    raw[-40] ^= 1
    index.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="damaged"):
        prove_record(path, secret=None, index=0)


def test_stale_index_is_ignored_and_the_tree_recomputed(tmp_path: Path) -> None:
    path = _write(tmp_path, "d.jsonl", b'{"a":1}\n{"a":2}\n')
    write_index_file(fingerprint_dataset(path, secret=None))
    path.write_bytes(b'{"a":1}\n{"a":3}\n{"a":4}\n')
    proof = prove_record(path, secret=None, index=2)
    assert proof.dataset.root == fingerprint_dataset(path, secret=None).root
    proof.verify()


def test_sample_data_fingerprints() -> None:
    fp = fingerprint_dataset(SAMPLE / "patients.csv", secret=None)
    assert fp.size == 300
    assert fp.metadata["header"][0] == "patient_id"


# --- Properties of the encoders ------------------------------------------------------------------

_field = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00\r"))


@given(
    header=st.lists(_field, min_size=1, max_size=4, unique=True),
    data=st.data(),
)
@settings(max_examples=examples(40))
def test_csv_rows_round_trip_through_any_quoting(header: list[str], data: st.DataObject) -> None:
    import csv
    import io
    import tempfile

    rows = data.draw(st.lists(st.lists(_field, min_size=len(header), max_size=len(header))))
    rows = rows or [["x"] * len(header)]
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.csv"
        path.write_text(buf.getvalue(), encoding="utf-8", newline="")
        recs = read_records(path, "csv", "csv-row-jcs-v1")
    assert recs.metadata["header"] == header
    assert recs.records == [rfc8785.dumps(r) for r in rows]
    one = io.StringIO()
    csv.writer(one, lineterminator="\r\n").writerows([header, rows[0]])
    assert encode_record_file(one.getvalue().encode(), "csv-row-jcs-v1") == recs.records[0]


@given(value=_json, indent=st.sampled_from([None, 0]), sort=st.booleans())
def test_canonical_jsonl_record_ignores_formatting(
    value: object, indent: int | None, sort: bool
) -> None:
    text = json.dumps(value, sort_keys=sort, separators=(", ", ": ") if indent is None else None)
    encoded = encode_record_file(text.encode() + b"\n", "jsonl-jcs-v1")
    assert encoded == rfc8785.dumps(value)
    assert encode_record_file(text.encode(), "jsonl-line-v1") == text.encode()


@given(
    leaves=st.lists(st.binary(min_size=32, max_size=32), min_size=1, max_size=40),
    seed=st.integers(0, 2**32),
)
@settings(max_examples=examples(30))
def test_index_file_round_trip(leaves: list[bytes], seed: int) -> None:
    import random
    import tempfile

    from ailedger.fingerprint._index import write_index

    numbers = list(range(len(leaves)))
    random.Random(seed).shuffle(numbers)
    header = {"size": len(leaves), "root": merkle.root_from_leaf_hashes(leaves).hex()}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "i"
        write_index(path, header, leaves, numbers)
        got_header, got_leaves, got_numbers = read_index(path)
        raw = bytearray(path.read_bytes())
        raw[seed % len(raw)] ^= 1 << (seed % 8)
        path.write_bytes(bytes(raw))
        with pytest.raises(IntegrityError):
            read_index(path)
    assert (got_header, got_leaves, list(got_numbers)) == (header, leaves, numbers)
