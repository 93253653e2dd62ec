"""Rollback benchmark: from the command to the on-chain record, on the embedded chain.

One workspace (benchmarks/_data/rollback/) with the contracts deployed on its embedded
chain, two organisations, and two model versions registered, approved and deployed to
``prod``. Each round deploys 2.0 again (not timed) and times the rollback to 1.0:

* ``cli``: ``ailedger rollback --env prod --key ops`` in a fresh process, until it exits
  (the log entry signed and appended, the ``rollbackTo`` transaction mined);
* ``library``: ``Registry.rollback`` with the registry and chain already open;
* ``library-cold``: open the chain, the deployment and the registry, then roll back;

and, side by side in the same run, the peers: the same rollback with the local backend
(the log only, no chain), through the CLI and the library, and ``ailedger --version`` (the
CLI's start-up, which every command pays). Target: under 2 s for the CLI.

    .venv/bin/python benchmarks/bench_rollback.py [--rounds 10]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ailedger.chain import open_embedded
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook, deploy_contracts
from ailedger.chain.membership import Membership
from ailedger.chain.registry import version_key
from ailedger.demos.samples import SAMPLE_DATA, SAMPLE_MODEL
from ailedger.identity.keys import (
    PBKDF2_ROUNDS_TEST_ONLY,
    SCRYPT_N_TEST_ONLY,
    Keystore,
    Secp256k1Signer,
)
from ailedger.registry import LocalBackend, Registry, RegistryBackend, VersionRef
from ailedger.registry._chain import ChainBackend
from ailedger.registry.policy import parse_policy
from ailedger.workspace import Workspace

DATA = Path(__file__).parent / "_data"
CLI = Path(sys.executable).parent / "ailedger"
PASSWORD = "bench-only"
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


def _secp(signer: object) -> Secp256k1Signer:
    assert isinstance(signer, Secp256k1Signer)
    return signer


def _build(root: Path) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    ws = Workspace.init(root, origin="bench.ailedger.dev/rollback")
    store = Keystore(
        ws.keys_dir, scrypt_n=SCRYPT_N_TEST_ONLY, pbkdf2_rounds=PBKDF2_ROUNDS_TEST_ONLY
    )
    for name, org in (("ops", None), ("trainer", "acme"), ("qa", "acme"), ("aud", "globex")):
        store.create(name, PASSWORD, org=org)
    keys = {k.name: store.signer(k.name, PASSWORD) for k in store.list_keys()}
    ops = keys["ops"]
    assert isinstance(ops, Secp256k1Signer)
    (ws.path / "policy.toml").write_text(POLICY)
    for name, role, org in (("qa", "qa", "acme"), ("aud", "auditor", "globex")):
        ws = LocalBackend.grant(ws, keys[name].keyid, role, org)  # roles for the local peer
    with open_embedded(ws.path / "chain") as chain:
        for k in keys.values():
            chain.fund(k.keyid, 10**19)
        dep = deploy_contracts(chain, ops)
        DeploymentBook(ws.path / DEPLOYMENTS_FILE).put(dep)
        members = Membership(chain, dep.open(chain, "Membership"))
        members.create_org("acme", keys["trainer"].keyid, signer=ops)
        for org, name, role in (("acme", "trainer", "trainer"), ("acme", "qa", "qa")):
            members.enrol(org, _secp(keys[name]), role, signer=ops)  # with its signed consent
        members.create_org("globex", keys["aud"].keyid, signer=ops)
        members.enrol("globex", _secp(keys["aud"]), "auditor", signer=ops)
        backend = ChainBackend.from_deployment(chain, dep, keys=store.list_keys())
        with Registry.open(ws, keys=store.list_keys(), backend=backend) as reg:
            data = root / "patients.csv"
            shutil.copyfile(SAMPLE_DATA / "patients.csv", data)
            dataset = VersionRef("patients", "1")
            reg.register_dataset(data, dataset, keys["trainer"])
            for ref in (V1, V2):
                path = root / f"model-{ref.version}"
                shutil.copytree(SAMPLE_MODEL, path)
                (path / "config.json").write_text(f'{{"version": "{ref.version}"}}')
                reg.register_model(path, ref, keys["trainer"], datasets=[dataset])
                reg.approve(ref, "qa", keys["qa"])
                reg.approve(ref, "auditor", keys["aud"])
                reg.deploy(ref, "prod", ops, parse_policy(POLICY))


def _cli(root: Path, *args: str) -> float:
    env = {**os.environ, "AILEDGER_PASSWORD": PASSWORD, "AILEDGER_HOME": str(root / ".ailedger")}
    env.pop("AILEDGER_RPC_URL", None)
    start = time.perf_counter()
    done = subprocess.run([str(CLI), *args], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"ailedger {' '.join(args)} failed: {done.stderr}")
    return elapsed


def _open(ws: Workspace, chain_backed: bool) -> tuple[Registry, Callable[[], None]]:
    store = Keystore(ws.keys_dir)
    if not chain_backed:
        reg = Registry.open(ws, keys=store.list_keys(), backend=None)
        return reg, reg.close
    chain = open_embedded(ws.path / "chain")
    dep = DeploymentBook(ws.path / DEPLOYMENTS_FILE).require(chain.chain_id)
    backend: RegistryBackend = ChainBackend.from_deployment(chain, dep, keys=store.list_keys())
    reg = Registry.open(ws, keys=store.list_keys(), backend=backend)

    def close() -> None:
        reg.close()
        chain.close()

    return reg, close


def _check_onchain(ws: Workspace) -> None:
    with open_embedded(ws.path / "chain") as chain:
        dep = DeploymentBook(ws.path / DEPLOYMENTS_FILE).require(chain.chain_id)
        current = ChainBackend.from_deployment(chain, dep).registry.current("prod")
    if current != version_key("acme", V1.name, V1.version):
        raise SystemExit("the rollback is not on-chain")


def _stats(name: str, times: list[float]) -> float:
    med = statistics.median(times)
    print(f"{name:26s} median {med * 1000:8.1f} ms  min {min(times) * 1000:8.1f} ms  "
          f"max {max(times) * 1000:8.1f} ms  (n={len(times)})")  # fmt: skip
    return med


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    root = DATA / "rollback"
    if args.rebuild or not (root / ".ailedger" / DEPLOYMENTS_FILE).is_file():
        t = time.perf_counter()
        _build(root)
        print(f"built {root} in {time.perf_counter() - t:.1f} s")
    ws = Workspace.open(root / ".ailedger")
    policy = str(ws.path / "policy.toml")
    results: dict[str, float] = {}
    startup = [_cli(root, "--version") for _ in range(args.rounds)]
    results["startup"] = _stats("cli startup (--version)", startup)
    for backend in ("chain", "local"):
        times = []
        for _ in range(args.rounds):
            _cli(root, "deploy", str(V2), "--env", "prod", "--key", "ops", "--policy", policy,
                 "--backend", backend)  # fmt: skip
            times.append(_cli(root, "rollback", "--env", "prod", "--key", "ops",
                              "--backend", backend))  # fmt: skip
        results[f"cli-{backend}"] = _stats(f"cli rollback ({backend})", times)
        if backend == "chain":
            _check_onchain(ws)
    ops = Keystore(ws.keys_dir).signer("ops", PASSWORD)
    policy_doc = parse_policy(POLICY)
    for backend in ("chain", "local"):
        warm, cold = [], []
        reg, close = _open(ws, backend == "chain")
        try:
            for _ in range(args.rounds):
                reg.deploy(V2, "prod", ops, policy_doc)
                t = time.perf_counter()
                reg.rollback("prod", ops)
                warm.append(time.perf_counter() - t)
        finally:
            close()
        for _ in range(args.rounds):
            reg, close = _open(ws, backend == "chain")
            try:
                reg.deploy(V2, "prod", ops, policy_doc)
            finally:
                close()
            t = time.perf_counter()
            reg, close = _open(ws, backend == "chain")
            try:
                reg.rollback("prod", ops)
            finally:
                close()
            cold.append(time.perf_counter() - t)
        results[f"lib-{backend}"] = _stats(f"library rollback ({backend})", warm)
        results[f"cold-{backend}"] = _stats(f"library-cold ({backend})", cold)
        if backend == "chain":
            _check_onchain(ws)
    print()
    print(f"cli chain / target 2 s:        {results['cli-chain'] / 2.0:6.2f}")
    print(f"cli chain / cli startup:       {results['cli-chain'] / results['startup']:6.2f}")
    print(f"cli chain / cli local:         {results['cli-chain'] / results['cli-local']:6.2f}")
    print(f"library chain / library local: {results['lib-chain'] / results['lib-local']:6.2f}")
    print(f"cold chain / cold local:       {results['cold-chain'] / results['cold-local']:6.2f}")


if __name__ == "__main__":
    main()
