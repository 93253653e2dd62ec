"""LedgerStrategy around Flower's own FedAvg and FedMedian, driven round by round with real
signed clients (:class:`~ailedger.fl.SignedClient`) and a real transparency log; the Flower
simulation itself runs in ``test_demo.py``. The client proxies are identifiers only (the
strategy never calls them)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from flwr.client import NumPyClient
from flwr.common import (
    Code,
    Config,
    FitRes,
    NDArrays,
    Scalar,
    Status,
    ndarrays_to_parameters,
    parameters_to_ndarrays,
)
from flwr.server.client_manager import SimpleClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg, FedMedian

from ailedger.attest import dsse
from ailedger.attest.statements import Statement
from ailedger.errors import InvalidInput
from ailedger.fl import (
    DP_DELTA_KEY,
    DP_EPSILON_KEY,
    DP_MECHANISM_KEY,
    METRIC_KEY,
    LedgerStrategy,
    RoundPredicate,
    Scorer,
    SignedClient,
    UpdatePredicate,
    parameters_digest,
)
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import TransparencyLog

TARGET = 1.0


class Proxy(ClientProxy):
    """Names a client; the strategy under test only hands it back to Flower."""

    def get_properties(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError

    def get_parameters(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError

    def fit(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError

    def evaluate(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError

    def reconnect(self, *a: Any, **k: Any) -> Any:
        raise NotImplementedError


class Step(NumPyClient):
    """Moves every parameter by ``step`` (0: a free rider); reports DP spent if given."""

    def __init__(self, step: float, dp: float | None = None) -> None:
        self.step, self.dp = step, dp

    def fit(self, parameters: NDArrays, config: Config) -> tuple[NDArrays, int, dict[str, Scalar]]:
        metrics: dict[str, Scalar] = {}
        if self.dp is not None:
            metrics = {DP_EPSILON_KEY: self.dp, DP_DELTA_KEY: 1e-5, DP_MECHANISM_KEY: "test"}
        return [p + self.step for p in parameters], 10, metrics


def utility(params: NDArrays) -> float:
    return -abs(float(np.mean(params[0])) - TARGET)


def res(arrays: NDArrays, metrics: dict[str, Scalar], n: int = 10) -> FitRes:
    return FitRes(Status(Code.OK, ""), ndarrays_to_parameters(arrays), n, metrics)


@pytest.fixture
def log(tmp_path: Path) -> TransparencyLog:
    return TransparencyLog.open(tmp_path / "log.sqlite", "test.example/fl")


def setup(
    log: TransparencyLog, inner: Any = None, **kw: Any
) -> tuple[LedgerStrategy, list[Secp256k1Signer], SimpleClientManager]:
    keys = [Secp256k1Signer.generate() for _ in range(4)]
    manager = SimpleClientManager()
    for i in range(4):
        manager.register(Proxy(str(i)))
    init = ndarrays_to_parameters([np.zeros(3)])
    inner = inner or FedAvg(
        fraction_evaluate=0.0, min_fit_clients=4, min_available_clients=4, initial_parameters=init
    )
    strategy = LedgerStrategy(
        inner,
        task="t",
        log=log,
        aggregator=keys[0],
        clients=[k.address for k in keys[1:]],
        scorer=Scorer(utility, "loo"),
        held_out_root=bytes(32),
        **kw,
    )
    return strategy, keys, manager


def fit_all(
    strategy: LedgerStrategy, manager: SimpleClientManager, rnd: int, params: Any
) -> tuple[list[tuple[ClientProxy, Any]], NDArrays]:
    ins = strategy.configure_fit(rnd, params, manager)
    assert all(
        i.config["ailedger.round"] == rnd and i.config["ailedger.task"] == "t" for _, i in ins
    )
    return ins, parameters_to_ndarrays(params)


def test_a_round_records_checks_scores_and_refuses(log: TransparencyLog) -> None:
    strategy, keys, manager = setup(log, drop_below=-0.05)
    agg, a, b, c = keys
    params = strategy.initialize_parameters(manager)
    assert params is not None
    ins, base = fit_all(strategy, manager, 1, params)
    config = ins[0][1].config
    proxies = [p for p, _ in ins]

    def signed(key: Secp256k1Signer, step: float, dp: float | None = None) -> FitRes:
        arrays, n, metrics = SignedClient(Step(step, dp), key).fit(base, config)
        return res(arrays, metrics, n)

    good = signed(a, 0.5, dp=0.3)
    harmful = signed(b, -3.0)
    rider = signed(c, 0.0)
    forged_env = good.metrics[METRIC_KEY]
    stolen = res(parameters_to_ndarrays(good.parameters), {METRIC_KEY: forged_env})  # b replays a's
    outsider = SignedClient(Step(0.5), Secp256k1Signer.generate()).fit(base, config)
    results = [
        (proxies[0], good),
        (proxies[1], harmful),
        (proxies[2], rider),
        (proxies[3], stolen),
        (proxies[0], res(outsider[0], outsider[2])),
        (proxies[1], res(base, {})),
    ]
    new, metrics = strategy.aggregate_fit(1, results, [])
    assert new is not None
    record = strategy.rounds[-1]
    # only the good update was aggregated: the harmful one scored below drop_below
    assert parameters_to_ndarrays(new)[0] == pytest.approx([0.5] * 3)
    assert metrics["ailedger.round_log_index"] == record.log_index
    lines = {(line.client, line.refused is None): line for line in record.predicate.clients}
    ok = lambda k: lines[(k.address.lower(), True)]  # noqa: E731
    assert ok(a).aggregated
    assert ok(a).score is not None
    assert ok(a).score > 0
    assert not ok(b).aggregated
    assert ok(b).score is not None
    assert ok(b).score < -0.05
    assert not ok(c).aggregated
    assert ok(c).score == 0.0
    refused = [line.refused for line in record.predicate.clients if line.refused]
    assert len(refused) == 3
    assert any("[update-duplicate]" in r for r in refused)  # a's statement a second time
    assert any("[signer-unknown]" in r for r in refused)
    assert any("[update-unsigned]" in r for r in refused)
    # the log holds the three accepted statements and the round, signed by their keys
    assert log.size() == 4
    entry = log.get(record.log_index)
    assert entry.signers == (agg.address.lower(),) or entry.signers == (agg.address,)
    stmt = Statement.from_json(dsse.Envelope.from_json(entry.envelope).payload)
    rnd = RoundPredicate.model_validate(stmt.predicate)
    assert rnd == record.predicate
    assert rnd.base_model == parameters_digest(base).hex()
    assert rnd.global_model == parameters_digest(parameters_to_ndarrays(new)).hex()
    assert rnd.held_out_root == "00" * 32
    assert rnd.scoring == "loo"
    for client, index in record.update_indices.items():
        upd = Statement.from_json(dsse.Envelope.from_json(log.get(index).envelope).payload)
        assert UpdatePredicate.model_validate(upd.predicate).client == client
    # DP: a spent 0.3; b and c trained without DP
    accounting = strategy.privacy.accounting()
    assert accounting is not None
    assert not accounting.all_private
    assert {x.contributor: x.epsilon for x in accounting.contributors}[a.address.lower()] == 0.3


def test_replay_of_round_one_in_round_two_is_refused(log: TransparencyLog) -> None:
    strategy, keys, manager = setup(log)
    _, a, b, _ = keys
    params = strategy.initialize_parameters(manager)
    assert params is not None
    ins, base = fit_all(strategy, manager, 1, params)
    arrays, _n, metrics = SignedClient(Step(0.2), a).fit(base, ins[0][1].config)
    other = SignedClient(Step(0.4), b).fit(base, ins[0][1].config)
    new, _ = strategy.aggregate_fit(
        1, [(ins[0][0], res(arrays, metrics)), (ins[1][0], res(other[0], other[2]))], []
    )
    assert new is not None
    ins2, _ = fit_all(strategy, manager, 2, new)
    # a sends its round-1 update again in round 2 (same parameters, same statement)
    strategy.aggregate_fit(2, [(ins2[0][0], res(arrays, metrics))], [])
    line = strategy.rounds[-1].predicate.clients[0]
    assert line.refused is not None
    assert "[update-round-mismatch]" in line.refused
    assert strategy.rounds[-1].predicate.global_model == strategy.rounds[0].predicate.global_model


def test_a_robust_rule_wraps_too(log: TransparencyLog) -> None:
    init = ndarrays_to_parameters([np.zeros(3)])
    strategy, keys, manager = setup(
        log,
        FedMedian(
            fraction_evaluate=0.0,
            min_fit_clients=4,
            min_available_clients=4,
            initial_parameters=init,
        ),
    )
    params = strategy.initialize_parameters(manager)
    assert params is not None
    ins, base = fit_all(strategy, manager, 1, params)
    results = []
    for (proxy, i), key, step in zip(ins, keys[1:], [0.1, 0.2, 50.0], strict=False):
        arrays, n, metrics = SignedClient(Step(step), key).fit(base, i.config)
        results.append((proxy, res(arrays, metrics, n)))
    new, _ = strategy.aggregate_fit(1, results, [])
    assert new is not None
    assert parameters_to_ndarrays(new)[0] == pytest.approx([0.2] * 3)  # the median
    assert strategy.rounds[-1].predicate.strategy == "FedMedian"


def test_fail_closed_configuration(log: TransparencyLog) -> None:
    key = Secp256k1Signer.generate()
    with pytest.raises(InvalidInput, match="no client is admitted"):
        LedgerStrategy(task="t", log=log, aggregator=key, clients=[])
    bare = LedgerStrategy(task="t", log=log, aggregator=key, clients=[key.address])
    with pytest.raises(InvalidInput, match="no initial parameters"):
        bare.initialize_parameters(SimpleClientManager())
    with pytest.raises(InvalidInput, match="was not configured"):
        bare.aggregate_fit(1, [], [])


def test_a_client_without_ledger_config_refuses_to_sign() -> None:
    with pytest.raises(InvalidInput, match="not a ledger run"):
        SignedClient(Step(0.1), Secp256k1Signer.generate()).fit([np.zeros(2)], {})


def test_dp_clients_accumulate_and_the_gate_reads_the_accounting(log: TransparencyLog) -> None:
    """Two rounds of clients that train with DP (0.3 each round): basic composition gives 0.6
    per client; the accounting statement about the model passes max_epsilon = 1 and fails 0.5."""
    from datetime import UTC, datetime, timedelta

    from ailedger.attest.statements import (
        make_statement,
        sign_statement,
        subject_from_digest,
        verify_statement,
    )
    from ailedger.registry.policy import Evidence, ModelRef, evaluate_policy, parse_policy

    strategy, keys, manager = setup(log)
    agg, *clients = keys
    params = strategy.initialize_parameters(manager)
    assert params is not None
    for rnd in (1, 2):
        ins, base = fit_all(strategy, manager, rnd, params)
        results = []
        for (proxy, i), key in zip(ins, clients, strict=False):
            arrays, n, metrics = SignedClient(Step(0.1, dp=0.3), key).fit(base, i.config)
            results.append((proxy, res(arrays, metrics, n)))
        new, _ = strategy.aggregate_fit(rnd, results, [])
        assert new is not None
        params = new
    accounting = strategy.privacy.accounting()
    assert accounting is not None
    assert accounting.all_private
    assert accounting.epsilon == pytest.approx(0.6)
    assert {b.rounds for b in accounting.contributors} == {2}
    digest = "sha256:" + strategy.rounds[-1].predicate.global_model
    envelope = sign_statement(make_statement([subject_from_digest(digest, "m")], accounting), [agg])
    now = datetime(2026, 12, 5, tzinfo=UTC)
    ev = Evidence.from_verified(
        verify_statement(envelope, [agg.public_key]), ref="log:9", logged_at=now - timedelta(1)
    )

    def gate(limit: float) -> list[str]:
        result = evaluate_policy(
            parse_policy(f"[all]\nmax_epsilon = {limit}\n"),
            "prod",
            model_ref=ModelRef("m", "1", digest),
            statements=[ev],
            role_of=lambda _: None,
            now=now,
        )
        return [u.code for u in result.unmet]

    assert gate(1.0) == []
    assert gate(0.5) == ["privacy-budget-exceeded"]


def test_a_verifier_recomputes_the_scores_and_catches_a_changed_one(log: TransparencyLog) -> None:
    from ailedger.errors import VerificationFailed
    from ailedger.fl import verify_round_scores

    strategy, keys, manager = setup(log)
    _, a, b, c = keys
    params = strategy.initialize_parameters(manager)
    assert params is not None
    ins, base = fit_all(strategy, manager, 1, params)
    updates: dict[str, NDArrays] = {}
    results = []
    for (proxy, i), key, step in zip(ins, [a, b, c], [0.5, -0.2, 0.0], strict=False):
        arrays, n, metrics = SignedClient(Step(step), key).fit(base, i.config)
        updates[key.address] = arrays
        results.append((proxy, res(arrays, metrics, n)))
    strategy.aggregate_fit(1, results, [])
    record = strategy.rounds[-1].predicate
    again = verify_round_scores(record, base, updates, Scorer(utility, "loo"))
    assert again.scores == {line.client: line.score for line in record.clients}
    assert again.scores[c.address.lower()] == 0.0  # the free rider
    lied = record.model_copy(
        update={
            "clients": [
                line.model_copy(update={"score": (line.score or 0) + 0.01})
                if line.client == b.address.lower()
                else line
                for line in record.clients
            ]
        }
    )
    with pytest.raises(VerificationFailed, match="score is") as info:
        verify_round_scores(lied, base, updates, Scorer(utility, "loo"))
    assert info.value.code == "fl-score-mismatch"
    swapped = dict(updates) | {a.address: updates[b.address]}
    with pytest.raises(VerificationFailed, match="not the update it signed"):
        verify_round_scores(record, base, swapped, Scorer(utility, "loo"))
    with pytest.raises(VerificationFailed, match="scored by"):
        verify_round_scores(record, base, updates, Scorer(utility, "marginal"))
    with pytest.raises(VerificationFailed, match="base model"):
        verify_round_scores(record, [p + 1 for p in base], updates, Scorer(utility, "loo"))
