"""A PyTorch client that trains with Opacus DP-SGD and states the privacy it spent.

::

    from ailedger.fl.dpsgd import OpacusClient

    client = OpacusClient(make_model, x, y, noise_multiplier=1.1, max_grad_norm=1.0,
                          delta=1e-5, epochs=1, batch_size=32, lr=0.1)
    return SignedClient(client, key).to_client()          # in the ClientApp's client_fn

Each ``fit`` builds a fresh model (``make_model()``), loads the global parameters it was sent
(the model's ``state_dict`` values, in order), and trains it with Opacus's ``PrivacyEngine``
(per-example gradients clipped to ``max_grad_norm``, Gaussian noise of ``noise_multiplier``
times that, Poisson sampling of batches). The (epsilon, delta) it reports is Opacus's own
accountant's (RDP by default, ``accountant``) for this round's steps alone, in the fit metrics
that :class:`~ailedger.fl.SignedClient` puts in the signed update statement; across rounds
:class:`~ailedger.fl.PrivacyLedger` adds them up (basic composition, a safe upper bound).

Needs the ``fl-torch`` extra (``torch`` and ``opacus``; install torch's CPU build, e.g.
``pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu``, first: a plain
``torch`` requirement pulls several GB of CUDA wheels); without them the client refuses to
be built, with one line naming the extra. Not imported by :mod:`ailedger.fl`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
from flwr.client import NumPyClient
from flwr.common import Config, NDArrays, Scalar

from ailedger.errors import InvalidInput
from ailedger.fl.client import DP_DELTA_KEY, DP_EPSILON_KEY, DP_MECHANISM_KEY, ROUND_KEY

__all__ = ["OPACUS_MECHANISM", "OpacusClient"]

#: How the statements name the mechanism (the accountant is appended: ``...-rdp``).
OPACUS_MECHANISM = "opacus-dp-sgd"


def _require() -> tuple[Any, Any]:
    """``torch`` and Opacus's ``PrivacyEngine``, or :class:`InvalidInput` naming the extra."""
    try:
        import torch
        from opacus import PrivacyEngine
    except ImportError as exc:
        raise InvalidInput(
            f"the DP-SGD client needs torch and opacus ({exc.name} is not installed)",
            hint="install torch's CPU build (torch==2.13.0), then pip install 'ailedger[fl-torch]'",
        ) from None
    return torch, PrivacyEngine


class OpacusClient(NumPyClient):
    """Trains ``make_model()`` on ``(x, y)`` with DP-SGD (module docstring)."""

    def __init__(
        self,
        make_model: Callable[[], Any],
        x: npt.NDArray[np.floating],
        y: npt.NDArray[np.integer],
        *,
        noise_multiplier: float,
        max_grad_norm: float,
        delta: float,
        epochs: int = 1,
        batch_size: int = 32,
        lr: float = 0.1,
        accountant: str = "rdp",
        seed: int = 0,
    ) -> None:
        torch, _ = _require()
        if len(x) != len(y) or len(y) == 0:
            raise InvalidInput("a DP-SGD client needs as many labels as examples, at least one")
        if not (noise_multiplier > 0 and math.isfinite(noise_multiplier)):
            raise InvalidInput(f"the noise multiplier must be positive, not {noise_multiplier}")
        if not (max_grad_norm > 0 and math.isfinite(max_grad_norm)):
            raise InvalidInput(f"the clipping norm must be positive, not {max_grad_norm}")
        if not 0 < delta < 1 / len(y):
            raise InvalidInput(f"delta must be in (0, 1/n) = (0, {1 / len(y):g}), not {delta}")
        if epochs < 1 or batch_size < 1 or not lr > 0:
            raise InvalidInput("epochs and batch size must be >= 1 and the learning rate > 0")
        self.make_model = make_model
        self.x = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        self.y = torch.as_tensor(np.asarray(y), dtype=torch.long)
        self.noise_multiplier = float(noise_multiplier)
        self.max_grad_norm = float(max_grad_norm)
        self.delta = float(delta)
        self.epochs, self.batch_size, self.lr = epochs, batch_size, lr
        self.accountant = accountant
        self.seed = seed

    def _model(self, parameters: NDArrays | None) -> Any:
        torch, _ = _require()
        model = self.make_model()
        if parameters is not None:
            state = model.state_dict()
            if len(parameters) != len(state):
                raise InvalidInput(
                    f"{len(parameters)} arrays sent for a model of {len(state)} tensors"
                )
            model.load_state_dict(
                {
                    k: torch.as_tensor(np.asarray(p), dtype=v.dtype).reshape(v.shape)
                    for (k, v), p in zip(state.items(), parameters, strict=True)
                }
            )
        return model

    @staticmethod
    def _arrays(model: Any) -> NDArrays:
        return [v.detach().cpu().numpy().copy() for v in model.state_dict().values()]

    def get_parameters(self, config: Config) -> NDArrays:
        return self._arrays(self._model(None))

    def fit(self, parameters: NDArrays, config: Config) -> tuple[NDArrays, int, dict[str, Scalar]]:
        torch, PrivacyEngine = _require()
        round_ = config.get(ROUND_KEY, 0)
        torch.manual_seed(self.seed * 100_003 + (round_ if isinstance(round_, int) else 0))
        model = self._model(parameters)
        model.train()
        loader = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(self.x, self.y), batch_size=self.batch_size
        )
        engine = PrivacyEngine(accountant=self.accountant)
        private, optimizer, private_loader = engine.make_private(
            module=model,
            optimizer=torch.optim.SGD(model.parameters(), lr=self.lr),
            data_loader=loader,
            noise_multiplier=self.noise_multiplier,
            max_grad_norm=self.max_grad_norm,
        )
        loss_fn = torch.nn.CrossEntropyLoss()
        steps = 0
        for _ in range(self.epochs):
            for xb, yb in private_loader:
                if len(yb) == 0:  # Poisson sampling may draw an empty batch
                    continue
                optimizer.zero_grad()
                loss_fn(private(xb), yb).backward()
                optimizer.step()
                steps += 1
        epsilon = float(engine.get_epsilon(self.delta))
        metrics: dict[str, Scalar] = {
            DP_EPSILON_KEY: epsilon,
            DP_DELTA_KEY: self.delta,
            DP_MECHANISM_KEY: f"{OPACUS_MECHANISM}-{self.accountant}",
            "dp.noise_multiplier": self.noise_multiplier,
            "dp.max_grad_norm": self.max_grad_norm,
            "dp.steps": steps,
        }
        return self._arrays(model), len(self.y), metrics

    def evaluate(
        self, parameters: NDArrays, config: Config
    ) -> tuple[float, int, dict[str, Scalar]]:
        torch, _ = _require()
        model = self._model(parameters)
        model.eval()
        with torch.no_grad():
            logits = model(self.x)
            loss = float(torch.nn.functional.cross_entropy(logits, self.y))
            acc = float((logits.argmax(dim=1) == self.y).float().mean())
        return loss, len(self.y), {"accuracy": acc}
