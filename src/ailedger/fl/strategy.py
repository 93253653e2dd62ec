"""The server side: a Flower strategy that records who contributed what, and how much it helped.

::

    strategy = FedAvg(...)                                   # any Flower strategy
    strategy = LedgerStrategy(strategy, task="cancer-fl", log=log, aggregator=key,
                              clients=admitted_addresses, scorer=Scorer(utility))

Each round, :class:`LedgerStrategy`:

1. sends every client the task and round with its fit instructions (``configure_fit``) and
   fingerprints the global model it sends (:func:`~ailedger.fl.parameters_digest`);
2. checks every update's signed statement (:func:`~ailedger.fl.verify_update`: signed by an
   admitted client, for this task, round and base model, about exactly the parameters
   received; the parameters must have the tensor count, shapes and dtypes of the model sent,
   finite values and a finite held-out utility) and refuses the rest, fail closed: a refused
   update is logged (Python logging) and recorded in the round's statement, never
   aggregated; a second update of one client in a round is refused too, and so is an update
   with the very parameters another client sent (a copy), and, with ``committed_examples``,
   one claiming more examples than its client committed records, and, with
   ``max_update_norm``, one moving the model farther (L2) than that (a boosted update);
3. appends the accepted statements to the transparency log (one transaction), once every
   refusal is decided: nothing of a refused update is logged but its line in the round;
4. scores each accepted update on the held-out set (:class:`~ailedger.fl.Scorer`), and with
   ``drop_below`` leaves out of the aggregate the updates scoring below it; an update whose
   digest is the base model's (a free rider sending the global model back) scores 0 and is
   not aggregated;
5. aggregates with the wrapped strategy (FedAvg by default; Krum, FedTrimmedAvg, FedMedian
   are Flower's robust rules), fingerprints the new global model and appends the round's
   :class:`~ailedger.fl.RoundPredicate` statement, signed by the aggregator.

Evaluation is the wrapped strategy's. :attr:`LedgerStrategy.rounds` holds what was recorded;
:attr:`LedgerStrategy.privacy` the per-client DP accounting (basic composition).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

import numpy as np
from flwr.common import (
    EvaluateIns,
    EvaluateRes,
    FitIns,
    FitRes,
    NDArrays,
    Parameters,
    Scalar,
    parameters_to_ndarrays,
)
from flwr.server.client_manager import ClientManager
from flwr.server.client_proxy import ClientProxy
from flwr.server.strategy import FedAvg, Strategy

from ailedger.attest.statements import Subject, make_statement, sign_statement
from ailedger.errors import InvalidInput
from ailedger.fl._digest import parameters_digest
from ailedger.fl.client import ROUND_KEY, TASK_KEY
from ailedger.fl.dp import PrivacyLedger
from ailedger.fl.scoring import Scorer
from ailedger.fl.update import (
    METRIC_KEY,
    ClientScore,
    RoundPredicate,
    UpdateRefused,
    VerifiedUpdate,
    verify_update,
)
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import TransparencyLog

__all__ = ["LedgerStrategy", "RoundRecord"]

logger = logging.getLogger("ailedger.fl")


@dataclass(frozen=True)
class RoundRecord:
    """What one round recorded: its statement and where the log holds it; with
    ``keep_updates``, the accepted updates' parameters by client (what verifiers recompute a
    challenged round's scores from)."""

    predicate: RoundPredicate
    log_index: int
    update_indices: dict[str, int]
    global_parameters: NDArrays = field(repr=False)
    base_parameters: NDArrays = field(repr=False, default_factory=list)
    updates: Mapping[str, NDArrays] = field(repr=False, default_factory=dict)

    @property
    def scores(self) -> dict[str, float]:
        return {c.client: c.score for c in self.predicate.clients if c.score is not None}


class LedgerStrategy(Strategy):
    """Wraps a Flower strategy (module docstring)."""

    def __init__(
        self,
        strategy: Strategy | None = None,
        *,
        task: str,
        log: TransparencyLog,
        aggregator: Secp256k1Signer,
        clients: Collection[str],
        scorer: Scorer | None = None,
        held_out_root: bytes | None = None,
        drop_below: float | None = None,
        on_round: Callable[[RoundRecord], None] | None = None,
        keep_updates: bool = False,
        committed_examples: Mapping[str, int] | None = None,
        max_update_norm: float | None = None,
    ) -> None:
        if not task:
            raise InvalidInput("a federated task needs a name")
        if not clients:
            raise InvalidInput("no client is admitted to the task: every update would be refused")
        self.inner = strategy if strategy is not None else FedAvg()
        self.task = task
        self.log = log
        self.aggregator = aggregator
        self.clients = frozenset(c.lower() for c in clients)
        self.scorer = scorer
        self.held_out_root = held_out_root
        self.drop_below = drop_below
        self.on_round = on_round
        self.keep_updates = keep_updates
        #: Each client's committed number of training records (its data tree's size, as it
        #: joined): when given, an update claiming more examples, or from a client with no
        #: commitment, is refused (FedAvg weighs by the examples a client claims).
        self.committed_examples = committed_examples
        if max_update_norm is not None and not (
            math.isfinite(max_update_norm) and max_update_norm > 0
        ):
            raise InvalidInput(f"max_update_norm must be positive, not {max_update_norm}")
        #: The farthest (L2 over every tensor) an update may move from the model sent: a
        #: boosted (scaled-up) update, which FedAvg and leave-one-out reward, is refused.
        self.max_update_norm = max_update_norm
        self.rounds: list[RoundRecord] = []
        self.privacy = PrivacyLedger()
        self._sent: dict[int, NDArrays] = {}

    def __repr__(self) -> str:
        return f"LedgerStrategy({self.inner!r}, task={self.task!r})"

    # --- rounds --------------------------------------------------------------------------

    def initialize_parameters(self, client_manager: ClientManager) -> Parameters | None:
        params = self.inner.initialize_parameters(client_manager)
        if params is None:
            raise InvalidInput(
                "the wrapped strategy has no initial parameters: pass initial_parameters, "
                "so that round 1's base model is fixed and fingerprinted"
            )
        return params

    def configure_fit(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, FitIns]]:
        self._sent[server_round] = parameters_to_ndarrays(parameters)
        ours: dict[str, Scalar] = {TASK_KEY: self.task, ROUND_KEY: server_round}
        return [
            (proxy, FitIns(ins.parameters, {**ins.config, **ours}))
            for proxy, ins in self.inner.configure_fit(server_round, parameters, client_manager)
        ]

    def _check(
        self,
        server_round: int,
        sent: NDArrays,
        base: bytes,
        results: list[tuple[ClientProxy, FitRes]],
    ) -> tuple[list[tuple[ClientProxy, FitRes, VerifiedUpdate, NDArrays]], list[ClientScore]]:
        accepted: list[tuple[ClientProxy, FitRes, VerifiedUpdate, NDArrays]] = []
        refused: list[ClientScore] = []
        seen: set[str] = set()
        digests: dict[str, str] = {}  # update digest -> the client that sent it first
        for proxy, res in results:
            arrays = parameters_to_ndarrays(res.parameters)
            try:
                verified = verify_update(
                    res.metrics.get(METRIC_KEY),
                    task=self.task,
                    round=server_round,
                    base_model=base,
                    update=parameters_digest(arrays),
                    clients=self.clients,
                )
                if verified.predicate.client in seen:
                    raise UpdateRefused(
                        f"client {verified.predicate.client} sent a second update in round "
                        f"{server_round}",
                        code="update-duplicate",
                    )
                _check_like(sent, arrays, self.max_update_norm)
                self._check_examples(verified)
                first = digests.get(verified.predicate.update)
                if first is not None and verified.predicate.update != base.hex():
                    raise UpdateRefused(
                        f"client {verified.predicate.client} sent the same parameters as "
                        f"client {first} (a copied update)",
                        code="update-duplicate",
                    )
                if verified.predicate.num_examples != res.num_examples:
                    raise UpdateRefused(
                        f"the statement claims {verified.predicate.num_examples} examples, the "
                        f"result {res.num_examples}",
                        code="update-examples-mismatch",
                    )
            except (UpdateRefused, InvalidInput) as exc:
                # name the client only when its signature verified: a forged statement must
                # not put an honest client's name on a refused update
                who = _claimed_client(res) if _code(exc) in _AFTER_SIGNATURE else _ANONYMOUS
                refused.append(_refused_line(server_round, who, exc))
                continue
            seen.add(verified.predicate.client)
            digests.setdefault(verified.predicate.update, verified.predicate.client)
            accepted.append((proxy, res, verified, arrays))
        return accepted, refused

    def _check_examples(self, verified: VerifiedUpdate) -> None:
        if self.committed_examples is None:
            return
        committed = {c.lower(): n for c, n in self.committed_examples.items()}
        claimed, client = verified.predicate.num_examples, verified.predicate.client
        limit = committed.get(client)
        if limit is None:
            raise UpdateRefused(
                f"client {client} committed no training data", code="update-examples-mismatch"
            )
        if claimed > limit:
            raise UpdateRefused(
                f"client {client} claims {claimed} examples, it committed {limit} records",
                code="update-examples-mismatch",
            )

    def _score(
        self,
        server_round: int,
        sent: NDArrays,
        accepted: list[tuple[ClientProxy, FitRes, VerifiedUpdate, NDArrays]],
        refused: list[ClientScore],
    ) -> tuple[list[tuple[ClientProxy, FitRes, VerifiedUpdate, NDArrays]], list[float], float]:
        """Each accepted update's score (0 for the base model sent back: a free rider's update
        carries nothing and is not aggregated). An update whose own held-out utility is not
        finite (finite but overflowing values) is refused, and the others scored without it:
        one client cannot turn every score into NaN."""
        assert self.scorer is not None
        base_hex = parameters_digest(sent).hex()
        while True:
            work = [i for i, (*_, v, _) in enumerate(accepted) if v.predicate.update != base_hex]
            scored = self.scorer.score(
                sent, [accepted[i][3] for i in work], [accepted[i][1].num_examples for i in work]
            )
            values = [scored.base_utility, scored.all_utility, *scored.scores]
            if all(math.isfinite(v) for v in values):
                scores = [0.0] * len(accepted)
                for i, value in zip(work, scored.scores, strict=True):
                    scores[i] = value
                return accepted, scores, scored.base_utility
            if not math.isfinite(scored.base_utility):
                raise InvalidInput(
                    f"round {server_round}: the held-out utility of the base model is "
                    f"{scored.base_utility}: the utility function must return a finite number"
                )
            bad = {i for i in work if not math.isfinite(float(self.scorer.utility(accepted[i][3])))}
            if not bad:
                raise InvalidInput(
                    f"round {server_round}: the held-out utility of an average of updates is "
                    "not finite, though each update's own utility is"
                )
            for i in sorted(bad):
                client = accepted[i][2].predicate.client
                exc = UpdateRefused(
                    "its held-out utility is not finite (overflowing parameters)",
                    code="update-parameters-invalid",
                )
                refused.append(_refused_line(server_round, client, exc))
            accepted = [a for i, a in enumerate(accepted) if i not in bad]

    def aggregate_fit(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, FitRes]],
        failures: list[tuple[ClientProxy, FitRes] | BaseException],
    ) -> tuple[Parameters | None, dict[str, Scalar]]:
        sent = self._sent.pop(server_round, None)
        if sent is None:
            raise InvalidInput(f"round {server_round} was not configured by this strategy")
        base = parameters_digest(sent)
        accepted, refused = self._check(server_round, sent, base, results)
        scores: list[float] | None = None
        base_utility = all_utility = None
        if self.scorer is not None and accepted:
            accepted, scores, base_utility = self._score(server_round, sent, accepted, refused)
        work = [i for i, (*_, v, _) in enumerate(accepted) if v.predicate.update != base.hex()]
        # Only now, with every refusal decided, do the accepted statements reach the log.
        indices = self.log.append_many([v.envelope.to_json() for _, _, v, _ in accepted])
        for _, _, verified, _ in accepted:
            self.privacy.add(verified.predicate.client, verified.predicate.dp)
        keep = [
            i
            for i in work
            if scores is None or self.drop_below is None or scores[i] >= self.drop_below
        ]
        params: Parameters | None = None
        metrics: dict[str, Scalar] = {}
        if keep:
            params, metrics = self.inner.aggregate_fit(
                server_round, [accepted[i][:2] for i in keep], failures
            )
        new = parameters_to_ndarrays(params) if params is not None else sent
        if self.scorer is not None and accepted:
            all_utility = float(self.scorer.utility(new))
            if not math.isfinite(all_utility):
                raise InvalidInput(
                    f"round {server_round}: the held-out utility of the new global model is "
                    f"{all_utility}: the utility function must return a finite number"
                )
        lines = [
            ClientScore(
                client=verified.predicate.client,
                update=verified.predicate.update,
                log_index=indices[i],
                num_examples=verified.predicate.num_examples,
                score=None if scores is None else scores[i],
                aggregated=i in keep,
            )
            for i, (_, _, verified, _) in enumerate(accepted)
        ]
        predicate = RoundPredicate(
            task=self.task,
            round=server_round,
            base_model=base.hex(),
            global_model=parameters_digest(new).hex(),
            strategy=type(self.inner).__name__,
            held_out_root=None if self.held_out_root is None else self.held_out_root.hex(),
            scoring=None if self.scorer is None else self.scorer.name,
            base_utility=base_utility,
            global_utility=all_utility,
            clients=lines + refused,
        )
        subject = Subject(
            name=f"fl/{self.task}/round-{server_round}/global",
            digest={"sha256": predicate.global_model},
        )
        envelope = sign_statement(make_statement([subject], predicate), [self.aggregator])
        index = self.log.append(envelope.to_json())
        record = RoundRecord(
            predicate,
            index,
            {line.client: indices[i] for i, line in enumerate(lines)},
            new,
            sent if self.keep_updates else [],
            {v.predicate.client: a for *_, v, a in accepted} if self.keep_updates else {},
        )
        self.rounds.append(record)
        if self.on_round is not None:
            self.on_round(record)
        return params, {**metrics, "ailedger.round_log_index": index}

    # --- evaluation: the wrapped strategy's --------------------------------------------------

    def configure_evaluate(
        self, server_round: int, parameters: Parameters, client_manager: ClientManager
    ) -> list[tuple[ClientProxy, EvaluateIns]]:
        return self.inner.configure_evaluate(server_round, parameters, client_manager)

    def aggregate_evaluate(
        self,
        server_round: int,
        results: list[tuple[ClientProxy, EvaluateRes]],
        failures: list[tuple[ClientProxy, EvaluateRes] | BaseException],
    ) -> tuple[float | None, dict[str, Scalar]]:
        return self.inner.aggregate_evaluate(server_round, results, failures)

    def evaluate(
        self, server_round: int, parameters: Parameters
    ) -> tuple[float, dict[str, Scalar]] | None:
        return self.inner.evaluate(server_round, parameters)


_ANONYMOUS = "0x" + "0" * 40
#: Refusals raised once the statement's signature verified for the client it names.
_AFTER_SIGNATURE = frozenset(
    {
        "signer-unknown",
        "update-task-mismatch",
        "update-round-mismatch",
        "update-base-mismatch",
        "update-digest-mismatch",
        "update-duplicate",
        "update-parameters-invalid",
        "update-examples-mismatch",
    }
)


def _check_like(sent: NDArrays, arrays: NDArrays, max_norm: float | None = None) -> None:
    """Refuse parameters that are not a model like the one sent: the same tensor count,
    shapes and dtypes, every value finite, and (``max_norm``) no farther from it than that."""

    def refuse(message: str) -> UpdateRefused:
        return UpdateRefused(message, code="update-parameters-invalid")

    if len(arrays) != len(sent):
        raise refuse(f"{len(arrays)} tensors, the model sent has {len(sent)}")
    for i, (got, want) in enumerate(zip(arrays, sent, strict=True)):
        if got.shape != want.shape or got.dtype != want.dtype:
            raise refuse(
                f"tensor {i} is {got.dtype}{list(got.shape)}, the model sent has "
                f"{want.dtype}{list(want.shape)}"
            )
        if np.issubdtype(got.dtype, np.inexact) and not bool(np.isfinite(got).all()):
            raise refuse(f"tensor {i} holds NaN or infinite values")
    if max_norm is not None:
        norm = math.sqrt(
            math.fsum(
                float(np.sum(np.square(np.asarray(g, np.float64) - np.asarray(w, np.float64))))
                for g, w in zip(arrays, sent, strict=True)
            )
        )
        if not norm <= max_norm:
            raise refuse(f"the update moves the model by {norm:.6g} (L2), over {max_norm:g}")


def _refused_line(server_round: int, who: str, exc: Exception) -> ClientScore:
    logger.warning("round %d: refused an update from %s: %s", server_round, who, exc)
    return ClientScore(client=who, aggregated=False, refused=f"[{_code(exc)}] {exc}")


def _code(exc: Exception) -> str:
    return str(getattr(exc, "code", None) or "update-malformed")


def _claimed_client(res: FitRes) -> str:
    """The client an unverified statement names, when it names a well-formed one (for the
    record only: a refused update's claim is not trusted)."""
    import json

    from ailedger.attest.dsse import Envelope

    try:
        env = Envelope.from_json(str(res.metrics.get(METRIC_KEY, "")))
        client = json.loads(env.payload)["predicate"]["client"]
    except Exception:  # the claim is unreadable: the update stays anonymous
        return _ANONYMOUS
    if isinstance(client, str) and len(client) == 42 and client.startswith("0x"):
        try:
            int(client[2:], 16)
        except ValueError:
            return _ANONYMOUS
        return client.lower()
    return _ANONYMOUS
