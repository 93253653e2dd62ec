"""``ailedger market serve --plugin onnx`` end to end: the committed digits graph
(``tests/markets/data/onnx-digits``, made by ``scripts/make_onnx_model.py``) is registered,
served by a real provider process on loopback through onnxruntime, called with
consumer-signed requests; the outputs are scikit-learn's labels, every receipt verifies
(provider's signature, the registered model's digest, the request and response digests) and
is proven in its epoch's signed root; the provider's book keeps the calls for a reveal."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from _cli import PASSWORD
from _workflow_util import fast_keystore
from ailedger.markets.inference import (
    ProviderClient,
    ReceiptWallet,
    market_domain,
    verify_kept,
)
from ailedger.markets.inference._store import kept_calls
from ailedger.registry import Registry, VersionRef
from ailedger.workspace import Workspace
from markets._helpers import CHAIN_ID, CONSUMER, CONSUMER_KEY, CONTRACT, PROVIDER, Provider

DATA = Path(__file__).parent / "data"


def test_an_onnx_model_is_served_with_signed_calls_and_verified_receipts(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    root = tmp_path / "provider"
    ws = Workspace.init(root, origin="example.com/onnx-market")
    store = fast_keystore(ws)
    store.add("provider", PROVIDER, PASSWORD)
    model_dir = root / "onnx-digits"
    shutil.copytree(DATA / "onnx-digits", model_dir)
    with Registry.open(ws, keys=store.list_keys()) as registry:
        recorded = registry.register_model(model_dir, VersionRef.parse("onnx@1"), PROVIDER)
    digest = bytes.fromhex(recorded.digest.removeprefix("sha256:"))
    job = b"\x0d" * 32
    jobs = root / "jobs.json"
    jobs.write_text(json.dumps({"0x" + job.hex(): CONSUMER}))
    expected = json.loads((DATA / "onnx-digits.json").read_text())
    book = root / "provider.sqlite"
    args = (
        "--model", "onnx@1", "--plugin", "onnx", "--key", "provider", "--market-contract",
        CONTRACT, "--chain-id", str(CHAIN_ID), "--price", "7", "--epoch-size", "2",
        "--jobs", str(jobs), "--store", str(book),
    )  # fmt: skip
    with (
        Provider(root, *args) as served,
        ReceiptWallet(tmp_path / "wallet.sqlite") as wallet,
        ProviderClient(
            served.url, provider=PROVIDER.address, model_digest=digest,
            domain=market_domain(CHAIN_ID, CONTRACT), wallet=wallet, price=7,
        ) as client,
    ):  # fmt: skip
        info = client.info()
        assert (info["plugin"], info["model_digest"]) == ("onnx", recorded.digest)
        inputs = expected["inputs"][:4]
        results = [client.call([x], job=job, signer=CONSUMER_KEY) for x in inputs]
        assert [r.output for r in results] == [[y] for y in expected["labels"][:4]]
        assert [r.receipt.receipt.counter for r in results] == [1, 2, 3, 4]
        for result in results:  # two whole epochs of two: every receipt is in a signed root
            client.prove(result.receipt)
        assert [verify_kept(row, model_digest=digest) for row in wallet.rows(job)] == [True] * 4
    # the provider's book kept each call with the consumer's signature (for a reveal)
    kept = kept_calls(book, job, 0, {1, 2})
    assert [(k.input, k.has_call, k.request is not None) for k in kept] == [
        ([inputs[0]], True, True),
        ([inputs[1]], True, True),
    ]
