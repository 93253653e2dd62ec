"""Usage receipts: EIP-712 encoding (against eth-account), signing, verification, JSON round
trips, replay across job/chain/contract, forged fields, epoch inclusion."""

from __future__ import annotations

import dataclasses

import pytest
import rfc8785
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from ailedger.chain.eip712 import Domain
from ailedger.errors import FormatError, InvalidInput, ProofInvalid, SignatureInvalid
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.inference import (
    EpochRoot,
    Receipt,
    SignedEpochRoot,
    SignedReceipt,
    market_domain,
    request_digest,
    response_digest,
    sign_receipt,
    verify_epoch_root,
    verify_inclusion_in_epoch,
    verify_receipt,
)
from ailedger.markets.inference.receipt import _canonical, sign_epoch_root
from ailedger.merkle import InclusionProof, inclusion_proof, leaf_hash, root
from markets._helpers import CHAIN_ID, CONSUMER, CONTRACT, PROVIDER

DOMAIN = market_domain(CHAIN_ID, CONTRACT)
U64 = (1 << 64) - 1

b32 = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
receipts = st.builds(
    Receipt,
    job=b32,
    counter=st.integers(1, U64),
    request_digest=b32,
    response_digest=b32,
    model_digest=b32,
    price=st.integers(0, (1 << 256) - 1),
    time_ms=st.integers(0, U64),
    consumer=addresses,
    epoch=st.integers(0, U64),
    position=st.integers(0, U64),
)
domains = st.builds(
    Domain,
    name=st.just("ailedger InferenceMarket"),
    version=st.just("1"),
    chain_id=st.integers(1, (1 << 256) - 1),
    verifying_contract=addresses,
)


def _receipt(**changes: object) -> Receipt:
    base = Receipt(
        job=b"\x01" * 32,
        counter=1,
        request_digest=b"\x02" * 32,
        response_digest=b"\x03" * 32,
        model_digest=b"\x04" * 32,
        price=1000,
        time_ms=1_700_000_000_000,
        consumer=CONSUMER,
        epoch=0,
        position=0,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@settings(max_examples=60, deadline=None)
@given(receipt=receipts, domain=domains)
def test_digest_is_eip712_as_eth_account_computes_it(receipt: Receipt, domain: Domain) -> None:
    doc = receipt.typed_data(domain)
    signable = encode_typed_data(full_message=doc)
    expected = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert receipt.digest(domain) == expected
    assert receipt.digest(domain.separator()) == expected


@settings(max_examples=40, deadline=None)
@given(receipt=receipts, domain=domains)
def test_sign_verify_and_json_round_trip(receipt: Receipt, domain: Domain) -> None:
    signed = SignedReceipt(receipt, domain, sign_receipt(receipt, domain, PROVIDER))
    again = SignedReceipt.from_dict(signed.to_dict())
    assert again == signed
    assert verify_receipt(again, domain=domain, provider=PROVIDER.address) == PROVIDER.address


@settings(max_examples=40, deadline=None)
@given(
    field=st.sampled_from(
        [
            "job",
            "counter",
            "request_digest",
            "response_digest",
            "model_digest",
            "price",
            "time_ms",
            "consumer",
            "epoch",
            "position",
        ]
    ),
    data=st.data(),
)
def test_any_changed_field_breaks_the_signature(field: str, data: st.DataObject) -> None:
    receipt = _receipt()
    signature = sign_receipt(receipt, DOMAIN, PROVIDER)
    value = getattr(receipt, field)
    if isinstance(value, bytes):
        new: object = data.draw(b32.filter(lambda b: b != value))
    elif isinstance(value, str):
        new = data.draw(addresses.filter(lambda a: a.lower() != value.lower()))
    else:
        new = data.draw(st.integers(1, U64).filter(lambda n: n != value))
    forged = SignedReceipt(dataclasses.replace(receipt, **{field: new}), DOMAIN, signature)
    with pytest.raises(SignatureInvalid) as err:
        verify_receipt(forged, domain=DOMAIN, provider=PROVIDER.address)
    assert err.value.code == "receipt-signer-mismatch"


def test_forged_counter_is_refused() -> None:
    receipt = _receipt(counter=7)
    signed = SignedReceipt(receipt, DOMAIN, sign_receipt(receipt, DOMAIN, PROVIDER))
    doc = signed.to_dict()
    doc["message"]["counter"] = 8
    with pytest.raises(SignatureInvalid) as err:
        verify_receipt(SignedReceipt.from_dict(doc), domain=DOMAIN, provider=PROVIDER.address)
    assert err.value.code == "receipt-signer-mismatch"


def test_replay_on_another_chain_contract_or_job_is_refused() -> None:
    receipt = _receipt()
    signed = SignedReceipt(receipt, DOMAIN, sign_receipt(receipt, DOMAIN, PROVIDER))
    other_chain = market_domain(CHAIN_ID + 1, CONTRACT)
    other_contract = market_domain(CHAIN_ID, "0x" + "cd" * 20)
    for domain in (other_chain, other_contract):
        # presented as it was signed: the domain differs from the one expected
        with pytest.raises(SignatureInvalid) as err:
            verify_receipt(signed, domain=domain, provider=PROVIDER.address)
        assert err.value.code == "receipt-domain-mismatch"
        # relabelled with the expected domain: the signature no longer recovers the provider
        relabelled = SignedReceipt(receipt, domain, signed.signature)
        with pytest.raises(SignatureInvalid) as err:
            verify_receipt(relabelled, domain=domain, provider=PROVIDER.address)
        assert err.value.code == "receipt-signer-mismatch"
    with pytest.raises(SignatureInvalid) as err:
        verify_receipt(signed, domain=DOMAIN, provider=PROVIDER.address, job=b"\x09" * 32)
    assert err.value.code == "receipt-job-mismatch"
    with pytest.raises(SignatureInvalid) as err:
        verify_receipt(signed, domain=DOMAIN, provider=PROVIDER.address, model_digest=b"\0" * 32)
    assert err.value.code == "receipt-model-mismatch"
    impostor = Secp256k1Signer(bytes.fromhex("77" * 32))
    fake = SignedReceipt(receipt, DOMAIN, sign_receipt(receipt, DOMAIN, impostor))
    with pytest.raises(SignatureInvalid) as err:
        verify_receipt(fake, domain=DOMAIN, provider=PROVIDER.address)
    assert err.value.code == "receipt-signer-mismatch"


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("message", "counter"), -1),
        (("message", "counter"), 0),
        (("message", "counter"), 1 << 64),
        (("message", "counter"), True),
        (("message", "jobId"), "0x" + "ab" * 31),
        (("message", "consumer"), "nobody"),
        (("message", "price"), "1e3"),
        (("domain", "chainId"), 0),
        (("signature",), "0x" + "00" * 64),
    ],
)
def test_malformed_documents_are_format_errors(path: tuple[str, ...], value: object) -> None:
    receipt = _receipt()
    doc = SignedReceipt(receipt, DOMAIN, sign_receipt(receipt, DOMAIN, PROVIDER)).to_dict()
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    with pytest.raises(FormatError):
        SignedReceipt.from_dict(doc)


def test_price_round_trips_above_2_to_the_53() -> None:
    receipt = _receipt(price=(1 << 256) - 1)
    signed = SignedReceipt(receipt, DOMAIN, sign_receipt(receipt, DOMAIN, PROVIDER))
    assert SignedReceipt.from_dict(signed.to_dict()).receipt.price == (1 << 256) - 1


@settings(max_examples=40, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers(1 - 2**53, 2**53 - 1) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner),
        max_leaves=12,
    ),
    salt=st.sampled_from([b"", b"\x01" * 32]),
)
def test_request_digest_is_canonical_and_salted(value: object, salt: bytes) -> None:
    assert request_digest(value, salt) == request_digest(value, salt)
    if salt:
        assert request_digest(value, salt) != request_digest(value)
    assert response_digest(value) == request_digest(value)


def test_request_digest_ignores_key_order_but_not_values() -> None:
    assert request_digest({"a": 1, "b": [2.5]}) == request_digest({"b": [2.5], "a": 1})
    assert request_digest({"a": 1}) != request_digest({"a": 2})
    with pytest.raises(InvalidInput):
        request_digest({"a": float("nan")})
    with pytest.raises(InvalidInput):
        request_digest([1], b"short")


def _epoch(count: int) -> tuple[list[SignedReceipt], SignedEpochRoot]:
    signed = []
    for position in range(count):
        r = _receipt(counter=position + 1, position=position, epoch=3)
        signed.append(SignedReceipt(r, DOMAIN, sign_receipt(r, DOMAIN, PROVIDER)))
    digests = [s.digest() for s in signed]
    return signed, sign_epoch_root(EpochRoot(3, count, root(digests)), DOMAIN, PROVIDER)


def _proof(signed: list[SignedReceipt], position: int) -> InclusionProof:
    digests = [s.digest() for s in signed]
    return InclusionProof(
        tree_size=len(digests),
        leaf_index=position,
        leaf_hash=leaf_hash(digests[position]),
        hashes=tuple(inclusion_proof(digests, position)),
        root=root(digests),
    )


@settings(max_examples=20, deadline=None)
@given(count=st.integers(1, 20), data=st.data())
def test_inclusion_in_the_signed_epoch_root(count: int, data: st.DataObject) -> None:
    signed, epoch_root = _epoch(count)
    position = data.draw(st.integers(0, count - 1))
    again = SignedEpochRoot.from_dict(epoch_root.to_dict())
    checked = verify_epoch_root(again, domain=DOMAIN, provider=PROVIDER.address)
    verify_inclusion_in_epoch(signed[position], checked, _proof(signed, position))
    # the proof of another position does not prove this receipt
    if count > 1:
        other = (position + 1) % count
        with pytest.raises(ProofInvalid) as err:
            verify_inclusion_in_epoch(signed[position], checked, _proof(signed, other))
        assert err.value.code == "receipt-epoch-mismatch"


def test_a_root_that_altered_a_receipt_is_disproven() -> None:
    signed, _ = _epoch(4)
    # the provider commits a root where position 2 holds another receipt than it signed
    swapped = _receipt(counter=99, position=2, epoch=3)
    leaves = [s.digest() for s in signed]
    leaves[2] = swapped.digest(DOMAIN)
    bad_root = sign_epoch_root(EpochRoot(3, 4, root(leaves)), DOMAIN, PROVIDER)
    checked = verify_epoch_root(bad_root, domain=DOMAIN, provider=PROVIDER.address)
    honest_proof = _proof(signed, 2)  # what the consumer can build: does not reach that root
    with pytest.raises(ProofInvalid):
        verify_inclusion_in_epoch(signed[2], checked, honest_proof)
    # the inclusion proof of what the root holds at position 2 is not the signed receipt
    held = InclusionProof(
        4, 2, leaf_hash(leaves[2]), tuple(inclusion_proof(leaves, 2)), root(leaves)
    )
    held.verify()
    with pytest.raises(ProofInvalid) as err:
        verify_inclusion_in_epoch(signed[2], checked, held)
    assert err.value.code == "receipt-epoch-mismatch"


def test_epoch_root_of_another_signer_or_domain_is_refused() -> None:
    _, epoch_root = _epoch(2)
    with pytest.raises(SignatureInvalid) as err:
        verify_epoch_root(epoch_root, domain=DOMAIN, provider=CONSUMER)
    assert err.value.code == "receipt-signer-mismatch"
    with pytest.raises(SignatureInvalid) as err:
        verify_epoch_root(
            epoch_root, domain=market_domain(CHAIN_ID + 1, CONTRACT), provider=CONSUMER
        )
    assert err.value.code == "receipt-domain-mismatch"


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        st.integers(-(2**60), 2**60)
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.floats(-(2.0**54), 2.0**54).map(float.__floor__).map(float),
        lambda inner: st.lists(inner, max_size=5),
        max_leaves=20,
    )
)
def test_fast_canonical_path_writes_what_rfc8785_writes(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except rfc8785.CanonicalizationError:
        with pytest.raises(InvalidInput):
            request_digest(value)
        return
    assert _canonical(value) == expected


SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def test_a_high_s_twin_of_a_receipt_signature_is_refused() -> None:
    r = _receipt()
    signature = sign_receipt(r, DOMAIN, PROVIDER)
    s = int.from_bytes(signature[32:64], "big")
    twin = signature[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - signature[64]])
    with pytest.raises(SignatureInvalid) as err:  # the same signer, in the malleable form
        verify_receipt(SignedReceipt(r, DOMAIN, twin), domain=DOMAIN, provider=PROVIDER.address)
    assert err.value.code == "signature-malformed"


def test_receipt_and_epoch_root_signatures_are_separated() -> None:
    """Same key, same domain: a receipt's signature is no epoch root's and vice versa; a
    receipt signed for the market is refused under another ailedger contract's domain."""
    r = _receipt()
    signed = SignedReceipt(r, DOMAIN, sign_receipt(r, DOMAIN, PROVIDER))
    as_root = EpochRoot(0, 1, r.digest(DOMAIN))
    with pytest.raises(SignatureInvalid):
        verify_epoch_root(
            SignedEpochRoot(as_root, DOMAIN, signed.signature),
            domain=DOMAIN,
            provider=PROVIDER.address,
        )
    anchors = Domain.log_anchors(CHAIN_ID, CONTRACT)
    assert anchors.separator() != DOMAIN.separator()
    with pytest.raises(SignatureInvalid) as err:
        verify_receipt(
            SignedReceipt(r, anchors, signed.signature), domain=anchors, provider=PROVIDER.address
        )
    assert err.value.code == "receipt-signer-mismatch"


def test_inclusion_edge_cases_of_rfc9162() -> None:
    signed, epoch_root = _epoch(1)
    checked = verify_epoch_root(epoch_root, domain=DOMAIN, provider=PROVIDER.address)
    only = _proof(signed, 0)
    assert only.hashes == ()  # a tree of one: the root is the leaf hash, the proof is empty
    verify_inclusion_in_epoch(signed[0], checked, only)
    padded = dataclasses.replace(only, hashes=(b"\x00" * 32,))
    with pytest.raises(ProofInvalid):
        verify_inclusion_in_epoch(signed[0], checked, padded)
    # a receipt placed beyond the end of its epoch (position >= size) is never included
    beyond = _receipt(counter=2, position=1, epoch=3)
    beyond_signed = SignedReceipt(beyond, DOMAIN, sign_receipt(beyond, DOMAIN, PROVIDER))
    forged = dataclasses.replace(only, leaf_index=1, leaf_hash=leaf_hash(beyond_signed.digest()))
    with pytest.raises(ProofInvalid):
        verify_inclusion_in_epoch(beyond_signed, checked, forged)
    signed4, root4 = _epoch(4)
    checked4 = verify_epoch_root(root4, domain=DOMAIN, provider=PROVIDER.address)
    for cut in range(len(_proof(signed4, 3).hashes)):  # every shortened proof fails
        short = dataclasses.replace(_proof(signed4, 3), hashes=_proof(signed4, 3).hashes[:cut])
        with pytest.raises(ProofInvalid):
            verify_inclusion_in_epoch(signed4[3], checked4, short)


@pytest.mark.parametrize("missing", ["signature", "domain", "message"])
def test_a_signed_epoch_root_missing_a_field_is_a_format_error(missing: str) -> None:
    _, epoch_root = _epoch(2)
    doc = epoch_root.to_dict()
    del doc[missing]
    with pytest.raises(FormatError):
        SignedEpochRoot.from_dict(doc)
