"""Stable codes of verification failures: the one list (``docs/verification-codes.md`` is
generated from it: ``AILEDGER_REGENERATE=1 pytest tests/test_codes.py`` rewrites it, and
the same test fails while the two differ).

Every :class:`~ailedger.errors.VerificationFailed` carries one of these codes; the CLI shows
it as ``error: [code] message`` and ``--json`` outputs report it as ``"code"``, so an error
a user pastes can be found with grep. A code names what failed, never where: the same check
in two places has one code. A code, once published, is never renamed or reused; add a new one
instead. :data:`VerificationCode` is the same list as a type, so mypy rejects a misspelt code.
"""

from __future__ import annotations

from typing import Literal, get_args

__all__ = [
    "GATE_CODES",
    "VERIFICATION_CODES",
    "VerificationCode",
    "codes_markdown",
]

VerificationCode = Literal[
    # generic: the class defaults of the error tree (a raise that names no code)
    "verification-failed",
    "proof-invalid",
    "signature-invalid",
    "gate-failed",
    # Merkle proofs (RFC 9162)
    "proof-hash-size-invalid",
    "leaf-index-out-of-range",
    "inclusion-proof-invalid",
    "consistency-proof-invalid",
    "proof-root-mismatch",
    # dataset and tensor proofs
    "proof-format-invalid",
    "proof-kind-mismatch",
    "proof-tree-mismatch",
    "proof-size-unpinned",
    "proof-subject-mismatch",
    "proof-salt-invalid",
    "record-unreadable",
    "record-mismatch",
    "record-leaf-mismatch",
    "non-membership-unsupported",
    "non-membership-proof-invalid",
    "tensor-leaf-mismatch",
    "tensor-digest-algorithm-mismatch",
    "tensor-shape-invalid",
    "tensor-data-mismatch",
    "tensor-on-disk-mismatch",
    # signatures and statements
    "signature-malformed",
    "signer-unknown",
    "statement-signature-invalid",
    "dsse-payload-type-unknown",
    "model-manifest-inconsistent",
    "model-signature-mismatch",
    "bundle-key-mismatch",
    "bundle-signature-invalid",
    # the log: checkpoints and receipts
    "checkpoint-signature-missing",
    "checkpoint-signature-invalid",
    "checkpoint-untrusted",
    "checkpoint-origin-mismatch",
    "witness-cosignatures-insufficient",
    "receipt-origin-mismatch",
    "receipt-log-key-mismatch",
    "receipt-artifact-mismatch",
    "receipt-anchor-missing",
    "checkpoint-rollback",
    "remote-entry-mismatch",
    "tile-invalid",
    # the registry: traces
    "trace-leaf-mismatch",
    "trace-tree-head-mismatch",
    "trace-event-mismatch",
    "trace-time-mismatch",
    "trace-claim-mismatch",
    "trace-link-missing",
    "trace-link-mismatch",
    "trace-first-event-mismatch",
    "trace-checkpoint-missing",
    "trace-deployers-unknown",
    "trace-signer-not-deployer",
    "inference-record-mismatch",
    # oracles
    "observation-signature-invalid",
    "oracle-model-mismatch",
    "oracle-input-mismatch",
    "oracle-report-refused",
    "oracle-peer-refused",
    # the demo's own checks
    "demo-check-failed",
    # the inference market: usage receipts
    "receipt-domain-mismatch",
    "receipt-signer-mismatch",
    "receipt-model-mismatch",
    "receipt-job-mismatch",
    "receipt-counter-mismatch",
    "receipt-epoch-mismatch",
    "receipt-price-mismatch",
    "served-model-mismatch",
    # federated learning: client updates
    "update-refused",
    "update-unsigned",
    "update-malformed",
    "update-signer-mismatch",
    "update-signature-invalid",
    "update-task-mismatch",
    "update-round-mismatch",
    "update-base-mismatch",
    "update-digest-mismatch",
    "update-duplicate",
    "update-parameters-invalid",
    "update-examples-mismatch",
    "fl-score-mismatch",
    # federated-learning rewards
    "heldout-not-preregistered",
    "heldout-overlap-unproven",
    # the inference market: consumer-signed requests
    "request-unsigned",
    "request-signature-invalid",
    "request-expired",
    "request-nonce-reused",
]

#: Every code and what it means, in the order of :data:`VerificationCode`.
VERIFICATION_CODES: dict[VerificationCode, str] = {
    "verification-failed": "a verification failed (no more specific code was given)",
    "proof-invalid": "a proof does not hold (no more specific code was given)",
    "signature-invalid": "a signature does not verify with the key it names",
    "gate-failed": "the release gate has unmet requirements; each is listed with its own "
    "code (artifact-mismatch, approvals-missing, ...; see the gate table below)",
    "proof-hash-size-invalid": "a hash in a proof is not 32 bytes",
    "leaf-index-out-of-range": "the proven leaf index is outside the tree",
    "inclusion-proof-invalid": "an inclusion proof does not lead to the expected root "
    "(too long, too short or wrong hashes)",
    "consistency-proof-invalid": "a consistency proof does not lead from the old root to the "
    "new one (wrong sizes, length or hashes: the log may have forked)",
    "proof-root-mismatch": "the proof is for another root than the one expected",
    "proof-format-invalid": "a proof document is malformed or names an unknown scheme",
    "proof-kind-mismatch": "the proof cannot check what was asked (e.g. a record against a "
    "consistency proof)",
    "proof-tree-mismatch": "the proof is for another tree (size or root) than the dataset's "
    "or model's",
    "proof-size-unpinned": "a proof of a stated leaf hash (a non-membership bracket, a plain "
    "inclusion proof without its entry) was checked against a trusted root but not a trusted "
    "tree size: a root does not fix the size, and a smaller claimed size passes an interior "
    "node as a leaf (pass the size from the same trusted source, e.g. --size)",
    "proof-subject-mismatch": "the proof is for another model subject digest",
    "proof-salt-invalid": "the proof's salt does not fit the dataset's salt scheme",
    "record-unreadable": "the record file given to check does not parse",
    "record-mismatch": "the record file is not the record carried in the proof",
    "record-leaf-mismatch": "the record (and salt) do not hash to the proven leaf",
    "non-membership-unsupported": "the dataset's scheme admits no non-membership proof",
    "non-membership-proof-invalid": "the bracketing leaves do not prove the record absent",
    "tensor-leaf-mismatch": "the tensor's fields do not hash to the proven leaf",
    "tensor-digest-algorithm-mismatch": "the tensor digest uses another algorithm than the "
    "model's tensor digests",
    "tensor-shape-invalid": "the tensor's dtype and shape are not a whole number of bytes",
    "tensor-data-mismatch": "the tensor data given does not match the proven digest or size",
    "tensor-on-disk-mismatch": "the tensor in the model on disk is missing or differs",
    "signature-malformed": "a signature is malformed (length, range, malleable form, "
    "recovery id) or recovers no key",
    "signer-unknown": "a signature names a key that is not trusted here",
    "statement-signature-invalid": "an envelope has fewer valid trusted signatures than required",
    "dsse-payload-type-unknown": "the DSSE envelope's payload type is not the one expected",
    "model-manifest-inconsistent": "a signed model manifest's subject digest is not the hash "
    "of its resources",
    "model-signature-mismatch": "the model on disk is not the one that was signed",
    "bundle-key-mismatch": "a model-signing bundle was signed by another key than the one given",
    "bundle-signature-invalid": "a model-signing bundle's signature does not verify",
    "checkpoint-signature-missing": "a checkpoint has no signature by the expected key",
    "checkpoint-signature-invalid": "a checkpoint's signature by the log key does not verify",
    "checkpoint-untrusted": "a checkpoint has no signature by any trusted key",
    "checkpoint-origin-mismatch": "a checkpoint is for another log (origin)",
    "witness-cosignatures-insufficient": "fewer valid witness cosignatures than required",
    "receipt-origin-mismatch": "a receipt names another log than its checkpoint",
    "receipt-log-key-mismatch": "a receipt is from another log (its key or origin)",
    "receipt-artifact-mismatch": "the artifact is not a subject of the receipt's statement",
    "receipt-anchor-missing": "a receipt carries no anchor and none can be found",
    "checkpoint-rollback": "a log service served a checkpoint smaller than one this client "
    "already verified (a rollback, or a fork it hides)",
    "remote-entry-mismatch": "the entries a log service served do not hash to its signed "
    "checkpoint (tampered, missing or reordered entries)",
    "tile-invalid": "a tlog-tiles tile or entry bundle does not hash to the signed "
    "checkpoint's tree (wrong length, tampered bytes or a forked log)",
    "trace-leaf-mismatch": "a traced entry is not the leaf its proof proves",
    "trace-tree-head-mismatch": "a trace's entries are proven against different tree heads",
    "trace-event-mismatch": "a traced entry is not a deploy or rollback of the environment",
    "trace-time-mismatch": "a trace's events do not bracket the traced time",
    "trace-claim-mismatch": (
        "a trace names another version, digest or action than its serving event's statement"
    ),
    "trace-link-missing": (
        "a trace's next event names no previous event (written before links): adjacency is "
        "not proven by the log alone"
    ),
    "trace-link-mismatch": (
        "an event names another entry than the environment's previous event: the two are not "
        "consecutive (or the chain is forked)"
    ),
    "trace-first-event-mismatch": (
        "an event claims to be the first of its environment (previous: null), but an earlier "
        "one is in the log"
    ),
    "trace-checkpoint-missing": "a trace document has no signed checkpoint of its tree head",
    "trace-deployers-unknown": (
        "no trusted deployer keys to check a trace's signers against (--deployer, or the "
        "deployer grants of the workspace of its log)"
    ),
    "trace-signer-not-deployer": "a traced event is signed by no trusted deployer key",
    "inference-record-mismatch": "an inference record is not the proven leaf of its batch",
    "observation-signature-invalid": "an oracle observation is not signed by its oracle alone",
    "oracle-model-mismatch": "the oracle's model is not the one expected",
    "oracle-input-mismatch": "the oracle round's batch does not hash to its input root",
    "oracle-report-refused": "a node will not co-sign a report that misstates the observations",
    "oracle-peer-refused": "an oracle peer refused to observe or to sign",
    "demo-check-failed": "a self-check of `ailedger demo` failed",
    "receipt-domain-mismatch": "a usage receipt (or epoch root) is signed for another chain "
    "or InferenceMarket contract than the one expected",
    "receipt-signer-mismatch": "a usage receipt (or epoch root) is not signed by the expected "
    "provider",
    "receipt-model-mismatch": "a usage receipt names another model digest than the one paid for",
    "receipt-job-mismatch": "a usage receipt is for another job than the one called",
    "receipt-counter-mismatch": "a usage receipt's call counter is not the job's next one "
    "(a gap, a repeat or a forged counter)",
    "receipt-epoch-mismatch": "a usage receipt is not the leaf at its position in the signed "
    "root of its epoch",
    "receipt-price-mismatch": "a usage receipt charges another price per call than the one agreed",
    "served-model-mismatch": "the model files a provider would serve do not hash to the "
    "registered subject digest (refused before loading)",
    "update-refused": "a federated-learning update was refused (no more specific code was given)",
    "update-unsigned": "a federated-learning update carries no signed statement, or "
    "not exactly one signature",
    "update-malformed": "a federated-learning update statement does not parse or is "
    "not an fl-update statement about its update",
    "update-signer-mismatch": "a federated-learning update is signed by another key than "
    "the client it names",
    "update-signature-invalid": "a federated-learning update's signature does not verify for "
    "the client it names",
    "update-task-mismatch": "a federated-learning update is for another task (a replay "
    "from another task)",
    "update-round-mismatch": "a federated-learning update is for another round (a replay "
    "from another round)",
    "update-base-mismatch": "a federated-learning update was trained from another global "
    "model than the one sent",
    "update-digest-mismatch": "the parameters a federated-learning client returned are not "
    "the ones its statement names",
    "update-duplicate": "a federated-learning client sent a second update in one round",
    "update-parameters-invalid": "a federated-learning update is not a model like the one "
    "sent (other tensor count, shapes or dtypes, NaN or infinite values, a held-out "
    "utility that is not finite, or farther from it than the strategy's max_update_norm)",
    "update-examples-mismatch": "a federated-learning update claims another number of "
    "examples than its result carries, or more than the client committed on joining",
    "fl-score-mismatch": "a federated round's logged scores are not what a verifier recomputes "
    "from the committed base model, updates and held-out set",
    "heldout-not-preregistered": "an FLRewards task does not show its held-out set fixed before "
    "training (no round yet, or round 1 not after the task's creation)",
    "heldout-overlap-unproven": "a held-out record has no valid proof of absence from a "
    "client's committed training data",
    "request-unsigned": "a call to a provider carries no signature of the job's consumer "
    "(refused: nothing charged)",
    "request-signature-invalid": "a call's request is not signed by the job's consumer for "
    "this job, provider, model, input, chain and market",
    "request-expired": "a consumer-signed request is past its expiry",
    "request-nonce-reused": "a consumer-signed request's nonce was already charged for the job "
    "(a replay)",
}


#: The release gate's own codes, inside a ``gate-failed`` error and in ``gate --json``: why a
#: requirement is unmet (``unmet[].code``) and why a statement did not count (``reason``).
GATE_CODES: dict[str, str] = {
    "policy-requires-nothing": "unmet: the policy requires nothing for this environment "
    "(an empty policy passes nothing; unsafe_allow_no_requirements = true opts out)",
    "unknown-environment": "unmet: the policy has [env.*] sections but none for this environment",
    "evaluation-missing": "unmet: no usable result of a required evaluation",
    "evaluation-expired": "unmet: the required evaluation's results are older than max_age",
    "evaluation-failed": "unmet: the latest result misses a threshold or its command failed",
    "evaluation-metric-missing": "unmet: the latest result does not report a required metric",
    "audit-missing": "unmet: no usable result of a required audit",
    "audit-expired": "unmet: the required audit's results are older than max_age",
    "audit-failed": "unmet: the latest result of a required audit did not pass",
    "approvals-missing": "unmet: fewer counting approvals for a role than required",
    "approval-rejected": "unmet: an approver of the role rejected the version",
    "too-few-organisations": "unmet: approvals come from fewer organisations than required",
    "artifact-mismatch": "unmet: the artifact on disk no longer hashes to the registered digest",
    "artifact-unchecked": "unmet: the policy requires re-hashing, but no artifact was checked",
    "signer-not-allowed": "not counted: no signer of the statement is on the allow lists",
    "not-a-member": "not counted: the signer belongs to no organisation",
    "wrong-role": "not counted: the signer lacks the required role",
    "expired": "not counted: logged longer than max_age before the gate",
    "invalid-predicate": "not counted: the predicate does not validate",
    "unknown-predicate-type": "not counted: the predicate type is not registered",
    "not-gate-evidence": "not counted: a registered predicate type the gate does not read",
    "other-subject": "not counted: the statement is about another artifact",
    "logged-after-gate": "not counted: the statement was logged after the gate time",
    "privacy-accounting-missing": "unmet: the policy sets max_epsilon but no usable "
    "differential-privacy accounting of the model was logged",
    "privacy-budget-exceeded": "unmet: the model's training spent more epsilon than "
    "max_epsilon, or a contributor trained without differential privacy",
}


def codes_markdown() -> str:
    """``docs/verification-codes.md``: the table of codes, generated from this module."""
    lines = [
        "# Verification failure codes",
        "",
        "<!-- generated from src/ailedger/_codes.py: "
        "AILEDGER_REGENERATE=1 pytest tests/test_codes.py -->",
        "",
        "Every verification failure (exit code 1) carries one stable code. The CLI prints it",
        'as `error: [code] message`; `--json` outputs report it as `"code"`. Grep this page',
        "for the code in brackets. Codes are never renamed or reused.",
        "",
        "| code | meaning |",
        "| --- | --- |",
    ]
    lines += [f"| `{code}` | {text} |" for code, text in VERIFICATION_CODES.items()]
    lines += [
        "",
        "## Release gate codes",
        "",
        "A `gate-failed` error lists each unmet requirement with its code, e.g.",
        "`[artifact-mismatch]`; `ailedger gate --json` reports them as `unmet[].code`, and why",
        "a statement did not count as `reason`.",
        "",
        "| code | meaning |",
        "| --- | --- |",
    ]
    lines += [f"| `{code}` | {text} |" for code, text in GATE_CODES.items()]
    return "\n".join(lines) + "\n"


if get_args(VerificationCode) != tuple(VERIFICATION_CODES):  # pragma: no cover
    raise AssertionError("VerificationCode and VERIFICATION_CODES list different codes")
