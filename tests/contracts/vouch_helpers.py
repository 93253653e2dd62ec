"""Helpers for the DatasetVouching tests (and benchmarks/bench_gas.py): a StakeManager world
(``stake_helpers``) plus Membership and ModelRegistry, a model version whose dataset roots are
small datasets built here, and DatasetVouching registered as a judge and a market.

Roles: ``accounts[1..3]`` curate (they staked in ``stake_helpers``), ``accounts[4]`` is the
trainer who registered the version and owns the datasets, ``accounts[5]`` challenges,
``accounts[6]`` is a bystander who may prove a duplicate, ``accounts[7]``/``[8]`` as in
``stake_helpers`` (prover, treasury).

Datasets (records are CSV rows as JSON arrays, like iris, label = the last field in 0..2):
``GOOD`` (salted, 40 records), ``DUPE`` (unsalted, 8 records, every one also in the test
set), ``BAD`` (salted, 8 records labelled 7). The test set is ``DUPE``'s records plus 4 more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from contract_helpers import TRAINER, Chain, Deployment, create_org, join
from eth_utils.crypto import keccak
from oracle_helpers import warp
from stake_helpers import GOVERNANCE, PROVER_BPS, Stakes, deploy_stakes
from web3 import Web3
from web3.contract import Contract
from web3.providers.eth_tester import EthereumTesterProvider

from ailedger import merkle
from ailedger.markets._checks import RecordChecks

ORG = keccak(text="data-org")
BOND = 1_000
REWARD = 600
MIN_VOUCH = 100
SLASH_BPS = 5_000
ANSWER_WINDOW = 3_600
DISPUTE_WINDOW = 1_800
STAKE = 10**21


def row(i: int, label: str) -> bytes:
    return f'["{5 + i % 3}.{i % 10}","3.{i % 7}","1.{i % 5}","0.{i % 3}","{label}"]'.encode()


@dataclass
class Data:
    """A dataset's leaf entries (salt || record) and its tree."""

    records: list[bytes]
    salt_length: int

    @property
    def entries(self) -> list[bytes]:
        if self.salt_length == 0:
            return list(self.records)
        return [keccak(b"salt%d" % i) + r for i, r in enumerate(self.records)]

    @property
    def root(self) -> bytes:
        return merkle.root(self.entries)

    def proof(self, index: int) -> list[bytes]:
        return merkle.inclusion_proof(self.entries, index)


GOOD = Data([row(i, str(i % 3)) for i in range(40)], 32)
DUPE = Data([row(100 + i, str(i % 3)) for i in range(8)], 0)
BAD = Data([row(200 + i, "7") for i in range(8)], 32)
TEST = Data([*DUPE.records, *(row(300 + i, "1") for i in range(4))], 0)
CHECKS = RecordChecks(
    min_length=20,
    max_length=40,
    prefix=b'["',
    label_prefix=b',"',
    label_suffix=b'"]',
    label_min=0,
    label_max=2,
    test_root=TEST.root,
    test_size=len(TEST.records),
)


@dataclass
class Vouching:
    sm: Stakes
    dep: Deployment
    vouching: Contract
    version: bytes
    ids: dict[str, bytes] = field(default_factory=dict)

    @property
    def chain(self) -> Chain:
        return self.sm.chain

    @property
    def owner(self) -> str:
        return self.chain.accounts[4]

    @property
    def challenger(self) -> str:
        return self.chain.accounts[5]

    @property
    def bystander(self) -> str:
        return self.chain.accounts[6]

    def curator(self, i: int) -> str:
        return self.chain.accounts[i]

    @property
    def f(self) -> Any:
        return self.vouching.functions

    def vouch(self, name: str, who: str, amount: int) -> Any:
        return self.chain.send(self.f.vouch(self.ids[name], amount), who)

    def approve(self, token: Contract, who: str, amount: int = 10**24) -> None:
        self.chain.send(token.functions.approve(self.vouching.address, amount), who)

    def open(
        self, name: str, k: int, ahead: int = 2, who: str | None = None, bond: int = BOND
    ) -> int:
        """Open an audit of ``k`` records seeded ``ahead`` blocks on; its id."""
        who = who or self.challenger
        seed_block = self.chain.block_number() + ahead
        call = self.f.openAudit(self.ids[name], seed_block, k, bond)
        receipt = self.chain.send(call, who)
        (event,) = self.chain.events(self.vouching, "AuditOpened", receipt)
        return int(event["args"]["auditId"])

    def draw(self, audit_id: int) -> list[int]:
        """Mine past the seed block, draw, and return the sampled indices."""
        seed_block = self.audit(audit_id)["seedBlock"]
        mine(self.chain, max(0, seed_block - self.chain.block_number() + 1))
        self.chain.send(self.f.draw(audit_id))
        return [int(i) for i in self.f.sampleIndices(audit_id).call()]

    def answer_call(self, audit_id: int, data: Data, indices: list[int]) -> Any:
        entries = data.entries
        return self.f.answer(
            audit_id, [entries[i] for i in indices], [data.proof(i) for i in indices]
        )

    def audit(self, audit_id: int) -> dict[str, Any]:
        return _audit(self, audit_id)

    def dataset(self, name: str) -> Any:
        return self.f.getDataset(self.ids[name]).call()

    def held_books(self, asset: str) -> None:
        """The vouching contract holds exactly what it owes, pools and holds as bonds."""
        balance = self.sm.balance(asset, self.vouching.address)
        assert balance == self.f.held(asset).call()


_AUDIT_FIELDS = (
    "datasetId", "challenger", "seedBlock", "k", "status", "deadline", "answeredAt",
    "reasonCode", "failedSample", "prover", "seed", "leavesDigest", "evidence", "bond",
)  # fmt: skip


def _audit(v: Vouching, audit_id: int) -> dict[str, Any]:
    return dict(zip(_AUDIT_FIELDS, v.f.getAudit(audit_id).call(), strict=True))


def mine(chain: Chain, n: int) -> None:
    """Mine ``n`` empty blocks."""
    if n <= 0:
        return
    provider = chain.w3.provider
    if isinstance(provider, EthereumTesterProvider):
        provider.make_request("evm_mine", [n])  # type: ignore[arg-type]
    else:
        provider.make_request("anvil_mine", [hex(n)])  # type: ignore[arg-type]


def terms(asset: str, size: int, salt_length: int, **over: Any) -> tuple[Any, ...]:
    t = {
        "asset": asset,
        "size": size,
        "saltLength": salt_length,
        "slashBps": SLASH_BPS,
        "answerWindow": ANSWER_WINDOW,
        "disputeWindow": DISPUTE_WINDOW,
        "minVouch": MIN_VOUCH,
        "bond": BOND,
        "auditReward": REWARD,
    }
    t.update(over)
    return tuple(t.values())


def deploy_vouching(w3: Web3) -> Vouching:
    sm = deploy_stakes(w3)
    chain = sm.chain
    admin = chain.accounts[0]
    membership = chain.deploy("Membership", admin)
    registry = chain.deploy("ModelRegistry", membership.address, admin, 3600)
    dep = Deployment(chain, membership, chain.deploy("LogAnchors"), registry)
    owner = chain.accounts[4]
    create_org(dep, ORG, admin)
    join(dep, ORG, owner, admin)
    chain.send(membership.functions.grantRole(ORG, owner, TRAINER), admin)
    roots = [GOOD.root, DUPE.root, BAD.root]
    r = registry.functions
    chain.send(r.registerVersion("iris-model", "1", b"\x01" * 32, b"\x02" * 32, roots), owner)
    version = bytes(r.versionIdOf(ORG, "iris-model", "1").call())
    vouching = chain.deploy("DatasetVouching", sm.manager.address, registry.address)
    m = sm.manager.functions
    chain.send(m.proposeJudge(vouching.address, PROVER_BPS), admin)
    chain.send(m.proposeMarket(vouching.address), admin)
    warp(chain, GOVERNANCE)
    v = Vouching(sm, dep, vouching, version)
    checks = CHECKS.as_tuple()
    for name, index, data, token in (
        ("good", 0, GOOD, sm.token),
        ("dupe", 1, DUPE, sm.token),
        ("bad", 2, BAD, sm.token),
    ):
        call = v.f.list(
            version, index, terms(token.address, len(data.records), data.salt_length), checks
        )
        chain.send(call, owner)
        v.ids[name] = bytes(v.f.datasetIdOf(version, index).call())
    # The same roots under other assets: a second version (fee-on-transfer and hook tokens).
    chain.send(
        r.registerVersion("iris-model", "2", b"\x03" * 32, b"\x02" * 32, [GOOD.root, BAD.root]),
        owner,
    )
    version2 = bytes(r.versionIdOf(ORG, "iris-model", "2").call())
    for name, index, data, token in (("fee", 0, GOOD, sm.fee), ("hook", 1, BAD, sm.hook)):
        call = v.f.list(
            version2, index, terms(token.address, len(data.records), data.salt_length), checks
        )
        chain.send(call, owner)
        v.ids[name] = bytes(v.f.datasetIdOf(version2, index).call())
    for i in (1, 2, 3):
        for token in (sm.token, sm.fee, sm.hook):
            sm.deposit(chain.accounts[i], token, STAKE)
    for who in (chain.accounts[5], chain.accounts[6], owner):
        for token in (sm.token, sm.fee, sm.hook):
            sm.give(token, who, 10**24)
            v.approve(token, who)
    return v


def books(v: Vouching, asset: str) -> None:
    """StakeManager's books per curator and in sum (deposited == staked + slashed +
    withdrawn; it holds staked + owed; slashed == owed + claimed), and DatasetVouching holds
    exactly its pools, open bonds and owed payments."""
    sm = v.sm
    names = ("free", "locked", "unbonding", "release", "deposited", "slashed", "withdrawn")
    staked = 0
    for i in (1, 2, 3):
        s = dict(zip(names, sm.manager.functions.stakeOf(v.curator(i), asset).call(), strict=True))
        mine = s["free"] + s["locked"] + s["unbonding"]
        assert s["deposited"] == mine + s["slashed"] + s["withdrawn"]
        staked += mine
    t = sm.totals(asset)
    assert t["staked"] == staked
    assert t["deposited"] == t["staked"] + t["slashed"] + t["withdrawn"]
    assert t["slashed"] == t["owed"] + t["claimed"]
    assert sm.balance(asset, sm.manager.address) == t["staked"] + t["owed"]
    v.held_books(asset)
    # what each curator vouches is locked by this market, in sum too
    for name, dataset_id in v.ids.items():
        d = v.dataset(name)
        if d[6][0] != asset:  # terms.asset
            continue
        total = 0
        for c in v.f.curatorsOf(dataset_id).call():
            total += v.f.vouched(dataset_id, c).call()
        assert total == d[4]  # totalVouched
