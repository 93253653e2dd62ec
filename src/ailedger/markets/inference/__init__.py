"""Pay per inference, first increment: usage receipts for every call, provider and consumer.

- :mod:`.receipt`: the EIP-712 receipt a provider signs per call (job, counter, request and
  response digests, model digest, price, time, consumer, epoch and position), the signed
  epoch root, and their verification;
- :class:`ReceiptBook` (:mod:`._store`): the provider's durable receipt store (SQLite WAL,
  committed before returned), counters per job, epochs batched into RFC 9162 roots, proofs;
- :mod:`.models`: the model served, checked against its fingerprint before it is loaded
  (scikit-learn, ONNX, a Python callable);
- :mod:`.request`: the EIP-712 request a consumer signs for every call (job, provider, model,
  request digest, nonce, expiry), checked by the provider before it serves or charges;
- :mod:`.jobs`: which jobs a provider serves and whose signature each call needs;
- :mod:`.provider`: the provider's HTTP endpoint (``ailedger market serve``);
- :mod:`.client`: the consumer's client and receipt wallet (``ailedger market call``).

- :mod:`.settlement`: the contract's sample of an epoch's calls, the verifiers' signed
  result, and the sample sizes a pass-rate claim needs (Hoeffding; zero failures);
- :mod:`.verifier`: a verifier re-executes an epoch's sampled calls (revealed by whoever
  holds them) on its own fingerprint-checked copy of the model and signs the result;
  :mod:`.attestation`: that signed result, and what settleEpoch and proveWrongOutput take
  from a threshold of them;
- :mod:`.onchain`: commits the book's closed epochs to the InferenceMarket contract
  (:mod:`ailedger.chain.inference_market`) and builds dispute arguments from kept receipts.
"""

from __future__ import annotations

from ailedger.markets.inference._store import ClosedEpoch, ReceiptBook
from ailedger.markets.inference.attestation import (
    Attestation,
    SampleOutcome,
    SignedMismatch,
    WrongOutputEvidence,
    gather_verification,
    gather_wrong_outputs,
)
from ailedger.markets.inference.client import (
    REQUEST_TTL,
    CallResult,
    ProviderClient,
    ReceiptWallet,
    WalletRow,
    verify_kept,
)
from ailedger.markets.inference.jobs import JobDirectory, JobEntry, job_table, load_job_table
from ailedger.markets.inference.models import (
    PLUGINS,
    ModelRefused,
    Predictor,
    VerifiedModel,
    load_predictor,
    verified_model,
)
from ailedger.markets.inference.receipt import (
    EPOCH_ROOT_TYPE,
    INFERENCE_MARKET_NAME,
    RECEIPT_TYPE,
    EpochRoot,
    Receipt,
    SignedEpochRoot,
    SignedReceipt,
    market_domain,
    request_digest,
    response_digest,
    sign_receipt,
    verify_epoch_root,
    verify_inclusion_in_epoch,
    verify_receipt,
)
from ailedger.markets.inference.request import (
    INFERENCE_REQUEST_NAME,
    REQUEST_TYPE,
    InferenceRequest,
    SignedRequest,
    new_nonce,
    request_domain,
    sign_request,
    verify_request,
)
from ailedger.markets.inference.verifier import (
    Reveal,
    RevealedCall,
    Tolerance,
    model_tolerance,
    read_sample,
    reveal_from_book,
    reveal_from_wallet,
    verify_epoch,
)

__all__ = [
    "EPOCH_ROOT_TYPE",
    "INFERENCE_MARKET_NAME",
    "INFERENCE_REQUEST_NAME",
    "PLUGINS",
    "RECEIPT_TYPE",
    "REQUEST_TTL",
    "REQUEST_TYPE",
    "Attestation",
    "CallResult",
    "ClosedEpoch",
    "EpochRoot",
    "InferenceRequest",
    "JobDirectory",
    "JobEntry",
    "ModelRefused",
    "Predictor",
    "ProviderClient",
    "Receipt",
    "ReceiptBook",
    "ReceiptWallet",
    "Reveal",
    "RevealedCall",
    "SampleOutcome",
    "SignedEpochRoot",
    "SignedMismatch",
    "SignedReceipt",
    "SignedRequest",
    "Tolerance",
    "VerifiedModel",
    "WalletRow",
    "WrongOutputEvidence",
    "gather_verification",
    "gather_wrong_outputs",
    "job_table",
    "load_job_table",
    "load_predictor",
    "market_domain",
    "model_tolerance",
    "new_nonce",
    "read_sample",
    "request_digest",
    "request_domain",
    "response_digest",
    "reveal_from_book",
    "reveal_from_wallet",
    "sign_receipt",
    "sign_request",
    "verified_model",
    "verify_epoch",
    "verify_epoch_root",
    "verify_inclusion_in_epoch",
    "verify_kept",
    "verify_receipt",
    "verify_request",
]
