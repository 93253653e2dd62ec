"""The held-out set's tree and the disjointness of clients' training data
(:mod:`ailedger.markets.flrewards.heldout`): the tree is the dataset fingerprint of the same
records (sorted, record-salted, canonical JSON); a record is provably present or provably
absent, never both; :func:`verify_disjoint` fails closed (a missing proof, a salt not from the
client's secret, another root, no secret without the explicit unsafe flag, an empty set)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger import merkle
from ailedger.errors import ConflictError, InvalidInput, VerificationFailed
from ailedger.fingerprint import DatasetRef, NonMembershipProof, fingerprint_dataset, load_proof
from ailedger.fingerprint._leaves import leaf_entry
from ailedger.markets.flrewards import RecordTree, encode_record, verify_disjoint
from ailedger.merkle import InclusionProof

SPONSOR_SECRET = b"s" * 32
CLIENT_SECRET = b"c" * 32
OTHER_SECRET = b"o" * 32

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=6,
)
records = st.lists(json_values, min_size=1, max_size=12)


def _rows(n: int, offset: int = 0) -> list[dict[str, object]]:
    return [{"x": [i + offset, (i * 7) % 5], "y": i % 2} for i in range(n)]


@settings(max_examples=examples(40))
@given(rows=records)
def test_the_tree_is_the_dataset_fingerprint_of_the_records(
    tmp_path_factory: pytest.TempPathFactory, rows: list[object]
) -> None:
    path = tmp_path_factory.mktemp("ds") / "heldout.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    fp = fingerprint_dataset(path, secret=SPONSOR_SECRET, sort_leaves=True, canonical_json=True)
    tree = RecordTree(rows, SPONSOR_SECRET)
    assert (tree.root, tree.size) == (fp.root, fp.size)
    assert tree.ref == fp.ref


@settings(max_examples=examples(60))
@given(rows=records, query=json_values)
def test_a_record_is_provably_present_or_provably_absent(rows: list[object], query: object) -> None:
    tree = RecordTree(rows, CLIENT_SECRET)
    present = encode_record(query) in {encode_record(r) for r in rows}
    if present:
        tree.prove_present(query).verify(tree.root)
        with pytest.raises(ConflictError):
            tree.prove_absent(query)
    else:
        proof = tree.prove_absent(query)
        proof.verify(tree.root, expected_size=tree.ref.size)
        # the document round-trips through JSON as `ailedger verify proof` reads it
        again = load_proof(json.loads(json.dumps(proof.to_dict())))
        assert isinstance(again, NonMembershipProof)
        again.verify(tree.root, expected_size=tree.ref.size)
        with pytest.raises(InvalidInput):
            tree.prove_present(query)


def test_disjoint_training_data_verifies_with_the_clients_secret() -> None:
    heldout = _rows(6, offset=100)
    client = RecordTree(_rows(20), CLIENT_SECRET)
    proofs = [client.prove_absent(r) for r in heldout]
    check = verify_disjoint(proofs, heldout, client.commitment, client_secret=CLIENT_SECRET)
    assert (check.records, check.salts_checked) == (6, True)
    assert check.to_dict()["disjoint"] is True
    unchecked = verify_disjoint(proofs, heldout, client.commitment, unsafe_unchecked_salts=True)
    assert not unchecked.salts_checked


def test_verify_disjoint_fails_closed() -> None:
    heldout = _rows(4, offset=100)
    leaked = [*_rows(10), heldout[2]]
    client = RecordTree(leaked, CLIENT_SECRET)
    # the client cannot prove a record it trained on absent
    with pytest.raises(ConflictError):
        client.prove_absent(heldout[2])
    proofs = [client.prove_absent(r) for r in heldout if r != heldout[2]]
    with pytest.raises(VerificationFailed) as missing:
        verify_disjoint(proofs, heldout, client.commitment, client_secret=CLIENT_SECRET)
    assert missing.value.code == "heldout-overlap-unproven"
    # a proof of absence from another tree (the data without the leaked record)
    forged_tree = RecordTree([r for r in leaked if r != heldout[2]], CLIENT_SECRET)
    forged = forged_tree.prove_absent(heldout[2])
    with pytest.raises(VerificationFailed) as tree:  # its bracket is not in the committed tree
        verify_disjoint([*proofs, forged], heldout, client.commitment, unsafe_unchecked_salts=True)
    assert tree.value.code == "proof-tree-mismatch"
    # proofs against another root than the committed one
    honest = RecordTree(_rows(10), CLIENT_SECRET)
    good = [honest.prove_absent(r) for r in heldout]
    with pytest.raises(VerificationFailed) as other:
        verify_disjoint(good, heldout, client.commitment, client_secret=CLIENT_SECRET)
    assert other.value.code == "proof-tree-mismatch"
    # salts from another secret than the one the auditor was given
    with pytest.raises(VerificationFailed) as salt:
        verify_disjoint(good, heldout, honest.commitment, client_secret=OTHER_SECRET)
    assert salt.value.code == "proof-salt-invalid"
    # no secret and no explicit opt-out; nothing to check
    with pytest.raises(InvalidInput, match="secret"):
        verify_disjoint(good, heldout, honest.commitment)
    with pytest.raises(InvalidInput, match="empty"):
        verify_disjoint(good, [], honest.commitment, client_secret=CLIENT_SECRET)


def test_a_salt_the_verifier_cannot_check_is_caught_with_the_secret() -> None:
    """A client that trained on a held-out record and salts its proof's leaf with something
    else than its secret's salt makes a bracket that verifies without the secret (the
    documented limit of record-salted trees): the auditor holding the secret refuses it."""
    heldout = _rows(3, offset=100)
    leaked = [*_rows(8), heldout[0]]
    tree = RecordTree(leaked, CLIENT_SECRET)
    real = tree.prove_absent(heldout[1])
    encoded = encode_record(heldout[0])
    # find a salt whose leaf falls in some bracket of the tree (a lie the bracket can carry)
    leaves = [tree.prove_present(r).inclusion.leaf_hash for r in leaked]
    leaves.sort()
    for n in range(10_000):
        salt = hashlib.sha256(n.to_bytes(4, "big")).digest()
        leaf = merkle.leaf_hash(leaf_entry(encoded, salt))
        i = next((k for k, h in enumerate(leaves) if h > leaf), len(leaves))
        if 0 < i < len(leaves):
            break
    left = tree.prove_present(_record_with_leaf(tree, leaked, leaves[i - 1])).inclusion
    right = tree.prove_present(_record_with_leaf(tree, leaked, leaves[i])).inclusion
    lie = NonMembershipProof(tree.ref, encoded, salt, leaf, left, right)
    lie.verify(tree.root, expected_size=tree.ref.size)  # holds on its own
    proofs = [lie, real, tree.prove_absent(heldout[2])]
    assert verify_disjoint(proofs, heldout, tree.commitment, unsafe_unchecked_salts=True)
    with pytest.raises(VerificationFailed) as exc:
        verify_disjoint(proofs, heldout, tree.commitment, client_secret=CLIENT_SECRET)
    assert exc.value.code == "proof-salt-invalid"


def _record_with_leaf(tree: RecordTree, rows: list[object], leaf: bytes) -> object:
    for r in rows:
        if tree.prove_present(r).inclusion.leaf_hash == leaf:
            return r
    raise AssertionError("no record has that leaf")


def test_records_must_be_json(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput):
        encode_record({"x": float("nan")})
    with pytest.raises(InvalidInput):
        encode_record({1, 2})
    with pytest.raises(InvalidInput):
        RecordTree([], CLIENT_SECRET)
    with pytest.raises(InvalidInput):
        RecordTree([1], b"short")


def test_a_proof_naming_a_smaller_size_cannot_hide_a_held_record() -> None:
    """An RFC 9162 root does not commit to the tree's size: with size 2 claimed for a tree of
    3 leaves, the interior node H(l0, l1) passes as "leaf 0" and l2 as "leaf 1", and a record
    whose leaf lies between them (one the tree holds) looks absent; the bracket verifies
    against the root alone. The commitment a client joins with binds the size, so
    verify_disjoint refuses it."""
    for n in range(200):
        rows = [{"r": n, "i": i} for i in range(3)]
        tree = RecordTree(rows, CLIENT_SECRET)
        leaves = [tree.prove_present(r).inclusion.leaf_hash for r in rows]
        leaves.sort()
        inner = merkle.node_hash(leaves[0], leaves[1])
        held = [r for r in rows if inner < tree.prove_present(r).inclusion.leaf_hash < leaves[2]]
        if held:
            break
    else:
        raise AssertionError("no record set with a leaf between H(l0, l1) and l2")
    record = held[0]
    present = tree.prove_present(record)
    fake_ref = DatasetRef(tree.root, 2, tree.ref.format, tree.ref.leaf_encoding, tree.ref.scheme)
    left = InclusionProof(2, 0, inner, (leaves[2],), tree.root)
    right = InclusionProof(2, 1, leaves[2], (inner,), tree.root)
    lie = NonMembershipProof(
        fake_ref, present.record, present.salt, present.inclusion.leaf_hash, left, right
    )
    lie.verify()  # the bracket holds on its own claims (root and size 2)
    with pytest.raises(VerificationFailed) as exc:
        verify_disjoint([lie], [record], tree.commitment, client_secret=CLIENT_SECRET)
    assert exc.value.code == "proof-tree-mismatch"
