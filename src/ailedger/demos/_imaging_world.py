"""The imaging demo's set-up: the parties and their keys, the contracts, the registered model
and its lineage, and the two provider processes (``ailedger market serve``)."""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger.chain import Chain, LogAnchors, deploy_contracts
from ailedger.chain.deployments import Deployment
from ailedger.chain.inference_market import InferenceMarket, deploy_inference_market
from ailedger.chain.stake import StakeManager, Token, deploy_stake_manager
from ailedger.chain.vouching import register_with_stake_manager
from ailedger.demos import _imaging_model as im
from ailedger.demos._chain import advance_time
from ailedger.demos._children import Child, Children
from ailedger.demos._claims import Claims
from ailedger.demos._ml import sklearn_version
from ailedger.demos._steps import DEMO_PASSWORD
from ailedger.identity.keys import Keystore, Secp256k1Signer, checksum_address
from ailedger.markets.inference import WalletRow
from ailedger.markets.inference.settlement import zero_failure_sample_size
from ailedger.registry import Registry, VersionRef
from ailedger.registry._backend import LocalBackend
from ailedger.registry.evaluation import record_evaluation
from ailedger.workspace import Workspace

__all__ = [
    "DAY",
    "MODEL_REF",
    "OLD_REF",
    "PRICE",
    "STAKE",
    "SWAP_RATE",
    "TRAIN_REF",
    "UNIT",
    "JobRun",
    "K",
    "Registered",
    "World",
    "deploy_market",
    "deploy_rest",
    "epoch_size",
    "parties",
    "providers",
    "register",
    "store_provider_key",
]

#: Samples per epoch: k draws all miss a 5% swap with probability 0.95^k <= 1%.
SWAP_RATE = 0.05
K = zero_failure_sample_size(SWAP_RATE, 0.99)
#: A job's calls fill two epochs, each closed by its size (for an odd number of calls the
#: second is one short and closes this many seconds after its first receipt).
EPOCHS = 2
EPOCH_SECONDS = 10.0
UNIT = 10**18
PRICE = UNIT // 1_000
STAKE = 50 * UNIT
SETTLE_WINDOW = 86_400
DAY = 86_400
_ETHER = 10**18
TRAIN_REF = VersionRef("digits-train", "1")
HOLDOUT_REF = VersionRef("digits-holdout", "1")
OLD_REF = VersionRef("digit-triage", "1")
MODEL_REF = VersionRef("digit-triage", "2")
ACCURACY = "accuracy >= 0.9"
SAFETY = "flag_sensitivity >= 0.85"
CALLABLE = "ailedger.demos._imaging_model:"
#: Key name -> organisation. Only the provider's key is stored (encrypted: its service
#: unlocks it); the others sign in this process, their public keys known to the workspace.
PARTIES = {
    "provider": "vision-ai",
    "trainer": "vision-ai",
    "qa": "vision-ai",
    "auditor": "audit-co",
    "hospital": "st-mary-hospital",
    "governance": "consortium",
    "log": "consortium",
    "witness": "audit-co",
}
ROLES = {"qa": "qa", "auditor": "auditor"}


@dataclass
class World:
    """Everything the demo's steps share."""

    workdir: Path
    workspace: Workspace
    chain: Chain
    keys: dict[str, Secp256k1Signer]
    verifiers: list[Secp256k1Signer]
    claims: Claims
    say: Callable[[str], None]
    token: Token | None = None
    stakes: StakeManager | None = None
    market: InferenceMarket | None = None
    deployment: Deployment | None = None
    anchors: LogAnchors | None = None
    report: dict[str, Any] = field(default_factory=dict)

    def addr(self, name: str) -> str:
        return checksum_address(self.keys[name].address)

    @property
    def m(self) -> InferenceMarket:
        assert self.market is not None
        return self.market

    @property
    def t(self) -> Token:
        assert self.token is not None
        return self.token

    @property
    def s(self) -> StakeManager:
        assert self.stakes is not None
        return self.stakes


@dataclass
class Registered:
    """The registered model versions and datasets."""

    model_dir: Path
    digest: bytes
    old_digest: bytes
    log_indices: dict[str, int]
    train_path: Path


@dataclass
class JobRun:
    """One job as the hospital ran it: its id, the studies sent, the kept receipts, and its
    epochs (epoch -> signed root, number of the job's calls, first counter, seed)."""

    job: bytes
    name: str
    studies: list[dict[str, Any]]
    rows: list[WalletRow]
    epochs: dict[int, dict[str, Any]] = field(default_factory=dict)
    index_log: int = -1
    index_path: Path | None = None


def parties(workspace: Workspace) -> tuple[Workspace, dict[str, Secp256k1Signer]]:
    """Generate every party's key; import the public keys of all but the provider (see
    :func:`store_provider_key`), grant the qa and auditor roles; the workspace re-read. The
    demo password goes to a file only its owner reads (the provider's ``--password-file``)."""
    keys = {name: Secp256k1Signer.generate() for name in PARTIES}
    keystore = Keystore(workspace.keys_dir)
    for name, org in PARTIES.items():
        if name != "provider":
            keystore.import_public(name, keys[name].public_key.to_pem().encode(), org=org)
    for name, role in ROLES.items():
        workspace = LocalBackend.grant(workspace, keys[name].keyid, role, PARTIES[name])
    fd = os.open(workspace.path / "password", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(DEMO_PASSWORD + "\n")
    return Workspace.open(workspace.root), keys


def store_provider_key(workspace: Workspace, key: Secp256k1Signer) -> None:
    """The provider's key in the workspace's keystore, encrypted (standard scrypt: seconds,
    so the demo runs it beside other work); its service unlocks it."""
    Keystore(workspace.keys_dir).add("provider", key, DEMO_PASSWORD, org=PARTIES["provider"])


def deploy_market(world: World) -> None:
    """The consortium token, the StakeManager and the InferenceMarket over it."""
    chain, gov = world.chain, world.keys["governance"]
    for name in ("provider", "hospital", "governance", "log"):
        chain.fund(world.keys[name].address, 10 * _ETHER)
    token = Token(
        chain,
        chain.deploy("ConsortiumToken", "Consortium", "CON", gov.address, 10**9 * UNIT, signer=gov),
    )
    stakes = StakeManager(chain, deploy_stake_manager(chain, gov, unbonding_delay=DAY))
    market = InferenceMarket(
        chain,
        deploy_inference_market(
            chain, gov, stake_manager=stakes.address, settle_window=SETTLE_WINDOW
        ),
    )
    world.token, world.stakes, world.market = token, stakes, market


def deploy_rest(world: World) -> None:
    """The InferenceMarket registered as a judge and market of the StakeManager (after the
    governance delay), LogAnchors; the provider's stake and the hospital's tokens."""
    chain, gov = world.chain, world.keys["governance"]
    token, stakes, market = world.t, world.s, world.m
    register_with_stake_manager(chain, stakes.address, market.address, prover_bps=5_000, signer=gov)
    world.deployment = deploy_contracts(chain, world.keys["log"])
    anchors = LogAnchors(chain, world.deployment.open(chain, "LogAnchors"))
    advance_time(chain, stakes.governance_delay() + 1)
    world.claims.check(
        stakes.is_judge(market.address) and stakes.is_market(market.address),
        "the InferenceMarket is a registered judge and market of the StakeManager",
    )
    provider = world.keys["provider"]
    token.transfer(world.addr("provider"), 2 * STAKE, signer=gov)
    token.transfer(world.addr("hospital"), 10 * UNIT, signer=gov)
    token.approve(stakes.address, 2 * STAKE, signer=provider)
    stakes.deposit(2 * STAKE, token.address, signer=provider)
    world.claims.check(
        stakes.stake_of(world.addr("provider"), token.address).free == 2 * STAKE,
        f"the provider's free stake in the StakeManager is {2 * STAKE // UNIT} CON",
    )
    world.anchors = anchors
    world.say(
        f"chain {chain.chain_id}: token CON, StakeManager, InferenceMarket {market.address} "
        f"(a judge and market of the StakeManager), LogAnchors; the provider staked "
        f"{2 * STAKE // UNIT} CON"
    )


def _write_images(path: Path, x: Any, y: Any) -> Path:
    with path.open("w", encoding="utf-8") as out:
        for i, (pixels, digit) in enumerate(zip(x, y, strict=True)):
            doc = {"image": i, "pixels": [int(v) for v in pixels], "digit": int(digit)}
            out.write(json.dumps(doc) + "\n")
    return path


def _digest(text: str) -> bytes:
    return bytes.fromhex(text.removeprefix("sha256:"))


def register(world: World, reg: Registry, d: im.Digits) -> Registered:
    """Fingerprint and register the datasets, train and register both model versions; sign
    the evaluations of version 2 (QA; the independent auditor) and approve it (both)."""
    k = world.keys
    data = world.workdir / "data"
    data.mkdir()
    train = _write_images(data / "digits-train.jsonl", d.x_train, d.y_train)
    holdout = _write_images(data / "digits-holdout.jsonl", d.x_holdout, d.y_holdout)
    ds = reg.register_dataset(train, TRAIN_REF, k["trainer"], format="jsonl")
    ho = reg.register_dataset(holdout, HOLDOUT_REF, k["trainer"], format="jsonl")
    models = world.workdir / "models"
    old_params = {**im.PARAMS, "C": 0.002}
    old_dir = im.save_model(
        im.train_triage(d, old_params), models / "digit-triage-1", {"params": old_params}
    )
    old = reg.register_model(
        old_dir, OLD_REF, k["trainer"], datasets=[TRAIN_REF], params=old_params,
        code_revision="imaging-demo", team="vision-ai",
    )  # fmt: skip
    model = im.train_triage(d, im.PARAMS)
    model_dir = im.save_model(model, models / "digit-triage-2", {"params": im.PARAMS})
    mv = reg.register_model(
        model_dir, MODEL_REF, k["trainer"], datasets=[TRAIN_REF], params=im.PARAMS,
        code_revision="imaging-demo", team="vision-ai",
    )  # fmt: skip
    metrics = im.flag_sensitivity(model, d)
    tool = f"scikit-learn {sklearn_version()}"
    root, size = str(ho.predicate["root"]), len(d.y_holdout)
    acc = record_evaluation(
        "accuracy", {"accuracy": metrics["accuracy"]}, [ACCURACY],
        sample_size=size, dataset_root=root, tool=tool,
    )  # fmt: skip
    safety = record_evaluation(
        "flag-safety", {n: v for n, v in metrics.items() if n != "accuracy"}, [SAFETY],
        sample_size=size, dataset_root=root, tool=tool,
    )  # fmt: skip
    world.claims.check(acc.passed and safety.passed, f"{MODEL_REF} meets {ACCURACY}, {SAFETY}")
    ev1 = reg.record_evaluation(MODEL_REF, acc, k["qa"])
    ev2 = reg.record_evaluation(MODEL_REF, safety, k["auditor"])
    ap1 = reg.approve(MODEL_REF, "qa", k["qa"], comment="holdout accuracy reviewed")
    ap2 = reg.approve(MODEL_REF, "auditor", k["auditor"], comment="flag safety within bounds")
    world.say(
        f"{MODEL_REF} trained on {len(d.y_train)} digit images ({TRAIN_REF}, log entry "
        f"{ds.log_index}) and registered (entry {mv.log_index}, {mv.digest[:23]}…): "
        f"accuracy {metrics['accuracy']:.3f} signed by QA, flag sensitivity "
        f"{metrics['flag_sensitivity']:.3f} by the auditor, approved by both (entries "
        f"{ap1.log_index}, {ap2.log_index}); the older {OLD_REF} is entry {old.log_index}"
    )
    return Registered(
        model_dir,
        _digest(mv.digest),
        _digest(old.digest),
        {
            "train": ds.log_index,
            "holdout": ho.log_index,
            "old_model": old.log_index,
            "model": mv.log_index,
            "accuracy": ev1.log_index,
            "flag_safety": ev2.log_index,
            "approval_qa": ap1.log_index,
            "approval_auditor": ap2.log_index,
        },
        train,
    )


def epoch_size(calls: int) -> int:
    """Receipts per epoch: a job of ``calls`` calls fills :data:`EPOCHS` epochs."""
    return -(-calls // EPOCHS)


def _provider(
    world: World, name: str, plugin: str, env: dict[str, str], calls: int, jobs: Path
) -> Child:
    """``ailedger market serve`` of the registered version, as a child process; it serves
    the jobs of the table ``jobs`` (job id -> the consumer whose signature each call needs)."""
    command = [
        "market", "serve", "--model", str(MODEL_REF), "--key", "provider",
        "--market-contract", world.m.address, "--chain-id", str(world.chain.chain_id),
        "--price", str(PRICE), "--plugin", "callable", "--callable", CALLABLE + plugin,
        "--store", str(world.workdir / "provider" / f"{name}.sqlite"),
        "--epoch-size", str(epoch_size(calls)), "--epoch-seconds", str(EPOCH_SECONDS),
        "--jobs", str(jobs),
    ]  # fmt: skip
    return Child(name, world.workdir, command, world.workspace.path / "password", env)


@contextmanager
def providers(
    world: World, d: im.Digits, calls: int, jobs: Sequence[bytes]
) -> Iterator[dict[str, Future[Child]]]:
    """Start the honest provider, then the one that swaps in a cheaper model for
    :data:`SWAP_RATE` of its calls (the same key and registered version), in the background:
    futures of the started children; both stopped by PID whatever happens. They serve
    ``jobs``, the hospital's (each call must carry the hospital's signature)."""
    folder = world.workdir / "provider"
    folder.mkdir()
    table = folder / "jobs.json"
    table.write_text(json.dumps({"0x" + j.hex(): world.addr("hospital") for j in jobs}))
    cheap = folder / "cheap-model.pkl"
    cheap.write_bytes(pickle.dumps(im.train_cheap(d), protocol=5))
    children = Children(folder / "pids")
    swap = {im.SWAP_ENV: im.swap_setting(cheap, SWAP_RATE, 5)}
    started = [
        _provider(world, "provider-honest", "triage", {}, calls, table),
        _provider(world, "provider-swapping", "swapped", swap, calls, table),
    ]
    # one after the other: each unlocks the key (scrypt), and the honest one is needed first
    pool = ThreadPoolExecutor(max_workers=1)
    try:
        yield {c.name: pool.submit(children.start, c) for c in started}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # a child starting is let finish
        children.stop_all()
