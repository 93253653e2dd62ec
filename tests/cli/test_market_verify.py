"""``ailedger market draw|reveal|attest|settle|prove-output`` on the embedded chain, through
the real entry point: a job on an InferenceMarket, an epoch of 16 calls whose receipts the
provider signed (every other one over a wrong output), the consumer's wallet; the sample is
drawn, the consumer reveals it, two verifiers attest on their own copies of the model, the
epoch settles as failed (read back), and the consumer proves a wrong output with the
verifiers' Mismatches. Refusals are one line with their exit code: a key outside the verifier
set, another model, too few attestations, a tampered or empty file, an undrawn epoch, a
dispute by someone else than the consumer, a second dispute."""

from __future__ import annotations

import json
import pickle
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

import ailedger.cli._market_verify  # noqa: F401  (importing registers the commands)
from _cli import PASSWORD, fails, ok, run
from _workflow_util import NewWorkspace
from ailedger.chain.backends import open_workspace_chain
from ailedger.chain.inference_market import (
    EpochStatus,
    InferenceMarket,
    JobStatus,
    JobTerms,
    deploy_inference_market,
)
from ailedger.chain.stake import StakeManager, Token, deploy_stake_manager
from ailedger.chain.vouching import register_with_stake_manager
from ailedger.fingerprint.model import fingerprint_model
from ailedger.identity.keys import Secp256k1Signer
from ailedger.markets.inference import (
    InferenceRequest,
    ReceiptBook,
    ReceiptWallet,
    market_domain,
    new_nonce,
    request_digest,
    request_domain,
    response_digest,
    sign_request,
)
from markets._helpers import train_digits

ETH = 10**18
ADMIN = Secp256k1Signer(bytes.fromhex("81" * 32))
PROVIDER = Secp256k1Signer(bytes.fromhex("82" * 32))
CONSUMER = Secp256k1Signer(bytes.fromhex("83" * 32))
VERIFIERS = [Secp256k1Signer(bytes.fromhex(f"9{i}" * 32)) for i in range(1, 4)]
OUTSIDER = Secp256k1Signer(bytes.fromhex("99" * 32))
PRICE = 10
STAKE = 10**6
CALLS = 16
K = 6


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[list[float]]]:
    model_dir = tmp_path_factory.mktemp("digits") / "model"
    samples, _ = train_digits(model_dir)
    return model_dir, samples


def _world(
    new_workspace: NewWorkspace, tmp_path: Path, digits: tuple[Path, list[list[float]]]
) -> dict[str, Any]:
    ws, store = new_workspace("example.com/cli-market-verify")
    keys = {"admin": ADMIN, "provider": PROVIDER, "consumer": CONSUMER, "v1": VERIFIERS[0],
            "v2": VERIFIERS[1], "outsider": OUTSIDER}  # fmt: skip
    for name, key in keys.items():
        store.add(name, key, PASSWORD)
    model_dir, samples = digits
    digest = fingerprint_model(model_dir, tensors=False).subject_digest
    estimator = pickle.loads((model_dir / "model.pkl").read_bytes())
    with open_workspace_chain(ws) as chain:
        for who in (ADMIN, PROVIDER, CONSUMER, OUTSIDER):
            chain.fund(who.address, 10 * ETH)
        manager = StakeManager(chain, deploy_stake_manager(chain, ADMIN, unbonding_delay=1))
        token = Token(
            chain, chain.deploy("ConsortiumToken", "C", "C", ADMIN.address, 10**24, signer=ADMIN)
        )
        market = InferenceMarket(
            chain, deploy_inference_market(chain, ADMIN, stake_manager=manager.address)
        )
        register_with_stake_manager(
            chain, manager.address, market.address, prover_bps=5_000, signer=ADMIN
        )
        time.sleep(2.5)  # the governance delay (twice the 1 s unbonding delay)
        chain.fund(ADMIN.address, 1)  # a block after the delay
        for who in (PROVIDER, CONSUMER):
            token.transfer(who.address, 10**18, signer=ADMIN)
        token.approve(manager.address, STAKE, signer=PROVIDER)
        manager.deposit(STAKE, token.address, signer=PROVIDER)
        terms = JobTerms(
            PROVIDER.address, token.address, token.address, STAKE, digest, PRICE, 100,
            chain.block_timestamp() + 86_400, k=K, threshold=2,
        )  # fmt: skip
        job = market.open_job(terms, [v.address for v in VERIFIERS], signer=CONSUMER)
        market.accept_job(job, PROVIDER.address, signer=PROVIDER)
        domain = market_domain(chain.chain_id, market.address)
        signing = request_domain(chain.chain_id, market.address)
        digest_of_model = digest
        wallet_path = tmp_path / "wallet.sqlite"
        # the provider's book signs every even call over a wrong output (another class)
        with (
            ReceiptBook(
                tmp_path / "book.sqlite", signer=PROVIDER, domain=domain, model_digest=digest,
                price=PRICE, epoch_size=CALLS + 1,
            ) as book,
            ReceiptWallet(wallet_path) as wallet,
        ):  # fmt: skip
            for i in range(CALLS):
                value = [samples[i]]
                output = [int(v) for v in estimator.predict(value)]
                if i % 2 == 1:
                    output = [(output[0] + 1) % 10]
                digest = request_digest(value)
                asked = InferenceRequest(
                    job, PROVIDER.address, digest_of_model, digest, new_nonce(), 2**40
                )
                signed_request = sign_request(asked, signing, CONSUMER)
                signed = book.issue(
                    job, CONSUMER.address, digest, response_digest(output), signed_request,
                    (value, b""),
                )  # fmt: skip
                request = {"job": "0x" + job.hex(), "consumer": CONSUMER.address, "input": value}
                request.update(signed_request.to_dict())
                wallet.add(PROVIDER.address, signed, request, output)
            closed = book.close_epoch()
            assert closed is not None
            for i in range(CALLS):
                signed, root, proof = book.proof(job, i + 1)
                wallet.set_proof(PROVIDER.address, signed, root.signed, proof)
            r = closed.signed.epoch_root
            market.commit_epoch(
                job, r.epoch, r.size, r.root, CALLS, closed.signed.signature, signer=PROVIDER
            )
    return {
        "ws": ws,
        "market": market.address,
        "job": "0x" + job.hex(),
        "wallet": wallet_path,
        "book": tmp_path / "book.sqlite",
        "model_dir": model_dir,
        "token": token.address,
    }


def test_draw_reveal_attest_settle_and_prove(
    new_workspace: NewWorkspace, tmp_path: Path, digits: tuple[Path, list[list[float]]]
) -> None:
    w = _world(new_workspace, tmp_path, digits)
    m = ("--market-contract", w["market"])
    job = w["job"]
    # nothing drawn yet: no reveal
    fails(["market", "reveal", job, "0", *m, "--store", w["wallet"]], 10, "no sample yet")
    drawn = ok(["market", "draw", job, "0", *m, "--key", "consumer"])
    assert drawn["drawn"]
    assert drawn["blocks_mined"] >= 1  # the embedded chain mines only on transactions
    assert len(drawn["counters"]) == K
    assert drawn["claim"]["hoeffding_k"] == 14_979
    assert drawn["claim"]["zero_failure_k"] == 299
    human = run(["market", "draw", job, "0", *m, "--key", "consumer"])
    assert human.exit_code == 9
    assert "AlreadyDrawn" in human.output

    reveal = tmp_path / "reveal.json"
    summary = ok(["market", "reveal", job, "0", *m, "--store", w["wallet"], "--out", reveal])
    assert summary["missing"] == []
    assert summary["without_proof"] == []
    assert summary["revealed"] == sorted(set(drawn["counters"]))
    # the provider reveals the same calls from its book (with the consumer's signatures)
    provider_reveal = tmp_path / "provider-reveal.json"
    from_book = ok([
        "market", "reveal", job, "0", *m, "--provider-store", w["book"], "--out",
        provider_reveal,
    ])  # fmt: skip
    assert (from_book["revealed"], from_book["missing"]) == (summary["revealed"], [])
    fails(["market", "reveal", job, "0", *m, "--provider-store", tmp_path / "none.sqlite"], 4,
          "no receipt store")  # fmt: skip
    # the provider's commit of its closed epochs is idempotent (epoch 0 is on-chain already)
    committed = ok(["market", "commit", "--store", w["book"], "--key", "provider", *m])
    assert [(r["epoch"], r["committed"], r["reason"]) for r in committed["epochs"]] == [
        (0, True, "already committed")
    ]
    fails(["market", "commit", "--store", w["book"], "--key", "consumer", *m], 3, "not by --key")

    copies = []
    for i in (1, 2, 3):
        copy = tmp_path / f"copy-{i}"
        shutil.copytree(w["model_dir"], copy)
        copies.append(copy)
    files = []
    for i, key in enumerate(("v1", "v2")):
        out = tmp_path / f"att-{key}.json"
        doc = ok([
            "market", "attest", job, "0", *m, "--key", key, "--model-path", copies[i],
            "--reveal", reveal, "--out", out,
        ])  # fmt: skip
        honest = [c for c in drawn["counters"] if c % 2 == 1]  # calls 1, 3, 5, ... are right
        assert (doc["passed"], doc["total"]) == (len(honest), K)
        assert doc["epoch_passes"] is False or len(honest) == K
        assert sorted(doc["mismatches"]) == sorted({c for c in drawn["counters"] if c % 2 == 0})
        files.append(out)
    assert len(honest) < K, "no wrong output sampled (p = 2^-6)"

    # refusals: not a verifier; another model; a file that is not a reveal
    fails([
        "market", "attest", job, "0", *m, "--key", "outsider", "--model-path", copies[2],
        "--reveal", reveal,
    ], 10, "is not a verifier of job")  # fmt: skip
    other = tmp_path / "other-model"
    shutil.copytree(w["model_dir"], other)
    (other / "notes.txt").write_text("another version")
    fails([
        "market", "attest", job, "0", *m, "--key", "v1", "--model-path", other,
        "--reveal", reveal,
    ], 1, "refusing to load it")  # fmt: skip
    empty = tmp_path / "empty.json"
    empty.write_text("")
    fails([
        "market", "attest", job, "0", *m, "--key", "v1", "--model-path", copies[0],
        "--reveal", empty,
    ], 3, "is empty")  # fmt: skip

    # settle needs the threshold (2) of agreeing verifiers; a tampered file counts for nothing
    fails(["market", "settle", job, "0", files[0], *m, "--key", "consumer"], 10, "at most 1 agree")
    tampered = tmp_path / "tampered.json"
    doc = json.loads(files[1].read_text())
    doc["passed"] = K
    doc["samples"] = [{**s, "outcome": "ok"} for s in doc["samples"]]
    tampered.write_text(json.dumps(doc))
    fails(["market", "settle", job, "0", files[0], tampered, *m, "--key", "consumer"], 1,
          "is signed by")  # fmt: skip
    settled = ok(["market", "settle", job, "0", *files, *m, "--key", "consumer"])
    assert settled["status"] == "failed"
    assert (settled["failed_calls"], settled["paid_calls"]) == (CALLS, 0)

    # the consumer proves one wrong output with the attestation files alone
    fails(["market", "prove-output", job, "0", files[0], *m, "--key", "consumer"], 10,
          "signed alike by 2")  # fmt: skip
    fails(["market", "prove-output", job, "0", *files, *m, "--key", "v1"], 9, "NotConsumer")
    proven = ok(["market", "prove-output", job, "0", *files, *m, "--key", "consumer"])
    assert proven["counter"] % 2 == 0  # an even call: a wrong output
    assert (proven["slashed"], proven["status"]) == (STAKE, "slashed")
    assert proven["consumer_owed"] == 100 * PRICE
    with open_workspace_chain(w["ws"]) as chain:  # read back independently
        market = InferenceMarket(chain, chain.at("InferenceMarket", w["market"], track=False))
        job_id = bytes.fromhex(job[2:])
        assert market.epoch(job_id, 0).status == EpochStatus.FAILED
        assert market.job(job_id).status == JobStatus.SLASHED
        assert market.owed(CONSUMER.address, w["token"]) == 100 * PRICE
    fails(["market", "prove-output", job, "0", *files, *m, "--key", "consumer"], 9,
          "WrongJobStatus")  # fmt: skip
