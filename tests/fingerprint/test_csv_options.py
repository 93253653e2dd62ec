"""CSV reading options (issue 11 item 13): ``skip_lines`` before the header and ``header_row``.

The options change the leaves, so they are recorded in the metadata and the sidecar index: a
proof made from an index rebuilds the same tree, an index made with other options is never
reused, and the skipped lines are bound by ``skipped_sha256``.
"""

from __future__ import annotations

import csv
import hashlib
import io
from pathlib import Path

import pytest
import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.errors import AiledgerError, FormatError, InvalidInput
from ailedger.fingerprint import dataset as ds
from ailedger.fingerprint._formats import csv_options, read_records
from ailedger.fingerprint._index import read_index_header
from ailedger.fingerprint.dataset import fingerprint_dataset, prove_record, write_index_file
from ailedger.fingerprint.proofs import MembershipProof

SECRET = b"an example dataset secret, 32+ bytes"


def sklearn_csv(name: str) -> Path:
    sklearn = pytest.importorskip("sklearn")
    path = Path(sklearn.__file__).parent / "datasets" / "data" / name
    if not path.is_file():
        pytest.skip(f"scikit-learn ships no {name}")
    return path


@pytest.fixture
def breast_cancer(tmp_path: Path) -> Path:
    """scikit-learn's breast-cancer CSV: a summary line "569,30,malignant,benign", then 569
    rows of 31 fields and no header row."""
    path = tmp_path / "breast_cancer.csv"
    path.write_bytes(sklearn_csv("breast_cancer.csv").read_bytes())
    return path


def test_the_summary_line_is_refused_as_ragged_with_a_hint(breast_cancer: Path) -> None:
    with pytest.raises(FormatError, match="line 2: ragged row with 31 fields") as exc:
        fingerprint_dataset(breast_cancer, secret=None)
    assert exc.value.hint is not None
    assert "--skip-lines" in exc.value.hint
    assert "--no-header" in exc.value.hint


def test_breast_cancer_with_skip_lines(breast_cancer: Path) -> None:
    data = breast_cancer.read_bytes()
    first_line_end = data.index(b"\n") + 1
    fp = fingerprint_dataset(breast_cancer, secret=None, skip_lines=1)
    assert fp.size == 568  # the first data row is taken as the header
    meta = fp.metadata
    assert (meta["skip_lines"], meta["header_row"]) == (1, True)
    assert meta["skipped_sha256"] == hashlib.sha256(data[:first_line_end]).hexdigest()
    assert len(meta["header"]) == 31
    # no header: every row after the summary is a record, as its "569" says
    whole = fingerprint_dataset(breast_cancer, secret=None, skip_lines=1, header_row=False)
    assert whole.size == 569
    assert "header" not in whole.metadata
    assert "header_sha256" not in whole.metadata
    assert whole.metadata["header_row"] is False
    two = fingerprint_dataset(breast_cancer, secret=SECRET, skip_lines=2, header_row=False)
    assert two.size == 568
    assert two.metadata["skipped_sha256"] != meta["skipped_sha256"]


@pytest.mark.parametrize(("skip", "header"), [(1, True), (2, False), (1, False)])
def test_a_record_proof_verifies_and_the_index_carries_the_options(
    breast_cancer: Path, skip: int, header: bool
) -> None:
    fp = fingerprint_dataset(breast_cancer, secret=SECRET, skip_lines=skip, header_row=header)
    index = write_index_file(fp)
    stored = read_index_header(index)["metadata"]
    assert csv_options(stored) == (skip, header)
    # options left out: taken from the index, whose tree is reused (not rebuilt)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(ds, "_build", _no_rebuild)
        proof = prove_record(breast_cancer, secret=SECRET, index=7)
    assert isinstance(proof, MembershipProof)
    assert proof.dataset.root == fp.root
    assert proof.dataset.size == fp.size
    lines = breast_cancer.read_bytes().split(b"\n")
    row = lines[skip + (1 if header else 0) + 7]
    assert proof.verify(fp.root, record=row + b"\n").record_checked
    # the same record found by content
    record = breast_cancer.with_name("row.csv")
    record.write_bytes(row + b"\n")
    by_content = prove_record(breast_cancer, secret=SECRET, record=record)
    assert isinstance(by_content, MembershipProof)
    assert by_content.inclusion == proof.inclusion


def _no_rebuild(*args: object) -> ds.DatasetFingerprint:
    raise AssertionError("the index matches: the tree must not be rebuilt")


def test_an_index_made_with_other_options_is_not_reused(breast_cancer: Path) -> None:
    one = fingerprint_dataset(breast_cancer, secret=None, skip_lines=1)
    write_index_file(one)
    other = fingerprint_dataset(breast_cancer, secret=None, skip_lines=1, header_row=False)
    proof = prove_record(breast_cancer, secret=None, index=0, header_row=False)
    assert proof.dataset.root == other.root != one.root
    assert proof.dataset.size == 569
    assert isinstance(proof, MembershipProof)
    proof.verify(other.root)
    # same data, size and leaves (the first data row skipped, not taken as a header), other
    # options: the index is still not taken for this reading
    recs = read_records(breast_cancer, "csv", "csv-row-jcs-v1", skip_lines=2, header_row=False)
    index = ds.default_index_path(breast_cancer)
    assert ds._from_index(breast_cancer, recs, None, False, index) is None
    same = read_records(breast_cancer, "csv", "csv-row-jcs-v1", skip_lines=1)
    assert same.records == recs.records
    assert ds._from_index(breast_cancer, same, None, False, index) is not None
    # explicit options that do not parse the file fail; the index does not paper over them
    with pytest.raises(FormatError, match="ragged"):
        prove_record(breast_cancer, secret=None, index=0, skip_lines=0)


def test_an_index_without_the_options_is_rebuilt(tmp_path: Path) -> None:
    """An index whose metadata lacks the options (written before they existed) or holds other
    ones never stands for the tree read with the current options."""
    path = tmp_path / "d.csv"
    path.write_bytes(b"summary line\na,b\n1,2\n3,4\n")
    fp = fingerprint_dataset(path, secret=None, skip_lines=1)
    legacy = {k: v for k, v in fp.metadata.items() if k not in ("skip_lines", "header_row")}
    header = {**fp._index_header(), "metadata": legacy}
    from ailedger.fingerprint._index import write_index

    index = ds.default_index_path(path)
    write_index(index, header, fp.leaf_hashes, fp.record_numbers)
    # the legacy header means (0, header): that reading is ragged, so no proof comes of it
    with pytest.raises(FormatError, match="ragged"):
        prove_record(path, secret=None, index=0)
    recs = read_records(path, "csv", "csv-row-jcs-v1", skip_lines=1)
    assert ds._from_index(path, recs, None, False, index) is None  # rebuilt, not reused
    proof = prove_record(path, secret=None, index=1, skip_lines=1)
    assert proof.dataset.root == fp.root


def test_changed_skipped_lines_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"569,30,malignant,benign\nx,y\n1,2\n")
    before = fingerprint_dataset(path, secret=None, skip_lines=1)
    write_index_file(before)
    path.write_bytes(b"999,30,malignant,benign\nx,y\n1,2\n")
    after = fingerprint_dataset(path, secret=None, skip_lines=1)
    # the root covers the records (as with the header); the metadata and data digest do not
    assert after.root == before.root
    assert after.metadata["skipped_sha256"] != before.metadata["skipped_sha256"]
    assert after.data_sha256 != before.data_sha256
    assert after.to_dict() != before.to_dict()
    # a proof comes from the changed file, not from the stale index (other data_sha256)
    stale = read_index_header(ds.default_index_path(path))
    assert stale["data_sha256"] == before.data_sha256
    proof = prove_record(path, secret=None, index=0)
    assert proof.dataset.root == after.root


def test_options_are_checked(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b\n1,2")
    with pytest.raises(InvalidInput, match="cannot skip 3 lines, the file has 2"):
        fingerprint_dataset(path, secret=None, skip_lines=3)
    with pytest.raises(InvalidInput, match="no header row"):
        fingerprint_dataset(path, secret=None, skip_lines=2)
    with pytest.raises(InvalidInput, match="no records"):
        fingerprint_dataset(path, secret=None, skip_lines=2, header_row=False)
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_bytes(b"{}\n")
    with pytest.raises(InvalidInput, match="CSV datasets only"):
        fingerprint_dataset(jsonl, secret=None, skip_lines=1)
    with pytest.raises(InvalidInput, match="CSV datasets only"):
        fingerprint_dataset(jsonl, secret=None, header_row=False)
    with pytest.raises(FormatError, match="skip_lines"):
        csv_options({"skip_lines": -1})
    with pytest.raises(FormatError, match="header_row"):
        csv_options({"header_row": "no"})


@pytest.mark.parametrize("newline", [b"\n", b"\r\n", b"\r"])
def test_line_endings_and_error_lines_count_the_skipped_lines(
    tmp_path: Path, newline: bytes
) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(newline.join([b"note", b"", b"a,b", b"1,2", b"3"]) + newline)
    with pytest.raises(FormatError, match="line 5: ragged"):
        read_records(path, "csv", "csv-row-jcs-v1", skip_lines=2)
    path.write_bytes(newline.join([b"note", b"", b"a,b", b"1,2"]) + newline)
    recs = read_records(path, "csv", "csv-row-jcs-v1", skip_lines=2)
    assert recs.records == [b'["1","2"]']
    skipped = b"note" + newline + newline
    assert recs.metadata["skipped_sha256"] == hashlib.sha256(skipped).hexdigest()


# --- Properties --------------------------------------------------------------------------------

# no NUL; no U+FEFF, which would read as a byte-order mark at the start of a file
_FIELD = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufeff"))
_LINE = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\r\n\x00"))


@st.composite
def csv_files(draw: st.DrawFn) -> tuple[bytes, int, list[list[str]], bytes]:
    """(file bytes, number of preamble lines, rows after it, the preamble's bytes)."""
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    preamble = draw(st.lists(_LINE, max_size=4))
    width = draw(st.integers(1, 4))
    rows = draw(st.lists(st.lists(_FIELD, min_size=width, max_size=width), min_size=1))
    out = io.StringIO(newline="")
    # csv.writer quotes only the terminator's own characters: quote every line break
    breaks = any("\r" in x or "\n" in x for row in rows for x in row)
    quoting = csv.QUOTE_ALL if breaks else csv.QUOTE_MINIMAL
    csv.writer(out, lineterminator=newline, quoting=quoting).writerows(rows)
    head = "".join(line + newline for line in preamble).encode("utf-8")
    return head + out.getvalue().encode("utf-8"), len(preamble), rows, head


@given(
    data=st.binary(max_size=200) | csv_files().map(lambda f: f[0]),
    skip=st.integers(0, 6),
    header=st.booleans(),
)
@settings(max_examples=examples(150))
def test_reading_never_crashes(tmp_path_factory: pytest.TempPathFactory, data: bytes,
                               skip: int, header: bool) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("csv") / "d.csv"
    path.write_bytes(data)
    try:
        recs = read_records(path, "csv", "csv-row-jcs-v1", skip_lines=skip, header_row=header)
    except AiledgerError:
        return
    assert csv_options(recs.metadata) == (skip, header)
    assert ("header" in recs.metadata) == header


@given(f=csv_files(), header=st.booleans(), secret=st.none() | st.just(SECRET), pick=st.integers(0))
@settings(max_examples=examples(60))
def test_round_trip_of_the_records_and_a_proof(
    tmp_path_factory: pytest.TempPathFactory,
    f: tuple[bytes, int, list[list[str]], bytes],
    header: bool,
    secret: bytes | None,
    pick: int,
) -> None:
    data, skip, rows, head = f
    path = tmp_path_factory.mktemp("csv") / "d.csv"
    path.write_bytes(data)
    records = rows[1:] if header else rows
    if not records:
        with pytest.raises(InvalidInput, match="no records"):
            fingerprint_dataset(path, secret=secret, skip_lines=skip, header_row=header)
        return
    fp = fingerprint_dataset(path, secret=secret, skip_lines=skip, header_row=header)
    assert fp.size == len(records)
    want = [rfc8785.dumps(r) for r in records]
    got = read_records(path, "csv", "csv-row-jcs-v1", skip_lines=skip, header_row=header)
    assert got.records == want
    if skip:
        assert fp.metadata["skipped_sha256"] == hashlib.sha256(head).hexdigest()
    write_index_file(fp)
    index = pick % fp.size
    proof = prove_record(path, secret=secret, index=index)  # the options come from the index
    assert isinstance(proof, MembershipProof)
    assert proof.dataset.root == fp.root
    assert proof.record == want[index]
    proof.verify(fp.root)
