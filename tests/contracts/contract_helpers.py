"""Helpers for the contract tests (and benchmarks/bench_gas.py): compile ``contracts/`` with
solc-js, deploy on a chain, send transactions, decode custom-error reverts, sign checkpoints
and approvals, and populate a small world of organisations and members.

Contracts are compiled from the sources in the repo with the settings of
``scripts/build_contracts.mjs`` (cached by source hash in the temp directory), so the tests
always exercise the current Solidity.
"""

from __future__ import annotations

import ast
import glob
import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak
from web3 import Web3
from web3.contract import Contract
from web3.logs import DISCARD

from ailedger.chain.eip712 import (
    Domain,
    approval_digest,
    checkpoint_digest,
    cosignature_digest,
    join_digest,
    log_id,
    registration_digest,
    role_id,
    sign_digest,
)
from ailedger.identity.keys import Secp256k1Signer

REPO = Path(__file__).resolve().parents[2]
CONTRACTS_DIR = REPO / "contracts"
EVM_VERSION = "cancun"
OPTIMIZER = {"enabled": True, "runs": 200}

# solc-js with an import callback resolving these npm packages from node_modules, as
# scripts/build_contracts.mjs resolves OpenZeppelin (@chainlink: benchmarks/bench_peers_gas.py).
_SOLC_JS = """
const solc = require('solc');
const fs = require('fs');
const path = require('path');
const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const roots = ['@openzeppelin/contracts/', '@chainlink/contracts/'];
const findImports = (p) => {
  const prefix = roots.find((r) => p.startsWith(r));
  if (!prefix) return { error: 'not found: ' + p };
  const base = path.resolve('node_modules', prefix);
  const full = path.resolve(base, p.slice(prefix.length));
  const inside = full.startsWith(base + path.sep);
  if (!inside || !fs.existsSync(full)) return { error: 'not found: ' + p };
  return { contents: fs.readFileSync(full, 'utf8') };
};
const out = JSON.parse(solc.compile(JSON.stringify(input), { import: findImports }));
out.compilerVersion = solc.version();
process.stdout.write(JSON.stringify(out));
"""

ADMIN, TRAINER, QA, AUDITOR, WITNESS, DEPLOYER = (
    role_id(n) for n in ("admin", "trainer", "qa", "auditor", "witness", "deployer")
)


@dataclass(frozen=True)
class Compiled:
    name: str
    abi: list[dict[str, Any]]
    bytecode: str


def compile_contracts(
    directory: Path = CONTRACTS_DIR, extra: dict[str, str] | None = None
) -> dict[str, Compiled]:
    """Every contract under ``directory`` (plus ``extra`` sources by name), compiled by the
    pinned solc-js (cached)."""
    files = sorted(glob.glob("**/*.sol", root_dir=directory, recursive=True))
    sources = {f: (directory / f).read_text(encoding="utf-8") for f in files}
    sources.update(extra or {})
    return compile_sources(sources)[0]


def compile_sources(sources: dict[str, str]) -> tuple[dict[str, Compiled], str]:
    """Solidity sources by name, compiled with the settings of scripts/build_contracts.mjs
    by the pinned solc-js (cached by request in the temp directory); and the compiler version."""
    settings = {
        "evmVersion": EVM_VERSION,
        "optimizer": OPTIMIZER,
        "outputSelection": {"*": {"*": ["abi", "evm.bytecode.object"]}},
    }
    request = json.dumps(
        {
            "language": "Solidity",
            "sources": {name: {"content": text} for name, text in sources.items()},
            "settings": settings,
        }
    )
    tag = hashlib.sha256(request.encode()).hexdigest()[:24]
    cache = Path(tempfile.gettempdir()) / f"ailedger-solc-{tag}.json"
    if cache.is_file():
        out = json.loads(cache.read_text())
    else:
        proc = subprocess.run(
            ["node", "-e", _SOLC_JS],
            input=request,
            capture_output=True,
            text=True,
            cwd=REPO,
            check=True,
        )
        out = json.loads(proc.stdout)
        errors = [e for e in out.get("errors", []) if e["severity"] == "error"]
        if errors:
            raise RuntimeError("\n".join(e["formattedMessage"] for e in errors))
        tmp = cache.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(out))
        tmp.replace(cache)
    compiled: dict[str, Compiled] = {}
    for contracts in out["contracts"].values():
        for name, c in contracts.items():
            compiled[name] = Compiled(name, c["abi"], "0x" + c["evm"]["bytecode"]["object"])
    return compiled, str(out["compilerVersion"])


def _revert_data(exc: Exception) -> bytes:
    """The raw revert data carried by a web3.py or eth-tester exception."""
    data = getattr(exc, "data", None)
    if isinstance(data, str) and data.startswith("0x"):
        return bytes.fromhex(data[2:])
    if isinstance(data, dict) and isinstance(data.get("data"), str):
        return bytes.fromhex(data["data"].removeprefix("0x"))
    # eth-tester: TransactionFailed("execution reverted: b'...'")
    message = str(exc.args[0]) if exc.args else ""
    _, sep, rest = message.partition("execution reverted: ")
    if sep and rest[:2] in ("b'", 'b"'):
        value = ast.literal_eval(rest)
        if isinstance(value, bytes):
            return value
    raise AssertionError(f"no revert data in {type(exc).__name__}: {exc}") from exc


def error_selectors(compiled: dict[str, Compiled]) -> dict[bytes, str]:
    """4-byte selector -> custom error name, over every compiled ABI."""
    table: dict[bytes, str] = {}
    for c in compiled.values():
        for item in c.abi:
            if item["type"] == "error":
                sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
                table[keccak(text=sig)[:4]] = item["name"]
    return table


class TransactionFailed(AssertionError):
    """A transaction was mined with status 0."""


class Chain:
    """A ``Web3`` plus the compiled contracts: deploy, send, expect reverts."""

    def __init__(
        self, w3: Web3, compiled: dict[str, Compiled], chain_id: int | None = None
    ) -> None:
        self.w3 = w3
        #: The chain id the EVM sees (block.chainid), which signatures must bind.
        self.chain_id = int(w3.eth.chain_id) if chain_id is None else chain_id
        self.compiled = compiled
        self.errors = error_selectors(compiled)
        self.accounts: list[str] = list(w3.eth.accounts)
        #: Fixed gas limit: skips estimation (3x faster on eth-tester); reverts still surface.
        self.gas = 5_000_000

    def deploy(self, name: str, *args: Any, sender: str | None = None) -> Contract:
        c = self.compiled[name]
        factory = self.w3.eth.contract(abi=c.abi, bytecode=c.bytecode)
        tx = factory.constructor(*args).transact({"from": sender or self.accounts[0]})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        assert receipt["status"] == 1
        contract = self.w3.eth.contract(address=receipt["contractAddress"], abi=c.abi)
        assert isinstance(contract, Contract)
        return contract

    def send(self, call: Any, sender: str | None = None) -> Any:
        """Transact ``call`` (a bound contract function) and return the receipt."""
        tx = call.transact({"from": sender or self.accounts[0], "gas": self.gas})
        receipt = self.w3.eth.wait_for_transaction_receipt(tx)
        if receipt["status"] != 1:
            raise TransactionFailed(receipt)
        return receipt

    def revert_reason(self, call: Any, sender: str | None = None) -> str:
        """Send ``call`` expecting a revert; return the custom error's name."""
        try:
            self.send(call, sender)
        except Exception:  # backends differ (eth-tester TransactionFailed, RPC errors)
            pass
        else:
            raise AssertionError("the transaction did not revert")
        # Replay it as a call (same state) to read the revert data portably.
        try:
            call.call({"from": sender or self.accounts[0]})
        except Exception as exc:
            return self._decode(_revert_data(exc))
        raise AssertionError("the transaction reverted but the call does not")

    def events(self, contract: Contract, name: str, receipt: Any) -> list[Any]:
        """The ``name`` events ``contract`` emitted in the transaction of ``receipt``."""
        return list(contract.events[name]().process_receipt(receipt, errors=DISCARD))

    def _decode(self, raw: bytes) -> str:
        return self.errors.get(raw[:4], f"unknown error 0x{raw[:4].hex()}")

    def block_number(self) -> int:
        return int(self.w3.eth.block_number)

    def snapshot(self) -> Any:
        return self.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]

    def revert_to(self, snapshot_id: Any) -> None:
        self.w3.provider.make_request("evm_revert", [snapshot_id])  # type: ignore[arg-type]


@dataclass
class Deployment:
    chain: Chain
    membership: Contract
    anchors: Contract
    registry: Contract

    @property
    def admin(self) -> str:
        return self.chain.accounts[0]


#: ModelRegistry's delay on weakening requirement changes and admin handovers in the tests.
REGISTRY_DELAY = 3600


def deploy_all(chain: Chain) -> Deployment:
    admin = chain.accounts[0]
    membership = chain.deploy("Membership", admin)
    anchors = chain.deploy("LogAnchors")
    registry = chain.deploy("ModelRegistry", membership.address, admin, REGISTRY_DELAY)
    return Deployment(chain, membership, anchors, registry)


def key(i: int) -> Secp256k1Signer:
    """Deterministic off-chain signing key number ``i``."""
    return Secp256k1Signer(keccak(text=f"ailedger contract test key {i}"))


def sign_checkpoint(
    anchors: Contract,
    chain_id: int,
    log: bytes,
    size: int,
    root: bytes,
    log_key: Secp256k1Signer,
    witnesses: list[Secp256k1Signer],
) -> tuple[bytes, list[bytes]]:
    """The log signature and the witnesses' cosignatures (sorted by signer) of a checkpoint."""
    domain = Domain.log_anchors(chain_id, anchors.address)
    log_sig = sign_digest(checkpoint_digest(domain, log, size, root), log_key)
    co = cosignature_digest(domain, log, size, root)
    ordered = sorted(witnesses, key=lambda k: int(k.address, 16))
    return log_sig, [sign_digest(co, w) for w in ordered]


def sign_approval(
    registry: Contract,
    chain_id: int,
    version: bytes,
    role: bytes,
    org: bytes,
    signer: Secp256k1Signer,
    nonce: int,
    deadline: int = 2**64,
    *,
    subject: bytes | None = None,
    env: bytes = b"\0" * 32,
) -> tuple[bytes, bytes, bytes, bytes, bytes, str, int, int, bytes]:
    """A ``SignedApproval`` tuple as ``approveBySig`` takes it; the subject digest is the
    version's registered one unless given, the environment every one unless given."""
    if subject is None:
        subject = bytes(registry.functions.getVersion(version).call()[1])
    domain = Domain.model_registry(chain_id, registry.address)
    digest = approval_digest(
        domain, version, subject, env, role, org, signer.address, nonce, deadline
    )
    sig = sign_digest(digest, signer)
    return (version, subject, env, role, org, signer.address, nonce, deadline, sig)


def join_call(
    membership: Contract,
    chain_id: int,
    org: bytes,
    signer: Secp256k1Signer,
    nonce: int = 0,
    deadline: int = 2**64,
) -> Any:
    """An ``addMember`` call carrying ``signer``'s consent to join ``org`` (an org admin
    sends it)."""
    domain = Domain.membership(chain_id, membership.address)
    sig = sign_digest(join_digest(domain, org, signer.address, nonce, deadline), signer)
    return membership.functions.addMember(org, signer.address, nonce, deadline, sig)


def join(dep: Deployment, org: bytes, member: str | Secp256k1Signer, admin: str) -> None:
    """Make ``member`` a member of ``org`` with its consent: an account of the node accepts
    an invitation, an off-chain key signs a ``Join`` that ``admin`` relays."""
    c, m = dep.chain, dep.membership.functions
    if isinstance(member, Secp256k1Signer):
        # A fresh nonce per consent: every transaction mines a block.
        c.send(join_call(dep.membership, c.chain_id, org, member, c.block_number()), admin)
    else:
        c.send(m.invite(org, member), admin)
        c.send(m.acceptInvitation(org), member)


def create_org(dep: Deployment, org: bytes, admin: str) -> None:
    """The global admin creates ``org``; its named admin accepts (and gets ADMIN_ROLE)."""
    dep.chain.send(dep.membership.functions.createOrg(org, admin), dep.admin)
    if admin != dep.admin:
        dep.chain.send(dep.membership.functions.acceptInvitation(org), admin)


ANY_ENV = b"\0" * 32
ORG_A = keccak(text="org-a")
ORG_B = keccak(text="org-b")
ORG_C = keccak(text="org-c")
PROD = keccak(text="prod")
STAGING = keccak(text="staging")


@dataclass
class World:
    """Three organisations with members (tx senders and off-chain signing keys) and roles.

    ORG_A: admin alice, frank (trainer), carol (qa), signer key(1) (qa)
    ORG_B: admin bob, dave (auditor), signer key(2) (auditor)
    ORG_C: admin erin, signer key(3) (qa)
    carol deploys to PROD and STAGING (the registry admin's per-environment deployer role).
    PROD requires 1 qa + 1 auditor from at least 2 organisations.
    """

    dep: Deployment
    alice: str
    bob: str
    carol: str
    dave: str
    erin: str
    outsider: str
    frank: str
    qa_a: Secp256k1Signer
    auditor_b: Secp256k1Signer
    qa_c: Secp256k1Signer

    @property
    def chain(self) -> Chain:
        return self.dep.chain

    @property
    def registry(self) -> Contract:
        return self.dep.registry

    def register(
        self, name: str = "fraud-model", version: str = "1.0.0", sender: str | None = None
    ) -> bytes:
        """Register ``name`` ``version`` (by frank, ORG_A's trainer, unless ``sender``)."""
        f = self.registry.functions
        sender = sender or self.frank
        call = f.registerVersion(name, version, keccak(text=name + version), b"\1" * 32, [])
        self.chain.send(call, sender)
        org = bytes(self.dep.membership.functions.orgOf(sender).call())
        return bytes(f.versionIdOf(org, name, version).call())

    def subject(self, version: bytes) -> bytes:
        return bytes(self.registry.functions.getVersion(version).call()[1])

    def signed(
        self,
        version: bytes,
        role: bytes,
        signer: Secp256k1Signer,
        nonce: int,
        org: bytes | None = None,
        *,
        env: bytes = ANY_ENV,
        subject: bytes | None = None,
    ) -> Any:
        """A signed approval, naming the signer's current organisation unless ``org``."""
        if org is None:
            org = bytes(self.dep.membership.functions.orgOf(signer.address).call())
        return sign_approval(
            self.registry,
            self.chain.chain_id,
            version,
            role,
            org,
            signer,
            nonce,
            env=env,
            subject=subject,
        )

    def approve(self, version: bytes, role: bytes, env: bytes = ANY_ENV) -> Any:
        """A direct ``approve`` call of ``version`` (for its registered digest)."""
        return self.registry.functions.approve(version, self.subject(version), env, role)


def populate(dep: Deployment) -> World:
    c = dep.chain
    admin, alice, bob, carol, dave, erin, outsider, frank = c.accounts[:8]
    m = dep.membership.functions
    qa_a, auditor_b, qa_c = key(1), key(2), key(3)
    create_org(dep, ORG_A, alice)
    create_org(dep, ORG_B, bob)
    create_org(dep, ORG_C, erin)
    for org, member, org_admin in (
        (ORG_A, carol, alice),
        (ORG_A, frank, alice),
        (ORG_A, qa_a, alice),
        (ORG_B, dave, bob),
        (ORG_B, auditor_b, bob),
        (ORG_C, qa_c, erin),
    ):
        join(dep, org, member, org_admin)
    c.send(m.grantRole(ORG_A, carol, QA), alice)
    c.send(m.grantRole(ORG_A, frank, TRAINER), alice)
    c.send(m.grantRole(ORG_A, qa_a.address, QA), alice)
    c.send(m.grantRole(ORG_B, dave, AUDITOR), bob)
    c.send(m.grantRole(ORG_B, auditor_b.address, AUDITOR), bob)
    c.send(m.grantRole(ORG_C, qa_c.address, QA), erin)
    r = dep.registry.functions
    for env in (PROD, STAGING):
        c.send(r.grantRole(r.deployerRole(env).call(), carol), admin)
    c.send(r.setRequirement(PROD, [QA, AUDITOR], [1, 1], 2, False), admin)
    return World(dep, alice, bob, carol, dave, erin, outsider, frank, qa_a, auditor_b, qa_c)


def register_log(
    anchors: Contract,
    chain_id: int,
    origin: str,
    signer: Secp256k1Signer,
    witnesses: list[str],
    threshold: int,
    admin: str,
) -> Any:
    """A ``registerLog`` call for ``admin`` to send, with the log key's consent."""
    domain = Domain.log_anchors(chain_id, anchors.address)
    consent = sign_digest(
        registration_digest(domain, log_id(origin, signer.address), admin), signer
    )
    return anchors.functions.registerLog(origin, signer.address, witnesses, threshold, consent)
