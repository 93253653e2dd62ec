"""Dataset fingerprints: a Merkle root over salted records, and proofs about single records.

A dataset is a CSV, JSONL or Parquet file or a directory of files. Each record is encoded
(:mod:`ailedger.fingerprint._formats` names the encodings), salted
(:mod:`ailedger.fingerprint._leaves` names the
schemes) and becomes one RFC 9162 leaf; the fingerprint is the tree's root and size together
with the format, leaf encoding, salt scheme, order and metadata (CSV header, Parquet schema).

- ``secret=None`` means unsalted (``unsalted-v1``), for public data; otherwise leaves are salted
  in input order (``salted-blake3-index-v1``) or, with ``sort_leaves=True``, ordered by leaf
  hash and salted by record content (``salted-blake3-record-v1``), which allows proofs that a
  record is absent.
- :func:`write_index` stores the leaf hashes and record numbers in a sidecar file
  (:mod:`ailedger.fingerprint._index`); :func:`prove_record` uses it when it matches the data
  (same bytes, scheme, secret and reading options: CSV ``skip_lines`` and ``header_row``)
  and recomputes the tree otherwise.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger import merkle
from ailedger.errors import IntegrityError, InvalidInput, NotFound
from ailedger.fingerprint import _leaves
from ailedger.fingerprint._formats import (
    ENCODINGS,
    FILE_ENTRY,
    FORMATS,
    JSONL_JCS,
    Records,
    csv_options,
    detect_format,
    encode_record_file,
    read_records,
)
from ailedger.fingerprint._index import read_index, read_index_header, write_index
from ailedger.fingerprint._leaves import SALTED_BY_INDEX, SALTED_BY_RECORD, UNSALTED
from ailedger.fingerprint.proofs import DatasetRef, MembershipProof, NonMembershipProof
from ailedger.merkle import InclusionProof

__all__ = [
    "FINGERPRINT_TYPE",
    "FORMATS",
    "INDEX_SUFFIX",
    "ORDER_INPUT",
    "ORDER_SORTED",
    "SECRET_SUFFIX",
    "DatasetFingerprint",
    "default_index_path",
    "default_secret_path",
    "fingerprint_dataset",
    "prove_record",
    "read_index_header",
    "write_index_file",
]

FINGERPRINT_TYPE = "https://ailedger.dev/dataset/fingerprint/v1"
INDEX_SUFFIX = ".ailedger-index"
SECRET_SUFFIX = ".ailedger-secret"
ORDER_INPUT = "input"
ORDER_SORTED = "sorted-by-leaf-hash"


@dataclass(frozen=True)
class DatasetFingerprint:
    """A fingerprinted dataset; ``leaf_hashes`` are in tree order and ``record_numbers[p]``
    is the input record number of the leaf at tree position ``p``."""

    path: Path
    format: str
    leaf_encoding: str
    scheme: str
    order: str
    root: bytes
    size: int
    metadata: dict[str, Any]
    data_sha256: str
    secret_id: str | None
    leaf_hashes: list[bytes] = field(repr=False)
    record_numbers: Sequence[int] = field(repr=False)

    @property
    def ref(self) -> DatasetRef:
        return DatasetRef(self.root, self.size, self.format, self.leaf_encoding, self.scheme)

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": FINGERPRINT_TYPE,
            "path": str(self.path),
            "format": self.format,
            "leaf_encoding": self.leaf_encoding,
            "scheme": self.scheme,
            "order": self.order,
            "tree_algorithm": merkle.TREE_ALGORITHM,
            "size": self.size,
            "root": self.root.hex(),
            "data_sha256": self.data_sha256,
            "metadata": self.metadata,
        }

    def _index_header(self) -> dict[str, Any]:
        doc = self.to_dict()
        del doc["path"]
        return {**doc, "secret_id": self.secret_id}


def default_index_path(path: Path) -> Path:
    """``<dataset>.ailedger-index``, beside the file or directory."""
    path = path.absolute()
    return path.with_name(path.name + INDEX_SUFFIX)


def default_secret_path(path: Path) -> Path:
    """``<dataset>.ailedger-secret``, beside the file or directory."""
    path = path.absolute()
    return path.with_name(path.name + SECRET_SUFFIX)


def _encoding(fmt: str, canonical_json: bool) -> str:
    if fmt not in ENCODINGS:
        raise InvalidInput(f"unknown dataset format {fmt!r} (one of {', '.join(FORMATS)})")
    if canonical_json and fmt != "jsonl":
        raise InvalidInput("canonical JSON leaves apply to JSONL only")
    return JSONL_JCS if canonical_json else ENCODINGS[fmt][0]


def _scheme(secret: bytes | None, sort_leaves: bool) -> str:
    if secret is None:
        return UNSALTED
    return SALTED_BY_RECORD if sort_leaves else SALTED_BY_INDEX


def _build(
    path: Path, recs: Records, secret: bytes | None, sort_leaves: bool
) -> DatasetFingerprint:
    n = len(recs.records)
    if n == 0:
        raise InvalidInput(f"{path}: the dataset has no records")
    scheme = _scheme(secret, sort_leaves)
    leaves = _leaves.leaf_hashes(recs.records, scheme, secret)
    numbers: Sequence[int] = range(n)
    if sort_leaves:
        numbers = sorted(range(n), key=leaves.__getitem__)
        leaves = [leaves[i] for i in numbers]
    return DatasetFingerprint(
        path=path,
        format=recs.format,
        leaf_encoding=recs.leaf_encoding,
        scheme=scheme,
        order=ORDER_SORTED if sort_leaves else ORDER_INPUT,
        root=merkle.root_from_leaf_hashes(leaves),
        size=n,
        metadata=recs.metadata,
        data_sha256=recs.data_sha256,
        secret_id=None if secret is None else _leaves.secret_id(secret),
        leaf_hashes=leaves,
        record_numbers=numbers,
    )


def fingerprint_dataset(
    path: Path,
    *,
    secret: bytes | None,
    format: str | None = None,
    sort_leaves: bool = False,
    canonical_json: bool = False,
    skip_lines: int = 0,
    header_row: bool = True,
) -> DatasetFingerprint:
    """Fingerprint the dataset at ``path``; ``secret=None`` (explicitly) for unsalted leaves.

    CSV only: ``skip_lines`` leading lines are dropped before the header, and
    ``header_row=False`` makes every row a record; both are recorded in the metadata.
    """
    fmt = format or detect_format(path)
    recs = read_records(
        path, fmt, _encoding(fmt, canonical_json), skip_lines=skip_lines, header_row=header_row
    )
    return _build(path, recs, secret, sort_leaves)


def write_index_file(fp: DatasetFingerprint, index_path: Path | None = None) -> Path:
    """Write the sidecar index of ``fp`` (default: :func:`default_index_path`)."""
    target = index_path or default_index_path(fp.path)
    write_index(target, fp._index_header(), fp.leaf_hashes, fp.record_numbers)
    return target


def _from_index(
    path: Path, recs: Records, secret: bytes | None, sort_leaves: bool, index_path: Path
) -> DatasetFingerprint | None:
    header, leaves, numbers = read_index(index_path)
    scheme = _scheme(secret, sort_leaves)
    order = ORDER_SORTED if sort_leaves else ORDER_INPUT
    sid = None if secret is None else _leaves.secret_id(secret)
    expected: dict[str, object] = {
        "format": recs.format,
        "leaf_encoding": recs.leaf_encoding,
        "scheme": scheme,
        "order": order,
        "size": len(recs.records),
        "data_sha256": recs.data_sha256,
        "secret_id": sid,
        # the reading options (CSV: skip_lines, header_row) and what they read
        "metadata": recs.metadata,
    }
    if any(header.get(k) != v for k, v in expected.items()):
        return None  # another scheme, secret, reading or version of the data: recompute
    root = merkle.root_from_leaf_hashes(leaves)
    if root.hex() != header.get("root"):
        raise IntegrityError(f"{index_path}: stored leaves do not give the stored root")
    return DatasetFingerprint(
        path, recs.format, recs.leaf_encoding, scheme, order, root,
        len(leaves), recs.metadata, recs.data_sha256, sid, leaves, numbers,
    )  # fmt: skip


def _salt(
    fp: DatasetFingerprint, secret: bytes | None, record: bytes, position: int
) -> bytes | None:
    if fp.scheme == UNSALTED or secret is None:
        return None
    key = _leaves.derive_key(secret, fp.scheme)
    if fp.scheme == SALTED_BY_INDEX:
        return _leaves.index_salt(key, position)
    return _leaves.record_salt(key, record)


def _inclusion(fp: DatasetFingerprint, position: int) -> InclusionProof:
    path = merkle.inclusion_proof_from_leaf_hashes(fp.leaf_hashes, position)
    return InclusionProof(fp.size, position, fp.leaf_hashes[position], tuple(path), fp.root)


def _record_relpath(dataset: Path, record: Path) -> str:
    try:
        return record.resolve().relative_to(dataset.resolve()).as_posix()
    except ValueError:
        return record.name  # a file outside the dataset is looked up under its own name


def prove_record(
    path: Path,
    *,
    secret: bytes | None,
    index: int | None = None,
    record: Path | None = None,
    format: str | None = None,
    sort_leaves: bool | None = None,
    canonical_json: bool | None = None,
    index_file: Path | None = None,
    include_record: bool = True,
    skip_lines: int | None = None,
    header_row: bool | None = None,
) -> MembershipProof | NonMembershipProof:
    """Prove that record number ``index`` (input order) or the record in file ``record`` is in
    the dataset, or, for an absent record in sorted order, that it is not.

    Options left as ``None`` come from the sidecar index when it exists; the index is used when
    it matches the data, scheme, secret and reading options (its metadata), and the tree is
    recomputed otherwise.
    """
    if (index is None) == (record is None):
        raise InvalidInput("give exactly one of a record index or a record file")
    index_file = index_file or default_index_path(path)
    header = read_index_header(index_file) if index_file.is_file() else {}
    fmt = format or header.get("format") or detect_format(path)
    if canonical_json is None:
        canonical_json = header.get("leaf_encoding") == JSONL_JCS and fmt == "jsonl"
    if sort_leaves is None:
        sort_leaves = header.get("order") == ORDER_SORTED
    if fmt == "csv" and header.get("format") == "csv":
        stored_skip, stored_header = csv_options(header.get("metadata") or {})
        skip_lines = stored_skip if skip_lines is None else skip_lines
        header_row = stored_header if header_row is None else header_row
    recs = read_records(
        path,
        fmt,
        _encoding(fmt, canonical_json),
        skip_lines=skip_lines or 0,
        header_row=True if header_row is None else header_row,
    )
    fp = None
    if header:
        fp = _from_index(path, recs, secret, sort_leaves, index_file)
    fp = fp or _build(path, recs, secret, sort_leaves)

    relpath = None
    if index is not None:
        if not 0 <= index < fp.size:
            raise InvalidInput(f"record index {index} is outside 0..{fp.size - 1}")
        position = fp.record_numbers.index(index)
        encoded = recs.records[index]
    else:
        assert record is not None
        if not record.is_file():
            raise NotFound(f"record file not found: {record}")
        relpath = _record_relpath(path, record) if fp.leaf_encoding == FILE_ENTRY else None
        delimiter = fp.metadata.get("delimiter")
        encoded = encode_record_file(
            record.read_bytes(), fp.leaf_encoding, relpath=relpath, delimiter=delimiter
        )
        found = _find(fp, recs, secret, encoded)
        if found is None:
            return _absent(fp, secret, encoded, relpath, include_record)
        position = found
    if fp.leaf_encoding == FILE_ENTRY:
        relpath = encoded[merkle.HASH_SIZE :].decode("utf-8")
    salt = _salt(fp, secret, encoded, position)
    if merkle.leaf_hash(_leaves.leaf_entry(encoded, salt)) != fp.leaf_hashes[position]:
        raise IntegrityError("the dataset index does not match the data", hint="fingerprint again")
    kept = encoded if include_record else None
    return MembershipProof(fp.ref, kept, salt, _inclusion(fp, position), relpath)


def _find(
    fp: DatasetFingerprint, recs: Records, secret: bytes | None, encoded: bytes
) -> int | None:
    """Tree position of the encoded record, or None when absent."""
    if fp.order == ORDER_INPUT:
        try:
            return recs.records.index(encoded)
        except ValueError:
            return None
    leaf = merkle.leaf_hash(_leaves.leaf_entry(encoded, _salt(fp, secret, encoded, 0)))
    position = bisect.bisect_left(fp.leaf_hashes, leaf)
    if position < fp.size and fp.leaf_hashes[position] == leaf:
        return position
    return None


def _absent(
    fp: DatasetFingerprint,
    secret: bytes | None,
    encoded: bytes,
    relpath: str | None,
    include_record: bool,
) -> NonMembershipProof:
    if fp.order != ORDER_SORTED:
        raise NotFound(
            "the record is not in the dataset",
            hint="fingerprint with --sorted to prove that a record is absent",
        )
    salt = _salt(fp, secret, encoded, 0)
    leaf = merkle.leaf_hash(_leaves.leaf_entry(encoded, salt))
    position = bisect.bisect_left(fp.leaf_hashes, leaf)
    left = _inclusion(fp, position - 1) if position > 0 else None
    right = _inclusion(fp, position) if position < fp.size else None
    kept = encoded if include_record else None
    return NonMembershipProof(fp.ref, kept, salt, leaf, left, right, relpath)
