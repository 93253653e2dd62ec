"""The provider's receipt book: counters per job that survive a restart, epochs closed by
size and by age, roots and proofs, one owner per book, one provider/domain/model per book."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from ailedger.errors import ConflictError, InvalidInput, NotFound, StorageError
from ailedger.markets.inference import (
    ReceiptBook,
    market_domain,
    verify_epoch_root,
    verify_inclusion_in_epoch,
    verify_receipt,
)
from markets._helpers import CHAIN_ID, CONSUMER, CONTRACT, OTHER_CONSUMER, PROVIDER

DOMAIN = market_domain(CHAIN_ID, CONTRACT)
MODEL = b"\x04" * 32
JOB_A, JOB_B = b"\xaa" * 32, b"\xbb" * 32


def _book(path: Path, **kwargs: object) -> ReceiptBook:
    options: dict[str, object] = {"epoch_size": 4, "epoch_seconds": 3600.0, "price": 5}
    options.update(kwargs)
    return ReceiptBook(
        path,
        signer=PROVIDER,
        domain=DOMAIN,
        model_digest=MODEL,
        **options,  # type: ignore[arg-type]
    )


def _issue(book: ReceiptBook, job: bytes, n: int = 1) -> list[int]:
    return [book.issue(job, CONSUMER, b"\x01" * 32, b"\x02" * 32).receipt.counter for _ in range(n)]


def test_counters_increase_per_job_and_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "book.sqlite"
    with _book(path) as book:
        assert _issue(book, JOB_A, 3) == [1, 2, 3]
        assert _issue(book, JOB_B, 2) == [1, 2]
        epoch, position = book.epoch, book.position
    with _book(path) as book:
        assert (book.epoch, book.position) == (epoch, position)
        assert _issue(book, JOB_A, 2) == [4, 5]
        assert _issue(book, JOB_B) == [3]
        assert book.stats()["receipts"] == 8


def test_epochs_close_by_size_and_every_receipt_is_proven(tmp_path: Path) -> None:
    with _book(tmp_path / "book.sqlite") as book:
        issued = [book.issue(JOB_A, CONSUMER, bytes([i]) * 32, b"\x02" * 32) for i in range(10)]
        assert [(s.receipt.epoch, s.receipt.position) for s in issued[:5]] == [
            (0, 0),
            (0, 1),
            (0, 2),
            (0, 3),
            (1, 0),
        ]
        assert book.epoch == 2
        assert book.position == 2
        for signed in issued[:8]:
            served, closed, proof = book.proof(JOB_A, signed.receipt.counter)
            assert served == signed
            verify_receipt(served, domain=DOMAIN, provider=PROVIDER.address, model_digest=MODEL)
            root = verify_epoch_root(closed.signed, domain=DOMAIN, provider=PROVIDER.address)
            assert root.size == 4
            verify_inclusion_in_epoch(served, root, proof)
        with pytest.raises(NotFound, match="not closed"):
            book.proof(JOB_A, issued[9].receipt.counter)
        book.close_epoch()
        _, closed, proof = book.proof(JOB_A, issued[9].receipt.counter)
        assert closed.signed.epoch_root.size == 2
        assert book.close_epoch() is None  # nothing open: no empty epoch


def test_proofs_are_rebuilt_after_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "book.sqlite"
    with _book(path) as book:
        issued = [book.issue(JOB_A, CONSUMER, b"\x01" * 32, b"\x02" * 32) for _ in range(4)]
    with _book(path) as book:
        signed, closed, proof = book.proof(JOB_A, 3)
        assert signed == issued[2]
        verify_inclusion_in_epoch(signed, closed.signed.epoch_root, proof)


def test_an_epoch_closes_by_age(tmp_path: Path) -> None:
    with _book(tmp_path / "book.sqlite", epoch_seconds=0.001) as book:
        book.issue(JOB_A, CONSUMER, b"\x01" * 32, b"\x02" * 32)
        time.sleep(0.01)  # only ever waits longer than the epoch's age limit
        closed = book.tick()
        assert closed is not None
        assert closed.signed.epoch_root.size == 1
        assert book.tick() is None


def test_a_job_belongs_to_its_first_consumer(tmp_path: Path) -> None:
    with _book(tmp_path / "book.sqlite") as book:
        _issue(book, JOB_A)
        with pytest.raises(ConflictError, match="another consumer"):
            book.issue(JOB_A, OTHER_CONSUMER, b"\x01" * 32, b"\x02" * 32)
        assert _issue(book, JOB_A) == [2]  # the refusal consumed nothing


def test_one_process_owns_a_book(tmp_path: Path) -> None:
    path = tmp_path / "book.sqlite"
    with _book(path), pytest.raises(ConflictError, match="in use"):
        _book(path)


def test_a_book_holds_one_provider_domain_and_model(tmp_path: Path) -> None:
    path = tmp_path / "book.sqlite"
    with _book(path) as book:
        _issue(book, JOB_A)
    with pytest.raises(ConflictError, match="another model"):
        ReceiptBook(path, signer=PROVIDER, domain=DOMAIN, model_digest=b"\x05" * 32, price=5)
    other = market_domain(CHAIN_ID + 1, CONTRACT)
    with pytest.raises(ConflictError, match="another domain"):
        ReceiptBook(path, signer=PROVIDER, domain=other, model_digest=MODEL, price=5)


def test_the_epoch_hook_sees_every_closed_root(tmp_path: Path) -> None:
    seen: list[int] = []
    with _book(
        tmp_path / "book.sqlite", on_epoch_closed=lambda c: seen.append(c.signed.epoch_root.epoch)
    ) as book:
        _issue(book, JOB_A, 9)
        book.close_epoch()
        assert seen == [0, 1, 2]
        assert [book.closed(e).signed.epoch_root.size for e in seen] == [4, 4, 1]


def test_a_price_beyond_uint256_is_refused_at_start(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="uint256"):
        _book(tmp_path / "book.sqlite", price=1 << 256)
    with pytest.raises(InvalidInput, match="epoch"):
        _book(tmp_path / "book.sqlite", epoch_size=0)


class _FullAt:
    """A connection whose writes matching ``needle`` fail as on a full disk (once armed)."""

    def __init__(self, db: sqlite3.Connection, needle: str) -> None:
        self.db, self.needle, self.armed = db, needle, True

    def execute(self, sql: str, *args: object) -> sqlite3.Cursor:
        if self.armed and self.needle in sql:
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


def test_a_full_disk_at_an_epoch_close_keeps_the_call_and_the_book_going(tmp_path: Path) -> None:
    with _book(tmp_path / "book.sqlite", epoch_size=2) as book:
        real = book._db
        full = _FullAt(real, "INSERT INTO epochs")
        book._db = full  # type: ignore[assignment]
        # the call that fills the epoch is committed: its receipt is returned, not lost
        assert _issue(book, JOB_A, 2) == [1, 2]
        # closing by hand or by the ticker reports the fault as a StorageError (exit 11, 503)
        with pytest.raises(StorageError, match="disk is full"):
            book.close_epoch()
        assert book.stats() == {"receipts": 2, "epoch": 0, "position": 2}
        full.armed = False  # space again: the next call closes the full epoch first
        assert _issue(book, JOB_A) == [3]
        assert book.closed(0).signed.epoch_root.size == 2
        book._db = real
        signed, closed, proof = book.proof(JOB_A, 2)
        verify_inclusion_in_epoch(signed, closed.signed.epoch_root, proof)


def test_a_store_path_under_a_file_is_invalid_input(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InvalidInput, match="cannot make its directory"):
        _book(tmp_path / "a-file" / "book.sqlite")  # was a bare FileExistsError
