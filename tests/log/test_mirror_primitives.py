"""What a mirror of another log needs from :class:`TransparencyLog`: an append that writes
nothing unless the grown tree has an expected root, and checkpoints signed elsewhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from _log_util import ALICE, BOB, LOG_SIGNER, ORIGIN, envelope
from ailedger.errors import ConflictError, ProofInvalid, SignatureInvalid
from ailedger.log import Checkpoint, Secp256k1NoteKey, SignedNote, TransparencyLog

KEY = Secp256k1NoteKey.from_signer(ORIGIN, LOG_SIGNER)


def _source(tmp_path: Path, *ns: int) -> TransparencyLog:
    log = TransparencyLog.open(tmp_path / "source.sqlite", ORIGIN)
    log.append_many([envelope(n) for n in ns])
    return log


def test_an_append_with_the_wrong_root_writes_nothing(tmp_path: Path) -> None:
    with (
        _source(tmp_path, 1, 2, 3) as source,
        TransparencyLog.open(tmp_path / "mirror.sqlite", ORIGIN) as mirror,
    ):
        rows = [mirror.prepare_at(source.get(i).envelope, 1234 + i) for i in range(3)]
        with pytest.raises(ProofInvalid) as refused:
            mirror.append_prepared(rows[::-1], expect_root=source.root())
        assert refused.value.code == "remote-entry-mismatch"
        assert mirror.size() == 0
        assert mirror.append_prepared(rows, expect_root=source.root()) == [0, 1, 2]
        assert mirror.root() == source.root()
        assert mirror.get(2).time_ms == 1236  # the source's append time is kept


def test_a_checkpoint_signed_elsewhere_is_stored_only_if_it_holds(tmp_path: Path) -> None:
    with (
        _source(tmp_path, 1, 2) as source,
        TransparencyLog.open(tmp_path / "mirror.sqlite", ORIGIN) as mirror,
    ):
        note = source.checkpoint(KEY)
        with pytest.raises(ProofInvalid, match="does not match"):
            mirror.import_checkpoint(note, KEY)  # the mirror does not hold that tree yet
        mirror.append_prepared([mirror.prepare_at(source.get(i).envelope, 0) for i in (0, 1)])
        with pytest.raises(SignatureInvalid):
            mirror.import_checkpoint(note, Secp256k1NoteKey(ORIGIN, BOB.address))
        assert mirror.checkpoints() == []
        mirror.import_checkpoint(note, KEY)
        mirror.import_checkpoint(note, KEY)  # idempotent
        assert [n.format() for n in mirror.checkpoints()] == [note.format()]
        assert mirror.verify(KEY).checkpoints == 1
        other = Secp256k1NoteKey.from_signer(ORIGIN, ALICE)
        by_other = SignedNote.sign(Checkpoint.parse(note.text).body(), [other])
        with pytest.raises(ConflictError):
            mirror.import_checkpoint(by_other, other)
