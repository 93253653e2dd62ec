"""Dataset proof documents: round trips, tampering, membership and non-membership."""

from __future__ import annotations

import dataclasses
import itertools
import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger import merkle
from ailedger.errors import AiledgerError, FormatError, ProofInvalid
from ailedger.fingerprint.dataset import fingerprint_dataset, prove_record
from ailedger.fingerprint.proofs import (
    MembershipProof,
    NonMembershipProof,
    load_proof,
    verify_proof,
)
from ailedger.merkle import ConsistencyProof, InclusionProof

SECRET = b"property-test dataset secret 0123"
_settings = settings(max_examples=examples(40))


@contextmanager
def _dataset(lines: list[bytes]) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.jsonl"
        path.write_bytes(b"".join(line + b"\n" for line in lines))
        yield path


def _lines(values: list[int]) -> list[bytes]:
    return [b'{"v":%d}' % v for v in values]


def _flip(data: bytes, position: int, bit: int) -> bytes:
    raw = bytearray(data)
    raw[position % len(raw)] ^= 1 << bit
    return bytes(raw)


def _fails(proof: object, **kw: object) -> bool:
    try:
        verify_proof(proof, **kw)  # type: ignore[arg-type]
    except ProofInvalid:
        return True
    return False


membership_case = st.tuples(
    st.lists(st.integers(0, 1000), min_size=1, max_size=24),  # duplicates allowed
    st.booleans(),  # salted
    st.booleans(),  # sorted
    st.integers(0, 10**6),  # which record
)

# Tampering cases have distinct records: with two equal unsalted records, moving a proof from
# one to the other leaves a true statement.
distinct_case = st.tuples(
    st.lists(st.integers(0, 1000), min_size=1, max_size=24, unique=True),
    st.booleans(),
    st.booleans(),
    st.integers(0, 10**6),
)


@given(case=membership_case)
@_settings
def test_membership_proof_round_trips_and_verifies(
    case: tuple[list[int], bool, bool, int],
) -> None:
    values, salted, sort, pick = case
    lines = _lines(values)
    secret = SECRET if salted else None
    with _dataset(lines) as path:
        fp = fingerprint_dataset(path, secret=secret, sort_leaves=sort)
        index = pick % len(lines)
        proof = prove_record(path, secret=secret, index=index, sort_leaves=sort)
    assert isinstance(proof, MembershipProof)
    doc = json.loads(json.dumps(proof.to_dict()))
    assert load_proof(doc) == proof
    check = verify_proof(load_proof(doc), expected_root=fp.root, record=lines[index] + b"\n")
    assert check.record_checked
    assert (check.root, check.size) == (fp.root, len(lines))
    assert (proof.salt is None) == (not salted)


@given(case=distinct_case, position=st.integers(0, 10**6), bit=st.integers(0, 7))
@_settings
def test_any_single_byte_change_fails(
    case: tuple[list[int], bool, bool, int], position: int, bit: int
) -> None:
    values, salted, sort, pick = case
    lines = _lines(values)
    secret = SECRET if salted else None
    with _dataset(lines) as path:
        proof = prove_record(path, secret=secret, index=pick % len(lines), sort_leaves=sort)
    assert isinstance(proof, MembershipProof)
    inc = proof.inclusion
    assert proof.record is not None
    tampered = [
        dataclasses.replace(proof, record=_flip(proof.record, position, bit)),
        dataclasses.replace(inc, root=_flip(inc.root, position, bit)),
        dataclasses.replace(inc, leaf_hash=_flip(inc.leaf_hash, position, bit)),
        dataclasses.replace(inc, leaf_index=inc.leaf_index ^ (1 << bit)),
        dataclasses.replace(inc, tree_size=inc.tree_size ^ (1 << bit)),
    ]
    proofs = [tampered[0]] + [dataclasses.replace(proof, inclusion=t) for t in tampered[1:]]
    ds = proof.dataset
    proofs.append(dataclasses.replace(proof, dataset=dataclasses.replace(ds, root=inc.hashes[0]))
                  if inc.hashes else proofs[1])  # fmt: skip
    if proof.salt is not None:
        proofs.append(dataclasses.replace(proof, salt=_flip(proof.salt, position, bit)))
    if inc.hashes:
        hashes = list(inc.hashes)
        k = position % len(hashes)
        hashes[k] = _flip(hashes[k], position // len(hashes), bit)
        proofs.append(
            dataclasses.replace(proof, inclusion=dataclasses.replace(inc, hashes=tuple(hashes)))
        )
    for bad in proofs:
        assert _fails(bad), bad
    assert _fails(proof, expected_root=_flip(ds.root, position, bit))
    record = lines[pick % len(lines)]
    if len(set(lines)) > 1:
        other = next(line for line in lines if line != record)
        assert _fails(proof, record=other)


@given(
    case=membership_case,
    position=st.integers(0, 10**6),
    byte=st.integers(0, 255),
    omit=st.booleans(),
)
@_settings
def test_byte_changes_in_the_json_document_fail_or_change_nothing(
    case: tuple[list[int], bool, bool, int], position: int, byte: int, omit: bool
) -> None:
    values, salted, sort, pick = case
    secret = SECRET if salted else None
    with _dataset(_lines(values)) as path:
        proof = prove_record(
            path, secret=secret, index=pick % len(values), sort_leaves=sort, include_record=not omit
        )
    text = json.dumps(proof.to_dict(), indent=1).encode()
    raw = bytearray(text)
    raw[position % len(raw)] = byte
    try:
        doc = json.loads(bytes(raw))
        verify_proof(load_proof(doc))
    except (ValueError, AiledgerError):
        return
    original = json.loads(text)
    if omit:
        # Without the record the salt is carried for a later check with --record and is not
        # bound by anything yet; the proof then only shows that its leaf hash is in the tree.
        doc.pop("salt", None)
        original.pop("salt", None)
    assert doc == original, "a changed document still verified"


def test_omitted_record_is_checked_only_when_given(tmp_path: Path) -> None:
    lines = _lines([1, 2, 3])
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\n".join(lines))
    proof = prove_record(path, secret=SECRET, index=1, include_record=False)
    doc = proof.to_dict()
    assert doc["record"] is None
    assert not verify_proof(load_proof(doc)).record_checked
    assert verify_proof(load_proof(doc), record=lines[1]).record_checked
    assert _fails(load_proof(doc), record=lines[2])


absent_case = st.tuples(
    st.sets(st.integers(0, 500), min_size=0, max_size=30),
    st.integers(0, 500),
    st.booleans(),
)


@given(case=absent_case)
@_settings
def test_absent_records_have_non_membership_proofs(case: tuple[set[int], int, bool]) -> None:
    present, absent, salted = case
    present.discard(absent)
    present.add(absent + 1000)  # never empty
    secret = SECRET if salted else None
    with _dataset(_lines(sorted(present))) as path:
        fp = fingerprint_dataset(path, secret=secret, sort_leaves=True)
        record = path.with_name("r.json")
        record.write_bytes(_lines([absent])[0])
        proof = prove_record(path, secret=secret, record=record, sort_leaves=True)
    assert isinstance(proof, NonMembershipProof)
    doc = json.loads(json.dumps(proof.to_dict()))
    assert load_proof(doc) == proof
    check = verify_proof(load_proof(doc), expected_root=fp.root, expected_size=fp.size)
    assert check.kind == "dataset-non-membership"
    assert _fails(proof, record=_lines([absent + 1000])[0])
    assert _fails(dataclasses.replace(proof, leaf_hash=_flip(proof.leaf_hash, 0, 0)))


@given(case=absent_case, pick=st.integers(0, 10**6))
@_settings
def test_present_records_have_no_non_membership_proof(
    case: tuple[set[int], int, bool], pick: int
) -> None:
    values, _, salted = case
    values.add(pick % 500)
    ordered = sorted(values)
    secret = SECRET if salted else None
    with _dataset(_lines(ordered)) as path:
        fp = fingerprint_dataset(path, secret=secret, sort_leaves=True)
        record = path.with_name("r.json")
        record.write_bytes(_lines([pick % 500])[0])
        member = prove_record(path, secret=secret, record=record, sort_leaves=True)
        assert isinstance(member, MembershipProof)
        n = fp.size
        incl = [prove_record(path, secret=secret, index=i).inclusion for i in range(n)]  # type: ignore[union-attr]
    by_position = sorted(incl, key=lambda p: p.leaf_index)
    brackets = [(None, by_position[0]), (by_position[-1], None)]
    brackets += list(itertools.pairwise(by_position))
    for left, right in brackets:
        forged = NonMembershipProof(
            member.dataset, member.record, member.salt, member.inclusion.leaf_hash, left, right
        )
        assert _fails(forged)


def test_non_membership_needs_a_position_independent_salt(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b"\n".join(_lines([1, 5, 9])))
    record = tmp_path / "r.json"
    record.write_bytes(b'{"v":4}')
    proof = prove_record(path, secret=SECRET, record=record, sort_leaves=True)
    assert isinstance(proof, NonMembershipProof)
    bad = dataclasses.replace(
        proof, dataset=dataclasses.replace(proof.dataset, scheme="salted-blake3-index-v1")
    )
    with pytest.raises(ProofInvalid, match="salts by position"):
        bad.verify()


def test_plain_merkle_proof_documents() -> None:
    entries = [b"a", b"b", b"c", b"d", b"e"]
    hashes = merkle.leaf_hashes(entries)
    root = merkle.root(entries)
    inc = InclusionProof(5, 2, hashes[2], tuple(merkle.inclusion_proof(entries, 2)), root)
    assert verify_proof(load_proof(inc.to_dict()), expected_root=root, record=b"c").record_checked
    assert _fails(load_proof(inc.to_dict()), record=b"x")
    old = merkle.root(entries[:3])
    cons = ConsistencyProof(3, 5, old, root, tuple(merkle.consistency_proof(entries, 3)))
    assert verify_proof(load_proof(cons.to_dict()), expected_root=root).kind == "consistency"
    assert _fails(load_proof(cons.to_dict()), expected_root=old)
    upper = {**inc.to_dict(), "root": root.hex().upper()}
    with pytest.raises(FormatError, match="lower-case"):
        load_proof(upper)
    with pytest.raises(FormatError, match="unknown proof type"):
        load_proof({"type": "x"})
