"""The explorer's first paint and time to a verified badge, on loopback, for a large log.

Builds a log of ``--entries`` leaves fast (synthetic entries written through the log's storage
layer, as bench_tiles.py does), then appends the last 10 as real signed envelopes, starts a
real ``ailedger serve`` (a child process, stopped by its PID) and opens the explorer in
Debian's Chromium (Playwright, the system browser: ``chromium`` on PATH), each time in a new
browser context (empty cache, nothing remembered):

* the log overview (``/``): the checkpoint verified, the 10 recent entries listed;
* the page of the last entry (``/?key=VKEY#/entry/N-1``): the envelope, its inclusion proof
  and the checkpoint fetched and verified in the browser;
* the environment page (``#/env/prod``): three of the real entries are a deploy, a deploy and
  a rollback of ``prod`` (each naming the previous one), whose signer ``[members]`` makes a
  deployer; the page fetches them from ``/v1/registry/environments/prod`` and verifies all
  three and their links. The service builds the registry index from the log in the
  background when it starts (reading the registry's statements only); the first registry
  request, sent as soon as the service is ready, waits for it (timed separately, before the
  runs: "index sync").

Prints, per page, the median and worst of ``--runs`` runs of first contentful paint and of
the moment the badge settled (the page's own ``ailedger:settled`` performance mark), both in
ms from the start of navigation, beside the issue's target (first paint < 300 ms at 100,000
entries). The first paint is the page's shell (header, "Loading…"); the badge settles once
the data arrived and every check ran.

    .venv/bin/python benchmarks/bench_explorer.py [--entries 100000] [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

from playwright.sync_api import sync_playwright

from ailedger.attest.dsse import PAYLOAD_TYPE_IN_TOTO, sign
from ailedger.identity.keys import Keystore, Secp256k1Signer
from ailedger.log import TransparencyLog, note_key_for, vkey
from ailedger.log._store import Row, Store
from ailedger.merkle import leaf_hash
from ailedger.registry import LocalBackend
from ailedger.workspace import Workspace

sys.path.insert(0, str(Path(__file__).parent))
from bench_tiles import start, stop

ORIGIN = "bench.ailedger.dev/explorer"
AILEDGER = Path(sys.executable).with_name("ailedger")
CHUNK = 1 << 16
TARGET_MS = 300.0
REAL = 10
#: The last real entries: events of environment "prod".
EVENTS = [("deploy", 1), ("deploy", 2), ("rollback", 1)]


def build_log(path: Path, n: int, signer: Secp256k1Signer) -> None:
    store = Store(path, ORIGIN)
    try:
        for first in range(0, n - REAL, CHUNK):
            rows = []
            for i in range(first, min(n - REAL, first + CHUNK)):
                data = b"entry %d" % i
                rows.append(Row(data, leaf_hash(data), 0, "text/plain", None, (), ()))
            store.append(rows)
    finally:
        store.close()
    envelopes = []
    for i in range(n - REAL, n - len(EVENTS)):
        statement = {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"artifact-{i}", "digest": {"sha256": f"{i:064x}"}}],
            "predicateType": "https://ailedger.dev/bench/v1",
            "predicate": {"n": i},
        }
        env = sign(PAYLOAD_TYPE_IN_TOTO, json.dumps(statement).encode(), [signer])
        envelopes.append(env.to_json())
    with TransparencyLog.open(path) as log:
        log.append_many(envelopes)
        previous = None
        for action, version in EVENTS:
            statement = {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [
                    {"name": f"bench-model@{version}", "digest": {"sha256": f"{version:064x}"}}
                ],
                "predicateType": "https://ailedger.dev/predicates/deployment/v1",
                "predicate": {
                    "action": action,
                    "environment": "prod",
                    "previous": previous,
                    "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                    "version": f"bench-model@{version}",
                },
            }
            env = sign(PAYLOAD_TYPE_IN_TOTO, json.dumps(statement).encode(), [signer])
            index = log.append(env.to_json())
            previous = {"log_index": index, "leaf_hash": log.get(index).leaf_hash.hex()}


def measure(browser: object, url: str, runs: int) -> tuple[list[float], list[float]]:
    paints, settled = [], []
    for _ in range(runs):
        context = browser.new_context()  # type: ignore[attr-defined]
        try:
            page = context.new_page()
            page.goto(url)
            page.wait_for_selector("#badge:not([data-state='pending'])", timeout=60_000)
            state = page.get_attribute("#badge", "data-state")
            if state != "ok":
                raise SystemExit(f"{url}: the badge is {state}: {page.inner_text('#badge')}")
            paint = page.evaluate(
                "performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? -1"
            )
            mark = page.evaluate("performance.getEntriesByName('ailedger:settled')[0].startTime")
            paints.append(float(paint))
            settled.append(float(mark))
        finally:
            context.close()
    return paints, settled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    n = args.entries
    chromium = shutil.which("chromium")
    if chromium is None:
        raise SystemExit("chromium is not installed (apt-get install chromium)")
    print(f"load average before: {os.getloadavg()[0]:.2f} (2 shared cores)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "server"
        root.mkdir()
        ws = Workspace.init(root, origin=ORIGIN, log_key="logkey")
        keystore = Keystore(ws.keys_dir)
        keystore.create("logkey", None, unsafe_plaintext=True)
        log_key = note_key_for(ORIGIN, keystore.public_key("logkey"))
        t0 = time.perf_counter()
        deployer = Secp256k1Signer.generate()
        LocalBackend.grant(ws, deployer.address, "deployer", "bench-org")
        build_log(root / ".ailedger" / "log.sqlite", n, deployer)
        print(f"built a log of {n:,} entries in {time.perf_counter() - t0:.1f} s")
        command = [str(AILEDGER), "--workspace", str(root), "serve", "--port", "0", "--json"]
        serve, url = start([*command, "--allow", "0x" + "00" * 20])
        try:
            pinned = f"?key={quote(vkey(log_key), safe='')}"
            pages = {
                "overview": f"{url}/",
                f"entry {n - 1}": f"{url}/{pinned}#/entry/{n - 1}",
                "env prod": f"{url}/{pinned}#/env/prod",
            }
            t0 = time.perf_counter()
            with urlopen(f"{url}/v1/registry/environments/prod") as r:
                events = json.load(r)["events"]
            assert [e["action"] for e in events] == [a for a, _ in EVENTS], events
            print(f"index sync (first registry request): {time.perf_counter() - t0:.2f} s")
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=chromium)
                try:
                    measure(browser, pages["overview"], 1)  # warm-up: the OS page cache
                    for name, page_url in pages.items():
                        paints, settled = measure(browser, page_url, args.runs)
                        print(
                            f"{name:>14}: first paint median {statistics.median(paints):6.1f} ms"
                            f" (worst {max(paints):6.1f}); verified badge median "
                            f"{statistics.median(settled):6.1f} ms (worst {max(settled):6.1f});"
                            f" target: first paint < {TARGET_MS:.0f} ms"
                        )
                finally:
                    browser.close()
        finally:
            stop(serve)


if __name__ == "__main__":
    main()
