"""Consumer-signed requests: the EIP-712 encoding (against eth-account), signing and
verification, the JSON fields of a call, and every changed field, key, domain or expiry
refused with its stable code."""

from __future__ import annotations

import dataclasses

import pytest
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.chain.eip712 import Domain
from ailedger.errors import FormatError, SignatureInvalid
from ailedger.markets.inference import (
    InferenceRequest,
    Receipt,
    SignedRequest,
    market_domain,
    request_domain,
    sign_request,
    verify_request,
)
from markets._helpers import CHAIN_ID, CONSUMER, CONSUMER_KEY, CONTRACT, OTHER_KEY, PROVIDER

DOMAIN = request_domain(CHAIN_ID, CONTRACT)
U64 = (1 << 64) - 1

b32 = st.binary(min_size=32, max_size=32)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
requests = st.builds(
    InferenceRequest,
    job=b32,
    provider=addresses,
    model_digest=b32,
    request_digest=b32,
    nonce=b32,
    expires=st.integers(0, U64),
)
domains = st.builds(
    Domain,
    name=st.just("ailedger InferenceRequest"),
    version=st.just("1"),
    chain_id=st.integers(1, (1 << 256) - 1),
    verifying_contract=addresses,
)
FIELDS = ["job", "provider", "model_digest", "request_digest", "nonce", "expires"]


def _request(**changes: object) -> InferenceRequest:
    base = InferenceRequest(
        b"\x01" * 32, PROVIDER.address, b"\x04" * 32, b"\x02" * 32, b"\x03" * 32, 2_000_000_000
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


@settings(max_examples=examples(60))
@given(request=requests, domain=domains)
def test_digest_is_eip712_as_eth_account_computes_it(
    request: InferenceRequest, domain: Domain
) -> None:
    signable = encode_typed_data(full_message=request.typed_data(domain))
    expected = keccak(b"\x19" + signable.version + signable.header + signable.body)
    assert request.digest(domain) == expected


@settings(max_examples=examples(40))
@given(request=requests, domain=domains)
def test_sign_verify_and_json_round_trip(request: InferenceRequest, domain: Domain) -> None:
    signed = sign_request(request, domain, CONSUMER_KEY)
    again = SignedRequest.from_dict(signed.to_dict())
    assert again == signed
    verify_request(request, again, domain=domain, consumer=CONSUMER, now=request.expires)


@settings(max_examples=examples(40))
@given(field=st.sampled_from(FIELDS), data=st.data())
def test_any_changed_field_breaks_the_signature(field: str, data: st.DataObject) -> None:
    request = _request()
    signed = sign_request(request, DOMAIN, CONSUMER_KEY)
    value = getattr(request, field)
    if field == "provider":
        new: object = data.draw(addresses.filter(lambda a: a.lower() != value.lower()))
    elif isinstance(value, bytes):
        new = data.draw(b32.filter(lambda b: b != value))
    else:
        new = data.draw(st.integers(0, U64).filter(lambda v: v != value))
    changed = dataclasses.replace(request, **{field: new})  # type: ignore[arg-type]
    resigned = SignedRequest(changed.nonce, changed.expires, signed.signature)
    with pytest.raises(SignatureInvalid) as err:
        verify_request(changed, resigned, domain=DOMAIN, consumer=CONSUMER, now=0)
    assert err.value.code == "request-signature-invalid"


@settings(max_examples=examples(30))
@given(chain=st.integers(1, 1 << 64), contract=addresses)
def test_another_chain_or_market_or_a_receipt_domain_is_refused(chain: int, contract: str) -> None:
    request = _request()
    signed = sign_request(request, request_domain(chain, contract), CONSUMER_KEY)
    if (chain, contract.lower()) != (CHAIN_ID, CONTRACT.lower()):
        with pytest.raises(SignatureInvalid):
            verify_request(request, signed, domain=DOMAIN, consumer=CONSUMER, now=0)
    # the receipts' domain (same chain and contract, another name) never verifies a request
    as_receipt_domain = sign_request(request, market_domain(chain, contract), CONSUMER_KEY)
    with pytest.raises(SignatureInvalid):
        verify_request(
            request, as_receipt_domain, domain=request_domain(chain, contract), consumer=CONSUMER,
            now=0,
        )  # fmt: skip


def test_the_request_and_receipt_typehashes_differ() -> None:
    request = _request()
    assert (
        request.struct_hash()
        != Receipt(
            b"\x01" * 32, 1, b"\x02" * 32, b"\x03" * 32, b"\x04" * 32, 0, 0, CONSUMER, 0, 0
        ).struct_hash()
    )


def test_another_key_expiry_or_a_mismatched_nonce_is_refused() -> None:
    request = _request()
    with pytest.raises(SignatureInvalid) as err:
        verify_request(
            request, sign_request(request, DOMAIN, OTHER_KEY), domain=DOMAIN, consumer=CONSUMER,
            now=0,
        )  # fmt: skip
    assert err.value.code == "request-signature-invalid"
    signed = sign_request(request, DOMAIN, CONSUMER_KEY)
    verify_request(request, signed, domain=DOMAIN, consumer=CONSUMER, now=request.expires)
    with pytest.raises(SignatureInvalid) as err:
        verify_request(request, signed, domain=DOMAIN, consumer=CONSUMER, now=request.expires + 1)
    assert err.value.code == "request-expired"
    other_nonce = SignedRequest(b"\x09" * 32, signed.expires, signed.signature)
    with pytest.raises(SignatureInvalid):
        verify_request(request, other_nonce, domain=DOMAIN, consumer=CONSUMER, now=0)


@settings(max_examples=examples(80))
@given(
    doc=st.dictionaries(
        st.sampled_from(["nonce", "expires", "signature"]),
        st.one_of(
            st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.text(max_size=140),
            b32.map(lambda b: "0x" + b.hex()), st.binary(min_size=65, max_size=65).map(
                lambda b: "0x" + b.hex()
            ),
        ),
    )
)  # fmt: skip
def test_the_request_fields_parse_or_are_refused_in_one_error(doc: dict[str, object]) -> None:
    if set(doc) != {"nonce", "expires", "signature"}:
        with pytest.raises(SignatureInvalid) as err:
            SignedRequest.from_dict(doc)
        assert err.value.code == "request-unsigned"
        return
    try:
        signed = SignedRequest.from_dict(doc)
    except FormatError:
        return
    assert SignedRequest.from_dict(signed.to_dict()) == signed
