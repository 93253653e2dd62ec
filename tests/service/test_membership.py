"""The on-chain membership check of ``ailedger serve`` (:mod:`ailedger.service.membership`)
over a stand-in chain: answers, the per-address cache (time-to-live, bound, shared misses),
fail-closed refusals (chain down, not deployed, no contract), and the client's mapping of
problems by type."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.chain import load_artifact
from ailedger.chain._hex import keccak
from ailedger.chain.eip712 import role_id
from ailedger.errors import InvalidInput, SignatureInvalid
from ailedger.service import client
from ailedger.service.app import ServiceSettings
from ailedger.service.membership import (
    HAS_ROLE_SELECTOR,
    ORG_OF_SELECTOR,
    ChainMembership,
    ChainUnavailable,
)
from ailedger.service.problems import Problem

CONTRACT = "0x" + "cc" * 20
MEMBER = "0x" + "a1" * 20
OUTSIDER = "0x" + "b2" * 20
ORG = keccak(text="Frostline Pharma")


class FakeChain:
    """Answers ``eth_chainId`` and Membership's ``orgOf`` / ``hasRole`` like a node."""

    def __init__(self) -> None:
        self.orgs: dict[str, bytes] = {MEMBER: ORG}
        self.roles: set[tuple[str, bytes]] = set()
        self.down = False
        self.code = True
        self.batches = 0
        self.gate: asyncio.Event | None = None

    async def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        self.batches += 1
        if self.gate is not None:
            await self.gate.wait()
        if self.down:
            raise ChainUnavailable("the chain node http://127.0.0.1:9 is unreachable: refused")
        out: list[Any] = []
        for method, params in calls:
            if method == "eth_chainId":
                out.append("0x7a69")
                continue
            assert method == "eth_call"
            assert params[1] == "latest"
            assert params[0]["to"] == CONTRACT
            if not self.code:
                out.append("0x")
                continue
            data = bytes.fromhex(params[0]["data"][2:])
            account = "0x" + data[16:36].hex()
            if data[:4] == ORG_OF_SELECTOR:
                out.append("0x" + self.orgs.get(account, bytes(32)).hex())
            else:
                assert data[:4] == HAS_ROLE_SELECTOR
                held = (account, data[36:68]) in self.roles
                out.append("0x" + int(held).to_bytes(32, "big").hex())
        return out


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _check(members: ChainMembership, *signers: str) -> Problem | None:
    try:
        asyncio.run(members.check(signers))
    except Problem as exc:
        return exc
    return None


def _membership(chain: FakeChain, **kwargs: Any) -> ChainMembership:
    return ChainMembership(
        chain, lambda chain_id: CONTRACT if chain_id == 31337 else None, **kwargs
    )


def test_selectors_are_the_contracts_functions() -> None:
    abi = load_artifact("Membership").abi
    names = {f"{f['name']}({','.join(i['type'] for i in f['inputs'])})" for f in abi if
             f.get("type") == "function"}  # fmt: skip
    for signature, selector in (
        ("orgOf(address)", ORG_OF_SELECTOR),
        ("hasRole(address,bytes32)", HAS_ROLE_SELECTOR),
    ):
        assert signature in names
        assert keccak(text=signature)[:4] == selector


def test_a_member_is_admitted_and_an_outsider_refused_by_name() -> None:
    chain = FakeChain()
    members = _membership(chain)
    assert _check(members, MEMBER) is None
    refused = _check(members, MEMBER, OUTSIDER)
    assert refused is not None
    assert (refused.status, refused.slug) == (403, "signer-not-member")
    assert OUTSIDER in refused.detail
    assert "chain 31337" in refused.detail
    assert CONTRACT in refused.detail


def test_a_signer_that_is_no_ethereum_account_is_refused_without_a_read() -> None:
    chain = FakeChain()
    refused = _check(_membership(chain), "ed25519-key-id")
    assert refused is not None
    assert refused.status == 403
    assert chain.batches == 0


def test_answers_are_cached_for_the_ttl_then_read_again() -> None:
    chain, clock = FakeChain(), Clock()
    members = _membership(chain, ttl=2.0, clock=clock)
    for _ in range(5):
        assert _check(members, MEMBER) is None
    assert members.reads == 1  # one read for five submissions
    del chain.orgs[MEMBER]  # removed on-chain
    clock.now += 1.9
    assert _check(members, MEMBER) is None  # within the ttl: the cached answer
    clock.now += 0.2
    refused = _check(members, MEMBER)  # past it: read again, refused
    assert refused is not None
    assert refused.status == 403
    assert members.reads == 2


def test_ttl_zero_reads_the_chain_every_time() -> None:
    chain = FakeChain()
    members = _membership(chain, ttl=0)
    assert _check(members, MEMBER) is None
    del chain.orgs[MEMBER]
    assert _check(members, MEMBER) is not None
    assert members.reads == 2


def test_the_cache_is_bounded() -> None:
    chain = FakeChain()
    members = _membership(chain, max_entries=2)
    for i in range(5):
        _check(members, "0x" + f"{i:02x}" * 20)
    assert len(members._cache) == 2


def test_concurrent_misses_share_one_read() -> None:
    chain = FakeChain()
    members = _membership(chain)

    async def many() -> None:
        chain.gate = asyncio.Event()
        tasks = [asyncio.create_task(members.check([MEMBER])) for _ in range(20)]
        await asyncio.sleep(0)
        chain.gate.set()
        await asyncio.gather(*tasks)

    asyncio.run(many())
    assert members.reads == 1


def test_a_chain_that_is_down_is_503_never_an_admission() -> None:
    chain = FakeChain()
    members = _membership(chain, ttl=0)
    assert _check(members, MEMBER) is None
    chain.down = True
    refused = _check(members, MEMBER)
    assert refused is not None
    assert (refused.status, refused.slug) == (503, "chain-unavailable")
    assert refused.headers["Retry-After"] == "1"
    assert "unreachable" in refused.detail
    chain.down = False
    assert _check(members, MEMBER) is None  # back: admitted again


def test_a_failed_read_is_not_cached() -> None:
    chain = FakeChain()
    members = _membership(chain, ttl=60)
    chain.down = True
    assert _check(members, MEMBER) is not None
    chain.down = False
    assert _check(members, MEMBER) is None


def test_no_contract_at_the_address_is_503_not_a_non_member() -> None:
    chain = FakeChain()
    chain.code = False  # a reset chain: eth_call answers "0x"
    refused = _check(_membership(chain), MEMBER)
    assert refused is not None
    assert refused.status == 503


def test_not_deployed_is_503_until_the_deployment_is_found() -> None:
    chain = FakeChain()
    book: dict[int, str] = {}
    members = ChainMembership(chain, book.get)
    refused = _check(members, MEMBER)
    assert refused is not None
    assert (refused.status, refused.slug) == (503, "membership-not-deployed")
    book[31337] = CONTRACT  # the operator deploys through /rpc
    assert _check(members, MEMBER) is None


def test_a_required_role_must_be_held() -> None:
    chain = FakeChain()
    members = _membership(chain, require_role="qa")
    refused = _check(members, MEMBER)
    assert refused is not None
    assert refused.status == 403
    assert "role qa" in refused.detail
    chain.roles.add((MEMBER, role_id("qa")))
    members._cache.clear()
    assert _check(members, MEMBER) is None


@given(
    st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=30),
)
@settings(max_examples=examples(50))
def test_with_ttl_zero_every_answer_is_the_chains(steps: list[tuple[int, bool]]) -> None:
    chain = FakeChain()
    members = _membership(chain, ttl=0, max_entries=3)
    for n, member in steps:
        account = "0x" + f"{n:02x}" * 20
        if member:
            chain.orgs[account] = ORG
        else:
            chain.orgs.pop(account, None)
        assert (_check(members, account) is None) == member


def test_allow_list_and_membership_do_not_combine() -> None:
    with pytest.raises(ValueError, match="do not combine"):
        ServiceSettings(allow=frozenset({MEMBER}), membership=_membership(FakeChain()))


def _problem(status: int, slug: str) -> bytes:
    return json.dumps(
        {"type": f"https://ailedger.dev/problems/{slug}", "status": status, "detail": "d"}
    ).encode()


def test_the_client_maps_problems_by_type_not_status() -> None:
    with pytest.raises(SignatureInvalid):
        client._raise_problem(422, _problem(422, "signature-invalid"), "x", None, "u")
    for status, slug in ((422, "invalid-parameter"), (422, "verification-failed"),
                         (403, "signer-not-member"), (422, "")):  # fmt: skip
        with pytest.raises(InvalidInput):
            client._raise_problem(status, _problem(status, slug), "x", None, "u")
    with pytest.raises(InvalidInput):  # not problem+json at all: never a bad signature
        client._raise_problem(422, b"<html>", "Unprocessable", None, "u")
