"""The labeling market's formats: gold records and their salted RFC 9162 tree, label files,
commitments (bound to chain, market, task and labeler), the workspace's task files, and the
accuracy-weighted majority that turns labels into a dataset with per-record provenance."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailedger.errors import InvalidInput, NotFound, ProofInvalid
from ailedger.markets.labeling import (
    ABSTAIN,
    GoldSet,
    aggregate,
    gold_accuracy,
    gold_record,
    labels_commitment,
    parse_gold_records,
)
from ailedger.markets.labeling_flow import TaskFiles, labels_from_json
from ailedger.merkle import inclusion_proof, leaf_hash, root, verify_inclusion

A, B, C = ("0x" + f"{i:040x}" for i in (1, 2, 3))
MARKET = "0x" + "ab" * 20


@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 254)), min_size=1))
def test_gold_records_round_trip(items: list[tuple[int, int]]) -> None:
    records = b"".join(gold_record(i, label) for i, label in items)
    assert len(records) == 5 * len(items)
    assert parse_gold_records(records) == items


def test_gold_record_refuses_out_of_range() -> None:
    for item, label in ((-1, 0), (2**32, 0), (0, ABSTAIN), (0, -1)):
        with pytest.raises(InvalidInput):
            gold_record(item, label)
    with pytest.raises(InvalidInput):
        parse_gold_records(b"\x00" * 6)


@given(st.lists(st.tuples(st.integers(0, 999), st.integers(0, 9)), min_size=1, max_size=40))
def test_gold_set_entries_are_salted_leaves_of_its_root(items: list[tuple[int, int]]) -> None:
    gold = GoldSet.derive(items, b"a secret of 16 bytes")
    entries = gold.entries()
    assert entries == [
        s + gold_record(i, lab) for s, (i, lab) in zip(gold.salts, items, strict=True)
    ]
    assert gold.root() == root(entries)
    gold.verify(gold.root())
    for i, proof in enumerate(gold.proofs()):
        assert proof == inclusion_proof(entries, i)
        verify_inclusion(leaf_hash(entries[i]), i, len(entries), proof, gold.root())


def test_a_changed_gold_label_or_salt_does_not_verify() -> None:
    gold = GoldSet.derive([(3, 1), (9, 4), (12, 7)], b"a secret of 16 bytes")
    other = GoldSet(((3, 1), (9, 5), (12, 7)), gold.salts)
    with pytest.raises(ProofInvalid):
        other.verify(gold.root())
    resalted = GoldSet(gold.items, (gold.salts[0], b"\x01" * 32, gold.salts[2]))
    with pytest.raises(ProofInvalid):
        resalted.verify(gold.root())
    assert GoldSet.derive(gold.items, b"another secret, 16+").root() != gold.root()
    with pytest.raises(InvalidInput):
        GoldSet.derive([(1, 1)], b"short")
    with pytest.raises(InvalidInput):
        GoldSet(((1, 1),), ())


def test_commitments_bind_chain_market_task_labeler_labels_and_salt() -> None:
    labels, salt = bytes([1, 2, 3]), b"\x07" * 32
    base = labels_commitment(1, MARKET, 5, A, labels, salt)
    assert len(base) == 32
    variants = {
        labels_commitment(2, MARKET, 5, A, labels, salt),
        labels_commitment(1, "0x" + "cd" * 20, 5, A, labels, salt),
        labels_commitment(1, MARKET, 6, A, labels, salt),
        labels_commitment(1, MARKET, 5, B, labels, salt),
        labels_commitment(1, MARKET, 5, A, bytes([1, 2, 4]), salt),
        labels_commitment(1, MARKET, 5, A, labels, b"\x08" * 32),
    }
    assert base not in variants
    assert len(variants) == 6
    with pytest.raises(InvalidInput):
        labels_commitment(1, MARKET, 5, A, labels, b"\x07" * 31)


def test_accuracy_counts_the_gold_items_given() -> None:
    assert gold_accuracy(bytes([1, 2, 3, 4]), [(0, 1), (2, 9), (3, 4)]) == 2


def test_aggregate_weights_votes_by_accuracy_and_names_who_gave_the_label() -> None:
    labels = {A: bytes([1, 1, ABSTAIN]), B: bytes([2, 1, ABSTAIN]), C: bytes([2, 3, ABSTAIN])}
    out = aggregate(labels, {A: 0.6, B: 0.5, C: 0.4}, 3)
    assert [r.label for r in out] == [2, 1, ABSTAIN]  # item 0: B + C (0.9) beat A (0.6)
    assert (out[0].labelers, out[0].weight) == ((B, C), pytest.approx(0.9))
    assert (out[1].labelers, out[1].weight) == ((A, B), pytest.approx(1.1))
    assert out[2].labelers == ()


def test_aggregate_majority_ties_and_non_voters() -> None:
    labels = {A: bytes([1, 5]), B: bytes([2, 5]), C: bytes([2, 6])}
    out = aggregate(labels, {A: 0.9, B: 0.5, C: 0.3}, 2)
    assert (out[0].label, out[0].labelers) == (1, (A,))  # 0.9 beats 0.5 + 0.3
    assert (out[1].label, out[1].labelers) == (5, (A, B))
    tie = aggregate({A: bytes([3]), B: bytes([4])}, {A: 0.5, B: 0.5}, 1)
    assert (tie[0].label, tie[0].labelers) == (3, (A,))  # a tie goes to the smaller label
    # a labeler without accuracy (slashed) does not vote; nobody voting abstains
    none = aggregate({A: bytes([3]), B: bytes([4])}, {B: 0.0}, 1)
    assert (none[0].label, none[0].labelers, none[0].weight) == (ABSTAIN, (), 0.0)


def test_label_files() -> None:
    assert labels_from_json([0, 9, None, 254], 4) == bytes([0, 9, ABSTAIN, 254])
    for bad in ([0, 1], [0, 1, 2, 255], [0, 1, 2, -1], [0, 1, 2, True], [0, 1, 2, "3"], {}):
        with pytest.raises(InvalidInput):
            labels_from_json(bad, 4)


def test_task_files_keep_secrets_private(tmp_path: Path) -> None:
    files = TaskFiles.of(tmp_path, 31337, MARKET, 4)
    with pytest.raises(NotFound):
        files.load_gold()
    with pytest.raises(NotFound):
        files.load_commit(A)
    gold = GoldSet.derive([(1, 2), (3, 4)], b"a secret of 16 bytes")
    path = files.save_gold(gold)
    assert files.load_gold() == gold
    assert os.stat(path).st_mode & 0o777 == 0o600
    files.save_commit(A, b"\x01\x02", b"\x09" * 32)
    assert files.load_commit(A) == (b"\x01\x02", b"\x09" * 32)
    assert TaskFiles.of(tmp_path, 31337, MARKET, 5).directory == files.directory
    with pytest.raises(NotFound):
        TaskFiles.of(tmp_path, 31337, MARKET, 5).load_gold()
