"""Proofs from a dataset index: is the index bound to the data, and the proof it gives.

:func:`bound_index` decides whether a sidecar index may stand for the data (same format,
leaf encoding, scheme, order, secret and reading options; same file size and SHA-256, or for
a directory the same file listing); :func:`prove_from` makes a membership proof (or, in sorted
order, a non-membership proof) from O(log n) stored nodes, re-reading the one record from the
data and checking it against its stored leaf, and the proof against the stored root.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger import merkle
from ailedger.errors import AiledgerError, IntegrityError, InvalidInput, NotFound, ProofInvalid
from ailedger.fingerprint import _leaves
from ailedger.fingerprint._formats import FILE_ENTRY, _read_files, csv_options
from ailedger.fingerprint._index import IndexFile, read_index_header
from ailedger.fingerprint._leaves import SALTED_BY_INDEX, UNSALTED
from ailedger.fingerprint._stream import delimiter_of, record_at
from ailedger.fingerprint.proofs import DatasetRef, MembershipProof, NonMembershipProof
from ailedger.merkle import InclusionProof

__all__ = [
    "ORDER_INPUT",
    "ORDER_SORTED",
    "Reading",
    "Wanted",
    "bound_index",
    "file_sha256",
    "prove_from",
    "salt_of",
]

ORDER_INPUT = "input"
ORDER_SORTED = "sorted-by-leaf-hash"
Progress = Callable[[int], None]


@dataclass
class Wanted:
    """What a rebuild for a proof looks out for while the records stream by: record number
    ``index``, or the first record equal to ``encoded``."""

    index: int | None = None
    encoded: bytes | None = None
    found: int | None = None
    record: bytes | None = None

    def see(self, records: list[bytes], first: int) -> None:
        if self.record is not None:
            return
        if self.index is not None and first <= self.index < first + len(records):
            self.found, self.record = self.index, records[self.index - first]
        elif self.encoded is not None:
            try:
                k = records.index(self.encoded)
            except ValueError:
                return
            self.found, self.record = first + k, self.encoded


def file_sha256(path: Path, progress: Progress | None) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file, read in 1 MiB chunks."""
    sha = hashlib.sha256()
    size = 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            sha.update(chunk)
            size += len(chunk)
            if progress is not None:
                progress(len(chunk))
    return sha.hexdigest(), size


@dataclass
class Reading:
    """How the data is to be read and salted for a proof."""

    format: str
    leaf_encoding: str
    scheme: str
    order: str
    secret_id: str | None
    skip_lines: int
    header_row: bool


def bound_index(
    path: Path, index_path: Path, reading: Reading, progress: Progress | None
) -> tuple[IndexFile, list[bytes] | None] | None:
    """The index at ``index_path`` if it is bound to this data and reading (else None, and the
    caller recomputes). Its header (hash) and length are checked and a damaged one raises
    ``IntegrityError``; the rest is checked by :func:`prove_from` as it is read. For a
    directory, also its file entries (listing them is what binds it)."""
    header = read_index_header(index_path)
    if header.get("index_version") == 1:
        return None  # an index of an earlier version: no tree levels, no record offsets
    expected: dict[str, object] = {
        "format": reading.format,
        "leaf_encoding": reading.leaf_encoding,
        "scheme": reading.scheme,
        "order": reading.order,
        "secret_id": reading.secret_id,
    }
    if any(header.get(k) != v for k, v in expected.items()):
        return None  # another scheme, secret or encoding: recompute
    meta = header.get("metadata")
    if not isinstance(meta, dict):
        return None
    if reading.format == "csv":
        if "skip_lines" not in meta or "header_row" not in meta:
            return None  # written before the options existed
        if csv_options(meta) != (reading.skip_lines, reading.header_row):
            return None
        if meta.get("delimiter") != delimiter_of(path):
            return None
    entries = None
    if reading.format == "files":
        recs = _read_files(path)
        if recs.data_sha256 != header.get("data_sha256"):
            return None
        entries = recs.records
    else:
        if not path.is_file() or path.stat().st_size != header.get("data_size"):
            return None
        if file_sha256(path, progress)[0] != header.get("data_sha256"):
            return None
    index = IndexFile.open(index_path, checksum=False)
    if reading.format in ("csv", "jsonl") and not index.has_starts:
        index.close()
        return None
    return index, entries


def salt_of(scheme: str, secret: bytes | None, record: bytes, position: int) -> bytes | None:
    if scheme == UNSALTED or secret is None:
        return None
    key = _leaves.derive_key(secret, scheme)
    if scheme == SALTED_BY_INDEX:
        return _leaves.index_salt(key, position)
    return _leaves.record_salt(key, record)


def ref_of(header: dict[str, Any]) -> DatasetRef:
    return DatasetRef(
        bytes.fromhex(header["root"]),
        header["size"],
        header["format"],
        header["leaf_encoding"],
        header["scheme"],
    )


def inclusion_of(index: IndexFile, position: int) -> InclusionProof:
    """PATH(position) from O(log n) stored nodes, checked against the stored root."""
    proof = merkle.MerkleTree(index.store()).inclusion_proof(position)
    root = bytes.fromhex(index.header["root"])
    try:
        proof.verify(root)
        valid = proof.root == root
    except ProofInvalid:
        valid = False
    if not valid:
        raise IntegrityError(
            "the dataset index does not give a valid proof for its root",
            hint="fingerprint the dataset again to rewrite the index",
        )
    return proof


def prove_from(
    path: Path,
    idx: IndexFile,
    entries: list[bytes] | None,
    secret: bytes | None,
    index: int | None,
    wanted: bytes | None,
    relpath: str | None,
    include_record: bool,
    want: Wanted | None = None,
) -> MembershipProof | NonMembershipProof:
    h = idx.header
    n, scheme, encoding = idx.size, h["scheme"], h["leaf_encoding"]
    if index is not None:
        if not 0 <= index < n:
            raise InvalidInput(f"record index {index} is outside 0..{n - 1}")
        position = idx.position_of(index)
        if want is not None and want.record is not None:
            encoded = want.record
        elif entries is not None:
            encoded = entries[index]
        else:
            start, end = idx.record_span(index) if idx.has_starts else (index, index + 1)
            try:
                encoded = record_at(path, h["format"], encoding, h["metadata"], start, end)
            except AiledgerError:
                raise IntegrityError(
                    f"record {index} cannot be read where the index says it starts",
                    hint="fingerprint again",
                ) from None
    else:
        assert wanted is not None
        encoded = wanted
        if h["order"] == ORDER_SORTED:
            leaf = merkle.leaf_hash(
                _leaves.leaf_entry(encoded, salt_of(scheme, secret, encoded, 0))
            )
            position = idx.bisect(leaf)
            if position >= n or idx.leaf(position) != leaf:
                return absent_from(idx, secret, encoded, relpath, include_record, position)
        elif want is not None and want.found is not None:
            position = want.found
        else:
            raise NotFound(
                "the record is not in the dataset",
                hint="fingerprint with --sorted to prove that a record is absent",
            )
    if encoding == FILE_ENTRY:
        relpath = encoded[merkle.HASH_SIZE :].decode("utf-8")
    salt = salt_of(scheme, secret, encoded, position)
    if merkle.leaf_hash(_leaves.leaf_entry(encoded, salt)) != idx.leaf(position):
        raise IntegrityError("the dataset index does not match the data", hint="fingerprint again")
    kept = encoded if include_record else None
    return MembershipProof(ref_of(h), kept, salt, inclusion_of(idx, position), relpath)


def absent_from(
    idx: IndexFile,
    secret: bytes | None,
    encoded: bytes,
    relpath: str | None,
    include_record: bool,
    position: int,
) -> NonMembershipProof:
    h = idx.header
    salt = salt_of(h["scheme"], secret, encoded, 0)
    leaf = merkle.leaf_hash(_leaves.leaf_entry(encoded, salt))
    left = inclusion_of(idx, position - 1) if position > 0 else None
    right = inclusion_of(idx, position) if position < idx.size else None
    kept = encoded if include_record else None
    return NonMembershipProof(ref_of(h), kept, salt, leaf, left, right, relpath)
