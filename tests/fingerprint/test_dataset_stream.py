"""Streaming fingerprints and proofs from the on-disk index (issue 11 item 12).

The streaming reader must give the roots, metadata and data digests of the whole-file
reference reader (``read_records``) byte for byte; a proof read from the index must equal the
proof of the rebuilt tree; an index that is stale, made with other options, tampered with or
truncated never yields a wrong proof; and memory stays flat in the file size.
"""

from __future__ import annotations

import csv
import io
import json
import random
import tracemalloc
from pathlib import Path

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger import merkle
from ailedger.errors import AiledgerError, IntegrityError
from ailedger.fingerprint import _leaves
from ailedger.fingerprint import dataset as ds
from ailedger.fingerprint._formats import JSONL_JCS, JSONL_LINE, Records, read_records
from ailedger.fingerprint._index import IndexFile, read_index, read_index_header
from ailedger.fingerprint._stream import open_records, record_at, row_encoder
from ailedger.fingerprint.dataset import (
    default_index_path,
    fingerprint_dataset,
    prove_record,
    write_index_file,
)
from ailedger.fingerprint.proofs import MembershipProof, NonMembershipProof

SECRET = b"an example dataset secret, 32+ bytes"
_FS = settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# --- Reference: the whole-file reader and the list functions -------------------------------------


def reference_root(recs: Records, secret: bytes | None, sort: bool) -> tuple[bytes, list[bytes]]:
    return reference_tree(recs, secret, sort)[:2]


def reference_tree(
    recs: Records, secret: bytes | None, sort: bool
) -> tuple[bytes, list[bytes], list[int]]:
    """Root, leaves in tree order, record number at each position (the former ``_build``)."""
    scheme = _leaves.UNSALTED if secret is None else ds._scheme(secret, sort)
    leaves = _leaves.leaf_hashes(recs.records, scheme, secret)
    numbers = list(range(len(leaves)))
    if sort:
        numbers = sorted(numbers, key=leaves.__getitem__)
        leaves = [leaves[i] for i in numbers]
    return merkle.root_from_leaf_hashes(leaves), leaves, numbers


_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"))


@st.composite
def csv_bytes(draw: st.DrawFn) -> tuple[bytes, int]:
    """A CSV file (any line ending, quoted line breaks, blank lines, a BOM, a preamble) and a
    number of lines to skip."""
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    width = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(_TEXT, min_size=width, max_size=width), max_size=12))
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator=newline, quoting=csv.QUOTE_ALL).writerows(rows)
    text = out.getvalue()
    if draw(st.booleans()) and rows:  # a blank line somewhere between rows
        cut = text.find('"' + newline, 1)
        if cut > 0:
            text = text[: cut + 1 + len(newline)] + newline + text[cut + 1 + len(newline) :]
    preamble = draw(st.lists(st.text(st.characters(blacklist_characters="\r\n"), max_size=8)))
    head = "".join(p + newline for p in preamble)
    bom = "\ufeff" if draw(st.booleans()) and not preamble else ""
    data = (bom + head + text).encode("utf-8", "surrogatepass")
    return data, len(preamble)


@st.composite
def jsonl_bytes(draw: st.DrawFn) -> bytes:
    values = draw(st.lists(st.recursive(
        st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _TEXT,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
        max_leaves=6,
    ), max_size=12))  # fmt: skip
    lines = []
    for v in values:
        spaced = draw(st.booleans())
        lines.append(json.dumps(v, ensure_ascii=draw(st.booleans()), indent=None,
                                separators=(", ", ": ") if spaced else (",", ":")))  # fmt: skip
        if draw(st.booleans()):
            lines.append("")  # a blank line
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    end = newline if draw(st.booleans()) else ""
    return (newline.join(lines) + end).encode("utf-8")


def _same_outcome(path: Path, fmt: str, enc: str, skip: int = 0, header: bool = True) -> None:
    """Streaming and reference readers agree: the same records (and starts), metadata and
    digest, or both refuse the file."""
    try:
        recs = read_records(path, fmt, enc, skip_lines=skip, header_row=header)
    except AiledgerError:
        recs = None
    stream = open_records(path, fmt, enc, skip_lines=skip, header_row=header)
    if recs is None:
        with pytest.raises(AiledgerError):
            for _ in stream.batches():
                pass
        return
    got: list[bytes] = []
    starts: list[int] = []
    for batch, offsets in stream.batches():
        got += batch
        starts += offsets
    assert got == recs.records
    assert stream.metadata == recs.metadata
    assert stream.data_sha256 == recs.data_sha256
    assert stream.data_size == path.stat().st_size
    ends = [*starts[1:], stream.data_size]
    for i in range(len(got)):
        assert record_at(path, fmt, enc, stream.metadata, starts[i], ends[i]) == got[i]


@given(f=csv_bytes(), header=st.booleans(), secret=st.none() | st.just(SECRET), sort=st.booleans())
@_FS
def test_streaming_csv_gives_the_reference_root(
    tmp_path: Path, f: tuple[bytes, int], header: bool, secret: bytes | None, sort: bool
) -> None:
    data, skip = f
    path = tmp_path / "d.csv"
    path.write_bytes(data)
    _same_outcome(path, "csv", "csv-row-jcs-v1", skip, header)
    try:
        recs = read_records(path, "csv", "csv-row-jcs-v1", skip_lines=skip, header_row=header)
    except AiledgerError:
        return
    if not recs.records:
        return
    fp = fingerprint_dataset(path, secret=secret, sort_leaves=sort, skip_lines=skip,
                             header_row=header)  # fmt: skip
    root, leaves, numbers = reference_tree(recs, secret, sort)
    assert fp.root == root
    assert fp.leaf_hashes == leaves
    assert list(fp.record_numbers) == numbers  # ties (equal rows) in record order
    assert fp.metadata == recs.metadata
    assert fp.data_sha256 == recs.data_sha256


@given(data=jsonl_bytes(), canonical=st.booleans(), secret=st.none() | st.just(SECRET),
       sort=st.booleans())  # fmt: skip
@_FS
def test_streaming_jsonl_gives_the_reference_root(
    tmp_path: Path, data: bytes, canonical: bool, secret: bytes | None, sort: bool
) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(data)
    enc = JSONL_JCS if canonical else JSONL_LINE
    _same_outcome(path, "jsonl", enc)
    recs = read_records(path, "jsonl", enc)
    if not recs.records:
        return
    fp = fingerprint_dataset(path, secret=secret, sort_leaves=sort, canonical_json=canonical)
    assert fp.root == reference_root(recs, secret, sort)[0]


@given(data=st.binary(max_size=300), skip=st.integers(0, 3), header=st.booleans())
@_FS
def test_streaming_and_reference_agree_on_any_bytes(
    tmp_path: Path, data: bytes, skip: int, header: bool
) -> None:
    (tmp_path / "d.csv").write_bytes(data)
    _same_outcome(tmp_path / "d.csv", "csv", "csv-row-jcs-v1", skip, header)
    (tmp_path / "d.jsonl").write_bytes(data)
    _same_outcome(tmp_path / "d.jsonl", "jsonl", JSONL_LINE)


def test_many_batches_and_lone_cr_lines(tmp_path: Path) -> None:
    """More records than a batch, CR-only line ends and a quoted CR LF inside a field."""
    rows = [[str(i), f"v{i}", "x\r\ny" if i % 997 == 0 else "z"] for i in range(10_000)]
    out = io.StringIO(newline="")
    csv.writer(out, lineterminator="\r").writerows([["a", "b", "c"], *rows])
    path = tmp_path / "d.csv"
    path.write_bytes(out.getvalue().encode())
    _same_outcome(path, "csv", "csv-row-jcs-v1")
    recs = read_records(path, "csv", "csv-row-jcs-v1")
    assert fingerprint_dataset(path, secret=SECRET).root == reference_root(recs, SECRET, False)[0]


@given(row=st.lists(_TEXT, max_size=5))
def test_fast_row_encoding_is_rfc8785(row: list[str]) -> None:
    assert row_encoder()(row) == rfc8785.dumps(row)


def test_fast_row_encoding_without_orjson(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "orjson", None)
    row = ['a"b\\c', "\x00\x1f\x7f\u2028é😀", "\b\f\n\r\t"]
    assert row_encoder()(row) == rfc8785.dumps(row)


def test_the_sample_roots_are_unchanged() -> None:
    """Golden roots of the bundled samples, computed by the whole-file reader before streaming."""
    samples = Path(ds.__file__).parents[1] / "demos" / "samples"
    for path in sorted(samples.rglob("*")):
        if path.suffix not in (".csv", ".jsonl"):
            continue
        fmt = "csv" if path.suffix == ".csv" else "jsonl"
        recs = read_records(path, fmt, "csv-row-jcs-v1" if fmt == "csv" else JSONL_LINE)
        for secret, sort in ((None, False), (SECRET, False), (SECRET, True)):
            fp = fingerprint_dataset(path, secret=secret, sort_leaves=sort)
            assert fp.root == reference_root(recs, secret, sort)[0], path


# --- Proofs from the index ---------------------------------------------------------------------


def _csv_file(path: Path, n: int, seed: int = 1) -> Path:
    rnd = random.Random(seed)
    lines = ["id,name,score"] + [f"{i},n{rnd.randrange(99)},{rnd.random():.4f}" for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def _no_rebuild(*args: object, **kwargs: object) -> ds.DatasetFingerprint:
    raise AssertionError("the index is bound to the data: the tree must not be rebuilt")


@given(n=st.integers(1, 300), picks=st.lists(st.integers(0), min_size=1, max_size=4),
       sort=st.booleans(), secret=st.none() | st.just(SECRET))  # fmt: skip
@_FS
def test_proofs_from_the_index_equal_proofs_from_the_rebuilt_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int, picks: list[int], sort: bool,
    secret: bytes | None,
) -> None:  # fmt: skip
    path = _csv_file(tmp_path / "d.csv", n, seed=n)
    fp = fingerprint_dataset(path, secret=secret, sort_leaves=sort)
    write_index_file(fp)
    leaves, numbers = fp.leaf_hashes, list(fp.record_numbers)
    with monkeypatch.context() as m:
        m.setattr(ds, "_build", _no_rebuild)
        proofs = [prove_record(path, secret=secret, index=i % n) for i in picks]
    for i, proof in zip(picks, proofs, strict=True):
        assert isinstance(proof, MembershipProof)
        position = numbers.index(i % n)
        assert proof.inclusion.leaf_index == position
        assert list(proof.inclusion.hashes) == merkle.inclusion_proof_from_leaf_hashes(
            leaves, position
        )
        rebuilt = prove_record(
            path, secret=secret, index=i % n, sort_leaves=sort, index_file=tmp_path / "none"
        )
        assert rebuilt == proof
        proof.verify(fp.root)


def test_sorted_absent_and_present_records_from_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _csv_file(tmp_path / "d.csv", 100)
    write_index_file(fingerprint_dataset(path, secret=SECRET, sort_leaves=True))
    present, absent = tmp_path / "p.csv", tmp_path / "a.csv"
    present.write_text("id,name,score\n" + path.read_text().splitlines()[5] + "\n")
    absent.write_text("id,name,score\n1000,x,0.5\n")
    monkeypatch.setattr(ds, "_build", _no_rebuild)
    member = prove_record(path, secret=SECRET, record=present)
    non_member = prove_record(path, secret=SECRET, record=absent)
    assert isinstance(member, MembershipProof)
    assert isinstance(non_member, NonMembershipProof)
    member.verify()
    non_member.verify()


def test_a_large_index_is_mapped_and_proves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past 4 MiB the index is read through mmap (and the temporary file is kept)."""
    path = _csv_file(tmp_path / "d.csv", 120_000)
    fp = fingerprint_dataset(path, secret=None)
    assert fp._built.index.raw() is None
    write_index_file(fp)
    monkeypatch.setattr(ds, "_build", _no_rebuild)
    for i in (0, 65_535, 65_536, 119_999):
        proof = prove_record(path, secret=None, index=i)
        proof.verify(fp.root)


# --- Stale, other, tampered and truncated indexes ------------------------------------------------


def _indexed(tmp_path: Path, n: int = 40) -> tuple[Path, Path, ds.DatasetFingerprint]:
    path = _csv_file(tmp_path / "d.csv", n)
    fp = fingerprint_dataset(path, secret=SECRET)
    return path, write_index_file(fp), fp


def test_a_stale_index_is_not_used(tmp_path: Path) -> None:
    path, _, fp = _indexed(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data.replace(b"\n3,", b"\n3 ,", 1))  # same size class, other bytes
    proof = prove_record(path, secret=SECRET, index=3)
    fresh = fingerprint_dataset(path, secret=SECRET)
    assert proof.dataset.root == fresh.root != fp.root
    proof.verify(fresh.root)


def test_an_index_for_other_options_or_secret_is_not_used(tmp_path: Path) -> None:
    path, _, fp = _indexed(tmp_path)
    other = prove_record(path, secret=None, index=0, sort_leaves=False)
    assert other.dataset.root == fingerprint_dataset(path, secret=None).root
    no_header = prove_record(path, secret=SECRET, index=0, header_row=False)
    assert no_header.dataset.size == fp.size + 1
    assert no_header.dataset.root == fingerprint_dataset(path, secret=SECRET, header_row=False).root
    assert read_index_header(default_index_path(path))["root"] == fp.root.hex()  # untouched


def _tamper(index: Path, offset: int) -> None:
    raw = bytearray(index.read_bytes())
    raw[offset] ^= 0x40
    index.write_bytes(bytes(raw))


def test_a_tampered_node_on_the_path_is_caught(tmp_path: Path) -> None:
    path, index, fp = _indexed(tmp_path, 40)
    # leaf 7 is on the path of record 6; level-4 node 1 (leaves 16-31) on the path of record 0
    for offset in (8 + 7 * 32 + 5, 8 + 40 * 32 + 32 + 1):
        write_index_file(fp)
        _tamper(index, offset)
        with pytest.raises(IntegrityError):
            prove_record(path, secret=SECRET, index=6 if offset < 8 + 40 * 32 else 0)


def test_a_tampered_record_offset_is_caught(tmp_path: Path) -> None:
    path, index, _fp = _indexed(tmp_path, 40)
    starts = 8 + 40 * 32 + 3 * 32  # leaves, levels 4 (two nodes) and 5 (one), the starts
    _tamper(index, starts + 8 * 9 + 1)
    with pytest.raises(IntegrityError):
        prove_record(path, secret=SECRET, index=9)
    with pytest.raises(IntegrityError, match="checksum"):
        read_index(index)


def test_damage_off_the_path_cannot_change_the_proof(tmp_path: Path) -> None:
    path, index, _fp = _indexed(tmp_path, 40)
    good = prove_record(path, secret=SECRET, index=33)
    _tamper(index, 8 + 3 * 32)  # leaf 3: not on the path of record 33
    assert prove_record(path, secret=SECRET, index=33) == good
    with pytest.raises(IntegrityError):
        prove_record(path, secret=SECRET, index=2)


def test_a_tampered_header_or_a_truncated_index_is_an_integrity_error(tmp_path: Path) -> None:
    path, index, _fp = _indexed(tmp_path, 40)
    raw = index.read_bytes()
    head = raw.rfind(b'"root":"') + 9
    for bad in (raw[:head] + b"0" + raw[head + 1 :], raw[:-1], raw[:100], raw[:7], b""):
        index.write_bytes(bad)
        with pytest.raises(IntegrityError):
            prove_record(path, secret=SECRET, index=1)
    with pytest.raises(IntegrityError):
        IndexFile.open(index)


def test_a_version_1_index_gives_its_options_and_is_rebuilt(tmp_path: Path) -> None:
    import hashlib

    path = tmp_path / "d.csv"
    path.write_bytes(b"note\na,b\n1,2\n3,4\n")
    fp = fingerprint_dataset(path, secret=None, skip_lines=1)
    head = rfc8785.dumps({**fp.to_dict(), "secret_id": None})
    body = b"AILDSIX1" + len(head).to_bytes(4, "little") + head + b"".join(fp.leaf_hashes)
    body += bytes(16)
    default_index_path(path).write_bytes(body + hashlib.sha256(body).digest())
    proof = prove_record(path, secret=None, index=1)  # skip_lines=1 from the old header
    assert proof.dataset.root == fp.root
    proof.verify(fp.root)


# --- Memory ------------------------------------------------------------------------------------


def test_memory_is_flat_in_the_file_size(tmp_path: Path) -> None:
    """A 6.8 MB CSV is fingerprinted (and its index written) with under 5 MB of Python
    allocations at the peak (3.8 MB measured: a 1 MiB read buffer and a batch of 4096
    records); the whole-file reader needs about 19 times the file."""
    path = tmp_path / "big.csv"
    rnd = random.Random(7)
    with path.open("w") as f:
        f.write("id,name,score,label,date\n")
        for i in range(150_000):
            name, score = f"name{rnd.randrange(10**6)}", f"{rnd.random():.6f}"
            f.write(f"{i},{name},{score},label-{i % 7},2026-12-{i % 28 + 1:02d}\n")
    assert path.stat().st_size > 6_500_000
    tracemalloc.start()
    try:
        fp = fingerprint_dataset(path, secret=SECRET)
        write_index_file(fp)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert fp.size == 150_000
    assert peak < 5_000_000, f"peak {peak / 1e6:.1f} MB"


def test_equal_records_keep_their_input_order_when_sorted(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b\n" + b"".join(b"%d,x\n1,2\n" % (i % 3) for i in range(50)))
    recs = read_records(path, "csv", "csv-row-jcs-v1")
    fp = fingerprint_dataset(path, secret=None, sort_leaves=True)
    root, leaves, numbers = reference_tree(recs, None, True)
    assert (fp.root, fp.leaf_hashes, list(fp.record_numbers)) == (root, leaves, numbers)
    write_index_file(fp)
    proof = prove_record(path, secret=None, index=7)  # one of 50 equal rows "1,2"
    assert isinstance(proof, MembershipProof)
    assert proof.inclusion.leaf_index == numbers.index(7)


def test_an_index_read_back_is_written_out_byte_for_byte(tmp_path: Path) -> None:
    path, index, _fp = _indexed(tmp_path, 40)
    recs = read_records(path, "csv", "csv-row-jcs-v1")
    again = ds._from_index(path, recs, SECRET, False, index)
    assert again is not None
    copy = write_index_file(again, tmp_path / "copy.idx")
    assert copy.read_bytes() == index.read_bytes()


def test_parquet_is_read_by_batches_and_proven_by_row_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    n = 10_000
    table = pa.table({"id": list(range(n)), "name": [f"n{i % 97}" for i in range(n)]})
    path = tmp_path / "d.parquet"
    pq.write_table(table, path, row_group_size=3_000)  # 4 row groups, 3 record batches of 4096
    recs = read_records(path, "parquet", "parquet-row-jcs-v1")
    stream = open_records(path, "parquet", "parquet-row-jcs-v1")
    got = [r for batch, _ in stream.batches() for r in batch]
    assert got == recs.records
    assert stream.data_sha256 == recs.data_sha256
    assert stream.metadata == recs.metadata
    fp = fingerprint_dataset(path, secret=SECRET)
    assert fp.root == reference_root(recs, SECRET, False)[0]
    write_index_file(fp)
    monkeypatch.setattr(ds, "_build", _no_rebuild)
    for i in (0, 2_999, 3_000, 9_999):
        proof = prove_record(path, secret=SECRET, index=i)
        assert isinstance(proof, MembershipProof)
        assert proof.record == recs.records[i]
        proof.verify(fp.root)


def test_a_directory_is_proven_from_its_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "data"
    (root / "sub").mkdir(parents=True)
    for i in range(20):
        (root / ("sub" if i % 2 else "") / f"f{i}.txt").write_text(f"file {i}\n")
    fp = fingerprint_dataset(root, secret=SECRET, sort_leaves=True)
    write_index_file(fp)
    monkeypatch.setattr(ds, "_build", _no_rebuild)
    member = prove_record(root, secret=SECRET, record=root / "sub" / "f3.txt")
    assert isinstance(member, MembershipProof)
    assert member.record_path == "sub/f3.txt"
    member.verify(fp.root)
    by_number = prove_record(root, secret=SECRET, index=4)
    by_number.verify(fp.root)
    (root / "f0.txt").write_text("changed\n")  # the listing changes: the index is stale
    monkeypatch.undo()
    fresh = prove_record(root, secret=SECRET, index=4)
    assert fresh.dataset.root != fp.root
