"""Shared set-up for the workflow tests: a workspace with cheap keys, sample artifacts, the CLI."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import click
from click.testing import CliRunner, Result

import ailedger.cli._deploy
import ailedger.cli._eval
import ailedger.cli._register
import ailedger.cli._trace
import ailedger.cli._workflow  # noqa: F401  (importing registers the commands)
from ailedger.cli._app import main
from ailedger.demos.samples import SAMPLE_DATA, SAMPLE_MODEL
from ailedger.identity.keys import PBKDF2_ROUNDS_TEST_ONLY, SCRYPT_N_TEST_ONLY, Keystore, Signer
from ailedger.registry import LocalBackend, Registry
from ailedger.workspace import Workspace

PASSWORD = "s3cret-pass"

POLICY = """\
version = 1
[all]
artifact_must_match = true
[all.evaluations]
accuracy = "accuracy >= 0.9"
[env.prod.approvals]
qa = 1
"""


@click.command(context_settings={"ignore_unknown_options": True, "help_option_names": []})
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def _entry(args: tuple[str, ...]) -> None:
    main(list(args))


def run(args: Sequence[object]) -> Result:
    """Invoke ``ailedger ARGS`` through the real entry point."""
    env = {"AILEDGER_PASSWORD": PASSWORD, "AILEDGER_HOME": None}
    # "--" first: the wrapper passes every argument through, an inner "--" included
    return CliRunner().invoke(_entry, ["--", *(str(a) for a in args)], env=env)


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


def make_setup(root: Path, origin: str = "example.com/workflow") -> Setup:
    ws = Workspace.init(root, origin=origin)
    store = Keystore(
        ws.keys_dir, scrypt_n=SCRYPT_N_TEST_ONLY, pbkdf2_rounds=PBKDF2_ROUNDS_TEST_ONLY
    )
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
    return setup


def variant(setup: Setup, name: str, content: str) -> Path:
    """A copy of the sample model with a changed config (another subject digest)."""
    path = setup.root / name
    shutil.copytree(setup.model, path)
    (path / "config.json").write_text(content)
    return path
