"""DSSE envelopes across ailedger and the real ``securesystemslib`` (in-toto's and TUF's
signing library), issue 12 item 5.

securesystemslib names a key by the SHA-256 of its canonical JSON key object, ailedger by the
SHA-256 of its SPKI PEM, so the same key carries two key ids. DSSE keyids are unauthenticated
hints: an envelope securesystemslib signed verifies here once its public key is imported
(the keyid naming no trusted key, every trusted key is tried and the one that verified is
reported), and securesystemslib verifies ours.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _cli import PASSWORD
from ailedger.attest import dsse
from ailedger.errors import SignatureInvalid
from ailedger.identity.keys import (
    PBKDF2_ROUNDS_TEST_ONLY,
    SCRYPT_N_TEST_ONLY,
    Ed25519PublicKey,
    Ed25519Signer,
    Keystore,
    P256Signer,
)
from ailedger.log import TransparencyLog, known_keys_check

sslib_signer = pytest.importorskip("securesystemslib.signer")
sslib_dsse = pytest.importorskip("securesystemslib.dsse")
sslib_exceptions = pytest.importorskip("securesystemslib.exceptions")

pytestmark = pytest.mark.interop

TYPE = dsse.PAYLOAD_TYPE_IN_TOTO
STATEMENT = json.dumps(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model.bin", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://example.com/test/v1",
        "predicate": {},
    }
).encode()


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(
        tmp_path / "keys", scrypt_n=SCRYPT_N_TEST_ONLY, pbkdf2_rounds=PBKDF2_ROUNDS_TEST_ONLY
    )


def _sslib_envelope(signer: Any) -> dsse.Envelope:
    envelope = sslib_dsse.Envelope(payload=STATEMENT, payload_type=TYPE, signatures={})
    envelope.sign(signer)
    return dsse.Envelope.from_json(json.dumps(envelope.to_dict()))


@pytest.mark.parametrize("generate", ["generate_ed25519", "generate_ecdsa"])
def test_an_envelope_signed_by_securesystemslib_verifies_after_import(
    store: Keystore, tmp_path: Path, generate: str
) -> None:
    signer = getattr(sslib_signer.CryptoSigner, generate)()
    envelope = _sslib_envelope(signer)
    theirs = signer.public_key.keyid
    assert envelope.signatures[0].keyid == theirs
    info = store.import_public("partner", json.dumps(signer.public_key.to_dict()).encode())
    assert info.public_only
    assert info.keyid != theirs  # two tools, two ids for one key
    result = dsse.verify(envelope, [Ed25519Signer.generate().public_key, info.public_key])
    assert result.signers == (info.public_key,)
    assert result.keyid_fallbacks == ((theirs, info.keyid),)
    assert result.to_dict()["keyid_fallbacks"] == [{"keyid": theirs, "verified_by": info.keyid}]
    # the log admits it too, and indexes the signer under our key id
    with TransparencyLog.open(
        tmp_path / "log.sqlite",
        "example.com/sslib",
        check_signature=known_keys_check([info.public_key]),
    ) as log:
        index = log.append(envelope.to_json())
        assert log.get(index).signers == (info.keyid,)
        assert [e.index for e in log.query(signer=info.keyid)] == [index]


def test_a_keyid_naming_another_trusted_key_still_fails(store: Keystore) -> None:
    """The fallback is for keyids naming no trusted key: a signature labelled with a trusted
    key's id is checked against that key only, as securesystemslib itself does."""
    signer = sslib_signer.CryptoSigner.generate_ed25519()
    envelope = _sslib_envelope(signer)
    info = store.import_public("partner", json.dumps(signer.public_key.to_dict()).encode())
    ours = Ed25519Signer.generate()
    relabelled = dsse.Envelope(
        envelope.payload_type,
        envelope.payload,
        (dsse.Signature(ours.keyid, envelope.signatures[0].sig),),
    )
    with pytest.raises(SignatureInvalid, match="0 of the required 1"):
        dsse.verify(relabelled, [info.public_key, ours.public_key])
    check = dsse.signature_check([info.public_key, ours.public_key])
    with pytest.raises(SignatureInvalid, match="does not verify"):
        check(ours.keyid, relabelled.pae(), relabelled.signatures[0].sig)
    assert check("any-foreign-id", relabelled.pae(), relabelled.signatures[0].sig) == info.keyid


def test_securesystemslib_verifies_our_ed25519_and_p256_envelopes() -> None:
    ed, p256 = Ed25519Signer.generate(), P256Signer.generate()
    ours = dsse.sign(TYPE, STATEMENT, [ed, p256])
    theirs = sslib_dsse.Envelope.from_dict(json.loads(ours.to_json()))
    keys = [
        sslib_signer.SSlibKey(ed.keyid, "ed25519", "ed25519", {"public": ed.public_key.raw.hex()}),
        sslib_signer.SSlibKey(
            p256.keyid, "ecdsa", "ecdsa-sha2-nistp256", {"public": p256.public_key.to_pem()}
        ),
    ]
    assert set(theirs.verify(keys, 2)) == {ed.keyid, p256.keyid}
    tampered = sslib_dsse.Envelope.from_dict(json.loads(ours.to_json()))
    tampered.payload = STATEMENT.replace(b"ab", b"cd", 1)
    with pytest.raises(sslib_exceptions.VerificationError, match="threshold"):
        tampered.verify(keys, 1)


def test_a_stored_ed25519_key_signs_what_securesystemslib_verifies(store: Keystore) -> None:
    info = store.create("ed", PASSWORD, keytype="ed25519")
    signer = store.signer("ed", PASSWORD)
    envelope = sslib_dsse.Envelope.from_dict(
        json.loads(dsse.sign(TYPE, STATEMENT, [signer]).to_json())
    )
    public = info.public_key
    assert isinstance(public, Ed25519PublicKey)
    key = sslib_signer.SSlibKey(info.keyid, "ed25519", "ed25519", {"public": public.raw.hex()})
    assert list(envelope.verify([key], 1)) == [info.keyid]
