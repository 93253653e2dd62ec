"""Helpers of the inference-market tests: a digits classifier registered in a workspace, the
provider's key, and ``ailedger market serve`` as a real child process on 127.0.0.1."""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest

from _cli import PASSWORD
from _service import Service
from _workflow_util import fast_keystore
from ailedger.identity.keys import Secp256k1Signer
from ailedger.registry import Registry, VersionRef
from ailedger.workspace import Workspace

PROVIDER = Secp256k1Signer(bytes.fromhex("44" * 32))
CONSUMER = Secp256k1Signer(bytes.fromhex("55" * 32)).address
OTHER_CONSUMER = Secp256k1Signer(bytes.fromhex("66" * 32)).address
CHAIN_ID = 1337
CONTRACT = "0x" + "ab" * 20
MODEL = "digits@1"


@dataclass(frozen=True)
class Market:
    """A provider workspace with the digits model registered as ``digits@1``."""

    root: Path
    model_dir: Path
    digest: bytes
    samples: list[list[float]]
    labels: list[int]


def train_digits(model_dir: Path) -> tuple[list[list[float]], list[int]]:
    """A small real classifier (a decision tree) on scikit-learn's digits, pickled as
    ``model_dir/model.pkl``; a few held-out samples and their labels."""
    pytest.importorskip("sklearn")
    from sklearn.datasets import load_digits
    from sklearn.tree import DecisionTreeClassifier

    digits = load_digits()
    x, y = digits.data, digits.target
    model = DecisionTreeClassifier(random_state=0, max_depth=12).fit(x[:1500], y[:1500])
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "model.pkl").write_bytes(pickle.dumps(model))
    return x[1500:1520].tolist(), [int(v) for v in y[1500:1520]]


def make_market(root: Path) -> Market:
    ws = Workspace.init(root, origin="example.com/market")
    store = fast_keystore(ws)
    store.add("provider", PROVIDER, PASSWORD)
    model_dir = root / "digits-model"
    samples, labels = train_digits(model_dir)
    with Registry.open(ws, keys=store.list_keys()) as registry:
        recorded = registry.register_model(model_dir, VersionRef.parse(MODEL), PROVIDER)
    digest = bytes.fromhex(recorded.digest.removeprefix("sha256:"))
    return Market(root, model_dir, digest, samples, labels)


class Provider(Service):
    """``ailedger market serve`` over a market workspace."""

    command = ("market", "serve")


def provider_args(*extra: str) -> tuple[str, ...]:
    return (
        "--model",
        MODEL,
        "--key",
        "provider",
        "--market-contract",
        CONTRACT,
        "--chain-id",
        str(CHAIN_ID),
        "--price",
        "1000",
        *extra,
    )
