"""Gas side by side with the peers: our oracle report vs Chainlink OCR2, our anchor vs EAS.

Deploys, on one web3.py in-memory py-evm chain (cancun) in the same run:

* ours: contracts/OracleFeeds.sol and contracts/LogAnchors.sol, compiled from source with the
  pinned solc-js like the tests;
* Chainlink OCR2: benchmarks/contracts/OCR2MedianBench.sol, a minimal concrete contract over
  ``OCR2Base`` from npm ``@chainlink/contracts`` (pinned in package.json) that stores the
  median, compiled with the same solc-js and settings;
* EAS: ``SchemaRegistry`` and ``EAS`` from the built artifacts shipped in npm
  ``@ethereum-attestation-service/eas-contracts`` (pinned), deployed from their bytecode.

and prints, with ratios:

1. gas to accept one report at n = 4, f = 1 and n = 7, f = 2 (f + 1 signatures, 2f + 1
   observations, later reports of a feed; a feed's first report, which initialises its slots,
   is not counted): ``OracleFeeds.transmit`` vs OCR2 ``transmit``;
2. gas to record 1 / 1,000 / 1,000,000 statements: one later ``LogAnchors.anchor`` (2 witness
   cosignatures; it covers any number of entries) vs one EAS ``attest`` per entry and EAS
   ``multiTimestamp`` per batch (batches of at most 1,000 entries, which fit in a block).

    .venv/bin/python benchmarks/bench_peers_gas.py [--reports 3] [--witnesses 2]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys
from pathlib import Path
from typing import Any

from eth_abi.abi import encode
from eth_utils.crypto import keccak
from web3 import Web3
from web3.providers.eth_tester import EthereumTesterProvider

from ailedger import merkle
from ailedger.chain.eip712 import log_id, sign_digest
from ailedger.identity.keys import Secp256k1Signer

REPO = Path(__file__).resolve().parents[1]
BENCH_CONTRACTS = REPO / "benchmarks" / "contracts"
EAS_ARTIFACTS = REPO / "node_modules/@ethereum-attestation-service/eas-contracts/artifacts"
SIZES = (1, 1_000, 1_000_000)
MAX_BATCH = 1_000  # multiTimestamp entries per transaction (about 23M gas: fits a 30M block)
ZERO_ADDRESS = "0x" + "00" * 20


def _load(name: str) -> Any:
    """A helper module from tests/contracts/ (compile, deploy, sign)."""
    tests = REPO / "tests" / "contracts"
    sys.path.insert(0, str(tests))
    spec = importlib.util.spec_from_file_location(name, tests / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _compile_bench(h: Any) -> tuple[dict[str, Any], str]:
    """benchmarks/contracts/*.sol with the test settings (cancun, optimizer 200), cached."""
    sources = {
        f"benchmarks/contracts/{p.name}": p.read_text(encoding="utf-8")
        for p in sorted(BENCH_CONTRACTS.glob("*.sol"))
    }
    compiled, version = h.compile_sources(sources)
    return dict(compiled), version


def _eas_artifact(h: Any, name: str) -> Any:
    data = json.loads((EAS_ARTIFACTS / "contracts" / f"{name}.sol" / f"{name}.json").read_text())
    return h.Compiled(name, data["abi"], data["bytecode"])


def _package_version(name: str) -> str:
    data = json.loads((REPO / "node_modules" / name / "package.json").read_text())
    return str(data["version"])


def _calldata_gas(w3: Web3, receipt: Any) -> int:
    """The transaction's calldata gas (EIP-2028: 16 per non-zero byte, 4 per zero byte)."""
    data = bytes(w3.eth.get_transaction(receipt["transactionHash"])["input"])
    return sum(16 if b else 4 for b in data)


def _ratio(peer: float, ours: float) -> str:
    return f"{peer / ours:,.2f}x"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=3, help="reports averaged per point")
    parser.add_argument("--witnesses", type=int, default=2, help="cosignatures per anchor")
    parser.add_argument("--samples", type=int, default=5, help="EAS attests averaged")
    args = parser.parse_args()
    for package in ("@chainlink/contracts", "@ethereum-attestation-service/eas-contracts"):
        if not (REPO / "node_modules" / package / "package.json").is_file():
            sys.exit(f"error: node_modules/{package} is missing: run `npm ci` in {REPO}")

    h = _load("oracle_helpers")
    c_helpers = sys.modules["contract_helpers"]
    from ailedger.chain.oracle_report import feed_label

    w3 = Web3(EthereumTesterProvider())
    bench, solc_version = _compile_bench(c_helpers)
    compiled = {**h.compile_all(), **bench}
    compiled["SchemaRegistry"] = _eas_artifact(c_helpers, "SchemaRegistry")
    compiled["EAS"] = _eas_artifact(c_helpers, "EAS")
    o = h.deploy_oracles(w3, compiled=compiled)
    chain = o.chain
    chain.gas = int(w3.eth.get_block("latest")["gasLimit"]) - 1
    counter = iter(range(10**6))

    # --- 1. one report: OracleFeeds.transmit vs OCR2 transmit -------------------------------
    def ours(n: int, f: int) -> tuple[int, int]:
        label = feed_label(f"bench/peers/{next(counter)}")
        keys = h.oracle_keys(n, base=5000 + 100 * next(counter))
        o.keys.extend(keys)
        feed: bytes = o.create_feed(label, [k.address for k in keys], f, bounds=(0, 10**6))
        values = list(range(100, 100 + 2 * f + 1))

        def transmit(epoch: int) -> Any:
            report = o.report(epoch, values, feed=feed)
            sigs = o.sign(report, o.signer_keys(feed)[: f + 1])
            return chain.send(o.transmit(report, sigs))

        transmit(1)  # the feed's first report: not counted
        receipts = [transmit(2 + i) for i in range(args.reports)]
        gas = [int(r["gasUsed"]) for r in receipts]
        return sum(gas) // len(gas), _calldata_gas(w3, receipts[-1])

    def ocr2(n: int, f: int) -> tuple[int, int]:
        contract = chain.deploy("OCR2MedianBench")
        keys = h.oracle_keys(n, base=7000 + 100 * next(counter))
        transmitters = chain.accounts[:n]
        call = contract.functions.setConfig([k.address for k in keys], transmitters, f, b"", 1, b"")
        chain.send(call)
        digest = bytes(contract.functions.latestConfigDetails().call()[2])
        values = list(range(100, 100 + 2 * f + 1))

        def transmit(epoch: int) -> Any:
            report = encode(
                ["uint32", "bytes32", "int192[]", "int192"],
                [
                    int(w3.eth.get_block("latest")["timestamp"]),
                    bytes(range(len(values))).ljust(32, b"\0"),
                    values,
                    10**18,
                ],
            )
            context = [digest, (epoch << 8).to_bytes(32, "big"), keccak(b"extra hash")]
            signed = keccak(keccak(report) + b"".join(context))
            sigs = [sign_digest(signed, k) for k in keys[: f + 1]]
            rs = [s[:32] for s in sigs]
            ss = [s[32:64] for s in sigs]
            raw_vs = bytes(s[64] - 27 for s in sigs).ljust(32, b"\0")
            tx = contract.functions.transmit(context, report, rs, ss, raw_vs)
            return chain.send(tx, transmitters[0])

        transmit(1)  # the first report: not counted, as for ours
        receipts = [transmit(2 + i) for i in range(args.reports)]
        assert contract.functions.latestRoundData().call()[1] == values[f]  # the median
        gas = [int(r["gasUsed"]) for r in receipts]
        return sum(gas) // len(gas), _calldata_gas(w3, receipts[-1])

    print("1. Gas to accept one report (later reports; f + 1 signatures, 2f + 1 observations)")
    print("   (calldata = the transaction's calldata gas, inside the total; exec = total - 21,000")
    print("   - calldata)")
    print(
        f"{'n':>3} {'f':>3} {'sigs':>4} {'obs':>4} {'OracleFeeds.transmit':>21}"
        f" {'calldata':>8} {'exec':>7} {'OCR2 transmit':>14} {'calldata':>8} {'exec':>7}"
        f" {'ours - OCR2':>12} {'OCR2 / ours':>12}"
    )
    for n, f in ((4, 1), (7, 2)):
        (a, a_cd), (b, b_cd) = ours(n, f), ocr2(n, f)
        print(
            f"{n:>3} {f:>3} {f + 1:>4} {2 * f + 1:>4} {a:>21,} {a_cd:>8,} {a - 21_000 - a_cd:>7,}"
            f" {b:>14,} {b_cd:>8,} {b - 21_000 - b_cd:>7,} {a - b:>+12,} {_ratio(b, a):>12}"
        )

    # --- 2. recording statements: LogAnchors.anchor vs EAS ----------------------------------
    anchors = chain.deploy("LogAnchors")
    log_key = Secp256k1Signer(keccak(text="bench peers log key"))
    witnesses = [Secp256k1Signer(keccak(text=f"bench peers witness {i}")) for i in range(8)]
    k = args.witnesses
    hashes = merkle.leaf_hashes(b"entry %d" % i for i in range(max(SIZES)))

    def root(size: int) -> bytes:
        return merkle.EMPTY_ROOT if size == 0 else merkle.root_from_leaf_hashes(hashes[:size])

    def anchor(lid: bytes, size: int) -> int:
        sig, cosigs = c_helpers.sign_checkpoint(
            anchors, chain.chain_id, lid, size, root(size), log_key, witnesses[:k]
        )
        return int(
            chain.send(anchors.functions.anchor(lid, size, root(size), sig, cosigs))["gasUsed"]
        )

    anchor_gas: dict[int, int] = {}
    for size in SIZES:
        origin = f"bench.example/peers/{next(counter)}"
        admin = chain.accounts[0]
        ws = [w.address for w in witnesses[:k]]
        chain.send(
            c_helpers.register_log(anchors, chain.chain_id, origin, log_key, ws, k, admin), admin
        )
        lid = bytes(log_id(origin, log_key.address))
        anchor(lid, size // 2)  # the log already holds an anchor: this one is a later anchor
        anchor_gas[size] = anchor(lid, size)

    registry = chain.deploy("SchemaRegistry")
    eas = chain.deploy("EAS", registry.address)
    schema_call = registry.functions.register("bytes32 entry", ZERO_ADDRESS, True)
    schema = bytes(schema_call.call({"from": chain.accounts[0]}))
    chain.send(schema_call)

    def attest(i: int) -> int:
        data = (chain.accounts[1], 0, True, b"\0" * 32, encode(["bytes32"], [hashes[i]]), 0)
        return int(chain.send(eas.functions.attest((schema, data)))["gasUsed"])

    attest(0)  # the first attestation: not counted
    samples = [attest(1 + i) for i in range(args.samples)]
    per_attest = sum(samples) // len(samples)
    fresh = iter(range(len(hashes)))  # EAS refuses to timestamp the same data twice

    def timestamps(size: int) -> int:
        batch = [hashes[next(fresh)] for _ in range(size)]
        return int(chain.send(eas.functions.multiTimestamp(batch))["gasUsed"])

    batch_gas = {size: timestamps(size) for size in (1, MAX_BATCH)}
    one_root = int(chain.send(eas.functions.timestamp(keccak(b"one root")))["gasUsed"])

    def multi(size: int) -> int:
        full, rest = divmod(size, MAX_BATCH)
        total = full * batch_gas[MAX_BATCH]
        if rest:
            total += batch_gas[rest] if rest in batch_gas else timestamps(rest)
        return total

    print(
        f"\n2. Gas to record N statements: one later LogAnchors.anchor ({k} cosignatures)"
        f" vs EAS attest per entry ({per_attest:,} gas each, mean of {len(samples)})"
        f" vs EAS multiTimestamp (batches of <= {MAX_BATCH:,}: {batch_gas[MAX_BATCH]:,} gas each)"
    )
    print(
        f"{'entries':>10} {'anchor':>8} {'per entry':>10} {'EAS attest':>16} {'per entry':>9}"
        f" {'attest/anchor':>14} {'multiTimestamp':>15} {'per entry':>9} {'multi/anchor':>13}"
    )
    for size in SIZES:
        a = anchor_gas[size]
        att = per_attest * size
        mt = multi(size)
        print(
            f"{size:>10,} {a:>8,} {a / size:>10,.3f} {att:>16,} {att / size:>9,.0f}"
            f" {_ratio(att, a):>14} {mt:>15,} {mt / size:>9,.0f} {_ratio(mt, a):>13}"
        )
    print(
        f"(EAS timestamp of one bytes32, e.g. a Merkle root, unsigned: {one_root:,} gas;"
        f" attest and batches of {MAX_BATCH:,} measured, larger N = N/{MAX_BATCH:,} batches)"
    )

    print(
        f"\nmachine: {platform.processor() or platform.machine()}, Python"
        f" {platform.python_version()}, py-evm (eth-tester) chain; solc {solc_version};"
        f" @chainlink/contracts {_package_version('@chainlink/contracts')},"
        f" eas-contracts {_package_version('@ethereum-attestation-service/eas-contracts')}"
    )


if __name__ == "__main__":
    main()
