"""Shared set-up for the workflow tests: a workspace with cheap keys, sample artifacts.

The ``setup`` fixture (tests/conftest.py) calls :func:`make_setup`; run the CLI on it with
``_cli.run`` (same :data:`PASSWORD`)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _cli import PASSWORD
from _log_util import ALICE, LOG_SIGNER, WITNESS_SIGNER, envelope
from ailedger._toml import dumps as toml_dumps
from ailedger.demos.samples import SAMPLE_DATA, SAMPLE_MODEL
from ailedger.identity.keys import PBKDF2_ROUNDS_TEST_ONLY, SCRYPT_N_TEST_ONLY, Keystore, Signer
from ailedger.registry import LocalBackend, Registry
from ailedger.workspace import Workspace

#: The ``new_workspace`` fixture: ``new_workspace(origin)`` -> (workspace, fast keystore).
NewWorkspace = Callable[..., tuple[Workspace, Keystore]]

POLICY = """\
version = 1
[all]
artifact_must_match = true
[all.evaluations]
accuracy = "accuracy >= 0.9"
[env.prod.approvals]
qa = 1
"""


@dataclass
class Setup:
    ws: Workspace
    store: Keystore
    root: Path
    model: Path
    data: Path
    policy: Path

    def signer(self, name: str) -> Signer:
        return self.store.signer(name, PASSWORD)

    def registry(self) -> Registry:
        return Registry.open(self.ws, keys=self.store.list_keys())

    def grant(self, name: str, role: str) -> None:
        info = self.store.info(name)
        self.ws = LocalBackend.grant(self.ws, info.keyid, role, info.org)


def fast_keystore(ws: Workspace) -> Keystore:
    """The workspace's keystore with the test-only KDF costs (never use them for real keys)."""
    return Keystore(ws.keys_dir, scrypt_n=SCRYPT_N_TEST_ONLY, pbkdf2_rounds=PBKDF2_ROUNDS_TEST_ONLY)


def make_setup(root: Path, origin: str = "example.com/workflow") -> Setup:
    ws = Workspace.init(root, origin=origin)
    store = fast_keystore(ws)
    store.create("trainer", PASSWORD, org="acme")
    store.create("qa", PASSWORD, org="acme")
    store.create("outsider", PASSWORD)
    model = root / "model"
    shutil.copytree(SAMPLE_MODEL, model)
    data = root / "patients.csv"
    shutil.copyfile(SAMPLE_DATA / "patients.csv", data)
    policy = root / "policy.toml"
    policy.write_text(POLICY)
    setup = Setup(ws, store, root, model, data, policy)
    setup.grant("qa", "qa")
    setup.grant("trainer", "deployer")
    return setup


def variant(setup: Setup, name: str, content: str) -> Path:
    """A copy of the sample model with a changed config (another subject digest)."""
    path = setup.root / name
    shutil.copytree(setup.model, path)
    (path / "config.json").write_text(content)
    return path


def chain_client_workspace(root: Path, chain: dict[str, object], origin: str) -> Workspace:
    """A workspace whose ``[chain]`` is ``chain`` (e.g. a node's or a service's RPC URL),
    with the log, witness and admin keys, and three envelopes ``e0.json``..``e2.json``."""
    ws = Workspace.init(root, origin=origin)
    store = fast_keystore(ws)
    store.add("logkey", LOG_SIGNER, PASSWORD)
    store.add("witness", WITNESS_SIGNER, PASSWORD)
    store.add("admin", ALICE, PASSWORD)
    data = dict(ws.config.data) | {"chain": chain}
    ws.config_path.write_text(toml_dumps(data), encoding="utf-8")
    for i in range(3):
        (root / f"e{i}.json").write_bytes(envelope(i))
    return ws
