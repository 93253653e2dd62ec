"""Helpers shared by the log tests: make signed envelopes and logs without a workspace."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from ailedger.attest.dsse import pae
from ailedger.identity.keys import Secp256k1Signer, Signer

ORIGIN = "test.ailedger.dev/log"
PREDICATE = "https://ailedger.dev/test/v1"

# Fixed keys so failures reproduce (never use these outside tests).
ALICE = Secp256k1Signer(bytes.fromhex("11" * 32))
BOB = Secp256k1Signer(bytes.fromhex("22" * 32))
LOG_SIGNER = Secp256k1Signer(bytes.fromhex("33" * 32))
WITNESS_SIGNER = Secp256k1Signer(bytes.fromhex("44" * 32))


def statement(n: int, digest: str | None = None, predicate: str = PREDICATE) -> bytes:
    return json.dumps(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"artifact-{n}", "digest": {"sha256": digest or f"{n:064x}"}}],
            "predicateType": predicate,
            "predicate": {"n": n},
        },
        sort_keys=True,
    ).encode()


def envelope(
    n: int,
    signers: tuple[Signer, ...] = (ALICE,),
    *,
    digest: str | None = None,
    predicate: str = PREDICATE,
    payload: bytes | None = None,
) -> bytes:
    body = statement(n, digest, predicate) if payload is None else payload
    ptype = "application/vnd.in-toto+json"
    sigs = [
        {"keyid": s.keyid, "sig": base64.b64encode(s.sign(pae(ptype, body))).decode()}
        for s in signers
    ]
    doc = {"payload": base64.b64encode(body).decode(), "payloadType": ptype, "signatures": sigs}
    return json.dumps(doc).encode()


def db_path(tmp_path: Path) -> Path:
    return tmp_path / "log.sqlite"
