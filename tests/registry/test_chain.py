"""The on-chain registry backend (ModelRegistry + Membership) under the registry, on the
embedded chain and on anvil: the release path, the contract's own enforcement past the
off-chain gate, idempotent retries, and a node that goes down between the log and the chain.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _anvil import Anvil
from _chain_util import ETHER, Backend
from _cli import PASSWORD as CLI_PASSWORD
from _cli import fails as _fails
from _cli import ok as _ok
from _workflow_util import Setup, variant
from ailedger.attest.predicates import DeploymentPredicate, EventLink
from ailedger.attest.statements import attest
from ailedger.chain import ANVIL_CHAIN_ID, Chain, ContractReverted, connect_rpc, open_embedded
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook, deploy_contracts
from ailedger.chain.eip712 import role_id
from ailedger.chain.membership import Membership
from ailedger.chain.registry import version_key
from ailedger.demos.samples import SAMPLE_DATA, SAMPLE_MODEL
from ailedger.errors import ConflictError, GateFailed, InvalidInput, KeyAccessError, NodeUnavailable
from ailedger.identity.keys import (
    PBKDF2_ROUNDS_TEST_ONLY,
    SCRYPT_N_TEST_ONLY,
    Keystore,
    P256Signer,
    Secp256k1Signer,
    Signer,
)
from ailedger.registry import (
    LocalBackend,
    Registry,
    RoleMissing,
    VersionRef,
    VersionRegistration,
)
from ailedger.registry._chain import (
    ChainBackend,
    RequirementNotSynced,
    chain_requirement,
    digest_bytes,
)
from ailedger.registry._records import named_subject, utc_now
from ailedger.registry.policy import Policy, parse_policy
from ailedger.registry.status import check_chain, check_events
from ailedger.registry.trace import trace_at
from ailedger.workspace import Workspace

PASSWORD = "pw"
POLICY = """\
version = 1
[all]
artifact_must_match = true
[env.prod]
min_organisations = 2
[env.prod.approvals]
qa = 1
auditor = 1
"""
V1, V2 = VersionRef("triage", "1.0"), VersionRef("triage", "2.0")
#: Their ids on-chain: versions are namespaced by the registering organisation.
ACME_V1, ACME_V2 = version_key("acme", "triage", "1.0"), version_key("acme", "triage", "2.0")
DATASET = VersionRef("patients", "1")


@dataclass
class World:
    ws: Workspace
    store: Keystore
    chain: Chain
    backend: ChainBackend
    reg: Registry
    policy: Policy
    root: Path

    def signer(self, name: str) -> Signer:
        return self.store.signer(name, PASSWORD)

    def register(self, ref: VersionRef) -> int:
        path = self.root / ref.version
        if not path.exists():
            shutil.copytree(SAMPLE_MODEL, path)
            (path / "config.json").write_text(f'{{"version": "{ref.version}"}}')
        rec = self.reg.register_model(path, ref, self.signer("trainer"), datasets=[DATASET])
        return rec.log_index

    def approve_all(self, ref: VersionRef) -> None:
        self.reg.approve(ref, "qa", self.signer("qa"))
        self.reg.approve(ref, "auditor", self.signer("auditor"))

    def current(self) -> bytes | None:
        return self.backend.registry.current("prod")


def _secp(signer: object) -> Secp256k1Signer:
    assert isinstance(signer, Secp256k1Signer)
    return signer


def make_world(chain: Chain, root: Path) -> World:
    """A workspace whose keys are members on ``chain``: trainer and qa in acme, the auditor
    in globex, an outsider in none; the admin deployed the contracts."""
    ws = Workspace.init(root, origin="example.com/registry-chain")
    store = Keystore(
        ws.keys_dir, scrypt_n=SCRYPT_N_TEST_ONLY, pbkdf2_rounds=PBKDF2_ROUNDS_TEST_ONLY
    )
    orgs = {"admin": None, "trainer": "acme", "qa": "acme", "auditor": "globex", "outsider": None}
    for name, org in orgs.items():
        store.create(name, PASSWORD, org=org)
    keys = {n: store.signer(n, PASSWORD) for n in orgs}
    for k in keys.values():
        chain.fund(k.keyid, 10 * ETHER)
    admin = keys["admin"]
    assert isinstance(admin, Secp256k1Signer)
    dep = deploy_contracts(chain, admin)
    members = Membership(chain, dep.open(chain, "Membership"))
    # every member joins with its own signed consent; the first of an org becomes its admin
    members.create_org("acme", keys["trainer"].keyid, signer=admin)
    members.enrol("acme", _secp(keys["trainer"]), "trainer", signer=admin)
    members.enrol("acme", _secp(keys["qa"]), "qa", signer=admin)
    members.create_org("globex", keys["auditor"].keyid, signer=admin)
    members.enrol("globex", _secp(keys["auditor"]), "auditor", signer=admin)
    rules = ChainBackend.from_deployment(chain, dep, keys=store.list_keys())
    reg = Registry.open(ws, keys=store.list_keys(), backend=rules)
    data = root / "patients.csv"
    shutil.copyfile(SAMPLE_DATA / "patients.csv", data)
    reg.register_dataset(data, DATASET, keys["trainer"])
    return World(ws, store, chain, rules, reg, parse_policy(POLICY), root)


@pytest.fixture
def world(backend: Backend, tmp_path: Path) -> Iterator[World]:
    backend.artifacts_dir = None  # the shipped contracts
    w = make_world(backend.open(), tmp_path / "ws")
    yield w
    w.reg.close()


def test_rollbacks_walk_back_the_same_history_on_chain(world: World) -> None:
    """Issue 11 item 9 on-chain: after deploys of 1, 2, 3, 1, 2 each rollback goes one step
    further back, and the contract serves what the log chose at every step."""
    w, admin = world, world.signer("admin")
    refs = [VersionRef("triage", v) for v in ("1", "2", "3")]
    for ref in refs:
        w.register(ref)
        w.approve_all(ref)
    for i in (0, 1, 2, 0, 1):
        w.reg.deploy(refs[i], "prod", admin, w.policy)
    for i in (0, 2, 1, 0):
        assert w.reg.rollback("prod", admin).ref == str(refs[i])
        assert w.current() == version_key("acme", "triage", refs[i].version)
    with pytest.raises(ConflictError, match="only version deployed"):
        w.reg.rollback("prod", admin)


def test_release_path_on_chain(world: World) -> None:
    w, admin = world, world.signer("admin")
    w.register(V1)
    info = w.backend.registry.version(ACME_V1)
    assert info is not None
    assert not info.deprecated
    assert "sha256:" + info.subject_digest.hex() == w.reg.model(V1).digest
    assert w.backend.role_of(w.signer("qa").keyid) == ({"qa"}, "acme")
    assert w.backend.role_of(w.signer("trainer").keyid) == ({"admin", "trainer"}, "acme")
    assert w.backend.role_of(w.signer("auditor").keyid) == ({"admin", "auditor"}, "globex")
    assert w.backend.role_of(w.signer("outsider").keyid) is None

    w.reg.approve(V1, "qa", w.signer("qa"))
    with pytest.raises(GateFailed, match="auditor"):
        w.reg.deploy(V1, "prod", admin, w.policy)
    w.reg.approve(V1, "auditor", w.signer("auditor"))
    assert w.reg.gate(V1, w.policy, "prod").passed
    deployed = w.reg.deploy(V1, "prod", admin, w.policy)
    assert w.current() == ACME_V1
    # the policy's approvals became the environment's on-chain requirement
    req = chain_requirement(w.backend.registry, "prod")
    assert req is not None
    assert req.roles == (("auditor", 1), ("qa", 1))
    assert req.min_organisations == 2
    assert w.backend.sync_policy(w.policy, "prod", signer=admin) is False  # already equal

    # retries of actions that already happened: no new log entry, no failed transaction
    size = w.reg.log.size()
    again = w.reg.deploy(V1, "prod", admin, w.policy)
    assert again.already
    assert again.log_index == deployed.log_index
    w.register(V1)
    assert w.reg.log.size() == size
    # approving again what the chain holds is a fresh decision (it renews the approval's age)
    renewed = w.reg.approve(V1, "qa", w.signer("qa"))
    assert not renewed.already
    assert w.reg.log.size() == size + 1
    assert w.backend.registry.approval_count(ACME_V1, "qa") == 1

    # a second version, then a rollback to the first: the chain and trace agree
    w.register(V2)
    w.approve_all(V2)
    w.reg.deploy(V2, "prod", admin, w.policy)
    assert w.current() == ACME_V2
    rolled = w.reg.rollback("prod", admin)
    assert w.current() == ACME_V1
    served = trace_at(w.reg, "prod", datetime.now(UTC))
    assert (served.ref, served.action) == (V1, "rollback")
    assert served.event.entry.index == rolled.log_index

    # deprecate, then a deploy fails off-chain, and on-chain past the off-chain checks
    w.reg.deprecate(V2, "recall", w.signer("trainer"))
    info2 = w.backend.registry.version(ACME_V2)
    assert info2 is not None
    assert info2.deprecated
    with pytest.raises(ConflictError, match="deprecated"):
        w.reg.deploy(V2, "prod", admin, w.policy)
    with pytest.raises(ContractReverted) as caught:
        w.backend.deploy("prod", V2, 0, signer=admin)
    assert caught.value.error_name == "VersionDeprecated"
    w.backend.deprecate(V2, 0, signer=w.signer("trainer"))  # a retry is fine


def test_contract_enforces_the_gate_past_the_off_chain_checks(world: World) -> None:
    w, admin = world, world.signer("admin")
    w.register(V1)
    w.reg.approve(V1, "qa", w.signer("qa"))
    w.backend.sync_policy(w.policy, "prod", signer=admin)
    with pytest.raises(ContractReverted) as caught:
        w.backend.deploy("prod", V1, 0, signer=admin)
    assert caught.value.error_name == "ApprovalsMissing"
    assert caught.value.exit_code == 9
    assert w.current() is None
    # approvals from one organisation only, where the requirement asks for two
    assert isinstance(admin, Secp256k1Signer)
    w.backend.registry.set_requirement("staging", {"qa": 1}, 2, signer=admin)
    with pytest.raises(ContractReverted, match="TooFewOrganisations"):
        w.backend.deploy("staging", V1, 0, signer=admin)
    # unknown environment: nothing was ever required there
    with pytest.raises(ContractReverted, match="UnknownEnvironment"):
        w.backend.deploy("dev", V1, 0, signer=admin)
    # a policy weaker than the chain's rule is only scheduled (the contract's delay)
    weaker = parse_policy(POLICY.replace("auditor = 1\n", ""))
    with pytest.raises(RequirementNotSynced, match="scheduled"):
        w.backend.sync_policy(weaker, "prod", signer=admin)
    with pytest.raises(ContractReverted, match="ApprovalsMissing"):
        w.backend.deploy("prod", V1, 0, signer=admin)


def test_approval_without_the_role_is_refused_off_and_on_chain(world: World) -> None:
    w = world
    w.register(V1)
    size = w.reg.log.size()
    with pytest.raises(RoleMissing, match="holds: none"):
        w.reg.approve(V1, "qa", w.signer("outsider"))
    with pytest.raises(RoleMissing, match="holds: qa"):
        w.reg.approve(V1, "auditor", w.signer("qa"))
    assert w.reg.log.size() == size  # nothing signed
    with pytest.raises(ContractReverted) as caught:
        w.backend.approve(V1, "auditor", True, 0, signer=w.signer("qa"))
    assert caught.value.error_name == "RoleNotHeld"
    with pytest.raises(ContractReverted, match="NotAMember"):
        w.backend.approve(V1, "qa", True, 0, signer=w.signer("outsider"))
    assert w.backend.registry.approval_count(ACME_V1, "auditor") == 0
    # a rejection is recorded in the log only
    w.backend.approve(V1, "qa", False, 0, signer=w.signer("qa"))
    assert w.backend.registry.approval_count(ACME_V1, "qa") == 0


def test_requirement_sync_needs_the_admin_and_a_secp256k1_key(world: World) -> None:
    w = world
    stricter = parse_policy(POLICY.replace("qa = 1", "qa = 2\nsecurity-review = 1"))
    with pytest.raises(RequirementNotSynced, match="only the registry admin"):
        w.backend.sync_policy(stricter, "prod", signer=w.signer("trainer"))
    assert chain_requirement(w.backend.registry, "prod") is None
    assert w.backend.sync_policy(stricter, "prod", signer=w.signer("admin")) is True
    req = chain_requirement(w.backend.registry, "prod", ["security-review"])
    assert req is not None
    assert dict(req.roles) == {"auditor": 1, "qa": 2, "security-review": 1}
    unnamed = chain_requirement(w.backend.registry, "prod")
    assert unnamed is not None
    assert "0x" + role_id("security-review").hex() in dict(unnamed.roles)
    assert w.backend.sync_policy(stricter, "prod", signer=w.signer("admin")) is False
    with pytest.raises(KeyAccessError, match="secp256k1"):
        w.backend.deploy("prod", V1, 0, signer=P256Signer.generate())
    assert w.backend.role_of(P256Signer.generate().keyid) is None


def test_an_approval_in_the_log_but_not_on_chain_is_completed(world: World) -> None:
    """The log took the approval and the chain write never happened (here: signed through
    the local backend on the same workspace): approving again completes the chain side."""
    w = world
    w.register(V1)
    qa = w.signer("qa")
    ws = LocalBackend.grant(w.ws, qa.keyid, "qa", "acme")
    with Registry.open(ws, keys=w.store.list_keys()) as local:
        first = local.approve(V1, "qa", qa)
    w.reg.sync()
    size = w.reg.log.size()
    assert not w.backend.approved(V1, "qa", signer=qa)
    again = w.reg.approve(V1, "qa", qa)
    assert again.already
    assert again.log_index == first.log_index
    assert w.reg.log.size() == size
    assert w.backend.approved(V1, "qa", signer=qa)
    # a rejection is a new decision, in the log only
    assert not w.reg.approve(V1, "qa", qa, reject=True).already


def test_chain_refusals_come_before_the_log(world: World) -> None:
    w, admin, trainer = world, world.signer("admin"), world.signer("trainer")
    for ref in (V1, V2):
        w.register(ref)
        w.approve_all(ref)
    size = w.reg.log.size()
    with pytest.raises(RequirementNotSynced):  # prod has no requirement yet; not the admin
        w.reg.deploy(V1, "prod", trainer, w.policy)
    w.backend.sync_policy(w.policy, "prod", signer=admin)
    with pytest.raises(ContractReverted) as caught:
        w.reg.deploy(V1, "prod", trainer, w.policy)
    assert caught.value.error_name == "NotDeployer"
    assert w.reg.log.size() == size
    w.reg.deploy(V1, "prod", admin, w.policy)
    w.reg.deploy(V2, "prod", admin, w.policy)
    with pytest.raises(ContractReverted, match="NotDeployer"):
        w.reg.rollback("prod", trainer)
    assert w.reg.log.size() == size + 2
    assert w.reg.current("prod") == V2


def test_issue12_register_by_a_non_member_is_refused_before_the_log(world: World) -> None:
    """Reproduced: `model register` by a key that is not a member reverted on-chain after its
    entry was appended. The registration is now run as a call first."""
    w = world
    path = w.root / "outsider-model"
    shutil.copytree(SAMPLE_MODEL, path)
    size = w.reg.log.size()
    with pytest.raises(ContractReverted) as caught:
        w.reg.register_model(path, V1, w.signer("outsider"), datasets=[DATASET])
    assert caught.value.error_name == "NotAMember"
    with pytest.raises(ContractReverted) as caught:  # a member without the trainer role
        w.reg.register_model(path, V1, w.signer("qa"), datasets=[DATASET])
    assert caught.value.error_name == "RoleNotHeld"
    assert w.reg.log.size() == size  # nothing signed, nothing logged
    assert w.reg.index.version("model", V1) is None


def test_issue12_deprecate_and_approve_refusals_come_before_the_log(world: World) -> None:
    """Reproduced: `deprecate --key release` was refused (NotRegistrantOrAdmin) after a
    deprecation signed by that key was logged. Now: simulated first; nothing is logged."""
    w = world
    w.register(V1)
    size = w.reg.log.size()
    with pytest.raises(ContractReverted) as caught:
        w.reg.deprecate(V1, "superseded", w.signer("qa"))
    assert caught.value.error_name == "NotRegistrantOrAdmin"
    assert w.reg.log.size() == size
    assert w.reg.index.deprecation(V1) is None
    w.reg.deprecate(V1, "superseded", w.signer("trainer"))  # the registrant may
    assert w.reg.log.size() == size + 1
    with pytest.raises(ContractReverted) as caught:  # an approval the contract would refuse
        w.reg.approve(V1, "qa", w.signer("qa"))
    assert caught.value.error_name == "VersionDeprecated"
    assert w.reg.log.size() == size + 1


def test_issue12_a_retry_never_completes_another_signers_entry(world: World) -> None:
    """A registration and a deprecation in the log but not on chain (signed through the
    local backend on the same workspace) are completed only by the key that signed them."""
    w = world
    trainer, qa = w.signer("trainer"), w.signer("qa")
    path = w.root / "v1"
    shutil.copytree(SAMPLE_MODEL, path)
    with Registry.open(w.ws, keys=w.store.list_keys()) as local:
        logged = local.register_model(path, V1, trainer, datasets=[DATASET])
    w.reg.sync()
    size = w.reg.log.size()
    with pytest.raises(ConflictError, match=f"entry {logged.log_index}, signed by") as caught:
        w.reg.register_model(path, V1, w.signer("admin"), datasets=[DATASET])
    assert caught.value.hint is not None
    assert "--key" in caught.value.hint
    assert w.backend.registry.version(ACME_V1) is None  # the other key completed nothing
    done = w.reg.register_model(path, V1, trainer, datasets=[DATASET])
    assert (done.already, done.log_index) == (True, logged.log_index)
    assert w.backend.registry.version(ACME_V1) is not None
    with Registry.open(w.ws, keys=w.store.list_keys()) as local:
        deprecated = local.deprecate(V1, "superseded", trainer)
    w.reg.sync()
    with pytest.raises(ConflictError, match="cannot complete it"):
        w.reg.deprecate(V1, "superseded", qa)
    info = w.backend.registry.version(ACME_V1)
    assert info is not None
    assert not info.deprecated
    again = w.reg.deprecate(V1, "superseded", trainer)
    assert (again.already, again.log_index) == (True, deprecated.log_index)
    info = w.backend.registry.version(ACME_V1)
    assert info is not None
    assert info.deprecated
    assert w.reg.log.size() == size + 1  # only the deprecation was ever added


def test_a_role_outside_the_built_in_names_counts_once_named(world: World) -> None:
    """A role's id on-chain is the hash of its name: `security`, granted on-chain, is found
    when an approval or a policy names it (it used to read as "holds: none")."""
    w = world
    w.register(V1)
    auditor = w.signer("auditor")
    members = w.backend.membership
    members.grant("globex", auditor.keyid, "security", signer=_secp(w.signer("auditor")))
    recorded = w.reg.approve(V1, "security", auditor)
    assert not recorded.already
    policy = parse_policy("version = 1\n[env.prod.approvals]\nsecurity = 1\n")
    # a backend that never heard of the role: the policy names it
    fresh = ChainBackend(w.backend.registry, members, keys=w.store.list_keys())
    assert "security" not in fresh.roles
    with Registry.open(w.ws, keys=w.store.list_keys(), backend=fresh, read_only=True) as reg:
        result = reg.gate(V1, policy, "prod")
    assert result.passed, result.lines()


def test_registration_conflict_on_chain(world: World) -> None:
    w = world
    w.register(V1)
    other = VersionRegistration(V1, "sha256:" + "ab" * 32, (), 0)
    with pytest.raises(ConflictError, match="registered on-chain"):
        w.backend.register_version(other, signer=w.signer("trainer"))


@pytest.mark.chain
def test_node_down_between_log_and_chain(
    make_anvil: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    node: Anvil = make_anvil(state=True)  # type: ignore[operator]
    chain = connect_rpc(
        node.url,
        chain_id=ANVIL_CHAIN_ID,
        index_path=tmp_path / "events.sqlite",
        retries=1,
        backoff=0.05,
    )
    w = make_world(chain, tmp_path / "ws")
    admin = w.signer("admin")
    try:
        w.register(V1)
        w.approve_all(V1)
        w.reg.deploy(V1, "prod", admin, w.policy)
        w.register(V2)
        w.approve_all(V2)
        w.reg.deploy(V2, "prod", admin, w.policy)

        def down() -> None:
            node.wait_state_saved(chain.block_number())
            node.stop()

        # a node that is down when the command starts: refused before anything is signed
        down()
        size = w.reg.log.size()
        with pytest.raises(NodeUnavailable):
            w.register(VersionRef("triage", "3.0"))
        assert w.reg.log.size() == size
        node.start()

        def dies_before(name: str) -> None:
            """The node goes down after the checks and the log append, before the send."""
            real = getattr(w.backend.registry, name)

            def send(*args: object, **kwargs: object) -> object:
                down()
                monkeypatch.setattr(w.backend.registry, name, real)
                return real(*args, **kwargs)

            monkeypatch.setattr(w.backend.registry, name, send)

        # register: the statement reaches the log, the chain write does not
        dies_before("register_version")
        with pytest.raises(NodeUnavailable):
            w.register(VersionRef("triage", "3.0"))
        assert w.reg.log.size() == size + 1
        node.start()
        v3 = version_key("acme", "triage", "3.0")
        assert w.backend.registry.version(v3) is None
        w.register(VersionRef("triage", "3.0"))  # the retry completes the chain side
        assert w.reg.log.size() == size + 1
        assert w.backend.registry.version(v3) is not None

        # a rollback is checked on-chain before it is signed: refused, nothing logged
        down()
        with pytest.raises(NodeUnavailable):
            w.reg.rollback("prod", admin, to=V1)
        assert w.reg.log.size() == size + 1
        with pytest.raises(NodeUnavailable):  # so is a deprecation: nothing logged
            w.reg.deprecate(V2, "recall", w.signer("trainer"))
        assert w.reg.log.size() == size + 1
        node.start()
        # deprecate: logged, the node dies before the send; the same command completes it
        dies_before("deprecate")
        with pytest.raises(NodeUnavailable):
            w.reg.deprecate(V2, "recall", w.signer("trainer"))
        node.start()
        assert w.reg.log.size() == size + 2
        info = w.backend.registry.version(ACME_V2)
        assert info is not None
        assert not info.deprecated
        again = w.reg.deprecate(V2, "recall", w.signer("trainer"))
        assert again.already
        assert w.reg.log.size() == size + 2
        info = w.backend.registry.version(ACME_V2)
        assert info is not None
        assert info.deprecated
        w.reg.rollback("prod", admin, to=V1)  # refused before, fine now
        assert w.current() == ACME_V1
    finally:
        w.reg.close()
        chain.close()


@given(st.binary(min_size=32, max_size=32), st.booleans())
def test_digest_bytes_round_trip(raw: bytes, prefixed: bool) -> None:
    text = ("sha256:" if prefixed else "") + raw.hex()
    assert digest_bytes(text) == raw


@pytest.mark.parametrize("bad", ["sha256:zz", "sha256:abcd", "", "sha256:" + "0" * 66])
def test_digest_bytes_bad_input(bad: str) -> None:
    with pytest.raises(InvalidInput):
        digest_bytes(bad)


# --- the CLI on the embedded chain ---------------------------------------------------------


@pytest.fixture
def cli_setup(setup: Setup) -> Setup:
    """The workflow workspace (trainer and qa in acme, outsider; local roles: qa) plus an
    admin, an auditor in globex and this module's policy in ``chain-policy.toml``."""
    setup.store.create("admin", CLI_PASSWORD)
    setup.store.create("auditor", CLI_PASSWORD, org="globex")
    (setup.root / "chain-policy.toml").write_text(POLICY)
    return setup


def test_cli_release_path_on_the_embedded_chain(cli_setup: Setup) -> None:
    setup, policy = cli_setup, cli_setup.root / "chain-policy.toml"
    addr = {k.name: k.keyid for k in setup.store.list_keys()}
    _ok(["chain", "deploy", "--key", "admin"])
    # each member's own key signs its consent to join (--consent-key)
    _ok(["chain", "grant", addr["trainer"], "--org", "acme", "--role", "trainer", "--key", "admin",
         "--consent-key", "trainer"])  # fmt: skip
    _ok(["chain", "grant", addr["qa"], "--org", "acme", "--role", "qa", "--key", "trainer",
         "--consent-key", "qa"])  # fmt: skip
    _ok(["chain", "grant", addr["auditor"], "--org", "globex", "--role", "auditor",
         "--key", "admin", "--consent-key", "auditor"])  # fmt: skip
    _ok(["dataset", "register", setup.data, "--name", "patients", "--version", "1",
         "--key", "trainer"])  # fmt: skip
    v2 = variant(setup, "model2", '{"v": 2}')
    for version, path in (("1.0", setup.model), ("2.0", v2)):
        _ok(["model", "register", path, "--name", "triage", "--version", version,
             "--dataset", "patients@1", "--key", "trainer"])  # fmt: skip
    _fails(["approve", "triage@1.0", "--role", "qa", "--key", "outsider"], 5, "chain registry")
    _fails(["approve", "triage@1.0", "--role", "auditor", "--key", "qa"], 5, "holds: qa")
    for version in ("1.0", "2.0"):
        _ok(["approve", f"triage@{version}", "--role", "qa", "--key", "qa"])
        _ok(["approve", f"triage@{version}", "--role", "auditor", "--key", "auditor"])
    _ok(["gate", "triage@1.0", "--policy", policy, "--env", "prod"])
    # the local backend knows no auditor: the same gate fails there
    _fails(["gate", "triage@1.0", "--policy", policy, "--backend", "local"], 1, "auditor")
    _fails(["gate", "triage@1.0", "--policy", policy, "--backend", "ledger"], 3, "--backend")
    for version in ("1.0", "2.0"):
        _ok(["deploy", f"triage@{version}", "--env", "prod", "--key", "admin",
             "--policy", policy])  # fmt: skip
    rolled = _ok(["rollback", "--env", "prod", "--key", "admin"])
    trace = _ok(["trace", "--env", "prod"])
    assert (trace["model"], trace["action"]) == ("triage@1.0", "rollback")
    assert trace["event"]["log_index"] == rolled["log_index"]
    _ok(["deprecate", "triage@2.0", "--reason", "recall", "--key", "trainer"])
    _fails(["deploy", "triage@2.0", "--env", "prod", "--key", "admin", "--policy", policy],
           10, "deprecated")  # fmt: skip

    with open_embedded(setup.ws.path / "chain") as chain:
        dep = DeploymentBook(setup.ws.path / DEPLOYMENTS_FILE).require(chain.chain_id)
        onchain = ChainBackend.from_deployment(chain, dep, owner_org="acme")
        assert onchain.registry.current("prod") == ACME_V1
        info = onchain.registry.version(ACME_V2)
        assert info is not None
        assert info.deprecated
        assert onchain.registry.approval_count(ACME_V1, "auditor", "prod") == 1


def test_cli_reverts_carry_a_message_and_a_hint(cli_setup: Setup) -> None:
    """Issue 12: `NotAMember(account=...)`, `NotDeployer` reached the user raw. Each refusal
    now says what it means and which command fixes it, and that command works."""
    setup, policy = cli_setup, cli_setup.root / "chain-policy.toml"
    addr = {k.name: k.keyid for k in setup.store.list_keys()}
    _ok(["chain", "deploy", "--key", "admin"])
    _ok(["chain", "grant", addr["trainer"], "--org", "acme", "--role", "trainer", "--key", "admin",
         "--consent-key", "trainer"])  # fmt: skip
    _ok(["chain", "grant", addr["qa"], "--org", "acme", "--role", "qa", "--key", "trainer",
         "--consent-key", "qa"])  # fmt: skip
    _ok(["chain", "grant", addr["auditor"], "--org", "globex", "--role", "auditor",
         "--key", "admin", "--consent-key", "auditor"])  # fmt: skip
    out = _fails(["model", "register", setup.model, "--name", "triage", "--version", "1.0",
                  "--key", "outsider"], 9)  # fmt: skip
    checksummed = next(k for k in setup.store.list_keys() if k.name == "outsider").keyid
    assert f"NotAMember: {checksummed} is not a member of any organisation" in out
    hint = "hint: an admin of its organisation adds it with its consent: "
    assert f"{hint}`ailedger chain grant {checksummed}" in out.replace("\n", " ")
    v2 = variant(setup, "model2", '{"v": 2}')
    for version, path in (("1.0", setup.model), ("2.0", v2)):
        _ok(["model", "register", path, "--name", "triage", "--version", version,
             "--key", "trainer"])  # fmt: skip
        _ok(["approve", f"triage@{version}", "--role", "qa", "--key", "qa"])
        _ok(["approve", f"triage@{version}", "--role", "auditor", "--key", "auditor"])
    _ok(["deploy", "triage@1.0", "--env", "prod", "--key", "admin", "--policy", policy])
    out = _fails(["deploy", "triage@2.0", "--env", "prod", "--key", "trainer",
                  "--policy", policy], 9, "NotDeployer")  # fmt: skip
    assert "may not deploy or roll back in environment 'prod'" in out
    assert "ailedger chain deployer" in out
    _ok(["chain", "deployer", addr["trainer"], "--env", "prod", "--key", "admin"])
    _ok(["deploy", "triage@2.0", "--env", "prod", "--key", "trainer", "--policy", policy])
    out = _fails(["chain", "deployer", addr["qa"], "--env", "prod", "--key", "trainer"], 9)
    assert "AccessControlUnauthorizedAccount" in out
    revoked = _ok(["chain", "deployer", addr["trainer"], "--env", "prod", "--key", "admin",
                   "--revoke"])  # fmt: skip
    assert revoked["deployer"] is False
    _fails(["rollback", "--env", "prod", "--key", "trainer"], 9, "NotDeployer")


@pytest.mark.chain
def test_cli_with_rpc_on_anvil(cli_setup: Setup, anvil_node: Anvil) -> None:
    setup, policy = cli_setup, cli_setup.root / "chain-policy.toml"
    addr = {k.name: k.keyid for k in setup.store.list_keys()}
    rpc = ["--rpc", anvil_node.url]
    _ok(["chain", "deploy", "--key", "admin", *rpc])
    _ok(["chain", "grant", addr["trainer"], "--org", "acme", "--role", "trainer",
         "--key", "admin", "--consent-key", "trainer", *rpc])  # fmt: skip
    _ok(["chain", "grant", addr["qa"], "--org", "acme", "--role", "qa", "--key", "trainer",
         "--consent-key", "qa", *rpc])  # fmt: skip
    _ok(["chain", "grant", addr["auditor"], "--org", "globex", "--role", "auditor",
         "--key", "admin", "--consent-key", "auditor", *rpc])  # fmt: skip
    _ok(["model", "register", setup.model, "--name", "triage", "--version", "1.0",
         "--key", "trainer", *rpc])  # fmt: skip
    # without --rpc the workspace's own (embedded) chain has no contracts: the local backend
    _fails(["approve", "triage@1.0", "--role", "auditor", "--key", "auditor"], 5, "local")
    _ok(["approve", "triage@1.0", "--role", "qa", "--key", "qa", *rpc])
    _ok(["approve", "triage@1.0", "--role", "auditor", "--key", "auditor", *rpc])
    _ok(["deploy", "triage@1.0", "--env", "prod", "--key", "admin", "--policy", policy, *rpc])
    with connect_rpc(anvil_node.url, chain_id=ANVIL_CHAIN_ID) as chain:
        dep = DeploymentBook(setup.ws.path / DEPLOYMENTS_FILE).require(chain.chain_id)
        onchain = ChainBackend.from_deployment(chain, dep, owner_org="acme")
        assert onchain.registry.current("prod") == ACME_V1


def test_finding2_squatted_name_in_another_organisation_is_never_picked(world: World) -> None:
    """An outside organisation registers ``triage@1.0`` first with a backdoored digest: the
    workspace's registry still registers, approves and deploys its own (acme's) version; a
    name that two of the workspace's organisations registered is refused, not guessed."""
    w, admin = world, _secp(world.signer("admin"))
    members = w.backend.membership
    squatter = Secp256k1Signer.generate()
    w.chain.fund(squatter.address, ETHER)
    members.create_org("evil", squatter.address, signer=admin)
    members.enrol("evil", squatter, "trainer", signer=admin)
    backdoor = b"\x66" * 32
    w.backend.registry.register_version("triage", "1.0", backdoor, bytes(32), signer=squatter)
    w.register(V1)
    w.approve_all(V1)
    w.reg.deploy(V1, "prod", admin, w.policy)
    assert w.current() == ACME_V1
    info = w.backend.registry.version(ACME_V1)
    assert info is not None
    assert info.subject_digest != backdoor
    # globex (the auditor's organisation, known to this workspace) registers the same name
    auditor = _secp(w.signer("auditor"))
    members.grant("globex", auditor.address, "trainer", signer=auditor)
    w.backend.registry.register_version("triage", "2.0", backdoor, bytes(32), signer=auditor)
    w.register(V2)
    with pytest.raises(ConflictError, match="several organisations"):
        w.backend.version_id(V2)


# --- issue 11: who may log a deploy or rollback, on the chain backend ----------------------


def _forge(w: World, signer: Signer, action: str, ref: VersionRef, previous: int | None) -> int:
    """A deploy/rollback of ``ref`` in prod signed by ``signer`` and appended to the log
    directly (no registry, no chain): what any key the log admits can do."""
    link = None
    if previous is not None:
        link = EventLink(log_index=previous, leaf_hash=w.reg.log.get(previous).leaf_hash.hex())
    predicate = DeploymentPredicate(
        environment="prod",
        action=action,  # type: ignore[arg-type]
        version=str(ref),
        previous=link,
        time=utc_now(),
    )
    envelope = attest(predicate, [named_subject(ref, w.reg.model(ref).digest)], [signer])
    index = w.reg.log.append(envelope.to_json())
    w.reg.sync()
    return index


def test_issue11_a_deploy_by_a_key_that_may_not_deploy_is_no_event_on_chain(
    world: World,
) -> None:
    """The contract refuses a non-deployer, but the log takes any admitted key's statement:
    the index must not take it as an event (the attack of issue 11 on the chain backend)."""
    w, admin = world, world.signer("admin")
    for ref in (V1, V2):
        w.register(ref)
        w.approve_all(ref)
    first = w.reg.deploy(V1, "prod", admin, w.policy)
    for attacker, action in (("qa", "deploy"), ("outsider", "rollback")):
        _forge(w, w.signer(attacker), action, V2, first.log_index)
    assert w.reg.current("prod") == V1
    assert trace_at(w.reg, "prod", utc_now()).event.entry.index == first.log_index
    findings = check_events(w.reg)
    assert [f.kind for f in findings] == ["unauthorised-deploy-event"] * 2
    assert not any(f.repairable for f in findings)
    chain = [f for f in check_chain(w.reg, w.backend) if f.kind.startswith("chain-event")]
    assert chain == []  # no "missing" step for status --repair to replay
    # a deployer the admin grants may deploy; after its role is revoked, its deploy stays an
    # event (the contract took it from that account), a new statement by it does not count
    trainer = _secp(w.signer("trainer"))
    w.backend.registry.grant_deployer("prod", trainer.address, signer=_secp(admin))
    second = w.reg.deploy(V2, "prod", trainer, w.policy)
    w.backend.registry.revoke_deployer("prod", trainer.address, signer=_secp(admin))
    w.reg.index.rebuild(w.reg.log, lambda _root: None)
    w.reg.sync()
    assert w.reg.current("prod") == V2
    late = _forge(w, trainer, "rollback", V1, second.log_index)
    assert w.reg.current("prod") == V2
    assert late in {r.event.log_index for r in w.reg.index.rejected()}
    # a fork by the admin itself: the first event naming a previous one is kept
    fork = _forge(w, admin, "rollback", V1, first.log_index)
    assert w.reg.current("prod") == V2
    verdicts = {r.event.log_index: r.verdict for r in w.reg.index.rejected()}
    assert verdicts[fork] == "environment-history-fork"


def test_issue11_a_second_deployer_renotifying_the_serving_version_is_fine(
    world: World,
) -> None:
    """Suspected bug (b): the admin deployed V1; another deployer asks to deploy V1 again.
    The chain serves it already, so nothing is to be completed: no ConflictError."""
    w, admin = world, world.signer("admin")
    w.register(V1)
    w.approve_all(V1)
    deployed = w.reg.deploy(V1, "prod", admin, w.policy)
    trainer = _secp(w.signer("trainer"))
    w.backend.registry.grant_deployer("prod", trainer.address, signer=_secp(admin))
    size = w.reg.log.size()
    again = w.reg.deploy(V1, "prod", trainer, w.policy)
    assert (again.already, again.log_index) == (True, deployed.log_index)
    assert w.reg.rollback("prod", trainer, to=V1).already
    assert w.reg.log.size() == size
    assert w.current() == ACME_V1


def test_issue11_a_revoked_approval_of_one_role_leaves_the_others_alone(world: World) -> None:
    """Suspected bug (a): ``status`` took a revocation on the chain as the approver's, not
    the (approver, role)'s: an approval in another role that the chain lacks was reported as
    revoked (not repairable) instead of missing (repairable)."""
    w = world
    w.register(V1)
    qa = w.signer("qa")
    members = Membership(w.chain, w.backend.membership.contract)
    members.grant("acme", qa.keyid, "security", signer=_secp(w.signer("trainer")))
    w.backend.learn_roles(["security"])
    w.reg.approve(V1, "qa", qa)
    w.backend.registry.revoke_approval(ACME_V1, signer=_secp(qa))
    ws = LocalBackend.grant(w.ws, qa.keyid, "security", "acme")
    with Registry.open(ws, keys=w.store.list_keys()) as local:  # in the log, not on chain
        security = local.approve(V1, "security", qa)
    w.reg.sync()
    found = {f.log_index: f for f in check_chain(w.reg, w.backend)}
    assert found[security.log_index].kind == "chain-approval-missing"
    assert found[security.log_index].repairable
    revoked = [f for f in found.values() if f.kind == "chain-approval-revoked"]
    assert [f.message.split(" by ")[0] for f in revoked] == ["triage@1.0: approval as qa"]


def test_a_revoked_deployer_cannot_log_its_old_deploy_again(world: World) -> None:
    """Adversarial review of issue 11: the contract took a deploy of V2 from the trainer
    once; after its role is revoked, the trainer signs another deploy of V2 naming the
    environment's head. One contract event vouches for one statement, not for every later
    statement of the same version."""
    w, admin = world, world.signer("admin")
    for ref in (V1, V2):
        w.register(ref)
        w.approve_all(ref)
    w.reg.deploy(V1, "prod", admin, w.policy)
    trainer = _secp(w.signer("trainer"))
    w.backend.registry.grant_deployer("prod", trainer.address, signer=_secp(admin))
    second = w.reg.deploy(V2, "prod", trainer, w.policy)
    back = w.reg.rollback("prod", admin)
    w.backend.registry.revoke_deployer("prod", trainer.address, signer=_secp(admin))
    late = _forge(w, trainer, "deploy", V2, back.log_index)
    assert w.reg.current("prod") == V1
    assert w.current() == ACME_V1
    w.reg.index.rebuild(w.reg.log, lambda _root: None)
    w.reg.sync()
    assert w.reg.current("prod") == V1
    assert second.log_index in {e.log_index for e in w.reg.index.events("prod")}
    verdicts = {r.event.log_index: r.verdict for r in w.reg.index.rejected()}
    assert verdicts == {late: "unauthorised-deploy-event"}


def test_a_forged_deprecation_does_not_steer_a_rollback(world: World) -> None:
    """Adversarial review of issue 11: a key the contract would not let deprecate (not the
    registry admin, not the registrant) logs a deprecation of the version a rollback should
    return to. Counted, it made the admin's rollback skip it to an older version (and
    refused deploys of it); it is no deprecation, and status reports it."""
    w, admin = world, world.signer("admin")
    v3 = VersionRef("triage", "3.0")
    for ref in (V1, V2, v3):
        w.register(ref)
        w.approve_all(ref)
        w.reg.deploy(ref, "prod", admin, w.policy)
    predicate = DeploymentPredicate(
        environment="*", action="deprecate", version=str(V2), reason="forged", time=utc_now()
    )
    envelope = attest(predicate, [named_subject(V2, w.reg.model(V2).digest)],
                      [w.signer("outsider")])  # fmt: skip
    forged = w.reg.log.append(envelope.to_json())
    w.reg.sync()
    assert w.reg.index.deprecation(V2) is None
    found = [(f.kind, f.log_index, f.repairable) for f in check_events(w.reg)]
    assert found == [("unauthorised-deprecation", forged, False)]
    assert not [f for f in check_chain(w.reg, w.backend) if "deprecation" in f.kind]
    assert w.reg.rollback("prod", admin).ref == str(V2)
    assert w.current() == ACME_V2
    # the admin's own deprecation counts
    done = w.reg.deprecate(V1, "superseded", admin)
    assert w.reg.index.deprecation(V1) == (done.log_index, "superseded")


def test_a_role_granted_later_does_not_push_the_contracts_history_aside(world: World) -> None:
    """Adversarial review of issue 11: the trainer, no deployer yet, logs a deploy of V2
    naming prod's head (rejected); the admin then deploys v3, which the contract takes,
    naming the same head; later the trainer is granted the deployer role. Judged again, the
    trainer's statement came first and its signer may deploy now, so log order alone made it
    the event and the contract's own deploy a fork: the index served V2, the chain v3. A
    statement the contract took outranks one it never took."""
    w, admin = world, world.signer("admin")
    v3 = VersionRef("triage", "3.0")
    for ref in (V1, V2, v3):
        w.register(ref)
        w.approve_all(ref)
    first = w.reg.deploy(V1, "prod", admin, w.policy)
    trainer = _secp(w.signer("trainer"))
    forged = _forge(w, trainer, "deploy", V2, first.log_index)
    real = w.reg.deploy(v3, "prod", admin, w.policy)
    assert real.log_index > forged
    w.backend.registry.grant_deployer("prod", trainer.address, signer=_secp(admin))
    w.reg.index.rebuild(w.reg.log, lambda _root: None)
    w.reg.sync()
    assert w.reg.current("prod") == v3
    assert [e.log_index for e in w.reg.index.events("prod")] == [first.log_index, real.log_index]
    verdicts = {r.event.log_index: r.verdict for r in w.reg.index.rejected()}
    assert verdicts == {forged: "environment-history-fork"}
    # the trainer, a deployer now, deploys for real: linked to the contract's history
    later = w.reg.deploy(V2, "prod", trainer, w.policy)
    assert w.reg.current("prod") == V2
    assert w.current() == ACME_V2
    assert later.log_index in {e.log_index for e in w.reg.index.events("prod")}
