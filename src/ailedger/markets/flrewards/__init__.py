"""Federated-learning rewards (issue 17): what the FLRewards contract checks, built off-chain.

- :mod:`.records`: the aggregator's signed ``RoundRecord`` and the verifiers' ``Correction``
  (EIP-712, domain "ailedger FLRewards");
- :mod:`.payouts`: a round's payout and penalty trees (RFC 9162, leaves as the contract
  rebuilds them), their proofs, and the split of a round's budget by contribution;
- :mod:`.heldout`: the held-out set's salted sorted tree, registered before round 1
  (:func:`verify_preregistered`), and proofs that no held-out record is in a client's
  committed training data (:func:`verify_disjoint`).

The contract's client is :mod:`ailedger.chain.fl_rewards` (its docstring shows the whole flow).
"""

from ailedger.markets.flrewards.heldout import (
    DATA_COMMITMENT_CONTEXT,
    DisjointCheck,
    PreRegistration,
    RecordTree,
    data_commitment,
    encode_record,
    verify_disjoint,
    verify_preregistered,
)
from ailedger.markets.flrewards.payouts import (
    REASON_HURT_HELDOUT,
    REASON_REPEATED_OUTLIER,
    SCORE_SCALE,
    Payout,
    PayoutProof,
    PayoutTree,
    Penalty,
    PenaltyProof,
    PenaltyTree,
    quantise,
    split_budget,
)
from ailedger.markets.flrewards.records import (
    CORRECTION_TYPE,
    FL_REWARDS_NAME,
    ROUND_RECORD_TYPE,
    Correction,
    RoundRecord,
    fl_rewards_domain,
    sign_correction,
    sign_round_record,
)

__all__ = [
    "CORRECTION_TYPE",
    "DATA_COMMITMENT_CONTEXT",
    "FL_REWARDS_NAME",
    "REASON_HURT_HELDOUT",
    "REASON_REPEATED_OUTLIER",
    "ROUND_RECORD_TYPE",
    "SCORE_SCALE",
    "Correction",
    "DisjointCheck",
    "Payout",
    "PayoutProof",
    "PayoutTree",
    "Penalty",
    "PenaltyProof",
    "PenaltyTree",
    "PreRegistration",
    "RecordTree",
    "RoundRecord",
    "data_commitment",
    "encode_record",
    "fl_rewards_domain",
    "quantise",
    "sign_correction",
    "sign_round_record",
    "split_budget",
    "verify_disjoint",
    "verify_preregistered",
]
