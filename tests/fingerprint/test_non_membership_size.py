"""Non-membership proofs pin the tree size: an RFC 9162 root does not fix it.

A bracket's leaves are stated hashes, not records. Claiming a smaller size than the tree's
turns interior nodes into "leaves" of the same root (at size 1 the root itself is the only
leaf), so a bracket around a record the dataset holds verifies against the root alone.
:func:`_forged_leaves` builds every such view of a real tree; the tests below check that
each forged bracket is refused once the true size is pinned, that a pinned root without a
size is refused outright, and that honest proofs still verify.
"""

from __future__ import annotations

import dataclasses
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
from ailedger.errors import ProofInvalid
from ailedger.fingerprint.dataset import DatasetFingerprint, fingerprint_dataset, prove_record
from ailedger.fingerprint.proofs import (
    MembershipProof,
    NonMembershipProof,
    load_proof,
    verify_proof,
)
from ailedger.merkle import InclusionProof

SECRET = b"non-membership size test secret 0"
_settings = settings(max_examples=examples(60))


@contextmanager
def _fingerprinted(
    values: list[int], salted: bool
) -> Iterator[tuple[Path, DatasetFingerprint, bytes | None]]:
    secret = SECRET if salted else None
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.jsonl"
        path.write_bytes(b"".join(b'{"v":%d}\n' % v for v in values))
        yield path, fingerprint_dataset(path, secret=secret, sort_leaves=True), secret


def _prove(path: Path, secret: bytes | None, value: int) -> MembershipProof | NonMembershipProof:
    record = path.with_name("r.json")
    record.write_bytes(b'{"v":%d}' % value)
    return prove_record(path, secret=secret, record=record, sort_leaves=True)


def _split(n: int) -> int:
    """RFC 9162: the largest power of two strictly below ``n``."""
    return 1 << ((n - 1).bit_length() - 1)


def _forged_leaves(hashes: list[bytes], size: int) -> list[bytes] | None:
    """``size`` nodes of the real tree over ``hashes`` whose RFC 9162 tree (read as leaves)
    has the real root, or None when no tree of ``size`` leaves has that shape."""
    n = len(hashes)
    if size == 1:
        return [merkle.root_from_leaf_hashes(hashes)]
    if n == 1 or size > n:
        return None
    k, j = _split(n), _split(size)
    left = _forged_leaves(hashes[:k], j)
    right = _forged_leaves(hashes[k:], size - j)
    return None if left is None or right is None else left + right


def _brackets(
    root: bytes, fake: list[bytes], h: bytes
) -> Iterator[tuple[InclusionProof | None, InclusionProof | None]]:
    """Every bracket of ``h`` among the forged leaves ``fake`` (all under ``root``)."""
    m = len(fake)

    def inc(i: int) -> InclusionProof:
        path = tuple(merkle.inclusion_proof_from_leaf_hashes(fake, i))
        return InclusionProof(m, i, fake[i], path, root)

    if h < fake[0]:
        yield None, inc(0)
    if fake[-1] < h:
        yield inc(m - 1), None
    for i in range(m - 1):
        if fake[i] < h < fake[i + 1]:
            yield inc(i), inc(i + 1)


def _lie(member: MembershipProof, size: int, left: object, right: object) -> NonMembershipProof:
    ds = dataclasses.replace(member.dataset, size=size)
    h = member.inclusion.leaf_hash
    return NonMembershipProof(ds, member.record, member.salt, h, left, right)  # type: ignore[arg-type]


def test_the_reviewers_four_leaf_example() -> None:
    """Leaves a, b, c, d: at a claimed size of 3, H(c, d) is "leaf 2" of the real root."""
    a, b, c, d = sorted(merkle.leaf_hash(bytes([i])) for i in range(4))
    root = merkle.root_from_leaf_hashes([a, b, c, d])
    cd = merkle.node_hash(c, d)
    fake = InclusionProof(3, 2, cd, (merkle.node_hash(a, b),), root)
    fake.verify(root)  # the forged "last leaf" holds against the root alone
    with pytest.raises(ProofInvalid) as exc:
        verify_proof(fake, expected_root=root)
    assert exc.value.code == "proof-size-unpinned"
    with pytest.raises(ProofInvalid) as exc:
        verify_proof(fake, expected_root=root, expected_size=4)
    assert exc.value.code == "proof-tree-mismatch"
    honest = InclusionProof(
        4, 2, c, tuple(merkle.inclusion_proof_from_leaf_hashes([a, b, c, d], 2)), root
    )
    assert verify_proof(honest, expected_root=root, expected_size=4).size == 4


def test_a_present_record_proven_absent_at_size_one_is_refused() -> None:
    """At a claimed size of 1 the root is its own only leaf: any record "is absent"."""
    with _fingerprinted([3, 1, 4, 15, 9, 2, 6], salted=True) as (path, fp, secret):
        member = _prove(path, secret, 4)
    assert isinstance(member, MembershipProof)
    h = member.inclusion.leaf_hash
    only = InclusionProof(1, 0, fp.root, (), fp.root)
    lie = _lie(member, 1, None, only) if h < fp.root else _lie(member, 1, only, None)
    # The attack is real: the bracket holds against what it carries.
    assert lie.verify(record=b'{"v":4}').kind == "dataset-non-membership"
    loaded = load_proof(json.loads(json.dumps(lie.to_dict())))
    assert loaded == lie
    for pins, code in [
        ({"expected_root": fp.root}, "proof-size-unpinned"),
        ({"expected_root": fp.root, "expected_size": fp.size}, "proof-tree-mismatch"),
        ({"expected_size": fp.size}, "proof-tree-mismatch"),
    ]:
        with pytest.raises(ProofInvalid) as exc:
            verify_proof(loaded, **pins)  # type: ignore[arg-type]
        assert exc.value.code == code, pins


@given(
    values=st.sets(st.integers(0, 400), min_size=2, max_size=40),
    pick=st.integers(0, 10**6),
    salted=st.booleans(),
)
@_settings
def test_a_present_record_never_gets_an_accepted_non_membership_proof(
    values: set[int], pick: int, salted: bool
) -> None:
    ordered = sorted(values)
    value = ordered[pick % len(ordered)]
    with _fingerprinted(ordered, salted) as (path, fp, secret):
        member = _prove(path, secret, value)
    assert isinstance(member, MembershipProof)
    h, hashes = member.inclusion.leaf_hash, fp.leaf_hashes
    forged = 0
    for size in range(1, fp.size + 1):
        fake = _forged_leaves(hashes, size)
        if fake is None:
            continue
        for left, right in _brackets(fp.root, fake, h):
            lie = _lie(member, size, left, right)
            forged += 1
            if size != fp.size:
                lie.verify()  # holds against its own claims: only the pinned size stops it
            with pytest.raises(ProofInvalid):
                lie.verify(fp.root)
            with pytest.raises(ProofInvalid):
                lie.verify(fp.root, expected_size=fp.size)
    assert forged >= 1  # size 1 always yields one: with two leaves or more, h is not the root


@given(
    values=st.sets(st.integers(0, 400), min_size=0, max_size=40),
    absent=st.integers(0, 400),
    salted=st.booleans(),
    claimed=st.integers(0, 100),
)
@_settings
def test_honest_proofs_verify_and_any_other_claimed_size_is_refused(
    values: set[int], absent: int, salted: bool, claimed: int
) -> None:
    values.discard(absent)
    values.add(absent + 1000)  # a non-empty dataset
    with _fingerprinted(sorted(values), salted) as (path, fp, secret):
        proof = _prove(path, secret, absent)
    assert isinstance(proof, NonMembershipProof)
    check = verify_proof(proof, expected_root=fp.root, expected_size=fp.size)
    assert (check.kind, check.root, check.size) == ("dataset-non-membership", fp.root, fp.size)
    if claimed == fp.size:
        claimed += 1

    def resize(inc: InclusionProof | None) -> InclusionProof | None:
        return None if inc is None else dataclasses.replace(inc, tree_size=claimed)

    resized = dataclasses.replace(
        proof,
        dataset=dataclasses.replace(proof.dataset, size=claimed),
        left=resize(proof.left),
        right=resize(proof.right),
    )
    with pytest.raises(ProofInvalid) as exc:
        verify_proof(resized, expected_root=fp.root, expected_size=fp.size)
    assert exc.value.code == "proof-tree-mismatch"
    with pytest.raises(ProofInvalid) as exc:
        verify_proof(proof, expected_root=fp.root)
    assert exc.value.code == "proof-size-unpinned"
