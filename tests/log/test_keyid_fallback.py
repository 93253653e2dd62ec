"""The log's signature check treats a DSSE keyid as a hint (issue 12, item 5): a keyid naming a
known key is checked against that key only; any other keyid is tried against every known key
(secp256k1 by one recovery), and the entry records the key that verified by our key id."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _log_util import ALICE, BOB, ORIGIN, envelope
from _profiles import examples
from ailedger.attest.dsse import pae
from ailedger.errors import SignatureInvalid
from ailedger.identity.keys import Ed25519Signer, P256Signer, Signer
from ailedger.log import TransparencyLog, known_keys_check

ED = Ed25519Signer.generate()
P256 = P256Signer.generate()
KNOWN = [ALICE.public_key, ED.public_key, P256.public_key]
CHECK = known_keys_check(KNOWN)


def _relabel(raw: bytes, keyid: str) -> bytes:
    doc = json.loads(raw)
    doc["signatures"][0]["keyid"] = keyid
    return json.dumps(doc).encode()


@settings(max_examples=examples(30))
@given(
    st.sampled_from([ALICE, ED, P256]),
    st.one_of(st.just(""), st.text(min_size=1, max_size=70)),
    st.binary(max_size=200),
)
def test_a_foreign_keyid_falls_back_to_the_key_that_verifies(
    signer: Signer, keyid: str, payload: bytes
) -> None:
    if any(k.matches(keyid) for k in KNOWN):
        return
    message = pae("application/vnd.in-toto+json", payload)
    assert CHECK(keyid, message, signer.sign(message)) == signer.keyid


def test_log_entries_record_our_key_id(tmp_path: Path) -> None:
    with TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN, check_signature=CHECK) as log:
        log.append(_relabel(envelope(0, (ED,)), "their-id-for-it"))
        log.append(_relabel(envelope(1, (ALICE,)), BOB.address))  # relabelled, ALICE known
        log.append(envelope(2, (BOB,)))  # an unknown Ethereum account recovers as before
        assert [log.get(i).signers for i in range(3)] == [
            (ED.keyid,),
            (ALICE.address.lower(),),
            (BOB.address.lower(),),
        ]
        assert [e.index for e in log.query(signer=ED.keyid)] == [0]
        assert log.verify().entries == 3


def test_a_keyid_naming_a_known_key_is_not_retried_under_others(tmp_path: Path) -> None:
    with TransparencyLog.open(tmp_path / "log.sqlite", ORIGIN, check_signature=CHECK) as log:
        for raw, keyid in [
            (envelope(0, (ED,)), P256.keyid),
            (envelope(1, (P256,)), ALICE.address),
            (envelope(2, (ALICE,)), ED.keyid),
        ]:
            with pytest.raises(SignatureInvalid):
                log.append(_relabel(raw, keyid))
        stranger = Ed25519Signer.generate()
        with pytest.raises(SignatureInvalid, match="unknown key") as unknown:
            log.append(envelope(3, (stranger,)))
        assert unknown.value.code == "signer-unknown"
        assert log.size() == 0
