"""RFC 9162 list functions, proof verification and proof documents.

The vectors are the RFC 6962 test tree used by certificate-transparency-go, Trillian and
transparency-dev/merkle (``proof/verify_test.go``): eight leaves, the tree heads of sizes 1..8
and the published inclusion and consistency paths (their 1-based leaf numbers are 0-based
indices here).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailedger import merkle
from ailedger.errors import FormatError, InvalidInput, ProofInvalid
from ailedger.merkle import (
    EMPTY_ROOT,
    ConsistencyProof,
    InclusionProof,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
ROOTS = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]


def _hashes(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(h) for h in hexes]


# (leaf index, tree size, path)
INCLUSION_VECTORS = [
    (0, 1, []),
    (
        0,
        8,
        _hashes(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        5,
        8,
        _hashes(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (2, 3, _hashes("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        1,
        5,
        _hashes(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
]

# (old size, new size, proof)
CONSISTENCY_VECTORS = [
    (1, 1, []),
    (
        1,
        8,
        _hashes(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        6,
        8,
        _hashes(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (
        2,
        5,
        _hashes(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
    (
        6,
        7,
        _hashes(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
]

SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


# --- RFC vectors --------------------------------------------------------------------------------


def test_empty_tree_head_is_sha256_of_nothing() -> None:
    assert root([]) == EMPTY_ROOT == ROOTS[0]
    assert merkle.root_from_leaf_hashes([]) == EMPTY_ROOT


@pytest.mark.parametrize("size", range(9))
def test_tree_heads_match_rfc_vectors(size: int) -> None:
    assert root(LEAVES[:size]) == ROOTS[size]
    assert merkle.root_from_leaf_hashes(merkle.leaf_hashes(LEAVES[:size])) == ROOTS[size]


def test_single_leaf_tree_head_is_its_leaf_hash() -> None:
    assert leaf_hash(b"") == ROOTS[1]


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_VECTORS)
def test_inclusion_paths_match_rfc_vectors(index: int, size: int, path: list[bytes]) -> None:
    assert inclusion_proof(LEAVES[:size], index) == path
    verify_inclusion(leaf_hash(LEAVES[index]), index, size, path, ROOTS[size])


@pytest.mark.parametrize(("old", "new", "path"), CONSISTENCY_VECTORS)
def test_consistency_paths_match_rfc_vectors(old: int, new: int, path: list[bytes]) -> None:
    assert consistency_proof(LEAVES[:new], old) == path
    verify_consistency(old, new, ROOTS[old], ROOTS[new], path)


def _inclusion_probes(
    index: int, size: int, path: list[bytes], leaf: bytes, head: bytes
) -> list[tuple[int, int, bytes, list[bytes], bytes]]:
    # The corruptions of transparency-dev/merkle's corruptInclusionProof.
    probes = [
        (index - 1, size, leaf, path, head),
        (index + 1, size, leaf, path, head),
        (index ^ 2, size, leaf, path, head),
        (index, size * 2, leaf, path, head),
        (index, size // 2, leaf, path, head),
        (index, size, b"WrongLeaf", path, head),
        (index, size, leaf, path, EMPTY_ROOT),
        (index, size, leaf, path, SOME_HASH),
        (index, size, leaf, [*path, b""], head),
        (index, size, leaf, [*path, head], head),
        (index, size, leaf, [b"", *path], head),
        (index, size, leaf, [head, *path], head),
    ]
    for i in range(len(path)):
        flipped = list(path)
        flipped[i] = bytes([flipped[i][0] ^ 8]) + flipped[i][1:]
        probes.append((index, size, leaf, flipped, head))
    if path:
        probes.append((index, size, leaf, path[:-1], head))
    if len(path) > 1:
        probes.append((index, size, leaf, [path[0], SOME_HASH, *path[1:]], head))
    return probes


@pytest.mark.parametrize(("index", "size", "path"), INCLUSION_VECTORS)
def test_corrupted_inclusion_vectors_fail(index: int, size: int, path: list[bytes]) -> None:
    leaf = leaf_hash(LEAVES[index])
    for probe in _inclusion_probes(index, size, path, leaf, ROOTS[size]):
        with pytest.raises(ProofInvalid):
            verify_inclusion(probe[2], probe[0], probe[1], probe[3], probe[4])


@pytest.mark.parametrize(("old", "new", "path"), [v for v in CONSISTENCY_VECTORS if v[2]])
def test_corrupted_consistency_vectors_fail(old: int, new: int, path: list[bytes]) -> None:
    # The corruptions of transparency-dev/merkle's corruptConsistencyProof.
    r1, r2 = ROOTS[old], ROOTS[new]
    probes = [
        (old - 1, new, r1, r2, path),
        (old + 1, new, r1, r2, path),
        (old ^ 2, new, r1, r2, path),
        (old, new * 2, r1, r2, path),
        (old, new // 2, r1, r2, path),
        (old, new, b"WrongRoot", r2, path),
        (old, new, r1, b"WrongRoot", path),
        (old, new, SOME_HASH, r2, path),
        (old, new, r2, r1, path),
        (old, new, r1, r2, []),
        (old, new, r1, r2, [*path, b""]),
        (old, new, r1, r2, [*path, r1]),
        (old, new, r1, r2, [*path, r2]),
        (old, new, r1, r2, [b"", *path]),
        (old, new, r1, r2, [r1, *path]),
        (old, new, r1, r2, [r2, *path]),
        (old, new, r1, r2, [path[0], *path]),
        (old, new, r1, r2, path[:-1]),
    ]
    for i in range(len(path)):
        flipped = list(path)
        flipped[i] = bytes([flipped[i][0] ^ 16]) + flipped[i][1:]
        probes.append((old, new, r1, r2, flipped))
    for probe in probes:
        with pytest.raises(ProofInvalid):
            verify_consistency(*probe)


# --- verification edge cases ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof"),
    [
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, []),
        (0, 5, EMPTY_ROOT, ROOTS[5], []),
        (3, 3, ROOTS[3], ROOTS[3], []),
    ],
)
def test_trivial_consistency_holds(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    verify_consistency(old, new, old_root, new_root, proof)


@pytest.mark.parametrize(
    ("old", "new", "old_root", "new_root", "proof"),
    [
        (0, 0, EMPTY_ROOT, SOME_HASH, []),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT]),
        (0, 5, SOME_HASH, ROOTS[5], []),
        (0, 5, EMPTY_ROOT, ROOTS[5], [EMPTY_ROOT]),
        (3, 3, ROOTS[3], ROOTS[4], []),
        (3, 3, ROOTS[3], ROOTS[3], [ROOTS[3]]),
        (2, 1, ROOTS[2], ROOTS[1], []),
        (1, 2, ROOTS[1], ROOTS[2], []),
        (1, 2, ROOTS[1][:31], ROOTS[2], [leaf_hash(LEAVES[1])]),
        (-1, 2, ROOTS[1], ROOTS[2], [leaf_hash(LEAVES[1])]),
    ],
)
def test_bad_consistency_fails(
    old: int, new: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> None:
    with pytest.raises(ProofInvalid):
        verify_consistency(old, new, old_root, new_root, proof)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 1), (-1, 1), (2, 1)])
def test_inclusion_outside_the_tree_fails(index: int, size: int) -> None:
    with pytest.raises(ProofInvalid):
        verify_inclusion(ROOTS[1], index, size, [], ROOTS[1])


def test_list_functions_reject_out_of_range_arguments() -> None:
    with pytest.raises(InvalidInput):
        inclusion_proof(LEAVES, 8)
    with pytest.raises(InvalidInput):
        inclusion_proof(LEAVES, -1)
    with pytest.raises(InvalidInput):
        consistency_proof(LEAVES, 9)
    assert consistency_proof(LEAVES, 0) == consistency_proof(LEAVES, 8) == []


# --- properties ---------------------------------------------------------------------------------

# Distinct entries: with two equal leaves, swapping their indices legitimately verifies.
trees = st.lists(st.binary(max_size=12), min_size=1, max_size=40, unique=True)


@given(trees)
def test_every_inclusion_proof_verifies(entries: list[bytes]) -> None:
    head = root(entries)
    for index, entry in enumerate(entries):
        verify_inclusion(
            leaf_hash(entry), index, len(entries), inclusion_proof(entries, index), head
        )


@given(trees)
def test_every_consistency_proof_verifies(entries: list[bytes]) -> None:
    n = len(entries)
    for old in range(n + 1):
        verify_consistency(
            old, n, root(entries[:old]), root(entries), consistency_proof(entries, old)
        )


def _flip(value: bytes, position: int, mask: int) -> bytes:
    i = position % len(value)
    return value[:i] + bytes([value[i] ^ mask]) + value[i + 1 :]


@given(trees, st.data())
def test_any_tampering_of_an_inclusion_proof_fails(
    entries: list[bytes], data: st.DataObject
) -> None:
    n = len(entries)
    index = data.draw(st.integers(0, n - 1))
    leaf, path, head = leaf_hash(entries[index]), inclusion_proof(entries, index), root(entries)
    position = data.draw(st.integers(0, 31))
    mask = data.draw(st.integers(1, 255))
    with pytest.raises(ProofInvalid):
        verify_inclusion(_flip(leaf, position, mask), index, n, path, head)
    with pytest.raises(ProofInvalid):
        verify_inclusion(leaf, index, n, path, _flip(head, position, mask))
    if path:
        k = data.draw(st.integers(0, len(path) - 1))
        bad = [*path[:k], _flip(path[k], position, mask), *path[k + 1 :]]
        with pytest.raises(ProofInvalid):
            verify_inclusion(leaf, index, n, bad, head)
    other_index = data.draw(st.integers(-1, n).filter(lambda i: i != index))
    with pytest.raises(ProofInvalid):
        verify_inclusion(leaf, other_index, n, path, head)
    # A size is authenticated by the tree head of that size (RFC 9162 roots do not encode
    # the size): the proof fails against the head of any other size.
    other_size = data.draw(st.integers(0, 2 * n + 1).filter(lambda s: s != n))
    other_head = root(entries[:other_size]) if other_size <= n else SOME_HASH
    with pytest.raises(ProofInvalid):
        verify_inclusion(leaf, index, other_size, path, other_head)


@given(trees, st.data())
def test_any_tampering_of_a_consistency_proof_fails(
    entries: list[bytes], data: st.DataObject
) -> None:
    n = len(entries)
    old = data.draw(st.integers(1, n))
    new = data.draw(st.integers(old, n))
    path = consistency_proof(entries[:new], old)
    r1, r2 = root(entries[:old]), root(entries[:new])
    verify_consistency(old, new, r1, r2, path)
    position = data.draw(st.integers(0, 31))
    mask = data.draw(st.integers(1, 255))
    with pytest.raises(ProofInvalid):
        verify_consistency(old, new, _flip(r1, position, mask), r2, path)
    with pytest.raises(ProofInvalid):
        verify_consistency(old, new, r1, _flip(r2, position, mask), path)
    if path:
        k = data.draw(st.integers(0, len(path) - 1))
        bad = [*path[:k], _flip(path[k], position, mask), *path[k + 1 :]]
        with pytest.raises(ProofInvalid):
            verify_consistency(old, new, r1, r2, bad)
    others = [s for s in range(1, n + 1) if s not in (old, new)]
    if not others:
        return
    other = data.draw(st.sampled_from(others))
    if other < new:
        with pytest.raises(ProofInvalid):
            verify_consistency(other, new, root(entries[:other]), r2, path)
    if other > old:
        with pytest.raises(ProofInvalid):
            verify_consistency(old, other, r1, root(entries[:other]), path)


# --- proof documents ----------------------------------------------------------------------------


def _inclusion_doc(entries: list[bytes], index: int) -> InclusionProof:
    return InclusionProof(
        tree_size=len(entries),
        leaf_index=index,
        leaf_hash=leaf_hash(entries[index]),
        hashes=tuple(inclusion_proof(entries, index)),
        root=root(entries),
    )


@given(trees, st.data())
def test_proof_documents_round_trip_through_json(entries: list[bytes], data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(entries) - 1))
    proof = _inclusion_doc(entries, index)
    again = InclusionProof.from_dict(json.loads(json.dumps(proof.to_dict())))
    assert again == proof
    again.verify(root(entries))
    old = data.draw(st.integers(0, len(entries)))
    cproof = ConsistencyProof(
        old_size=old,
        new_size=len(entries),
        old_root=root(entries[:old]),
        new_root=root(entries),
        hashes=tuple(consistency_proof(entries, old)),
    )
    cagain = ConsistencyProof.from_dict(json.loads(json.dumps(cproof.to_dict())))
    assert cagain == cproof
    cagain.verify()


def test_inclusion_document_layout_is_stable() -> None:
    doc = _inclusion_doc(LEAVES, 5).to_dict()
    assert doc == {
        "type": merkle.INCLUSION_PROOF_TYPE,
        "algorithm": merkle.TREE_ALGORITHM,
        "tree_size": 8,
        "leaf_index": 5,
        "leaf_hash": leaf_hash(LEAVES[5]).hex(),
        "hashes": [h.hex() for h in INCLUSION_VECTORS[2][2]],
        "root": ROOTS[8].hex(),
    }


def test_document_for_another_root_fails() -> None:
    proof = _inclusion_doc(LEAVES, 5)
    with pytest.raises(ProofInvalid, match="expected"):
        proof.verify(ROOTS[7])


def _mutations(doc: dict[str, Any]) -> list[dict[str, Any]]:
    hex_keys = [k for k, v in doc.items() if isinstance(v, str) and k not in ("type", "algorithm")]
    int_keys = [k for k, v in doc.items() if isinstance(v, int)]
    out: list[dict[str, Any]] = [
        {**doc, "type": "https://example.com/other-proof/v1"},
        {**doc, "type": None},
        {**doc, "algorithm": "rfc9162-sha512"},
        {**doc, "hashes": "00" * 32},
        {**doc, "hashes": [1]},
        {**doc, "hashes": ["zz" * 32]},
        {**doc, "hashes": ["00" * 31]},
    ]
    for key in hex_keys:
        out += [
            {**doc, key: 5},
            {**doc, key: "xy" * 32},
            {**doc, key: "00" * 33},
            {**doc, key: doc[key][:-2]},
            {k: v for k, v in doc.items() if k != key},
        ]
    for key in int_keys:
        out += [
            {**doc, key: -1},
            {**doc, key: "3"},
            {**doc, key: 2.0},
            {**doc, key: True},
            {k: v for k, v in doc.items() if k != key},
        ]
    return out


@pytest.mark.parametrize("kind", ["inclusion", "consistency"])
def test_from_dict_rejects_malformed_documents(kind: str) -> None:
    proof: InclusionProof | ConsistencyProof
    if kind == "inclusion":
        proof = _inclusion_doc(LEAVES, 5)
    else:
        proof = ConsistencyProof(6, 8, ROOTS[6], ROOTS[8], tuple(CONSISTENCY_VECTORS[2][2]))
    cls = type(proof)
    doc = proof.to_dict()
    assert cls.from_dict(doc) == proof
    for bad in _mutations(doc):
        with pytest.raises(FormatError):
            cls.from_dict(bad)
    other = ConsistencyProof if kind == "inclusion" else InclusionProof
    with pytest.raises(FormatError):
        other.from_dict(doc)


def test_hex_fields_accept_a_0x_prefix() -> None:
    doc = _inclusion_doc(LEAVES, 5).to_dict()
    doc["root"] = "0x" + doc["root"]
    InclusionProof.from_dict(doc).verify(ROOTS[8])
