"""The ledger strategy's cost beside plain Flower (issue 17).

1. Side by side, in one process (plain, ledger, ledger, plain): the same Flower simulation
   (``run_simulation``, Ray engine, 8 clients of ``ailedger demo federated``'s digits model,
   FedAvg) run plain and with :class:`ailedger.fl.SignedClient` and
   :class:`ailedger.fl.LedgerStrategy` (no scorer: the overhead of fingerprints, signatures
   and the log). Each round's wall time is taken at the
   end of ``aggregate_fit``; round 1 (actor start) is left out. Target: the ledger adds < 5% of
   the round time.
2. The ledger's own work per round, timed in-process without Ray (what the strategy adds on
   the server, and each client's signing): digests, statement checks, log appends.
3. Scoring 8 updates on a 10,000-record held-out set (scikit-learn's digits resampled with
   noise): leave-one-out, marginal, Monte-Carlo Shapley.

    .venv/bin/python benchmarks/bench_fl.py [--rounds 12] [--repeat 5] [--pairs 2]
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from flwr.client import ClientApp
from flwr.common import (
    Code,
    Context,
    FitRes,
    Status,
    ndarrays_to_parameters,
)
from flwr.server import ServerApp, ServerAppComponents, ServerConfig
from flwr.server.strategy import FedAvg
from flwr.simulation import run_simulation

from ailedger.demos._fl_clients import (
    BEHAVIOURS,
    DigitsClient,
    Split,
    initial_parameters,
    log_likelihood,
    split_digits,
)
from ailedger.fl import LedgerStrategy, Scorer, SignedClient, signed_fit, start_ray
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import TransparencyLog

CLIENTS = len(BEHAVIOURS)
BACKEND: Any = {
    "client_resources": {"num_cpus": 1, "num_gpus": 0.0},
    "init_args": {"num_cpus": 2, "include_dashboard": False, "logging_level": logging.ERROR},
}


class Timed(FedAvg):
    """FedAvg noting when each round's aggregation ends."""

    def __init__(self, marks: list[float], **kw: Any) -> None:
        super().__init__(**kw)
        self.marks = marks

    def aggregate_fit(self, server_round: int, results: Any, failures: Any) -> Any:
        out = super().aggregate_fit(server_round, results, failures)
        self.marks.append(time.perf_counter())
        return out


class Plain:
    def __init__(self, split: Split) -> None:
        self.split = split

    def __call__(self, context: Context) -> Any:
        cid = int(str(context.node_config["partition-id"]))
        return DigitsClient(*self.split.partitions[cid], "honest", cid).to_client()


class Signed(Plain):
    def __init__(self, split: Split, secrets: tuple[bytes, ...]) -> None:
        super().__init__(split)
        self.secrets = secrets

    def __call__(self, context: Context) -> Any:
        cid = int(str(context.node_config["partition-id"]))
        inner = DigitsClient(*self.split.partitions[cid], "honest", cid)
        return SignedClient(inner, Secp256k1Signer(self.secrets[cid])).to_client()


def simulate(split: Split, rounds: int, ledger: Path | None) -> list[float]:
    """Per-round wall seconds of rounds 2..N."""
    marks: list[float] = []
    keys = [Secp256k1Signer.generate() for _ in range(CLIENTS)]
    holder: dict[str, TransparencyLog] = {}

    def server_fn(context: Context) -> ServerAppComponents:
        inner = Timed(
            marks,
            fraction_fit=1.0,
            fraction_evaluate=0.0,
            min_fit_clients=CLIENTS,
            min_available_clients=CLIENTS,
            initial_parameters=ndarrays_to_parameters(initial_parameters()),
        )
        strategy: Any = inner
        if ledger is not None:
            holder["log"] = TransparencyLog.open(ledger, "bench.example/fl")
            strategy = LedgerStrategy(
                inner,
                task="bench",
                log=holder["log"],
                aggregator=Secp256k1Signer.generate(),
                clients=[k.address for k in keys],
                on_round=lambda r: holder["log"].close() if r.predicate.round == rounds else None,
            )
        return ServerAppComponents(strategy=strategy, config=ServerConfig(num_rounds=rounds))

    factory: Any = (
        Plain(split) if ledger is None else Signed(split, tuple(k._secret() for k in keys))
    )
    start_ray(2, logging_level=logging.ERROR)
    run_simulation(
        ServerApp(server_fn=server_fn),
        ClientApp(client_fn=factory),
        num_supernodes=CLIENTS,
        backend_config=BACKEND,
    )
    return [b - a for a, b in itertools.pairwise(marks)]


def in_process(split: Split, repeat: int, tmp: Path) -> dict[str, float]:
    """Median seconds per round of the ledger's own work, without Ray."""
    keys = [Secp256k1Signer.generate() for _ in range(CLIENTS)]
    base = initial_parameters()
    trained = [
        DigitsClient(*split.partitions[i], "honest", i).fit(base, {}) for i in range(CLIENTS)
    ]
    proxies = [None] * CLIENTS
    plain_s, ledger_s, sign_s = [], [], []
    log = TransparencyLog.open(tmp / "log.sqlite", "bench.example/fl")
    strategy = LedgerStrategy(
        FedAvg(min_fit_clients=CLIENTS, min_available_clients=CLIENTS),
        task="bench",
        log=log,
        aggregator=Secp256k1Signer.generate(),
        clients=[k.address for k in keys],
    )
    for r in range(1, repeat + 2):  # round 1 warms the log up and is not counted
        config: dict[str, Any] = {"ailedger.task": "bench", "ailedger.round": r}
        t0 = time.perf_counter()
        signed = [
            (arrays, n, signed_fit(key, base, arrays, n, dict(m), config))
            for key, (arrays, n, m) in zip(keys, trained, strict=True)
        ]
        sign = (time.perf_counter() - t0) / CLIENTS
        results = [
            (p, FitRes(Status(Code.OK, ""), ndarrays_to_parameters(a), n, m))
            for p, (a, n, m) in zip(proxies, signed, strict=True)
        ]
        plain = FedAvg(min_fit_clients=CLIENTS, min_available_clients=CLIENTS)
        t0 = time.perf_counter()
        plain.aggregate_fit(r, results, [])  # type: ignore[arg-type]
        fedavg = time.perf_counter() - t0
        strategy._sent[r] = base  # what configure_fit keeps of the round
        t0 = time.perf_counter()
        strategy.aggregate_fit(r, results, [])  # type: ignore[arg-type]
        ours = time.perf_counter() - t0
        assert all(c.aggregated for c in strategy.rounds[-1].predicate.clients)
        if r > 1:
            plain_s.append(fedavg)
            ledger_s.append(ours)
            sign_s.append(sign)
    log.close()
    return {
        "fedavg_aggregate": statistics.median(plain_s),
        "ledger_aggregate": statistics.median(ledger_s),
        "client_sign": statistics.median(sign_s),
    }


def scoring(repeat: int) -> dict[str, float]:
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(1)
    pick = rng.integers(0, len(y), 10_000)
    hx = np.clip(x[pick] / 16.0 + rng.normal(0, 0.05, (10_000, 64)), 0, 1)
    hy = y[pick].astype(np.int64)
    split = split_digits(CLIENTS, seed=7, alpha=1.0)
    base = initial_parameters()
    updates = [
        DigitsClient(*split.partitions[i], "honest", i).fit(base, {})[0] for i in range(CLIENTS)
    ]
    weights = [len(p[1]) for p in split.partitions]
    out = {}
    for name, scorer in [
        ("loo", Scorer(lambda p: log_likelihood(p, hx, hy), "loo")),
        ("marginal", Scorer(lambda p: log_likelihood(p, hx, hy), "marginal")),
        ("shapley-20", Scorer(lambda p: log_likelihood(p, hx, hy), "shapley", permutations=20)),
    ]:
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            scores = scorer.score(base, updates, weights)
            times.append(time.perf_counter() - t0)
        out[name] = statistics.median(times)
        out[name + "_evaluations"] = scores.evaluations
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-simulation", action="store_true")
    parser.add_argument("--pairs", type=int, choices=(1, 2), default=2)
    args = parser.parse_args()
    logging.getLogger("flwr").setLevel(logging.WARNING)
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    print(f"load average at start: {os.getloadavg()}")
    split = split_digits(CLIENTS, seed=7, alpha=1.0)
    with tempfile.TemporaryDirectory() as tmp:
        own = in_process(split, args.repeat, Path(tmp))
        print("\n== the ledger's own work per round, in-process (8 clients, median) ==")
        print(f"FedAvg aggregate_fit alone        {own['fedavg_aggregate'] * 1e3:8.2f} ms")
        print(f"LedgerStrategy.aggregate_fit      {own['ledger_aggregate'] * 1e3:8.2f} ms")
        print(
            "  of which the ledger             "
            f"{(own['ledger_aggregate'] - own['fedavg_aggregate']) * 1e3:8.2f} ms"
        )
        print(f"one client's signed statement     {own['client_sign'] * 1e3:8.2f} ms")
        if not args.skip_simulation:
            print(
                f"\n== Flower simulation, {args.rounds} rounds x {args.pairs} runs a side, "
                "rounds 2.. timed =="
            )
            # plain, ledger, ledger, plain: the machine's load drifts, so each side runs
            # once early and once late
            plain: list[float] = []
            ledger: list[float] = []
            walls = {"plain": 0.0, "ledger": 0.0}
            for i, side in enumerate(["plain", "ledger", "ledger", "plain"][: 2 * args.pairs]):
                t0 = time.perf_counter()
                if side == "plain":
                    plain += simulate(split, args.rounds, None)
                else:
                    ledger += simulate(split, args.rounds, Path(tmp) / f"sim-{i}.sqlite")
                walls[side] += time.perf_counter() - t0
            t_plain, t_ledger = walls["plain"], walls["ledger"]
            mp, ml = statistics.median(plain), statistics.median(ledger)
            print(f"plain Flower   median round {mp * 1e3:8.1f} ms  (whole runs {t_plain:6.1f} s)")
            print(f"with ledger    median round {ml * 1e3:8.1f} ms  (whole runs {t_ledger:6.1f} s)")
            print(f"ratio ledger / plain: {ml / mp:.3f}  (overhead {100 * (ml / mp - 1):+.1f}%)")
            added = own["ledger_aggregate"] - own["fedavg_aggregate"] + own["client_sign"]
            print(
                "ledger work (server + one client's signing, in-process) / plain round: "
                f"{100 * added / mp:.1f}%"
            )
    s = scoring(args.repeat)
    print("\n== scoring 8 updates on a 10,000-record held-out set (median) ==")
    for name in ("loo", "marginal", "shapley-20"):
        print(f"{name:<11} {s[name] * 1e3:8.1f} ms  ({s[name + '_evaluations']} evaluations)")
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
