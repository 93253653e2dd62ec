"""Helpers of the inference-market tests: a digits classifier registered in a workspace, the
provider's and the consumer's keys, a job table, consumer-signed call bodies, and ``ailedger
market serve`` as a real child process on 127.0.0.1."""

from __future__ import annotations

import json
import pickle
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from _cli import PASSWORD
from _service import Service
from _workflow_util import fast_keystore
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.inference import (
    InferenceRequest,
    request_digest,
    request_domain,
    sign_request,
)
from ailedger.registry import Registry, VersionRef
from ailedger.workspace import Workspace

PROVIDER = Secp256k1Signer(bytes.fromhex("44" * 32))
CONSUMER_KEY = Secp256k1Signer(bytes.fromhex("55" * 32))
CONSUMER = CONSUMER_KEY.address
OTHER_KEY = Secp256k1Signer(bytes.fromhex("66" * 32))
OTHER_CONSUMER = OTHER_KEY.address
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
    #: The provider's job table: jobs 0x0101.., 0x0202.., ... 0xefef.. belong to CONSUMER,
    #: 0xf0f0.. ... 0xffff.. to OTHER_CONSUMER.
    jobs: Path


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
    store.add("consumer", CONSUMER_KEY, PASSWORD)
    model_dir = root / "digits-model"
    samples, labels = train_digits(model_dir)
    with Registry.open(ws, keys=store.list_keys()) as registry:
        recorded = registry.register_model(model_dir, VersionRef.parse(MODEL), PROVIDER)
    digest = bytes.fromhex(recorded.digest.removeprefix("sha256:"))
    jobs = root / "jobs.json"
    owners = {
        "0x" + f"{i:02x}" * 32: CONSUMER if i < 0xF0 else OTHER_CONSUMER for i in range(1, 256)
    }
    jobs.write_text(json.dumps(owners))
    return Market(root, model_dir, digest, samples, labels, jobs)


def signed_body(
    job: str,
    value: Any,
    model_digest: bytes,
    *,
    key: Secp256k1Signer = CONSUMER_KEY,
    consumer: str | None = None,
    provider: str | None = None,
    nonce: bytes | None = None,
    expires: int | None = None,
    chain_id: int = CHAIN_ID,
    contract: str = CONTRACT,
    sign_job: str | None = None,
    **extra: Any,
) -> bytes:
    """A ``POST /v1/infer`` body for ``job`` signed by ``key`` (the named ``consumer``,
    default: the key's address); ``sign_job`` signs for another job than the one sent."""
    nonce = secrets.token_bytes(32) if nonce is None else nonce
    expires = int(time.time()) + 300 if expires is None else expires
    signed_for = bytes.fromhex((sign_job or job)[2:])
    asked = InferenceRequest(
        signed_for,
        provider or PROVIDER.address,
        model_digest,
        request_digest(value),
        nonce,
        expires,
    )
    signed = sign_request(asked, request_domain(chain_id, contract), key)
    doc = {"job": job, "consumer": consumer or key.address, "input": value, **signed.to_dict()}
    doc.update(extra)
    return json.dumps(doc).encode()


class Provider(Service):
    """``ailedger market serve`` over a market workspace."""

    command = ("market", "serve")


def provider_args(*extra: str, jobs: Path | None = None) -> tuple[str, ...]:
    """``market serve`` options for the test market (``jobs``: the job table to serve)."""
    table = () if jobs is None else ("--jobs", str(jobs))
    return (
        *table,
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
