"""The client side: a Flower ``NumPyClient`` wrapper that signs every update it returns.

::

    client = SignedClient(MyNumPyClient(...), signer)   # signer: the client's secp256k1 key
    return client.to_client()                           # in the ClientApp's client_fn

On ``fit`` it runs the wrapped client, fingerprints the parameters it was sent and the ones it
returns (:func:`~ailedger.fl.parameters_digest`), and puts its signed
:class:`~ailedger.fl.UpdatePredicate` statement (DSSE JSON) in the fit metrics under
:data:`~ailedger.fl.METRIC_KEY`, for :class:`~ailedger.fl.LedgerStrategy` to check. Task and
round come from the fit config the strategy sends (:data:`TASK_KEY`, :data:`ROUND_KEY`): a
client never signs an update for a round it was not asked for. A wrapped client that trained
with differential privacy reports what it spent in its metrics (:data:`DP_EPSILON_KEY`,
:data:`DP_DELTA_KEY`, :data:`DP_MECHANISM_KEY`); those go into the signed statement.
"""

from __future__ import annotations

from flwr.client import NumPyClient
from flwr.common import Config, NDArrays, Scalar

from ailedger.errors import InvalidInput
from ailedger.fl._digest import parameters_digest
from ailedger.fl.update import METRIC_KEY, DpSpent, UpdatePredicate, sign_update
from ailedger.identity.keys import Secp256k1Signer

__all__ = [
    "DP_DELTA_KEY",
    "DP_EPSILON_KEY",
    "DP_MECHANISM_KEY",
    "ROUND_KEY",
    "TASK_KEY",
    "SignedClient",
    "signed_fit",
]

TASK_KEY = "ailedger.task"
ROUND_KEY = "ailedger.round"
DP_EPSILON_KEY = "dp.epsilon"
DP_DELTA_KEY = "dp.delta"
DP_MECHANISM_KEY = "dp.mechanism"


def _dp_of(metrics: dict[str, Scalar]) -> DpSpent | None:
    if DP_EPSILON_KEY not in metrics:
        return None
    return DpSpent(
        epsilon=float(metrics[DP_EPSILON_KEY]),
        delta=float(metrics.get(DP_DELTA_KEY, 0.0)),
        mechanism=str(metrics.get(DP_MECHANISM_KEY, "unspecified")),
    )


def signed_fit(
    signer: Secp256k1Signer,
    base: NDArrays,
    trained: NDArrays,
    num_examples: int,
    metrics: dict[str, Scalar],
    config: Config,
) -> dict[str, Scalar]:
    """``metrics`` plus the signed statement of this update (module docstring)."""
    task, round_ = config.get(TASK_KEY), config.get(ROUND_KEY)
    if not isinstance(task, str) or isinstance(round_, bool) or not isinstance(round_, int):
        raise InvalidInput("the fit config names no ailedger task and round: not a ledger run")
    predicate = UpdatePredicate(
        task=task,
        round=round_,
        client=signer.address.lower(),
        base_model=parameters_digest(base).hex(),
        update=parameters_digest(trained).hex(),
        num_examples=num_examples,
        dp=_dp_of(metrics),
    )
    envelope = sign_update(predicate, signer)
    return {**metrics, METRIC_KEY: envelope.to_json().decode()}


class SignedClient(NumPyClient):
    """Wraps a ``NumPyClient``: the same training, every update signed (module docstring)."""

    def __init__(self, inner: NumPyClient, signer: Secp256k1Signer) -> None:
        self.inner = inner
        self.signer = signer

    def get_properties(self, config: Config) -> dict[str, Scalar]:
        return {**self.inner.get_properties(config), "ailedger.client": self.signer.address}

    def get_parameters(self, config: Config) -> NDArrays:
        return self.inner.get_parameters(config)

    def fit(self, parameters: NDArrays, config: Config) -> tuple[NDArrays, int, dict[str, Scalar]]:
        trained, num_examples, metrics = self.inner.fit(parameters, config)
        signed = signed_fit(self.signer, parameters, trained, num_examples, dict(metrics), config)
        return trained, num_examples, signed

    def evaluate(
        self, parameters: NDArrays, config: Config
    ) -> tuple[float, int, dict[str, Scalar]]:
        return self.inner.evaluate(parameters, config)
