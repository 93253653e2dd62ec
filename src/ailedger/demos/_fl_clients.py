"""The federated demo's model, data and clients: softmax regression in numpy on scikit-learn's
bundled digits (8x8 images, 10 classes), split into a held-out set and non-IID client
partitions (label skew drawn from a Dirichlet distribution, seeded), and four behaviours of
client: ``honest`` (local gradient descent), ``free-rider`` (sends the global model back),
``poisoner`` (trains on flipped labels, ``9 - y``, and boosts its update) and ``spammer``
(sends the global model plus Gaussian noise). Everything is deterministic given the seed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from flwr.client import Client, NumPyClient
from flwr.common import Config, Context, NDArrays, Scalar

from ailedger.fl import SignedClient
from ailedger.identity.keys import Secp256k1Signer

__all__ = [
    "BEHAVIOURS",
    "ClientFactory",
    "DigitsClient",
    "Split",
    "accuracy",
    "fit_softmax",
    "initial_parameters",
    "log_likelihood",
    "split_digits",
]

#: The behaviour of each of the demo's eight clients, by partition id.
BEHAVIOURS: tuple[str, ...] = (
    "honest",
    "honest",
    "honest",
    "honest",
    "honest",
    "free-rider",
    "poisoner",
    "spammer",
)
CLASSES = 10
#: The poisoner scales its flipped-label update by this (model poisoning boosts its update
#: so that averaging does not dilute it).
POISON_BOOST = 3.0
FEATURES = 64

Floats = npt.NDArray[np.float64]
Labels = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Split:
    """The held-out set and each client's partition."""

    held_out: tuple[Floats, Labels]
    partitions: tuple[tuple[Floats, Labels], ...]


def split_digits(clients: int, *, seed: int, held_out: float = 0.3, alpha: float = 0.5) -> Split:
    """Digits scaled to [0, 1]; ``held_out`` of them kept out; the rest dealt to ``clients``
    with per-class shares drawn from Dirichlet(``alpha``) (smaller: more skewed)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(y))
    x, y = x[order] / 16.0, y[order].astype(np.int64)
    cut = int(len(y) * held_out)
    hx, hy, tx, ty = x[:cut], y[:cut], x[cut:], y[cut:]
    owners = np.empty(len(ty), dtype=np.int64)
    for label in range(CLASSES):
        idx = np.flatnonzero(ty == label)
        shares = rng.dirichlet([alpha] * clients)
        owners[idx] = rng.choice(clients, size=len(idx), p=shares)
    parts = []
    for c in range(clients):
        mine = np.flatnonzero(owners == c)
        if len(mine) < 10:  # every client gets something to train on
            mine = np.concatenate([mine, rng.choice(len(ty), size=10 - len(mine), replace=False)])
        parts.append((tx[mine], ty[mine]))
    return Split((hx, hy), tuple(parts))


def initial_parameters() -> NDArrays:
    return [np.zeros((CLASSES, FEATURES)), np.zeros(CLASSES)]


def _probabilities(params: Sequence[npt.NDArray[np.floating]], x: Floats) -> Floats:
    logits = x @ np.asarray(params[0]).T + np.asarray(params[1])
    logits -= logits.max(axis=1, keepdims=True)
    p = np.exp(logits)
    out: Floats = p / p.sum(axis=1, keepdims=True)
    return out


def log_likelihood(params: Sequence[npt.NDArray[np.floating]], x: Floats, y: Labels) -> float:
    """Mean log-likelihood (minus the log-loss): the held-out utility, higher is better."""
    p = _probabilities(params, x)
    return float(np.mean(np.log(np.clip(p[np.arange(len(y)), y], 1e-12, 1.0))))


def accuracy(params: Sequence[npt.NDArray[np.floating]], x: Floats, y: Labels) -> float:
    return float(np.mean(np.argmax(_probabilities(params, x), axis=1) == y))


def fit_softmax(
    params: Sequence[npt.NDArray[np.floating]],
    x: Floats,
    y: Labels,
    *,
    steps: int = 25,
    lr: float = 1.0,
) -> NDArrays:
    """Full-batch gradient descent on the cross-entropy, from ``params``."""
    w, b = np.array(params[0], dtype=np.float64), np.array(params[1], dtype=np.float64)
    onehot = np.eye(CLASSES)[y]
    for _ in range(steps):
        g = _probabilities([w, b], x) - onehot
        w -= lr * (g.T @ x) / len(y)
        b -= lr * g.mean(axis=0)
    return [w, b]


class DigitsClient(NumPyClient):
    """One demo client (module docstring)."""

    def __init__(self, x: Floats, y: Labels, behaviour: str, seed: int) -> None:
        self.x, self.y, self.behaviour, self.seed = x, y, behaviour, seed

    def get_parameters(self, config: Config) -> NDArrays:
        return initial_parameters()

    def fit(self, parameters: NDArrays, config: Config) -> tuple[NDArrays, int, dict[str, Scalar]]:
        n = len(self.y)
        if self.behaviour == "free-rider":
            return [np.array(p) for p in parameters], n, {}
        if self.behaviour == "spammer":
            rng = np.random.default_rng([self.seed, int(str(config.get("ailedger.round", 0)))])
            return [p + rng.normal(0.0, 2.0, size=p.shape) for p in parameters], n, {}
        if self.behaviour == "poisoner":  # flipped labels, the update boosted to outweigh others
            trained = fit_softmax(parameters, self.x, CLASSES - 1 - self.y)
            return (
                [p + POISON_BOOST * (t - p) for p, t in zip(parameters, trained, strict=True)],
                n,
                {},
            )
        return fit_softmax(parameters, self.x, self.y), n, {}

    def evaluate(
        self, parameters: NDArrays, config: Config
    ) -> tuple[float, int, dict[str, Scalar]]:
        return -log_likelihood(parameters, self.x, self.y), len(self.y), {}


@dataclass(frozen=True)
class ClientFactory:
    """The ClientApp's ``client_fn``: builds partition ``partition-id``'s client, wrapped in
    :class:`~ailedger.fl.SignedClient` with its key. Flower's Ray engine pickles this object
    into its worker processes (memory on this machine; the keys are fresh demo keys)."""

    split: Split
    secrets: tuple[bytes, ...]
    behaviours: tuple[str, ...]
    seed: int

    def __call__(self, context: Context) -> Client:
        cid = int(str(context.node_config["partition-id"]))
        x, y = self.split.partitions[cid]
        inner = DigitsClient(x, y, self.behaviours[cid], self.seed + cid)
        return SignedClient(inner, Secp256k1Signer(self.secrets[cid])).to_client()
