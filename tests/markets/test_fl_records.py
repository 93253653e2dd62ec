"""FLRewards' messages and trees in Python (:mod:`ailedger.markets.flrewards`): the EIP-712
digests are what eth-account computes from the typed-data documents (the contract tests check
them against the contract too); signatures recover; every payout and penalty proof verifies and
a changed amount, client or index does not; bad input is refused with one clear error."""

from __future__ import annotations

import pytest
from eth_account.messages import encode_typed_data
from eth_utils import keccak
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger import merkle
from ailedger.chain.eip712 import Domain, recover_signer
from ailedger.errors import InvalidInput, NotFound, ProofInvalid
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.flrewards import (
    Correction,
    Payout,
    PayoutTree,
    Penalty,
    PenaltyTree,
    RoundRecord,
    fl_rewards_domain,
    quantise,
    sign_correction,
    sign_round_record,
)

AGG = Secp256k1Signer(bytes.fromhex("a1" * 32))
VERIFIERS = [Secp256k1Signer(bytes.fromhex(f"b{i}" * 32)) for i in range(1, 4)]
words = st.binary(min_size=32, max_size=32)
u64 = st.integers(0, 2**64 - 1)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
domains = st.builds(fl_rewards_domain, st.integers(1, 2**64), addresses)
records = st.builds(
    RoundRecord, words, st.integers(1, 2**32 - 1), words, words, words, words, words, u64,
    st.integers(0, 2**256 - 1), words, u64,
)  # fmt: skip
corrections = st.builds(
    Correction, words, st.integers(1, 2**32 - 1), words, words, words, u64,
    st.integers(0, 2**256 - 1), words, u64, addresses,
)  # fmt: skip


def _eth_account_digest(doc: dict[str, object]) -> bytes:
    signable = encode_typed_data(full_message=doc)
    return bytes(keccak(b"\x19" + signable.version + signable.header + signable.body))


@settings(max_examples=examples(60))
@given(record=records, domain=domains)
def test_round_record_digest_is_eip712(record: RoundRecord, domain: Domain) -> None:
    assert record.digest(domain) == _eth_account_digest(record.typed_data(domain))


@settings(max_examples=examples(60))
@given(correction=corrections, domain=domains)
def test_correction_digest_is_eip712(correction: Correction, domain: Domain) -> None:
    assert correction.digest(domain) == _eth_account_digest(correction.typed_data(domain))


def test_signatures_recover_and_corrections_are_ordered_by_signer() -> None:
    domain = fl_rewards_domain(31337, "0x" + "11" * 20)
    record = RoundRecord(*([b"\x01" * 32, 1] + [b"\x02" * 32] * 5 + [3, 4, b"\x03" * 32, 0]))
    assert recover_signer(record.digest(domain), sign_round_record(record, domain, AGG)) == (
        AGG.address
    )
    c = Correction(b"\x01" * 32, 1, b"\x05" * 32, *[b"\x06" * 32] * 2, 1, 2, b"\x07" * 32, 0,
                   AGG.address)  # fmt: skip
    sigs = sign_correction(c, domain, list(reversed(VERIFIERS)))
    signers = [int(recover_signer(c.digest(domain), s), 16) for s in sigs]
    assert signers == sorted(signers)
    with pytest.raises(InvalidInput, match="once"):
        sign_correction(c, domain, [VERIFIERS[0], VERIFIERS[0]])
    # another domain (chain, contract) gives another digest
    assert record.digest(fl_rewards_domain(31338, "0x" + "11" * 20)) != record.digest(domain)
    assert record.digest(fl_rewards_domain(31337, "0x" + "12" * 20)) != record.digest(domain)


payouts = st.dictionaries(addresses, st.integers(1, 2**128), min_size=1, max_size=40)


@settings(max_examples=examples(50))
@given(amounts=payouts)
def test_every_payout_proof_verifies_and_no_altered_one_does(amounts: dict[str, int]) -> None:
    tree = PayoutTree(Payout(c, a) for c, a in amounts.items())
    assert tree.total == sum(amounts.values())
    assert tree.root == merkle.root(p.entry() for p in tree.payouts)
    for client, amount in amounts.items():
        proof = tree.proof(client)
        assert proof.payout.amount == amount
        proof.verify()
        altered = Payout(client, amount + 1)
        with pytest.raises(ProofInvalid):
            merkle.verify_inclusion(
                merkle.leaf_hash(altered.entry()), proof.index, proof.size, proof.hashes,
                tree.root,
            )  # fmt: skip
        if tree.size > 1:
            with pytest.raises(ProofInvalid):
                merkle.verify_inclusion(
                    merkle.leaf_hash(proof.payout.entry()), (proof.index + 1) % tree.size,
                    proof.size, proof.hashes, tree.root,
                )  # fmt: skip


@settings(max_examples=examples(30))
@given(amounts=payouts, reason=st.integers(1, 2**32 - 1))
def test_penalty_proofs_bind_client_amount_and_reason(amounts: dict[str, int], reason: int) -> None:
    tree = PenaltyTree(Penalty(c, a, reason) for c, a in amounts.items())
    for client in amounts:
        p = tree.proof(client)
        p.verify()
        other = Penalty(client, p.penalty.amount, reason % (2**32 - 1) + 1)
        if other.reason != reason:
            with pytest.raises(ProofInvalid):
                merkle.verify_inclusion(
                    merkle.leaf_hash(other.entry()), p.index, p.size, p.hashes, tree.root
                )


def test_bad_input_is_refused() -> None:
    a = "0x" + "11" * 20
    with pytest.raises(InvalidInput):
        Payout(a, 0)
    with pytest.raises(InvalidInput):
        Payout("not an address", 1)
    with pytest.raises(InvalidInput):
        Penalty(a, 1, 0)
    with pytest.raises(InvalidInput, match="at most once"):
        PayoutTree([Payout(a, 1), Payout(a.upper().replace("0X", "0x"), 2)])
    with pytest.raises(NotFound):
        PayoutTree([Payout(a, 1)]).proof("0x" + "22" * 20)
    with pytest.raises(InvalidInput):
        RoundRecord(b"\x01" * 32, 0, *[b"\x02" * 32] * 5, 0, 0, b"\x03" * 32, 0)
    with pytest.raises(InvalidInput):
        RoundRecord(b"\x01" * 31, 1, *[b"\x02" * 32] * 5, 0, 0, b"\x03" * 32, 0)
    with pytest.raises(InvalidInput):
        quantise(float("nan"))
    assert quantise(0.0012345) == 1234
    assert PayoutTree([]).root == merkle.EMPTY_ROOT
