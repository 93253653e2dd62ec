"""The transparency log: an append-only RFC 9162 tree of signed envelopes.

:class:`TransparencyLog` stores envelopes in SQLite, serves inclusion and consistency proofs
and signs C2SP checkpoints (:mod:`.checkpoint`, with witness cosignatures); :mod:`.receipt`
holds the portable tlog-proof receipts that verify offline.
"""

from __future__ import annotations

from ailedger.log._transparency import (
    LOG_DB_NAME,
    Entry,
    LogSizeChanged,
    SignatureCheck,
    TransparencyLog,
    VerifyReport,
    check_ethereum_signature,
    known_keys_check,
    open_workspace_log,
)
from ailedger.log.checkpoint import (
    COSIGNATURE_V1_TYPE,
    ED25519_TYPE,
    MAX_SIGNATURES,
    SECP256K1_COSIGNATURE_TYPE,
    SECP256K1_MESSAGE_PREFIX,
    SECP256K1_TYPE,
    AnyNoteKey,
    Checkpoint,
    Ed25519Cosigner,
    Ed25519NoteKey,
    NoteSignature,
    NoteSigner,
    NoteVerifier,
    Secp256k1Cosigner,
    Secp256k1NoteKey,
    SignedNote,
    cosigner_for,
    key_id,
    note_key_for,
    parse_cosignature_time,
    parse_vkey,
    vkey,
)
from ailedger.log.receipt import (
    RECEIPT_MEDIA_TYPE,
    TLOG_PROOF_HEADER,
    Receipt,
    ReceiptVerification,
    TlogProof,
    sha256_file,
    verify_receipt,
)

__all__ = [
    "COSIGNATURE_V1_TYPE",
    "ED25519_TYPE",
    "LOG_DB_NAME",
    "MAX_SIGNATURES",
    "RECEIPT_MEDIA_TYPE",
    "SECP256K1_COSIGNATURE_TYPE",
    "SECP256K1_MESSAGE_PREFIX",
    "SECP256K1_TYPE",
    "TLOG_PROOF_HEADER",
    "AnyNoteKey",
    "Checkpoint",
    "Ed25519Cosigner",
    "Ed25519NoteKey",
    "Entry",
    "LogSizeChanged",
    "NoteSignature",
    "NoteSigner",
    "NoteVerifier",
    "Receipt",
    "ReceiptVerification",
    "Secp256k1Cosigner",
    "Secp256k1NoteKey",
    "SignatureCheck",
    "SignedNote",
    "TlogProof",
    "TransparencyLog",
    "VerifyReport",
    "check_ethereum_signature",
    "cosigner_for",
    "key_id",
    "known_keys_check",
    "note_key_for",
    "open_workspace_log",
    "parse_cosignature_time",
    "parse_vkey",
    "sha256_file",
    "verify_receipt",
    "vkey",
]
