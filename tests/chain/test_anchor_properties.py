"""Property: whatever the sequence of appends, checkpoints and anchors (with or without the
on-chain consistency proof), every receipt that carries an anchor verifies on the chain, and
one that carries none is for an entry no anchor covers. Embedded chain (the conformance of
the two backends is in ``test_anchors.py``)."""

from __future__ import annotations

import itertools
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _log_util import envelope
from _profiles import examples
from ailedger.chain import Chain, LogAnchors, deploy_contracts, open_embedded
from ailedger.chain.anchoring import AnchorBook, anchor_checkpoint, receipt_with_anchor
from ailedger.chain.anchoring import verify_receipt_anchor as verify_on_chain
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import Secp256k1NoteKey
from ailedger.log.receipt import verify_receipt

LOG_KEY = Secp256k1Signer(bytes.fromhex("3c" * 32))
WITNESS = Secp256k1Signer(bytes.fromhex("3d" * 32))
_origins = itertools.count()

# a step: (entries to append, sign a checkpoint?, anchor?, with the consistency proof?)
steps = st.lists(
    st.tuples(st.integers(0, 5), st.booleans(), st.booleans(), st.booleans()),
    min_size=1,
    max_size=8,
)


@pytest.fixture(scope="module")
def anchors(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LogAnchors]:
    chain: Chain = open_embedded(tmp_path_factory.mktemp("chain"))
    chain.fund(LOG_KEY.address, 10**20)
    dep = deploy_contracts(chain, LOG_KEY)
    yield LogAnchors(chain, dep.open(chain, "LogAnchors"))
    chain.close()


@settings(max_examples=examples(15))
@given(steps)
def test_anchored_receipts_always_verify(anchors: LogAnchors, plan: list[tuple[int, ...]]) -> None:
    origin = f"prop.example/log-{next(_origins)}"
    with tempfile.TemporaryDirectory() as d:
        log = TransparencyLog.open(Path(d) / "log.sqlite", origin)
        book = AnchorBook(Path(d) / "anchors.json")
        key = Secp256k1NoteKey.from_signer(origin, LOG_KEY)
        n = 0
        anchored = 0
        for add, sign, anchor, proof in plan:
            log.append_many([envelope(n + i) for i in range(add)])
            n += add
            if n and (sign or anchor):
                log.checkpoint(key)
            if n and anchor and n > anchored:
                result = anchor_checkpoint(
                    log, anchors, LOG_KEY, witness_keys=[WITNESS], with_consistency=proof, book=book
                )
                assert result.record.size == n
                anchored = n
        if not n:
            return
        log.checkpoint(key)  # receipts need a checkpoint covering every entry
        for index in range(n):
            receipt = receipt_with_anchor(log, index, key, book)
            verify_receipt(receipt)
            if receipt.anchor is None:
                assert index >= anchored
                continue
            checked = verify_on_chain(receipt, anchors)
            assert checked.anchor.size > index
        log.close()
