"""Attacks on :class:`~ailedger.fl.LedgerStrategy` by admitted clients that sign what they send:
parameters that are not a model like the one sent (NaN, infinities, overflowing values, other
shapes, dtypes or tensor counts). Each must be refused with a code, the round must go on with
the honest updates, and nothing of a refused update may reach the log."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from flwr.client import NumPyClient
from flwr.common import Config, NDArrays, Scalar, parameters_to_ndarrays
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _profiles import examples
from ailedger.attest import dsse
from ailedger.attest.statements import Statement
from ailedger.fl import Scorer, SignedClient, UpdatePredicate
from ailedger.log import TransparencyLog

from .test_strategy import Step, fit_all, res, setup, utility

Tamper = Callable[[NDArrays], NDArrays]


class Sends(NumPyClient):
    """Returns ``tamper(parameters)``: what a hostile client chooses to send."""

    def __init__(self, tamper: Tamper) -> None:
        self.tamper = tamper

    def fit(self, parameters: NDArrays, config: Config) -> tuple[NDArrays, int, dict[str, Scalar]]:
        return self.tamper(parameters), 10, {}


HOSTILE: dict[str, Tamper] = {
    "nan": lambda p: [np.full_like(x, np.nan) for x in p],
    "inf": lambda p: [np.full_like(x, -np.inf) for x in p],
    "overflowing": lambda p: [np.full_like(x, 1e308) for x in p],
    "other-shape": lambda p: [np.zeros(5)],
    "empty-tensor": lambda p: [np.zeros(0)],
    "extra-tensor": lambda p: [*p, np.zeros(2)],
    "missing-tensor": lambda p: [],
    "other-dtype": lambda p: [x.astype(np.int64) + 1 for x in p],
    "narrower-dtype": lambda p: [x.astype(np.float32) + 0.25 for x in p],
}


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("attack", sorted(HOSTILE))
def test_hostile_parameters_are_refused_and_the_round_goes_on(tmp_path: Path, attack: str) -> None:
    log = TransparencyLog.open(tmp_path / "log.sqlite", "test.example/fl")
    strategy, keys, manager = setup(log)
    _, honest, hostile, _ = keys
    params = strategy.initialize_parameters(manager)
    assert params is not None
    ins, base = fit_all(strategy, manager, 1, params)
    config = ins[0][1].config
    good = SignedClient(Step(0.5), honest).fit(base, config)
    if attack == "missing-tensor":  # nothing to fingerprint: the client cannot even sign it
        bad: tuple[NDArrays, int, dict[str, Scalar]] = ([], 10, {"ailedger.update": "{}"})
    else:
        bad = SignedClient(Sends(HOSTILE[attack]), hostile).fit(base, config)
    new, _ = strategy.aggregate_fit(
        1, [(ins[0][0], res(good[0], good[2])), (ins[1][0], res(bad[0], bad[2]))], []
    )
    assert new is not None
    assert parameters_to_ndarrays(new)[0] == pytest.approx([0.5] * 3)  # the honest one alone
    record = strategy.rounds[-1].predicate
    by_client = {line.client: line for line in record.clients}
    assert by_client[honest.address.lower()].aggregated
    refused = [line for line in record.clients if line.refused is not None]
    assert len(refused) == 1
    assert not refused[0].aggregated
    assert refused[0].score is None
    assert refused[0].refused is not None
    assert refused[0].refused.startswith("[update-")
    # the log: the honest update and the round, nothing of the hostile update
    assert log.size() == 2
    logged = [
        Statement.from_json(dsse.Envelope.from_json(log.get(i).envelope).payload)
        for i in range(log.size())
    ]
    clients = [
        UpdatePredicate.model_validate(s.predicate).client
        for s in logged
        if s.predicate_type == UpdatePredicate.PREDICATE_TYPE
    ]
    assert clients == [honest.address.lower()]


ANONYMOUS = "0x" + "0" * 40


def test_a_forged_refused_update_does_not_name_the_client_it_impersonates(tmp_path: Path) -> None:
    """An outsider sends a statement naming an honest client, signed with its own key (or
    relabelled with the client's keyid): the round records the refusal anonymously, not as
    the honest client's refused update; a refusal after the signature verified names its
    signer."""
    from ailedger.attest.statements import sign_statement
    from ailedger.fl import update_statement

    log = TransparencyLog.open(tmp_path / "log.sqlite", "test.example/fl")
    strategy, keys, manager = setup(log)
    _, honest, other, _ = keys
    params = strategy.initialize_parameters(manager)
    assert params is not None
    ins, base = fit_all(strategy, manager, 1, params)
    config = ins[0][1].config
    arrays, _, metrics = SignedClient(Step(0.5), honest).fit(base, config)
    env = dsse.Envelope.from_json(str(metrics["ailedger.update"]))
    claim = UpdatePredicate.model_validate(Statement.from_json(env.payload).predicate)
    outsider = sign_statement(update_statement(claim), [keys[3]])  # signed by another key
    relabelled = dsse.Envelope(
        outsider.payload_type,
        outsider.payload,
        (dsse.Signature(honest.address.lower(), outsider.signatures[0].sig),),
    )
    stale = SignedClient(Step(0.5), other).fit(base, {**config, "ailedger.round": 7})
    results = [
        (ins[0][0], res(arrays, {"ailedger.update": outsider.to_json().decode()})),
        (ins[1][0], res(arrays, {"ailedger.update": relabelled.to_json().decode()})),
        (ins[2][0], res(stale[0], stale[2])),
    ]
    strategy.aggregate_fit(1, results, [])
    lines = strategy.rounds[-1].predicate.clients
    assert [(line.client, (line.refused or "")[:24]) for line in lines] == [
        (ANONYMOUS, "[update-signer-mismatch]"),
        (ANONYMOUS, "[update-signature-invali"),
        (other.address.lower(), "[update-round-mismatch] "),
    ]


def test_a_copied_update_and_inflated_example_counts_are_refused(tmp_path: Path) -> None:
    """Gaming the aggregate and the scores: a colluder signs the very parameters another
    client sent (a copy earns the same marginal gain for no work); a client claims far more
    examples than the data it committed on joining (FedAvg weighs by examples, so the claim
    would buy it the aggregate). Both are refused; the honest update is aggregated alone."""
    log = TransparencyLog.open(tmp_path / "log.sqlite", "test.example/fl")
    strategy, keys, manager = setup(log)
    _, honest, copier, inflater = keys
    strategy.committed_examples = {
        honest.address: 10,
        copier.address: 10,
        inflater.address: 10,
    }
    params = strategy.initialize_parameters(manager)
    assert params is not None
    ins, base = fit_all(strategy, manager, 1, params)
    config = ins[0][1].config
    good = SignedClient(Step(0.5), honest).fit(base, config)
    copy = SignedClient(Sends(lambda _: good[0]), copier).fit(base, config)

    class Inflates(NumPyClient):
        def fit(self, p: NDArrays, c: Config) -> tuple[NDArrays, int, dict[str, Scalar]]:
            return [x + 5.0 for x in p], 10**9, {}

    big = SignedClient(Inflates(), inflater).fit(base, config)
    new, _ = strategy.aggregate_fit(
        1,
        [
            (ins[0][0], res(good[0], good[2])),
            (ins[1][0], res(copy[0], copy[2])),
            (ins[2][0], res(big[0], big[2], big[1])),
        ],
        [],
    )
    assert new is not None
    assert parameters_to_ndarrays(new)[0] == pytest.approx([0.5] * 3)
    lines = {line.client: line for line in strategy.rounds[-1].predicate.clients}
    assert lines[honest.address.lower()].aggregated
    copied = lines[copier.address.lower()].refused or ""
    assert copied.startswith("[update-duplicate]")
    assert honest.address.lower() in copied
    assert (lines[inflater.address.lower()].refused or "").startswith("[update-examples-mismatch]")
    assert log.size() == 2  # the honest update and the round


def test_a_client_without_a_commitment_is_refused_when_commitments_are_required(
    tmp_path: Path,
) -> None:
    log = TransparencyLog.open(tmp_path / "log.sqlite", "test.example/fl")
    strategy, keys, manager = setup(log, committed_examples={})
    params = strategy.initialize_parameters(manager)
    assert params is not None
    ins, base = fit_all(strategy, manager, 1, params)
    good = SignedClient(Step(0.5), keys[1]).fit(base, ins[0][1].config)
    strategy.aggregate_fit(1, [(ins[0][0], res(good[0], good[2]))], [])
    (line,) = strategy.rounds[-1].predicate.clients
    assert (line.refused or "").startswith("[update-examples-mismatch]")


def test_a_boosted_update_is_refused_over_the_norm_bound(tmp_path: Path) -> None:
    """Leave-one-out with FedAvg rewards a client that scales its update up (it pulls the
    average its way: measured, an update scaled by 2.5 took the top score and turned two
    honest clients' scores negative, which the settlement penalises). With
    ``max_update_norm`` the strategy refuses an update farther than that (L2) from the model
    sent; the honest ones are scored among themselves."""
    log = TransparencyLog.open(tmp_path / "log.sqlite", "test.example/fl")
    strategy, keys, manager = setup(log, max_update_norm=1.0)
    _, a, b, booster = keys
    params = strategy.initialize_parameters(manager)
    assert params is not None
    ins, base = fit_all(strategy, manager, 1, params)
    config = ins[0][1].config
    fits = [
        SignedClient(Step(0.5), a).fit(base, config),  # norm 0.5 * sqrt(3) < 1
        SignedClient(Step(0.4), b).fit(base, config),
        SignedClient(Step(1.5), booster).fit(base, config),  # a 0.6 step boosted: over 1
    ]
    strategy.aggregate_fit(
        1, [(p, res(f[0], f[2])) for (p, _), f in zip(ins, fits, strict=False)], []
    )
    lines = {line.client: line for line in strategy.rounds[-1].predicate.clients}
    assert (lines[booster.address.lower()].refused or "").startswith("[update-parameters-invalid]")
    alone = Scorer(utility, "loo").score(base, [fits[0][0], fits[1][0]], [10, 10]).scores
    assert [lines[k.address.lower()].score for k in (a, b)] == list(alone)


hostile_arrays = st.lists(
    hnp.arrays(
        st.sampled_from([np.float64, np.float32, np.int64, np.uint8]),
        hnp.array_shapes(min_dims=0, max_dims=2, max_side=4),
    ),
    min_size=1,
    max_size=3,
) | st.builds(lambda a: [a], hnp.arrays(np.float64, (3,)))  # the sent shape, any floats


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@given(hostile_arrays, st.booleans(), st.booleans())
@settings(max_examples=examples(40), suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_any_signed_parameters_are_aggregated_or_refused_never_crash(
    tmp_path: Path, sent: NDArrays, poison_nan: bool, poison_inf: bool
) -> None:
    """Whatever arrays an admitted client signs and sends (any dtypes, shapes, NaN or
    infinities), the round completes: the update is aggregated only when it is a finite model
    of the sent shapes and dtypes, else refused with a code, and the honest one always is."""
    arrays = [np.array(a, copy=True) for a in sent]
    if arrays[0].size and np.issubdtype(arrays[0].dtype, np.floating):
        if poison_nan:
            arrays[0].flat[0] = np.nan
        if poison_inf:
            arrays[0].flat[-1] = np.inf
    log = TransparencyLog.open(tmp_path / f"{len(list(tmp_path.iterdir()))}.sqlite", "t.example/fl")
    strategy, keys, manager = setup(log)
    params = strategy.initialize_parameters(manager)
    assert params is not None
    ins, base = fit_all(strategy, manager, 1, params)
    config = ins[0][1].config
    good = SignedClient(Step(0.5), keys[1]).fit(base, config)
    bad = SignedClient(Sends(lambda _: arrays), keys[2]).fit(base, config)
    strategy.aggregate_fit(
        1, [(ins[0][0], res(good[0], good[2])), (ins[1][0], res(bad[0], bad[2]))], []
    )
    lines = {line.client: line for line in strategy.rounds[-1].predicate.clients}
    assert lines[keys[1].address.lower()].aggregated
    line = lines[keys[2].address.lower()]
    like = (
        len(arrays) == 1
        and arrays[0].shape == (3,)
        and arrays[0].dtype == np.float64
        and bool(np.isfinite(arrays[0]).all())
    )
    if like:
        assert line.refused is None
    else:
        assert line.refused is not None
        assert line.refused.startswith("[update-")
        assert not line.aggregated
