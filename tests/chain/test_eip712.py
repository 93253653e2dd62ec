"""ailedger.chain.eip712: the typed data the contracts check, against eth-account's encoder."""

from __future__ import annotations

import pytest
from eth_abi.abi import encode as abi_encode
from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_utils.crypto import keccak
from hypothesis import given
from hypothesis import strategies as st

from ailedger.chain.eip712 import (
    APPROVAL_TYPE,
    CHECKPOINT_TYPE,
    COSIGNATURE_TYPE,
    JOIN_TYPE,
    Domain,
    approval_digest,
    approval_typed_data,
    checkpoint_digest,
    checkpoint_typed_data,
    cosignature_digest,
    cosignature_typed_data,
    join_digest,
    join_typed_data,
    log_id,
    recover_signer,
    registration_digest,
    registration_typed_data,
    role_id,
    sign_digest,
    sort_by_signer,
    version_id,
)
from ailedger.errors import InvalidInput, SignatureInvalid
from ailedger.identity.keys import SECP256K1_N, Secp256k1Signer

CONTRACT = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
hash32 = st.binary(min_size=32, max_size=32)
uint64 = st.integers(0, 2**64 - 1)
uint256 = st.integers(0, 2**256 - 1)
chain_ids = st.integers(1, 2**64)
addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
KEY = Secp256k1Signer(keccak(text="eip712 test key"))


def _eth_account_digest(doc: dict[str, object]) -> bytes:
    signable = encode_typed_data(full_message=doc)
    return keccak(b"\x19" + signable.version + signable.header + signable.body)


@given(chain_ids, addresses, hash32, uint64, hash32)
def test_checkpoint_and_cosignature_digests_match_eth_account(
    chain_id: int, contract: str, log: bytes, size: int, root: bytes
) -> None:
    domain = Domain.log_anchors(chain_id, contract)
    doc = checkpoint_typed_data(domain, log, size, root)
    assert checkpoint_digest(domain, log, size, root) == _eth_account_digest(doc)
    doc = cosignature_typed_data(domain, log, size, root)
    assert cosignature_digest(domain, log, size, root) == _eth_account_digest(doc)
    assert checkpoint_digest(domain, log, size, root) != cosignature_digest(domain, log, size, root)


@given(chain_ids, addresses, hash32, addresses)
def test_registration_digest_matches_eth_account(
    chain_id: int, contract: str, log: bytes, admin: str
) -> None:
    domain = Domain.log_anchors(chain_id, contract)
    doc = registration_typed_data(domain, log, admin)
    assert registration_digest(domain, log, admin) == _eth_account_digest(doc)


@given(chain_ids, addresses, st.lists(hash32, min_size=5, max_size=5), addresses, uint256, uint256)
def test_approval_digest_matches_eth_account(
    chain_id: int,
    contract: str,
    ids: list[bytes],
    approver: str,
    nonce: int,
    deadline: int,
) -> None:
    domain = Domain.model_registry(chain_id, contract)
    doc = approval_typed_data(domain, *ids, approver, nonce, deadline)
    expected = _eth_account_digest(doc)
    assert approval_digest(domain, *ids, approver, nonce, deadline) == expected


@given(chain_ids, addresses, hash32, addresses, uint256, uint256)
def test_join_digest_matches_eth_account(
    chain_id: int, contract: str, org: bytes, account: str, nonce: int, deadline: int
) -> None:
    domain = Domain.membership(chain_id, contract)
    doc = join_typed_data(domain, org, account, nonce, deadline)
    assert join_digest(domain, org, account, nonce, deadline) == _eth_account_digest(doc)


def test_type_strings_are_the_contracts() -> None:
    assert CHECKPOINT_TYPE == "Checkpoint(bytes32 logId,uint64 size,bytes32 root)"
    assert COSIGNATURE_TYPE == "Cosignature(bytes32 logId,uint64 size,bytes32 root)"
    assert APPROVAL_TYPE == (
        "Approval(bytes32 versionId,bytes32 subjectDigest,bytes32 env,bytes32 role,bytes32 orgId,"
        "address approver,uint256 nonce,uint256 deadline)"
    )
    assert JOIN_TYPE == "Join(bytes32 orgId,address account,uint256 nonce,uint256 deadline)"


def test_domain_binds_chain_and_contract() -> None:
    a = Domain.log_anchors(1, CONTRACT)
    assert a.separator() != Domain.log_anchors(2, CONTRACT).separator()
    assert a.separator() != Domain.log_anchors(1, "0x" + "11" * 20).separator()
    assert a.separator() != Domain.model_registry(1, CONTRACT).separator()
    assert Domain.log_anchors(1, CONTRACT.lower()).verifying_contract == CONTRACT


@given(hash32)
def test_every_key_form_signs_the_same_low_s_signature(digest: bytes) -> None:
    account = Account.from_key(KEY._secret())
    sigs = {sign_digest(digest, k) for k in (KEY, account, KEY._secret())}
    assert len(sigs) == 1
    (sig,) = sigs
    assert len(sig) == 65
    assert sig[64] in (27, 28)
    assert int.from_bytes(sig[32:64], "big") <= SECP256K1_N // 2
    assert recover_signer(digest, sig) == KEY.address
    # eth-account agrees on the signer of the typed-data digest.
    assert Account._recover_hash(digest, signature=sig) == KEY.address


def test_signature_over_typed_data_matches_eth_account_signing() -> None:
    domain = Domain.log_anchors(31337, CONTRACT)
    log, root = log_id("example.org/log", KEY.address), bytes(range(32))
    doc = checkpoint_typed_data(domain, log, 42, root)
    theirs = Account.from_key(KEY._secret()).sign_typed_data(full_message=doc)
    assert sign_digest(checkpoint_digest(domain, log, 42, root), KEY) == theirs.signature


def test_recover_rejects_malleable_and_malformed_signatures() -> None:
    digest = keccak(text="x")
    sig = sign_digest(digest, KEY)
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    with pytest.raises(SignatureInvalid, match="high s"):
        recover_signer(digest, twin)
    with pytest.raises(SignatureInvalid):
        recover_signer(digest, sig[:64] + bytes([sig[64] - 27]))
    with pytest.raises(SignatureInvalid):
        recover_signer(digest, sig[:64])
    with pytest.raises(InvalidInput):
        recover_signer(digest[:31], sig)


def test_sort_by_signer_orders_by_address() -> None:
    digest = keccak(text="cosign")
    keys = [Secp256k1Signer(keccak(text=f"w{i}")) for i in range(5)]
    ordered = sort_by_signer(digest, [sign_digest(digest, k) for k in keys])
    signers = [int(recover_signer(digest, s), 16) for s in ordered]
    assert signers == sorted(signers)
    assert len(set(signers)) == 5


def test_bad_input() -> None:
    domain = Domain.log_anchors(1, CONTRACT)
    registry = Domain.model_registry(1, CONTRACT)
    with pytest.raises(InvalidInput):
        checkpoint_digest(domain, b"short", 1, bytes(32))
    with pytest.raises(InvalidInput):
        checkpoint_digest(domain, bytes(32), 2**64, bytes(32))
    with pytest.raises(InvalidInput):
        checkpoint_digest(domain, bytes(32), -1, bytes(32))
    with pytest.raises(InvalidInput):
        approval_digest(registry, *[bytes(32)] * 5, "0x12", 0, 0)
    with pytest.raises(InvalidInput):
        approval_digest(registry, *[bytes(32)] * 4, b"", CONTRACT, 0, 0)
    with pytest.raises(InvalidInput):
        approval_digest(registry, *[bytes(32)] * 5, CONTRACT, 2**256, 0)
    with pytest.raises(InvalidInput):
        join_digest(Domain.membership(1, CONTRACT), bytes(31), CONTRACT, 0, 0)
    with pytest.raises(InvalidInput):
        Domain.log_anchors(0, CONTRACT)
    with pytest.raises(InvalidInput):
        Domain.log_anchors(1, "not an address")
    with pytest.raises(InvalidInput):
        sign_digest(bytes(31), KEY)
    with pytest.raises(InvalidInput):
        sign_digest(bytes(32), "key")  # type: ignore[arg-type]


def test_identifiers() -> None:
    assert role_id("qa") == keccak(b"qa")
    signer = KEY.address
    assert log_id("example.org/log", signer) == keccak(
        abi_encode(["string", "address"], ["example.org/log", signer])
    )
    # Origin and key together: another key, or another origin, is another log.
    assert log_id("example.org/log", "0x" + "11" * 20) != log_id("example.org/log", signer)
    assert log_id("example.org/lo", signer) != log_id("example.org/log", signer)
    org_a, org_b = keccak(b"a"), keccak(b"b")
    assert version_id(org_a, "m", "1") != version_id(org_a, "m1", "")  # abi.encode boundary
    assert version_id(org_a, "m", "1") != version_id(org_b, "m", "1")  # namespaced by org
    assert len(version_id(org_a, "m", "1")) == 32
