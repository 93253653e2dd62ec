"""Inference batches: many (input, output) records under one RFC 9162 Merkle root.

Leaf ``i`` is the RFC 8785 JSON of ``{"input": DIGEST, "output": DIGEST}`` of record ``i``.
The records are kept in the workspace as ``inference/<root>.jsonl`` (content-addressed by the
root, written before the statement is logged), so any record can be proven later with an
inclusion proof against the signed root.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import rfc8785

from ailedger import merkle
from ailedger.errors import FormatError, IntegrityError, InvalidInput
from ailedger.merkle import InclusionProof

__all__ = ["leaf", "proof", "read", "root_of", "write"]


def leaf(input_digest: str, output_digest: str) -> bytes:
    """The leaf entry of one record (RFC 8785 JSON)."""
    return bytes(rfc8785.dumps({"input": input_digest, "output": output_digest}))


def root_of(records: Sequence[tuple[str, str]]) -> str:
    return merkle.root([leaf(i, o) for i, o in records]).hex()


def write(batch_dir: Path, records: Sequence[tuple[str, str]]) -> str:
    """Store the records under their root (atomically); return the root (hex)."""
    if not records:
        raise InvalidInput("the batch has no records")
    root = root_of(records)
    batch_dir.mkdir(parents=True, exist_ok=True)
    target = batch_dir / f"{root}.jsonl"
    if not target.exists():
        tmp = target.with_suffix(".tmp")
        lines = "".join(json.dumps({"input": i, "output": o}) + "\n" for i, o in records)
        tmp.write_text(lines, encoding="utf-8")
        os.replace(tmp, target)
    return root


def _load(batch_dir: Path, root: str) -> list[tuple[str, str]] | None:
    try:
        text = (batch_dir / f"{root}.jsonl").read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    records: list[tuple[str, str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            doc = json.loads(line)
            records.append((str(doc["input"]), str(doc["output"])))
        except (ValueError, KeyError, TypeError):
            raise FormatError(f"inference batch {root}: line {number} is not a record") from None
    return records


def read(batch_dir: Path, root: str) -> list[tuple[str, str]] | None:
    """The records stored for ``root``; None if absent or if they do not hash to ``root``."""
    try:
        records = _load(batch_dir, root)
    except FormatError:
        return None
    if records is None or not records or root_of(records) != root:
        return None
    return records


def proof(batch_dir: Path, root: str, position: int) -> tuple[tuple[str, str], InclusionProof]:
    """Record ``position`` of the batch and its inclusion proof against ``root``."""
    records = _load(batch_dir, root)
    if records is None:
        raise IntegrityError(f"the records of inference batch {root} are missing")
    hashes = merkle.leaf_hashes(leaf(i, o) for i, o in records)
    computed = merkle.root_from_leaf_hashes(hashes).hex()
    if computed != root:
        raise IntegrityError(f"the stored records of batch {root} hash to {computed}")
    if not 0 <= position < len(records):
        raise InvalidInput(f"batch {root} has no record {position}")
    path = merkle.inclusion_proof_from_leaf_hashes(hashes, position)
    return records[position], InclusionProof(
        tree_size=len(records),
        leaf_index=position,
        leaf_hash=hashes[position],
        hashes=tuple(path),
        root=bytes.fromhex(root),
    )
