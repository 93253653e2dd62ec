"""Update statements: the encoder and parser round-trip, and every forged, unsigned or
replayed update is refused with its code (fail closed)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.attest import dsse
from ailedger.attest.statements import Statement, make_statement, sign_statement
from ailedger.errors import VerificationFailed
from ailedger.fl import (
    DpSpent,
    UpdatePredicate,
    UpdateRefused,
    sign_update,
    update_statement,
    verify_update,
)
from ailedger.identity.keys import Secp256k1Signer

CLIENT = Secp256k1Signer(bytes(31) + b"\x07")
OTHER = Secp256k1Signer(bytes(31) + b"\x09")
BASE, UPDATE = bytes.fromhex("aa" * 32), bytes.fromhex("bb" * 32)


def predicate(**over: Any) -> UpdatePredicate:
    fields: dict[str, Any] = {
        "task": "t1",
        "round": 3,
        "client": CLIENT.address,
        "base_model": BASE.hex(),
        "update": UPDATE.hex(),
        "num_examples": 120,
    }
    return UpdatePredicate(**(fields | over))


def check(envelope: object, **over: Any) -> Any:
    expected: dict[str, Any] = {
        "task": "t1",
        "round": 3,
        "base_model": BASE,
        "update": UPDATE,
        "clients": [CLIENT.address],
    }
    return verify_update(envelope, **(expected | over))


def signed(p: UpdatePredicate | None = None, signer: Secp256k1Signer = CLIENT) -> str:
    return sign_update(p or predicate(), signer).to_json().decode()


def refused(code: str, envelope: object, **over: Any) -> None:
    with pytest.raises(UpdateRefused) as info:
        check(envelope, **over)
    assert info.value.code == code, info.value


tasks = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40)
dps = st.none() | st.builds(
    DpSpent,
    epsilon=st.floats(1e-6, 100, allow_nan=False),
    delta=st.floats(0, 0.5, allow_nan=False),
    mechanism=st.sampled_from(["gaussian-clipped-update", "diffprivlib"]),
)


@given(
    tasks,
    st.integers(1, 2**31 - 1),
    st.binary(min_size=32, max_size=32),
    st.binary(min_size=32, max_size=32),
    st.integers(1, 2**53 - 1),
    dps,
)
@settings(max_examples=examples(50))
def test_round_trip(task: str, rnd: int, base: bytes, update: bytes, n: int, dp: Any) -> None:
    p = UpdatePredicate(
        task=task,
        round=rnd,
        client=CLIENT.address,
        base_model=base.hex(),
        update=update.hex(),
        num_examples=n,
        dp=dp,
    )
    envelope = signed(p)
    got = verify_update(
        envelope, task=task, round=rnd, base_model=base, update=update, clients=[CLIENT.address]
    )
    assert got.predicate == p
    assert got.predicate.client == CLIENT.address.lower()
    assert Statement.from_json(got.envelope.payload).subject[0].digest == {"sha256": update.hex()}


@given(st.text(max_size=300) | st.binary(max_size=300) | st.none() | st.integers())
@settings(max_examples=examples(100))
def test_garbage_is_refused_never_crashes(junk: object) -> None:
    with pytest.raises(UpdateRefused):
        check(junk)


@given(st.data())
@settings(max_examples=examples(60))
def test_any_tampered_byte_is_refused(data: st.DataObject) -> None:
    doc = json.loads(signed())
    payload = bytearray(dsse.Envelope.from_dict(doc).payload)
    i = data.draw(st.integers(0, len(payload) - 1))
    payload[i] ^= data.draw(st.integers(1, 255))
    forged = dsse.Envelope(
        dsse.PAYLOAD_TYPE_IN_TOTO, bytes(payload), dsse.Envelope.from_dict(doc).signatures
    )
    with pytest.raises(UpdateRefused):
        check(forged.to_json())


def test_unsigned_and_missing() -> None:
    refused("update-unsigned", None)
    refused("update-unsigned", "")
    bare = dsse.Envelope(dsse.PAYLOAD_TYPE_IN_TOTO, update_statement(predicate()).canonical_json())
    refused("update-unsigned", bare.to_json())
    twice = sign_statement(update_statement(predicate()), [CLIENT, OTHER])
    refused("update-unsigned", twice.to_json())


def test_signed_by_someone_else_for_the_client() -> None:
    with pytest.raises(UpdateRefused, match="not the signer"):
        sign_update(predicate(), OTHER)
    forged = sign_statement(update_statement(predicate()), [OTHER])
    refused("update-signer-mismatch", forged.to_json())
    # the keyid says the client, the signature is another key's
    env = sign_statement(update_statement(predicate()), [OTHER])
    relabelled = dsse.Envelope(
        env.payload_type,
        env.payload,
        (dsse.Signature(CLIENT.address.lower(), env.signatures[0].sig),),
    )
    refused("update-signature-invalid", relabelled.to_json())


def test_unknown_client() -> None:
    refused("signer-unknown", signed(predicate(client=OTHER.address), OTHER))
    refused("signer-unknown", signed(), clients=[])


@pytest.mark.parametrize(
    ("over", "code"),
    [
        ({"round": 4}, "update-round-mismatch"),
        ({"round": 2}, "update-round-mismatch"),
        ({"task": "t2"}, "update-task-mismatch"),
        ({"base_model": bytes(32)}, "update-base-mismatch"),
        ({"update": bytes(32)}, "update-digest-mismatch"),
    ],
)
def test_replays_and_other_parameters(over: dict[str, Any], code: str) -> None:
    refused(code, signed(), **over)


def test_not_an_update_statement() -> None:
    other = make_statement(update_statement(predicate()).subject, predicate())
    doc = other.to_dict() | {"predicateType": "https://example.com/other/v1"}
    env = dsse.sign(dsse.PAYLOAD_TYPE_IN_TOTO, Statement.from_dict(doc).canonical_json(), [CLIENT])
    refused("update-malformed", env.to_json())
    wrong_type = dsse.sign("text/plain", update_statement(predicate()).canonical_json(), [CLIENT])
    refused("update-malformed", wrong_type.to_json())


def test_refusals_are_verification_failures_with_exit_code_1() -> None:
    with pytest.raises(VerificationFailed) as info:
        check(None)
    assert info.value.exit_code == 1


def test_counts_beyond_a_safe_json_integer_are_refused() -> None:
    """RFC 8785 has no integers above 2**53 - 1: such a statement could not be signed."""
    with pytest.raises(ValueError, match="less than or equal"):
        predicate(num_examples=2**53)
    assert predicate(num_examples=2**53 - 1).num_examples == 2**53 - 1


@pytest.mark.parametrize(
    "dp",
    [
        {"epsilon": -1.0, "delta": 1e-5, "mechanism": "gaussian-clipped-update"},
        {"epsilon": 0.0, "delta": 1e-5, "mechanism": "gaussian-clipped-update"},
        {"epsilon": 0.5, "delta": 1.0, "mechanism": "gaussian-clipped-update"},
        {"epsilon": 0.5, "delta": -0.1, "mechanism": "gaussian-clipped-update"},
        {"epsilon": 0.5, "delta": 1e-5},
        {"epsilon": 0.5, "delta": 1e-5, "mechanism": "x", "noise": 0},
    ],
)
def test_a_signed_statement_with_impossible_dp_accounting_is_refused(dp: dict[str, Any]) -> None:
    """A client that signs a DP claim no mechanism gives (negative or zero epsilon, delta of 1
    or below 0, missing or extra fields) is refused: it cannot lower the model's accounting."""

    def signed_with(value: dict[str, Any]) -> str:
        doc = json.loads(update_statement(predicate()).canonical_json())
        doc["predicate"]["dp"] = value
        env = dsse.sign(dsse.PAYLOAD_TYPE_IN_TOTO, json.dumps(doc).encode(), [CLIENT])
        return env.to_json().decode()

    fine = {"epsilon": 0.5, "delta": 1e-5, "mechanism": "gaussian-clipped-update"}
    assert check(signed_with(fine)).predicate.dp == DpSpent(**fine)  # the same path accepts it
    refused("update-malformed", signed_with(dp))
