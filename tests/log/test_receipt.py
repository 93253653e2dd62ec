"""Receipts: build from a log, verify offline, reject tampering and receipts of other logs."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _log_util import LOG_SIGNER, ORIGIN, WITNESS_SIGNER, envelope
from ailedger.errors import FormatError, NotFound, ProofInvalid, SignatureInvalid
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import TransparencyLog
from ailedger.log.checkpoint import Secp256k1Cosigner, Secp256k1NoteKey, vkey
from ailedger.log.receipt import RECEIPT_MEDIA_TYPE, Receipt, TlogProof, sha256_file, verify_receipt

LOG_KEY = Secp256k1NoteKey.from_signer(ORIGIN, LOG_SIGNER)
WITNESS = Secp256k1Cosigner.from_signer("witness.example/w1", WITNESS_SIGNER)
ARTIFACT = b"model weights, or any bytes"


@pytest.fixture
def log(tmp_path: Path) -> TransparencyLog:
    log = TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN)
    digest = hashlib.sha256(ARTIFACT).hexdigest()
    log.append_many([envelope(i, digest=digest if i == 6 else None) for i in range(11)])
    note = log.checkpoint(LOG_KEY)
    log.add_cosignature(note.add([WITNESS]), WITNESS)
    return log


def test_receipt_verifies_offline(log: TransparencyLog, tmp_path: Path) -> None:
    receipt = log.receipt(6, LOG_KEY)
    path = receipt.write(tmp_path / "r.json")
    doc = json.loads(path.read_text())
    assert doc["mediaType"] == RECEIPT_MEDIA_TYPE
    assert doc["proof"].startswith("c2sp.org/tlog-proof@v1\nindex 6\n")
    assert doc["anchor"] is None
    artifact = tmp_path / "artifact.bin"
    artifact.write_bytes(ARTIFACT)
    result = verify_receipt(
        Receipt.load(path),
        log_key=Secp256k1NoteKey(ORIGIN, LOG_SIGNER.address),
        witnesses=[WITNESS],
        witness_threshold=1,
        artifact_sha256=sha256_file(artifact),
    )
    assert (result.index, result.tree_size, result.root) == (6, 11, log.root())
    assert result.log_key_trusted
    assert result.witnesses == (WITNESS.name,)
    assert result.to_dict()["ok"] is True


def test_untrusted_embedded_key_is_reported(log: TransparencyLog) -> None:
    result = verify_receipt(log.receipt(0, LOG_KEY))
    assert not result.log_key_trusted
    assert result.log_key == vkey(LOG_KEY)


def test_tlog_proof_text_round_trips(log: TransparencyLog) -> None:
    proof = log.receipt(3, LOG_KEY).proof
    assert TlogProof.parse(proof.format()) == proof
    with_extra = TlogProof(proof.index, proof.hashes, proof.checkpoint, b"extra data")
    assert TlogProof.parse(with_extra.format()) == with_extra


def _doc(log: TransparencyLog, index: int = 6) -> dict[str, Any]:
    return log.receipt(index, LOG_KEY).to_dict()


def test_wrong_artifact_fails(log: TransparencyLog) -> None:
    with pytest.raises(ProofInvalid, match="not a subject"):
        verify_receipt(log.receipt(6, LOG_KEY), artifact_sha256="00" * 32)


def test_receipt_from_another_log_fails(log: TransparencyLog, tmp_path: Path) -> None:
    other_key = Secp256k1NoteKey.from_signer("other.example/log", Secp256k1Signer(b"\x66" * 32))
    with TransparencyLog.open(tmp_path / "other.sqlite", "other.example/log") as other:
        other.append(envelope(0))
        other.checkpoint(other_key)
        foreign = other.receipt(0, other_key)
    with pytest.raises(SignatureInvalid, match="another log"):
        verify_receipt(foreign, log_key=LOG_KEY)


def test_receipt_signed_by_another_key_fails(log: TransparencyLog) -> None:
    impostor = Secp256k1NoteKey.from_signer(ORIGIN, Secp256k1Signer(b"\x77" * 32))
    doc = _doc(log)
    head, _, note = doc["proof"].partition("\n\n")
    text = note.split("\n\n")[0] + "\n"
    from ailedger.log.checkpoint import SignedNote

    forged = SignedNote.sign(text, [impostor])
    doc["proof"] = head + "\n\n" + forged.format()
    doc["log"]["key"] = vkey(impostor)
    with pytest.raises(SignatureInvalid, match="another log"):
        verify_receipt(Receipt.from_dict(doc), log_key=LOG_KEY)


def test_tampered_envelope_fails(log: TransparencyLog) -> None:
    doc = _doc(log)
    payload = json.loads(base64.b64decode(doc["envelope"]["payload"]))
    payload["predicate"]["n"] = 1000
    doc["envelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    with pytest.raises(SignatureInvalid, match="receipt envelope"):
        verify_receipt(Receipt.from_dict(doc))


def test_wrong_index_or_proof_fails(log: TransparencyLog) -> None:
    doc = _doc(log)
    doc["proof"] = doc["proof"].replace("index 6\n", "index 7\n")
    with pytest.raises(ProofInvalid):
        verify_receipt(Receipt.from_dict(doc))
    doc = _doc(log)
    lines = doc["proof"].split("\n")
    lines[2] = base64.b64encode(b"\x00" * 32).decode()
    doc["proof"] = "\n".join(lines)
    with pytest.raises(ProofInvalid):
        verify_receipt(Receipt.from_dict(doc))


def test_tampered_checkpoint_fails(log: TransparencyLog) -> None:
    doc = _doc(log)
    doc["proof"] = doc["proof"].replace(f"{ORIGIN}\n11\n", f"{ORIGIN}\n12\n")
    with pytest.raises((SignatureInvalid, ProofInvalid)):
        verify_receipt(Receipt.from_dict(doc))


def test_missing_witness_fails_threshold(log: TransparencyLog) -> None:
    other = Secp256k1Cosigner.from_signer("witness.example/w2", Secp256k1Signer(b"\x88" * 32))
    with pytest.raises(SignatureInvalid, match="witness"):
        verify_receipt(log.receipt(6, LOG_KEY), witnesses=[other], witness_threshold=1)


def test_entry_not_covered_by_checkpoint(log: TransparencyLog) -> None:
    log.append(envelope(99))
    with pytest.raises(NotFound, match="not covered"):
        log.receipt(11, LOG_KEY)


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("envelope"),
        lambda d: d.update(mediaType="x"),
        lambda d: d.update(proof="c2sp.org/tlog-proof@v1\nindex x\n\n"),
        lambda d: d.update(proof="nonsense"),
        lambda d: d.update(log={"origin": 1}),
    ],
)
def test_malformed_receipts_are_format_errors(log: TransparencyLog, mutate: Any) -> None:
    doc = _doc(log)
    mutate(doc)
    with pytest.raises(FormatError):
        Receipt.from_dict(doc)


def test_truncated_receipt_file(log: TransparencyLog) -> None:
    data = log.receipt(6, LOG_KEY).to_json()
    with pytest.raises(FormatError, match="truncated"):
        Receipt.from_json(data[: len(data) // 2])


@given(st.text(max_size=300))
def test_tlog_proof_parser_never_crashes(text: str) -> None:
    with contextlib.suppress(FormatError):
        TlogProof.parse("c2sp.org/tlog-proof@v1\n" + text)


@pytest.mark.parametrize("index", ["\u00b2", "\u0663", "1\u00b2", "\uff11", "+1", " 1", "01", ""])
def test_tlog_proof_index_is_ascii_decimal_only(index: str) -> None:
    """Issue 11 item 6: ``index \u00b2`` was an internal error (int() refuses what
    str.isdigit() accepts); every non-ASCII or non-canonical index is a FormatError."""
    with pytest.raises(FormatError, match="is not a decimal number"):
        TlogProof.parse(f"c2sp.org/tlog-proof@v1\nindex {index}\n\n")


@given(st.text(alphabet=st.characters(categories=["Nd", "No"]), min_size=1, max_size=6))
def test_tlog_proof_index_of_any_unicode_digits_never_crashes(digits: str) -> None:
    with contextlib.suppress(FormatError):
        TlogProof.parse(f"c2sp.org/tlog-proof@v1\nindex {digits}\n\n")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)


@given(
    doc=st.fixed_dictionaries(
        {"mediaType": st.just(RECEIPT_MEDIA_TYPE)},
        optional={"envelope": _json, "proof": _json | st.text(), "log": _json, "anchor": _json},
    )
)
def test_receipt_parser_fails_only_with_format_errors(doc: dict[str, Any]) -> None:
    with contextlib.suppress(FormatError):
        Receipt.from_json(json.dumps(doc))


def test_append_with_receipt(tmp_path: Path) -> None:
    with TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN) as log:
        log.append(envelope(0))
        receipt = log.append_with_receipt(envelope(1), LOG_KEY)
        result = verify_receipt(receipt, log_key=Secp256k1NoteKey(ORIGIN, LOG_SIGNER.address))
        assert (result.index, result.tree_size) == (1, 2)
        assert len(log.checkpoints()) == 1
