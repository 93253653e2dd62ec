"""Pay per inference, first increment: usage receipts for every call, provider and consumer.

- :mod:`.receipt`: the EIP-712 receipt a provider signs per call (job, counter, request and
  response digests, model digest, price, time, consumer, epoch and position), the signed
  epoch root, and their verification;
- :class:`ReceiptBook` (:mod:`._store`): the provider's durable receipt store (SQLite WAL,
  committed before returned), counters per job, epochs batched into RFC 9162 roots, proofs;
- :mod:`.models`: the model served, checked against its fingerprint before it is loaded
  (scikit-learn, ONNX, a Python callable);
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
    CallResult,
    ProviderClient,
    ReceiptWallet,
    WalletRow,
    verify_kept,
)
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
from ailedger.markets.inference.verifier import (
    Reveal,
    RevealedCall,
    Tolerance,
    model_tolerance,
    read_sample,
    reveal_from_wallet,
    verify_epoch,
)

__all__ = [
    "EPOCH_ROOT_TYPE",
    "INFERENCE_MARKET_NAME",
    "PLUGINS",
    "RECEIPT_TYPE",
    "Attestation",
    "CallResult",
    "ClosedEpoch",
    "EpochRoot",
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
    "Tolerance",
    "VerifiedModel",
    "WalletRow",
    "WrongOutputEvidence",
    "gather_verification",
    "gather_wrong_outputs",
    "load_predictor",
    "market_domain",
    "model_tolerance",
    "read_sample",
    "request_digest",
    "response_digest",
    "reveal_from_wallet",
    "sign_receipt",
    "verified_model",
    "verify_epoch",
    "verify_epoch_root",
    "verify_inclusion_in_epoch",
    "verify_kept",
    "verify_receipt",
]
