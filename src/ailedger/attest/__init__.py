"""Signed claims: in-toto Statement v1 in DSSE envelopes.

- :mod:`.dsse`: envelopes, PAE, several signatures per envelope;
- :mod:`.statements`: in-toto statements, subjects, signing and verification;
- :mod:`.predicates`: the typed predicates (model, dataset, training, evaluation, approval,
  deployment, inference) and the registry of predicate types;
- :mod:`.model_signing`: OpenSSF model-signing v0.3 bundles, read and written.
"""

from __future__ import annotations

from ailedger.attest.dsse import (
    MAX_ENVELOPE_BYTES,
    PAYLOAD_TYPE_IN_TOTO,
    Envelope,
    Signature,
    VerifiedEnvelope,
    add_signature,
    pae,
    sign,
    signature_check,
    verify,
)
from ailedger.attest.predicates import (
    PREDICATE_URI_PREFIX,
    PREDICATES,
    ApprovalPredicate,
    DatasetPredicate,
    DeploymentPredicate,
    EvaluationCheck,
    EvaluationPredicate,
    InferencePredicate,
    ModelPredicate,
    ModelResource,
    ModelSerialization,
    Predicate,
    TrainingMetadata,
    parse_predicate,
    predicate_class,
    validation_message,
)
from ailedger.attest.statements import (
    STATEMENT_TYPE,
    Statement,
    Subject,
    VerifiedStatement,
    attest,
    make_statement,
    parse_digest,
    sign_statement,
    subject_from_digest,
    subject_from_file,
    verify_statement,
)

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "PAYLOAD_TYPE_IN_TOTO",
    "PREDICATES",
    "PREDICATE_URI_PREFIX",
    "STATEMENT_TYPE",
    "ApprovalPredicate",
    "DatasetPredicate",
    "DeploymentPredicate",
    "Envelope",
    "EvaluationCheck",
    "EvaluationPredicate",
    "InferencePredicate",
    "ModelPredicate",
    "ModelResource",
    "ModelSerialization",
    "Predicate",
    "Signature",
    "Statement",
    "Subject",
    "TrainingMetadata",
    "VerifiedEnvelope",
    "VerifiedStatement",
    "add_signature",
    "attest",
    "make_statement",
    "pae",
    "parse_digest",
    "parse_predicate",
    "predicate_class",
    "sign",
    "sign_statement",
    "signature_check",
    "subject_from_digest",
    "subject_from_file",
    "validation_message",
    "verify",
    "verify_statement",
]
