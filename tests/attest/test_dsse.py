"""DSSE: PAE, envelope JSON, co-signing and fail-closed threshold verification."""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.attest import dsse
from ailedger.attest.dsse import Envelope, Signature
from ailedger.errors import FormatError, InvalidInput, SignatureInvalid
from ailedger.identity.keys import SECP256K1_N, P256Signer, Secp256k1PublicKey, Secp256k1Signer

ALICE = Secp256k1Signer.generate()
BOB = P256Signer.generate()
CAROL = Secp256k1Signer.generate()
MALLORY = Secp256k1Signer.generate()
TYPE = dsse.PAYLOAD_TYPE_IN_TOTO


def _parse_pae(data: bytes) -> tuple[str, bytes]:
    """An independent reading of the DSSE spec's PAE, to show the encoding is injective."""
    magic, rest = data.split(b" ", 1)
    assert magic == b"DSSEv1"
    tlen, rest = rest.split(b" ", 1)
    ptype, rest = rest[: int(tlen)], rest[int(tlen) :]
    assert rest[:1] == b" "
    blen, body = rest[1:].split(b" ", 1)
    assert len(body) == int(blen)
    return ptype.decode(), body


def test_pae_spec_vector() -> None:
    # The example in the DSSE v1 protocol document.
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert dsse.pae("", b"") == b"DSSEv1 0  0 "


@given(st.text(max_size=40), st.binary(max_size=200))
def test_pae_is_injective(payload_type: str, payload: bytes) -> None:
    assert _parse_pae(dsse.pae(payload_type, payload)) == (payload_type, payload)


@pytest.mark.interop
@given(st.binary(max_size=200))
def test_pae_matches_model_signing(payload: bytes) -> None:
    from model_signing._signing import sign_sigstore_pb

    assert dsse.pae(TYPE, payload) == sign_sigstore_pb.pae(payload)


_signatures = st.lists(
    st.builds(Signature, keyid=st.text(max_size=70), sig=st.binary(min_size=1, max_size=80)),
    max_size=4,
)


@given(st.text(min_size=1, max_size=40), st.binary(max_size=300), _signatures)
def test_envelope_json_round_trip(payload_type: str, payload: bytes, sigs: list[Signature]) -> None:
    envelope = Envelope(payload_type, payload, tuple(sigs))
    assert Envelope.from_json(envelope.to_json()) == envelope
    assert Envelope.from_json(envelope.to_json(indent=2)) == envelope
    assert Envelope.from_json(envelope.canonical_json()) == envelope


def test_urlsafe_unpadded_base64_is_accepted() -> None:
    payload = b"\xfb\xff\xfe payload?"
    doc = {
        "payloadType": TYPE,
        "payload": base64.urlsafe_b64encode(payload).decode().rstrip("="),
        "signatures": [],
    }
    assert Envelope.from_dict(doc).payload == payload


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"payloadType": "t", "payload": "aGk=", "signatu', "not valid JSON"),
        ("[]", "JSON object"),
        ('{"payloadType": "", "payload": "aGk=", "signatures": []}', "payloadType"),
        ('{"payloadType": "t", "payload": "a!k=", "signatures": []}', "base64"),
        ('{"payloadType": "t", "payload": 5, "signatures": []}', "base64"),
        ('{"payloadType": "t", "payload": "aGk=", "signatures": {}}', "must be a list"),
        ('{"payloadType": "t", "payload": "aGk=", "signatures": [{"keyid": "k"}]}', "keyid and"),
        ('{"payloadType": "t", "payload": "aGk=", "signatures": [{"sig": "aGk=", "x": 1}]}', "sig"),
        ('{"payloadType": "t", "payload": "aGk=", "signatures": [{"keyid": 1, "sig": ""}]}', "str"),
        ('{"payloadType": "t", "payload": "aGk=", "signatures": [], "extra": 1}', "unknown"),
    ],
)
def test_malformed_envelopes(text: str, message: str) -> None:
    with pytest.raises(FormatError, match=message):
        Envelope.from_json(text)


def test_sign_and_verify() -> None:
    envelope = dsse.sign(TYPE, b"{}", [ALICE])
    assert envelope.signatures[0].keyid == ALICE.address
    result = dsse.verify(envelope, [ALICE.public_key])
    assert result.signers == (ALICE.public_key,)
    assert result.payload == b"{}"
    # An address alone is enough to trust a secp256k1 signer.
    dsse.verify(envelope, [Secp256k1PublicKey(ALICE.address.lower())])


def test_co_signing_and_threshold() -> None:
    envelope = dsse.sign(TYPE, b"payload", [ALICE])
    envelope = dsse.add_signature(envelope, BOB)
    envelope = dsse.add_signature(Envelope.from_json(envelope.to_json()), CAROL)
    trusted = [ALICE.public_key, BOB.public_key, CAROL.public_key]
    assert len(dsse.verify(envelope, trusted, threshold=3).signers) == 3
    with pytest.raises(InvalidInput, match="already signed"):
        dsse.add_signature(envelope, BOB)
    # Two trusted keys, one of them missing from the envelope: threshold 2 fails closed.
    two = dsse.sign(TYPE, b"payload", [ALICE, MALLORY])
    with pytest.raises(SignatureInvalid, match="1 of the required 2"):
        dsse.verify(two, [ALICE.public_key, BOB.public_key], threshold=2)


def test_duplicate_signatures_count_once() -> None:
    envelope = dsse.sign(TYPE, b"p", [ALICE])
    doubled = Envelope(envelope.payload_type, envelope.payload, envelope.signatures * 2)
    with pytest.raises(SignatureInvalid, match="1 of the required 2"):
        dsse.verify(doubled, [ALICE.public_key, CAROL.public_key], threshold=2)


def test_unknown_signers_do_not_count_or_block() -> None:
    envelope = dsse.sign(TYPE, b"p", [MALLORY, ALICE])
    result = dsse.verify(envelope, [ALICE.public_key])
    assert result.signers == (ALICE.public_key,)
    assert result.unverified_keyids == (MALLORY.address,)
    with pytest.raises(SignatureInvalid, match=f"not verified: {MALLORY.address}"):
        dsse.verify(dsse.sign(TYPE, b"p", [MALLORY]), [ALICE.public_key])


def _resign(envelope: Envelope, **changes: object) -> Envelope:
    sig = envelope.signatures[0]
    fields = {"keyid": sig.keyid, "sig": sig.sig, **changes}
    return Envelope(envelope.payload_type, envelope.payload, (Signature(**fields),))  # type: ignore[arg-type]


@pytest.mark.parametrize("signer", [ALICE, BOB], ids=["secp256k1", "p256"])
def test_tampering_fails(signer: Secp256k1Signer | P256Signer) -> None:
    envelope = dsse.sign(TYPE, b'{"a": 1}', [signer])
    trusted = [ALICE.public_key, BOB.public_key]
    sig = envelope.signatures[0].sig
    bad_payload = Envelope(TYPE, b'{"a": 2}', envelope.signatures)
    bad_type = Envelope("text/plain", envelope.payload, envelope.signatures)
    flipped = bytearray(sig)
    flipped[10] ^= 0x40
    other = BOB.keyid if signer is ALICE else ALICE.keyid
    for tampered in (
        bad_payload,
        bad_type,
        _resign(envelope, sig=bytes(flipped)),
        _resign(envelope, sig=sig[:-1]),
        _resign(envelope, keyid=other),
        Envelope(TYPE, envelope.payload, ()),
    ):
        with pytest.raises(SignatureInvalid):
            dsse.verify(tampered, trusted)


def test_high_s_signature_fails() -> None:
    envelope = dsse.sign(TYPE, b"p", [ALICE])
    sig = envelope.signatures[0].sig
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    with pytest.raises(SignatureInvalid, match="0 of the required 1"):
        dsse.verify(_resign(envelope, sig=twin), [ALICE.public_key])


def test_missing_keyid_tries_every_trusted_key() -> None:
    envelope = _resign(dsse.sign(TYPE, b"p", [BOB]), keyid="")
    assert dsse.verify(envelope, [ALICE.public_key, BOB.public_key]).signers == (BOB.public_key,)


def test_payload_type_and_arguments_are_checked() -> None:
    envelope = dsse.sign("text/plain", b"p", [ALICE])
    with pytest.raises(SignatureInvalid, match="payload type"):
        dsse.verify(envelope, [ALICE.public_key], payload_type=TYPE)
    with pytest.raises(InvalidInput, match="at least 1"):
        dsse.verify(envelope, [ALICE.public_key], threshold=0)
    with pytest.raises(InvalidInput, match="no trusted keys"):
        dsse.verify(envelope, [])
    with pytest.raises(InvalidInput, match="more than the 1 trusted"):
        dsse.verify(envelope, [ALICE.public_key], threshold=2)
    with pytest.raises(InvalidInput, match="at least one signer"):
        dsse.sign(TYPE, b"p", [])


def test_signature_check_adapter() -> None:
    check = dsse.signature_check([ALICE.public_key, BOB.public_key])
    envelope = dsse.sign(TYPE, b"p", [ALICE, BOB])
    for sig in envelope.signatures:
        check(sig.keyid, envelope.pae(), sig.sig)
    with pytest.raises(SignatureInvalid, match="unknown key"):
        check(MALLORY.keyid, envelope.pae(), MALLORY.sign(envelope.pae()))
    with pytest.raises(SignatureInvalid, match="does not verify"):
        check(ALICE.keyid, envelope.pae(), envelope.signatures[1].sig)


@settings(max_examples=examples(25))
@given(st.binary(max_size=500), st.sampled_from([ALICE, BOB, CAROL]))
def test_signed_envelope_survives_json(
    payload: bytes, signer: Secp256k1Signer | P256Signer
) -> None:
    envelope = dsse.sign(TYPE, payload, [signer])
    parsed = Envelope.from_json(json.dumps(json.loads(envelope.to_json()), indent=1))
    assert dsse.verify(parsed, [signer.public_key]).payload == payload
