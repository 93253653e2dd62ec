"""Signed claims: in-toto Statement v1 in DSSE envelopes.

- :mod:`.dsse`: envelopes, PAE, several signatures per envelope;
- :mod:`.statements`: in-toto statements, subjects, signing and verification;
- :mod:`.predicates`: the typed predicates (model, dataset, training, evaluation, approval,
  deployment, inference) and the registry of predicate types;
- :mod:`.slsa`: SLSA Provenance v1 of training runs (a registered predicate type);
- :mod:`.privacy`: the differential privacy a model's training spent (gate evidence for
  a policy's ``max_epsilon``);
- :mod:`.flags`: anomaly flags (a model's verdict on a dataset) and acknowledgements of a
  logged statement (registered predicate types);
- :mod:`.computed`: the predicate fields a dataset or model determines, merged with the
  user's (``attest dataset|model --subject PATH``);
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
    candidate_keys,
    pae,
    sign,
    signature_check,
    verify,
)
from ailedger.attest.flags import AcknowledgementPredicate, AnomalyFlagPredicate
from ailedger.attest.predicates import (
    PREDICATE_URI_PREFIX,
    PREDICATES,
    ApprovalPredicate,
    DatasetPredicate,
    Decision,
    DeploymentPredicate,
    EvaluationCheck,
    EvaluationPredicate,
    EventLink,
    InferencePredicate,
    ModelPredicate,
    ModelResource,
    ModelSerialization,
    Outcome,
    Predicate,
    PredicateKind,
    TrainingMetadata,
    parse_predicate,
    predicate_class,
    predicate_types,
    register_predicate,
    registered_predicate,
    unregister_predicate,
    validation_message,
)
from ailedger.attest.privacy import (
    PRIVACY_EVALUATION,
    PrivacyAccountingPredicate,
    PrivacyBudget,
)
from ailedger.attest.slsa import (
    SLSA_PROVENANCE_TYPE,
    TRAINING_BUILD_TYPE,
    SlsaProvenancePredicate,
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
    "PRIVACY_EVALUATION",
    "SLSA_PROVENANCE_TYPE",
    "STATEMENT_TYPE",
    "TRAINING_BUILD_TYPE",
    "AcknowledgementPredicate",
    "AnomalyFlagPredicate",
    "ApprovalPredicate",
    "DatasetPredicate",
    "Decision",
    "DeploymentPredicate",
    "Envelope",
    "EvaluationCheck",
    "EvaluationPredicate",
    "EventLink",
    "InferencePredicate",
    "ModelPredicate",
    "ModelResource",
    "ModelSerialization",
    "Outcome",
    "Predicate",
    "PredicateKind",
    "PrivacyAccountingPredicate",
    "PrivacyBudget",
    "Signature",
    "SlsaProvenancePredicate",
    "Statement",
    "Subject",
    "TrainingMetadata",
    "VerifiedEnvelope",
    "VerifiedStatement",
    "add_signature",
    "attest",
    "candidate_keys",
    "make_statement",
    "pae",
    "parse_digest",
    "parse_predicate",
    "predicate_class",
    "predicate_types",
    "register_predicate",
    "registered_predicate",
    "sign",
    "sign_statement",
    "signature_check",
    "subject_from_digest",
    "subject_from_file",
    "unregister_predicate",
    "validation_message",
    "verify",
    "verify_statement",
]
