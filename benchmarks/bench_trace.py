"""Trace benchmark: "what served ENV at TIME" and "which model made this output" over a log of
100,000 deployment and inference events, with the inclusion proofs in every answer.

Peer, side by side in one run: the same question answered from the transparency log's own
indexes without the registry index (``log.query(predicate_type=deployment, until=T)``, then
walking back to the last event of the environment): what trace would cost without it.

The workspace is built once into benchmarks/_data/trace-N/ (real signed statements in the
registry's form, verified on ingest by the log; the index is then built from the log) and
reused::

    .venv/bin/python benchmarks/bench_trace.py [--events 100000] [--queries 2000]
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import DeploymentPredicate, InferencePredicate
from ailedger.attest.statements import Statement, Subject, attest
from ailedger.identity.keys import PBKDF2_ROUNDS_TEST_ONLY, SCRYPT_N_TEST_ONLY, Keystore, Signer
from ailedger.log import open_workspace_log
from ailedger.registry import Registry, VersionRef
from ailedger.registry._index import INDEX_DB_NAME
from ailedger.registry.trace import trace_at, trace_output
from ailedger.workspace import Workspace

DATA = Path(__file__).parent / "_data"
ENVS = ("prod", "staging", "eu", "us")
PASSWORD = "bench-only"
MODELS = 20


def _digest(i: int, salt: int) -> str:
    return f"sha256:{salt:08x}{i:056x}"


def _build(root: Path, events: int, batch: int) -> None:
    """A workspace with MODELS registered versions and ``events`` logged events, half
    deploy/rollback across ENVS and half single inference records."""
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    ws = Workspace.init(root, origin="bench.ailedger.dev/trace")
    store = Keystore(
        ws.keys_dir, scrypt_n=SCRYPT_N_TEST_ONLY, pbkdf2_rounds=PBKDF2_ROUNDS_TEST_ONLY
    )
    store.create("ops", PASSWORD, org="acme")
    signer = store.signer("ops", PASSWORD)
    refs: list[tuple[VersionRef, str]] = []
    with Registry.open(ws, keys=store.list_keys()) as reg:
        for i in range(MODELS):
            model = root / "models" / f"m{i}"
            model.mkdir(parents=True)
            (model / "weights.bin").write_bytes(i.to_bytes(4, "big") * 1024)
            ref = VersionRef("triage", f"1.{i}")
            refs.append((ref, reg.register_model(model, ref, signer).digest))
    rng = random.Random(7)
    t0 = time.perf_counter()
    with open_workspace_log(ws) as log:
        pending: list[bytes] = []
        for n in range(events):
            pending.append(_event(n, rng, refs, signer))
            if len(pending) == batch:
                log.append_many(pending)
                pending = []
        if pending:
            log.append_many(pending)
    print(f"built {events} signed events in {time.perf_counter() - t0:.1f} s", file=sys.stderr)


def _event(n: int, rng: random.Random, refs: list[tuple[VersionRef, str]], s: Signer) -> bytes:
    ref, digest = refs[rng.randrange(len(refs))]
    subject = Subject(name=str(ref), digest={"sha256": digest.split(":")[1]})
    now = datetime.now(UTC)
    if n % 2 == 0:
        action: Literal["deploy", "rollback"] = "rollback" if rng.random() < 0.1 else "deploy"
        pred: DeploymentPredicate | InferencePredicate = DeploymentPredicate(
            environment=ENVS[rng.randrange(len(ENVS))], action=action, version=str(ref), time=now
        )
        subjects = [subject]
    else:
        inp, out = _digest(n, 1), _digest(n, 2)
        pred = InferencePredicate(
            input_digest=inp, model_digest=digest, output_digest=out, time=now
        )
        subjects = [
            subject,
            Subject(name="input", digest={"sha256": inp.split(":")[1]}),
            Subject(name="output", digest={"sha256": out.split(":")[1]}),
        ]
    return attest(pred, subjects, [s]).to_json()


def _scan_peer(reg: Registry, env: str, at: datetime) -> str | None:
    """Without the registry index: every deployment entry up to ``at``, newest first."""
    entries = reg.log.query(
        predicate_type=DeploymentPredicate.PREDICATE_TYPE,
        until=datetime.fromtimestamp((int(at.timestamp() * 1000) + 1) / 1000, UTC),
        limit=None,
    )
    for entry in reversed(entries):
        statement = Statement.from_json(Envelope.from_json(entry.envelope).payload)
        pred = statement.typed_predicate()
        if isinstance(pred, DeploymentPredicate) and pred.environment == env:
            reg.log.inclusion_proof(entry.index)
            return pred.version
    return None


def _timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def _row(name: str, ms: list[float], base: float | None) -> None:
    q = statistics.quantiles(ms, n=100) if len(ms) >= 2 else [ms[0]] * 99
    p50 = statistics.median(ms)
    ratio = f"{p50 / base:8.1f}x" if base else "   1.0x"
    print(f"{name:44s} {len(ms):6d} {p50:9.3f} {q[89]:9.3f} {q[98]:9.3f} {ratio}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--peer-queries", type=int, default=10)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    root = DATA / f"trace-{args.events}"
    if args.rebuild or not (root / ".ailedger" / "log.sqlite").exists():
        _build(root, args.events, args.batch)
    ws = Workspace.open(root)
    keys = Keystore(ws.keys_dir).list_keys()
    (ws.path / INDEX_DB_NAME).unlink(missing_ok=True)
    t0 = time.perf_counter()
    with Registry.open(ws, keys=keys) as reg:
        build_s = time.perf_counter() - t0
        size = reg.log.size()
        events = [e for env in ENVS for e in reg.index.events(env)]
        lo, hi = min(e.time_ms for e in events), max(e.time_ms for e in events)
        rng = random.Random(11)

        def at() -> tuple[str, datetime]:
            ms = rng.randint(lo, hi)
            return ENVS[rng.randrange(len(ENVS))], datetime.fromtimestamp(ms / 1000, UTC)

        def one_trace() -> None:
            env, when = at()
            trace_at(reg, env, when)

        def one_verified() -> None:
            env, when = at()
            trace_at(reg, env, when).verify()

        inferences = list(range(1, args.events, 2))

        def one_output() -> None:
            trace_output(reg, _digest(rng.choice(inferences), 1))

        def one_peer() -> None:
            env, when = at()
            _scan_peer(reg, env, when)

        for fn in (one_trace, one_verified, one_output):  # warm the page cache
            _timed(fn, 50)
        ours = _timed(one_trace, args.queries)
        verified = _timed(one_verified, args.queries)
        outputs = _timed(one_output, args.queries)
        peer = _timed(one_peer, args.peer_queries)
    print(
        f"python {sys.version.split()[0]}, log of {size} entries ({len(events)} deploy/rollback "
        f"events in {len(ENVS)} environments, {len(inferences)} inference records); index "
        f"built from the log in {build_s:.1f} s"
    )
    print(f"{'query':44s} {'n':>6s} {'p50 ms':>9s} {'p90 ms':>9s} {'p99 ms':>9s} {'vs ours':>8s}")
    base = statistics.median(ours)
    _row("trace --env --at (index + 2 inclusion proofs)", ours, base)
    _row("  ... and verify() the proofs", verified, base)
    _row("trace output --input (index + proof)", outputs, base)
    _row("peer: log.query(deployment, until=T) scan", peer, base)


if __name__ == "__main__":
    main()
