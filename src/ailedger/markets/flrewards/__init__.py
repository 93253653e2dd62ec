"""Federated-learning rewards (issue 17): what the FLRewards contract checks, built off-chain.

- :mod:`.records`: the aggregator's signed ``RoundRecord`` and the verifiers' ``Correction``
  (EIP-712, domain "ailedger FLRewards");
- :mod:`.payouts`: a round's payout and penalty trees (RFC 9162, leaves as the contract
  rebuilds them), their proofs, and the split of a round's budget by contribution.

The contract's client is :mod:`ailedger.chain.fl_rewards` (its docstring shows the whole flow).
"""

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
    "FL_REWARDS_NAME",
    "REASON_HURT_HELDOUT",
    "REASON_REPEATED_OUTLIER",
    "ROUND_RECORD_TYPE",
    "SCORE_SCALE",
    "Correction",
    "Payout",
    "PayoutProof",
    "PayoutTree",
    "Penalty",
    "PenaltyProof",
    "PenaltyTree",
    "RoundRecord",
    "fl_rewards_domain",
    "quantise",
    "sign_correction",
    "sign_round_record",
    "split_budget",
]
