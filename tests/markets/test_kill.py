"""SIGKILL the provider while clients call it: every receipt it returned survives (served again,
byte for byte, after a restart), no counter is handed out twice, counters run on with no gap,
and every returned receipt is proven in its epoch's signed root once the epoch closes."""

from __future__ import annotations

import http.client
import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

from ailedger.markets.inference import (
    SignedEpochRoot,
    SignedReceipt,
    market_domain,
    verify_epoch_root,
    verify_inclusion_in_epoch,
    verify_receipt,
)
from ailedger.merkle import InclusionProof
from markets._helpers import (
    CHAIN_ID,
    CONTRACT,
    PROVIDER,
    Provider,
    make_market,
    provider_args,
    signed_body,
)

CLIENTS = 4
ROUNDS = 2
ACKS_PER_ROUND = 40
DOMAIN = market_domain(CHAIN_ID, CONTRACT)


def _get(provider: Provider, path: str) -> tuple[int, Any]:
    status, _, body = provider.request("GET", path)
    return status, json.loads(body)


def test_returned_receipts_survive_sigkill(tmp_path: Path) -> None:
    market = make_market(tmp_path / "provider")
    acked: dict[tuple[str, int], dict[str, Any]] = {}
    lock = threading.Lock()
    errors: list[str] = []  # a call answered with anything but 200 (the test then fails)
    jobs = ["0x" + f"{i + 1:02x}" * 32 for i in range(CLIENTS)]

    for round_ in range(ROUNDS):
        provider = Provider(
            market.root, *provider_args("--epoch-size", "16", jobs=market.jobs)
        ).start()
        stop = threading.Event()

        def call(job: str, provider: Provider = provider, stop: threading.Event = stop) -> None:
            while not stop.is_set():
                body = signed_body(job, market.samples[0], market.digest)
                try:
                    status, _, data = provider.request("POST", "/v1/infer", body)
                except (OSError, http.client.HTTPException):
                    return  # the provider died under us: this call was never answered
                if status != 200:  # an assert here would die with the thread, unseen
                    errors.append(f"{status}: {data[:200]!r}")
                    return
                receipt = json.loads(data)["receipt"]
                with lock:
                    acked[(job, receipt["message"]["counter"])] = receipt

        threads = [threading.Thread(target=call, args=(job,)) for job in jobs]
        for t in threads:
            t.start()
        target = ACKS_PER_ROUND * (round_ + 1)
        for _ in range(60_000):  # a guard against a hang, not a timing assertion
            with lock:
                if len(acked) >= target or errors:
                    break
            time.sleep(0.005)
        provider.stop(signal.SIGKILL)  # mid-epoch, with calls in flight
        stop.set()
        for t in threads:
            t.join()
        assert errors == []
        assert len(acked) >= target

    # restarted with short epochs: every returned receipt is served again, byte for byte
    args = provider_args("--epoch-size", "16", "--epoch-seconds", "0.2", jobs=market.jobs)
    with Provider(market.root, *args) as p:
        for (job, counter), receipt in acked.items():
            status, served = _get(p, f"/v1/receipts/{job}/{counter}")
            assert status == 200
            assert served == receipt
            verify_receipt(
                SignedReceipt.from_dict(served), domain=DOMAIN, provider=PROVIDER.address
            )
        for job in jobs:
            held = sorted(c for j, c in acked if j == job)
            # counters run on: 1..n with no gap (a killed call may have a receipt we never saw)
            status, doc = _get(p, f"/v1/receipts/{job}/{held[-1] + 1}")
            last = held[-1] + (1 if status == 200 else 0)
            body = signed_body(job, market.samples[1], market.digest)
            status, _, data = p.request("POST", "/v1/infer", body)
            assert status == 200
            assert json.loads(data)["receipt"]["message"]["counter"] == last + 1
            for counter in range(1, last + 1):
                assert _get(p, f"/v1/receipts/{job}/{counter}")[0] == 200
        # once the last epoch closed by age, every returned receipt has its proof
        for (job, counter), receipt in acked.items():
            for _ in range(12_000):  # a guard against a hang, not a timing assertion
                status, doc = _get(p, f"/v1/receipts/{job}/{counter}/proof")
                if status == 200:
                    break
                assert status == 404
                time.sleep(0.01)
            assert status == 200
            signed = SignedReceipt.from_dict(receipt)
            root = verify_epoch_root(
                SignedEpochRoot.from_dict(doc["epoch_root"]),
                domain=DOMAIN,
                provider=PROVIDER.address,
            )
            verify_inclusion_in_epoch(signed, root, InclusionProof.from_dict(doc["proof"]))
