"""The receipt book as a state machine: calls on a few jobs, epochs closed by size or by hand,
the process restarted at any point. After every step: each job's counters are 1..n, every
issued receipt is served unchanged, and every receipt of a closed epoch is proven in its
signed root at its own position."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from _profiles import stateful_examples
from ailedger.markets.inference import (
    ReceiptBook,
    SignedReceipt,
    market_domain,
    verify_epoch_root,
    verify_inclusion_in_epoch,
)
from markets._helpers import CHAIN_ID, CONSUMER, CONTRACT, PROVIDER

DOMAIN = market_domain(CHAIN_ID, CONTRACT)
JOBS = [bytes([i]) * 32 for i in (1, 2, 3)]


class BookMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="book-"))
        self.book = self._open()
        self.issued: dict[tuple[bytes, int], SignedReceipt] = {}

    def _open(self) -> ReceiptBook:
        return ReceiptBook(
            self.dir / "book.sqlite",
            signer=PROVIDER,
            domain=DOMAIN,
            model_digest=b"\x04" * 32,
            price=7,
            epoch_size=5,
            epoch_seconds=3600.0,
        )

    @rule(job=st.sampled_from(JOBS), n=st.integers(1, 4))
    def call(self, job: bytes, n: int) -> None:
        for _ in range(n):
            signed = self.book.issue(job, CONSUMER, b"\x01" * 32, b"\x02" * 32)
            key = (job, signed.receipt.counter)
            assert key not in self.issued  # a counter is never handed out twice
            self.issued[key] = signed

    @rule()
    def close_epoch(self) -> None:
        self.book.close_epoch()

    @rule()
    def restart(self) -> None:
        self.book.close()
        self.book = self._open()

    @invariant()
    def counters_run_from_one_without_gaps(self) -> None:
        for job in JOBS:
            held = sorted(c for j, c in self.issued if j == job)
            assert held == list(range(1, len(held) + 1))

    @invariant()
    def receipts_are_served_and_proven(self) -> None:
        for (job, counter), signed in self.issued.items():
            assert self.book.receipt(job, counter) == signed
            if signed.receipt.epoch < self.book.epoch:
                _, closed, proof = self.book.proof(job, counter)
                root = verify_epoch_root(closed.signed, domain=DOMAIN, provider=PROVIDER.address)
                verify_inclusion_in_epoch(signed, root, proof)
            else:
                assert signed.receipt.position < self.book.position

    def teardown(self) -> None:
        self.book.close()
        shutil.rmtree(self.dir, ignore_errors=True)


BookMachine.TestCase.settings = settings(
    max_examples=stateful_examples(12), stateful_step_count=25, deadline=None
)
test_receipt_book = BookMachine.TestCase
