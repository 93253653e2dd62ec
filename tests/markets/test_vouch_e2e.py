"""End to end on the embedded chain and anvil: scikit-learn's iris CSV, fingerprinted by the
project (salted leaves), becomes a dataset root of a registered model version; curators vouch
for it with stake; an audit passes and rewards them. A copy with bad labels planted in a third
of the records is audited with the sample size the bound asks for (< 1/3 bad at confidence
1 - 1e-9), fails on a planted record and slashes the curators. Each outcome is read back from
the chain."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sklearn.datasets
from web3.providers.eth_tester import EthereumTesterProvider

from _chain_util import ETHER, Backend
from ailedger.chain import Chain
from ailedger.chain.deployments import deploy_contracts
from ailedger.chain.membership import Membership
from ailedger.chain.registry import ModelRegistry
from ailedger.chain.stake import StakeManager, Token, deploy_stake_manager
from ailedger.chain.vouching import (
    AuditStatus,
    DatasetVouching,
    RecordChecks,
    VouchTerms,
    deploy_dataset_vouching,
    register_with_stake_manager,
)
from ailedger.errors import IntegrityError
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.vouch import (
    answer_audit,
    audit_outcome,
    check_listing,
    salt_length_of,
    sample_size,
)

ADMIN = Secp256k1Signer(bytes.fromhex("a1" * 32))
OWNER = Secp256k1Signer(bytes.fromhex("a2" * 32))
CURATORS = [Secp256k1Signer(bytes.fromhex(f"b{i}" * 32)) for i in range(1, 4)]
CHALLENGER = Secp256k1Signer(bytes.fromhex("c1" * 32))
SECRET = b"iris dataset secret, 32 bytes.."
IRIS = Path(sklearn.datasets.__file__).parent / "data" / "iris.csv"
CHECKS = RecordChecks(
    min_length=20, max_length=40, prefix=b'["', label_prefix=b',"', label_suffix=b'"]',
    label_min=0, label_max=2,
)  # fmt: skip


def _advance(chain: Chain, seconds: int) -> None:
    """Move the chain's clock on and mine a block."""
    provider = chain.w3.provider
    if isinstance(provider, EthereumTesterProvider):
        target = chain.block_timestamp() + seconds
        provider.make_request("testing_timeTravel", [target])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [1])  # type: ignore[arg-type]
    else:
        provider.make_request("evm_increaseTime", [seconds])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _mine(chain: Chain, blocks: int) -> None:
    provider = chain.w3.provider
    for _ in range(blocks):
        provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _plant(tmp: Path) -> Path:
    """iris.csv with label 7 in every third record."""
    lines = IRIS.read_text().splitlines()
    out = [lines[0]]
    for n, line in enumerate(lines[1:]):
        out.append(line.rsplit(",", 1)[0] + ",7" if n % 3 == 0 else line)
    path = tmp / "iris-planted.csv"
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.fixture
def chain(backend: Backend) -> Chain:
    backend.artifacts_dir = None  # the contracts shipped in the package
    return backend.open()


def test_vouched_iris_passes_and_a_planted_copy_slashes(chain: Chain, tmp_path: Path) -> None:
    for who in (ADMIN, OWNER, CHALLENGER, *CURATORS):
        chain.fund(who.address, 10 * ETHER)
    # fingerprints: the real iris and a copy with bad labels planted
    good_path = tmp_path / "iris.csv"
    shutil.copy(IRIS, good_path)
    good = fingerprint_dataset(good_path, secret=SECRET)
    bad_path = _plant(tmp_path)
    bad = fingerprint_dataset(bad_path, secret=SECRET)
    assert good.size == bad.size == 150
    # contracts, an organisation whose trainer registers the model version with both roots
    dep = deploy_contracts(chain, ADMIN)
    membership = Membership(chain, dep.open(chain, "Membership"))
    registry = ModelRegistry(chain, dep.open(chain, "ModelRegistry"))
    membership.create_org("iris-lab", ADMIN.address, signer=ADMIN)
    membership.enrol("iris-lab", OWNER, "trainer", signer=ADMIN)
    registry.register_version(
        "iris-model", "1", b"\x01" * 32, b"\x02" * 32, [good.root, bad.root], signer=OWNER
    )
    version = bytes(
        chain.call(registry.contract, "versionIdOf", _org(chain, membership), "iris-model", "1")
    )
    manager_c = deploy_stake_manager(chain, ADMIN, unbonding_delay=60)
    manager = StakeManager(chain, manager_c)
    token_c = chain.deploy(
        "ConsortiumToken", "Consortium", "CON", ADMIN.address, 10**30, signer=ADMIN
    )
    token = Token(chain, token_c)
    vouching = DatasetVouching(
        chain,
        deploy_dataset_vouching(
            chain, ADMIN, stake_manager=manager.address, registry=registry.address
        ),
    )
    register_with_stake_manager(
        chain, manager.address, vouching.address, prover_bps=5_000, signer=ADMIN
    )
    _advance(chain, 121)  # the governance delay (twice the unbonding delay)
    assert manager.is_judge(vouching.address)
    assert manager.is_market(vouching.address)
    for who in (CHALLENGER, OWNER, *CURATORS):
        token.transfer(who.address, 10**24, signer=ADMIN)
    terms = VouchTerms(token.address, 150, salt_length_of(good), 5_000, 3_600, 60, 100, 1_000, 600)
    ids = [vouching.list_dataset(version, i, terms, CHECKS, signer=OWNER) for i in (0, 1)]
    # curators check the listing against their own fingerprint, then stake and vouch
    check_listing(vouching.dataset(ids[0]), good)
    with pytest.raises(IntegrityError, match="root"):
        check_listing(vouching.dataset(ids[0]), bad)
    for c, amount in zip(CURATORS, (1_000, 2_000, 3_000), strict=True):
        manager.deposit(10_000, token.address, signer=c)
        for dataset_id in ids:
            vouching.vouch(dataset_id, amount, signer=c)
    vouching.fund(ids[0], 600, signer=OWNER)

    # 1. the real dataset: an audit of 10 records passes and pays the curators
    audit = vouching.open_audit(ids[0], 10, signer=CHALLENGER)
    _mine(chain, 3)
    assert vouching.draw(audit, signer=CHALLENGER)
    answer = answer_audit(vouching, audit, good_path, secret=SECRET, signer=OWNER)
    assert answer.first_failure is None
    _advance(chain, 61)
    vouching.settle(audit, signer=CHALLENGER)
    outcome = audit_outcome(vouching, audit)
    assert outcome.passed
    assert outcome.reason is None
    reward = 600 + 1_000
    owed = [vouching.owed(c.address, token.address) for c in CURATORS]
    assert owed == [reward * w // 6_000 for w in (1_000, 2_000, 3_000)]

    # 2. the planted copy: k from the bound for "< 1/3 bad at confidence 1 - 1e-9"
    k = sample_size(1 / 3, 1e-9)
    assert k == 52
    audit = vouching.open_audit(ids[1], k, signer=CHALLENGER)
    _mine(chain, 3)
    assert vouching.draw(audit, signer=CHALLENGER)
    answer = answer_audit(vouching, audit, bad_path, secret=SECRET, signer=OWNER)
    first = answer.first_failure
    assert first is not None
    assert answer.indices[first] % 3 == 0
    vouching.settle(audit, signer=CHALLENGER)
    outcome = audit_outcome(vouching, audit)
    assert outcome.audit.status == AuditStatus.SLASHED
    assert outcome.slashed
    assert outcome.reason == "label"
    assert outcome.audit.failed_sample == first
    assert outcome.vouches == {
        c.address: w // 2 for c, w in zip(CURATORS, (1_000, 2_000, 3_000), strict=True)
    }
    for c, w in zip(CURATORS, (1_000, 2_000, 3_000), strict=True):
        assert manager.stake_of(c.address, token.address).slashed == w // 2
    prover = sum(w // 2 * 5_000 // 10_000 for w in (1_000, 2_000, 3_000))
    assert manager.owed(CHALLENGER.address, token.address) == prover
    assert vouching.owed(CHALLENGER.address, token.address) == 1_000  # the bond, back
    assert manager.totals(token.address).balanced


def _org(chain: Chain, membership: Membership) -> bytes:
    org = membership.org_of(OWNER.address)
    assert org is not None
    return org
