"""The Opacus DP-SGD client (``ailedger.fl.dpsgd``, the ``fl-torch`` extra): it trains a
PyTorch model with Opacus and the (epsilon, delta) in its signed update statement is Opacus's
accountant's, which the strategy accepts and adds up per client. Skipped, whole, without torch
and opacus (they are not in the test extra: see tests/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("opacus")

from opacus.accountants import RDPAccountant  # noqa: E402

from ailedger.errors import InvalidInput  # noqa: E402
from ailedger.fl import SignedClient, UpdatePredicate  # noqa: E402
from ailedger.fl.dpsgd import OPACUS_MECHANISM, OpacusClient  # noqa: E402
from ailedger.log import TransparencyLog  # noqa: E402

from .test_strategy import fit_all, res, setup  # noqa: E402

N, FEATURES, CLASSES, BATCH = 64, 4, 2, 16


def make_model() -> Any:
    return torch.nn.Linear(FEATURES, CLASSES)


def data(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, FEATURES)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64)


def client(noise: float, seed: int = 1) -> OpacusClient:
    x, y = data(seed)
    return OpacusClient(
        make_model, x, y, noise_multiplier=noise, max_grad_norm=1.0, delta=1e-3,
        epochs=2, batch_size=BATCH, lr=0.5, seed=seed,
    )  # fmt: skip


def test_the_statement_carries_opacus_accounting_and_the_strategy_sums_it(
    tmp_path: Path,
) -> None:
    log = TransparencyLog.open(tmp_path / "log.sqlite", "test.example/fl")
    strategy, keys, manager = setup(log)
    _, a, b, _ = keys
    init = [np.zeros((CLASSES, FEATURES), np.float32), np.zeros(CLASSES, np.float32)]
    from flwr.common import ndarrays_to_parameters

    ins, _ = fit_all(strategy, manager, 1, ndarrays_to_parameters(init))
    results, spent = [], {}
    for (proxy, i), key, noise in zip(ins, [a, b], [1.0, 4.0], strict=False):
        arrays, n, metrics = SignedClient(client(noise), key).fit(init, i.config)
        assert any(not np.array_equal(p, q) for p, q in zip(arrays, init, strict=True))
        # Opacus's own accountant, replayed: this round's steps at the sampling rate
        check = RDPAccountant()
        check.history = [(noise, BATCH / N, int(metrics["dp.steps"]))]
        assert metrics["dp.epsilon"] == pytest.approx(check.get_epsilon(1e-3))
        assert metrics["dp.mechanism"] == f"{OPACUS_MECHANISM}-rdp"
        spent[key.address.lower()] = float(metrics["dp.epsilon"])
        results.append((proxy, res(arrays, metrics, n)))
    # more noise, less privacy spent
    assert spent[b.address.lower()] < spent[a.address.lower()]
    strategy.aggregate_fit(1, results, [])
    record = strategy.rounds[-1]
    assert all(line.refused is None for line in record.predicate.clients)
    for line in record.predicate.clients:
        from ailedger.attest import dsse
        from ailedger.attest.statements import Statement

        env = dsse.Envelope.from_json(log.get(record.update_indices[line.client]).envelope)
        pred = UpdatePredicate.model_validate(Statement.from_json(env.payload).predicate)
        assert pred.dp is not None
        assert (pred.dp.epsilon, pred.dp.delta) == (spent[line.client], 1e-3)
    accounting = strategy.privacy.accounting()
    assert accounting is not None
    assert accounting.epsilon == pytest.approx(max(spent.values()))


def test_bad_settings_are_refused() -> None:
    x, y = data(0)
    with pytest.raises(InvalidInput, match="noise multiplier"):
        OpacusClient(make_model, x, y, noise_multiplier=0.0, max_grad_norm=1.0, delta=1e-3)
    with pytest.raises(InvalidInput, match="delta"):
        OpacusClient(make_model, x, y, noise_multiplier=1.0, max_grad_norm=1.0, delta=0.5)
    with pytest.raises(InvalidInput, match="labels"):
        OpacusClient(make_model, x, y[:3], noise_multiplier=1.0, max_grad_norm=1.0, delta=1e-3)
    good = client(1.0)
    with pytest.raises(InvalidInput, match="arrays sent"):
        good.fit([np.zeros(3)], {})
