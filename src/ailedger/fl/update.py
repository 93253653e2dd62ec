"""Signed update statements: what a federated-learning client claims about one update, and
the aggregator's signed record of a round.

A client signs an in-toto statement (:class:`UpdatePredicate`, DSSE, its secp256k1 key: the
client's identity is its Ethereum address) saying: for task ``task`` in round ``round``,
starting from the global model ``base_model`` it was sent, it trained on ``num_examples``
examples and returned the parameters ``update`` (both :func:`~ailedger.fl.parameters_digest`),
spending ``dp`` (epsilon, delta) of differential privacy if it trained with DP. The statement's
subject is the update's digest.

:func:`verify_update` is the aggregator's check, and fails closed (:class:`UpdateRefused`, a
``VerificationFailed`` with a stable code): the envelope must parse, carry exactly one
signature, by the key the statement names, of a client admitted to the task; and task, round,
base model and the digest of the parameters received must be the ones expected. A statement
from another round or task, or about other parameters, is refused: it cannot be replayed.

The aggregator records each round in a :class:`RoundPredicate` statement it signs: the base
model, the new global model, the held-out set's root, the scoring method and, per client, the
update, its log entry, its score and whether it was aggregated or why not.

Both are predicates of the in-toto statement, and not registered
(:func:`~ailedger.attest.register_predicate`): the gate, lineage and the audit do not read
them; :func:`verify_update` and readers of a round parse them by their classes here.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from typing import Annotated, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ailedger._codes import VerificationCode
from ailedger.attest import dsse
from ailedger.attest.predicates import (
    PREDICATE_URI_PREFIX,
    Hex256,
    Predicate,
    PredicateKind,
    Text,
    validation_message,
)
from ailedger.attest.statements import Statement, Subject, make_statement, sign_statement
from ailedger.errors import AiledgerError, VerificationFailed
from ailedger.fl._digest import PARAMETERS_DIGEST_TYPE
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log._envelope import check_ethereum_signature

__all__ = [
    "METRIC_KEY",
    "ClientScore",
    "DpSpent",
    "RoundPredicate",
    "UpdatePredicate",
    "UpdateRefused",
    "VerifiedUpdate",
    "sign_update",
    "update_statement",
    "verify_update",
]

#: The FitRes metric that carries the signed statement (a JSON string).
METRIC_KEY = "ailedger.update"

_ADDRESS = re.compile(r"0x[0-9a-f]{40}")
Address = Annotated[str, Field(pattern=r"^0x[0-9a-f]{40}$")]
Round = Annotated[int, Field(ge=1, le=2**31 - 1)]
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


class UpdateRefused(VerificationFailed):
    """An update was refused: unsigned, signed by another key, unknown client, or for another
    task, round, base model or set of parameters."""

    default_code: ClassVar[VerificationCode] = "update-refused"


class DpSpent(BaseModel):
    """The differential privacy one round of training spent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    epsilon: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    delta: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)]
    mechanism: Text


class UpdatePredicate(Predicate):
    """A client's claim about one update of a federated round."""

    NAME: ClassVar[str] = "fl-update"
    PREDICATE_TYPE: ClassVar[str] = PREDICATE_URI_PREFIX + "fl-update/v1"
    PURPOSE: ClassVar[str] = (
        "a federated-learning client's update: task, round, base model, parameters, examples, "
        "differential privacy spent"
    )
    KIND: ClassVar[PredicateKind] = "other"

    task: Text
    round: Round
    client: Address
    base_model: Hex256
    update: Hex256
    digest_type: Literal["rfc9162-tensor-leaves-blake3"] = "rfc9162-tensor-leaves-blake3"
    num_examples: Annotated[int, Field(ge=1, le=2**53 - 1)]  # a safe JSON integer (RFC 8785)
    dp: DpSpent | None = None

    @field_validator("client", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


class ClientScore(BaseModel):
    """One client's line in a round record."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client: Address
    update: Hex256 | None = None
    log_index: Annotated[int, Field(ge=0)] | None = None
    num_examples: Annotated[int, Field(ge=0, le=2**53 - 1)] = 0
    score: FiniteFloat | None = None
    aggregated: bool
    refused: Text | None = None


class RoundPredicate(Predicate):
    """The aggregator's record of one round: who contributed what, scored how, and the new
    global model."""

    NAME: ClassVar[str] = "fl-round"
    PREDICATE_TYPE: ClassVar[str] = PREDICATE_URI_PREFIX + "fl-round/v1"
    PURPOSE: ClassVar[str] = (
        "a federated round: base and new global model, held-out root, each client's update, "
        "score and whether it was aggregated"
    )
    KIND: ClassVar[PredicateKind] = "other"

    task: Text
    round: Round
    base_model: Hex256
    global_model: Hex256
    strategy: Text
    held_out_root: Hex256 | None = None
    scoring: Text | None = None
    #: The held-out utility of the base and of the new global model (higher is better).
    base_utility: FiniteFloat | None = None
    global_utility: FiniteFloat | None = None
    clients: list[ClientScore]


def update_statement(predicate: UpdatePredicate) -> Statement:
    """The statement about ``predicate.update`` (its subject)."""
    subject = Subject(
        name=f"fl/{predicate.task}/round-{predicate.round}/{predicate.client}",
        digest={"sha256": predicate.update},
    )
    return make_statement([subject], predicate)


def sign_update(predicate: UpdatePredicate, signer: Secp256k1Signer) -> dsse.Envelope:
    """The client's envelope; ``signer`` must be the client the predicate names."""
    if signer.address.lower() != predicate.client:
        raise UpdateRefused(
            f"the update names client {predicate.client}, not the signer {signer.address}",
            code="update-signer-mismatch",
        )
    return sign_statement(update_statement(predicate), [signer])


@dataclass(frozen=True)
class VerifiedUpdate:
    """An update statement that passed :func:`verify_update`."""

    envelope: dsse.Envelope
    predicate: UpdatePredicate


def _refuse(message: str, code: VerificationCode) -> UpdateRefused:
    return UpdateRefused(message, code=code)


def verify_update(
    envelope_json: object,
    *,
    task: str,
    round: int,
    base_model: bytes,
    update: bytes,
    clients: Collection[str],
) -> VerifiedUpdate:
    """Check a client's signed update statement (module docstring); raises
    :class:`UpdateRefused` naming the first problem."""
    if not isinstance(envelope_json, str | bytes) or not envelope_json:
        raise _refuse("the update carries no signed statement", "update-unsigned")
    try:
        envelope = dsse.Envelope.from_json(envelope_json)
        if envelope.payload_type != dsse.PAYLOAD_TYPE_IN_TOTO:
            raise _refuse(f"payload type {envelope.payload_type!r}", "update-malformed")
        statement = Statement.from_json(envelope.payload)
        if statement.predicate_type != UpdatePredicate.PREDICATE_TYPE:
            raise _refuse(f"predicate type {statement.predicate_type!r}", "update-malformed")
        predicate = UpdatePredicate.model_validate(statement.predicate)
        predicate.check_subjects(statement.subject)
    except UpdateRefused:
        raise
    except ValidationError as exc:
        msg = validation_message(exc, "update statement")
        raise _refuse(f"malformed update statement: {msg}", "update-malformed") from None
    except AiledgerError as exc:
        raise _refuse(f"malformed update statement: {exc.message}", "update-malformed") from None
    if [s.digest for s in statement.subject] != [{"sha256": predicate.update}]:
        raise _refuse("the statement's subject is not its update", "update-malformed")
    if len(envelope.signatures) != 1:
        n = len(envelope.signatures)
        raise _refuse(f"the statement has {n} signatures, not 1", "update-unsigned")
    sig = envelope.signatures[0]
    if sig.keyid.lower() != predicate.client:
        raise _refuse(
            f"signed by {sig.keyid}, not by the client it names ({predicate.client})",
            "update-signer-mismatch",
        )
    try:
        check_ethereum_signature(predicate.client, envelope.pae(), sig.sig)
    except VerificationFailed:
        raise _refuse(
            f"the signature does not verify for client {predicate.client}",
            "update-signature-invalid",
        ) from None
    admitted = {c.lower() for c in clients}
    if predicate.client not in admitted:
        raise _refuse(f"client {predicate.client} is not admitted to the task", "signer-unknown")
    expected: list[tuple[str, object, object, VerificationCode]] = [
        ("task", predicate.task, task, "update-task-mismatch"),
        ("round", predicate.round, round, "update-round-mismatch"),
        ("base model", predicate.base_model, base_model.hex(), "update-base-mismatch"),
        ("update digest", predicate.update, update.hex(), "update-digest-mismatch"),
    ]
    for what, claimed, want, code in expected:
        if claimed != want:
            raise _refuse(f"{what} {claimed!r} is not the expected {want!r}", code)
    return VerifiedUpdate(envelope, predicate)


assert PARAMETERS_DIGEST_TYPE == "rfc9162-tensor-leaves-blake3"  # the Literal above
