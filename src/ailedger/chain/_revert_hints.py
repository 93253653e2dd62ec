"""What each custom error of the shipped contracts means, and what to do about it.

:func:`explain` turns a decoded revert (``NotAMember(account=0x..)``) into a sentence and a
``hint:``: which role, organisation or consent is missing and the ``ailedger`` command that
grants it, or, where the caller can do nothing (a used nonce, a security refusal), what it
means. Every custom error in ``chain/artifacts`` has an entry (a test reads the ABIs), so a
contract error added without one fails CI.

Templates name the decoded arguments in braces; addresses are EIP-55, ``bytes32`` values hex,
and a role or environment id is shown by name when it is the hash of a well-known name.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Any

from ailedger.chain._hex import keccak

__all__ = ["HINTS", "explain"]

_GRANT = (
    "an admin of the organisation grants it, with the account's consent: "
    "`ailedger chain grant {account} --org ORG --role {role} --key ORG-ADMIN "
    "--consent-key ITS-KEY` (see `ailedger chain members --org ORG`)"
)
_JOIN = "the account accepts its invitation: `ailedger chain join --org ORG --key ITS-KEY`"
_SIGNATURE = "the signature does not verify: sign again with the right key"
_NOT_YOURS = "nothing to do but use the right key or value: this is the contract refusing a misuse"
_OWNER = "only the contract's owner may: run it with the owner's key (--key), the deployer"

#: error name -> (message template, hint template). ``Contract.Error`` keys override.
HINTS: Mapping[str, tuple[str, str]] = {
    # --- shared (OpenZeppelin and our own libraries) --------------------------------------
    "ECDSAInvalidSignature": ("a signature is not a valid ECDSA signature", _SIGNATURE),
    "ECDSAInvalidSignatureLength": (
        "a signature is {length} bytes, not 65",
        "pass the 65-byte r||s||v signature the key produced",
    ),
    "ECDSAInvalidSignatureS": (
        "a signature has a high s value (malleable)",
        "sign again with eth-account or ailedger (they produce low-s signatures)",
    ),
    "InvalidShortString": ("an EIP-712 name or version string is too long", _NOT_YOURS),
    "StringTooLong": ("a string is too long: {str}", "use a shorter name"),
    "SafeCastOverflowedUintDowncast": (
        "a number does not fit in {bits} bits: {value}",
        "use a smaller value (delays and times are bounded)",
    ),
    "ZeroAddress": ("an address is the zero address", "pass a real account address"),
    "OwnableInvalidOwner": ("{owner} cannot be the owner", "transfer ownership to a real account"),
    "OwnableUnauthorizedAccount": ("{account} is not the contract's owner", _OWNER),
    "ReentrancyGuardReentrantCall": (
        "a reentrant call was refused",
        "a contract tried to call back into a payout: withdraw from an account, not a contract "
        "that re-enters",
    ),
    "AccessControlUnauthorizedAccount": (
        "{account} does not hold the role {neededRole}",
        "the registry admin grants it; for the deployer role of an environment: "
        "`ailedger chain deployer {account} --env ENV --key ADMIN`",
    ),
    "AccessControlBadConfirmation": (
        "a role can only be renounced by its own holder",
        "renounce with the holder's own key",
    ),
    "AccessControlEnforcedDefaultAdminDelay": (
        "the admin handover is not due before {schedule}",
        "wait until then and accept the admin role again",
    ),
    "AccessControlEnforcedDefaultAdminRules": (
        "the registry admin is changed only by the two-step delayed handover",
        "begin the handover with the admin's key, then accept it after the delay",
    ),
    "AccessControlInvalidDefaultAdmin": (
        "{defaultAdmin} is not the pending admin",
        "accept the handover with the key it was offered to",
    ),
    "SignatureExpired": (
        "the signature's deadline {deadline} has passed",
        "sign again with a later deadline",
    ),
    "SignersNotAscending": (
        "signers must be in ascending address order ({previous} then {signer})",
        "sort the signatures by signer address (ailedger does this for you)",
    ),
    "TooManySignatures": (
        "{count} signatures, at most {max} allowed",
        "send at most {max} signatures",
    ),
    "NoSurplus": (
        "there is no surplus (ether beyond what the books owe) to sweep",
        "nothing to do: the contract holds exactly what it owes",
    ),
    "NothingToWithdraw": (
        "{account} has nothing to withdraw",
        "check what is owed first (the settlement's `owed` view or the demo's books)",
    ),
    "TransferFailed": (
        "sending {amount} wei to {to} failed",
        "withdraw to an account that accepts ether (`withdrawTo` another address)",
    ),
    "ZeroAmount": ("the amount is zero", "send a positive amount"),
    "ZeroRecipient": ("the recipient is the zero address", "name a real recipient"),
    "InterestedFeedCreator": (
        "{creator} created feed {feedId} and would judge its own payout",
        "use a feed created by an independent operator (not a party to the agreement)",
    ),
    "ReportUnderOtherConfig": (
        "the round was reported under configuration {got}, not the pinned {pinned}",
        "settle on a round reported under the configuration pinned when the policy was written",
    ),
    "WrongSigner": (
        "the signature recovers to {recovered}",
        "sign with the key of the account named in the message",
    ),
    # --- Membership -----------------------------------------------------------------------
    "AlreadyMember": (
        "{account} is already a member of organisation {orgId}",
        "nothing to do; grant it a role with `ailedger chain grant {account} --org ORG "
        "--role ROLE --key ORG-ADMIN`",
    ),
    "JoinNonceUsed": (
        "{account}'s join consent (nonce {nonce}) was used or cancelled",
        "sign a new consent: run `ailedger chain grant` again with --consent-key",
    ),
    "MemberOfOtherOrg": (
        "{account} is a member of another organisation ({orgId})",
        "an account belongs to one organisation; use another key for this one",
    ),
    "Membership.NotAMember": (
        "{account} is not a member of organisation {orgId}",
        "add it first, with its consent: `ailedger chain grant {account} --org ORG --role ROLE "
        "--key ORG-ADMIN --consent-key ITS-KEY`",
    ),
    "NotInvited": (
        "{account} was not invited to organisation {orgId}",
        "an admin of the organisation invites it: `ailedger chain grant {account} --org ORG "
        "--role ROLE --key ORG-ADMIN`; then " + _JOIN,
    ),
    "NotOrgAdmin": (
        "{caller} is not an admin of organisation {orgId}",
        "sign with a key that holds the admin role there (`ailedger chain members --org ORG`)",
    ),
    "OrgExists": ("organisation {orgId} exists already", "pick another name or use it"),
    "RoleAlreadyHeld": ("{account} already holds {role}", "nothing to do"),
    "Membership.RoleNotHeld": (
        "{account} does not hold {role} in organisation {orgId}",
        "nothing to revoke; see `ailedger chain members --org ORG`",
    ),
    "RolesStillHeld": (
        "{account} still holds {count} roles",
        "revoke them first: `ailedger chain revoke {account} --org ORG --role ROLE --key "
        "ORG-ADMIN`",
    ),
    "UnknownOrg": (
        "no organisation {orgId} on this chain",
        "the global admin creates it with its first admin: `ailedger chain grant ADDRESS "
        "--org ORG --role admin --key ADMIN --consent-key ITS-KEY`",
    ),
    "ZeroOrgId": ("the organisation name is empty", "name the organisation (--org)"),
    "ZeroRole": ("the role is empty", "name a role (--role)"),
    # --- ModelRegistry --------------------------------------------------------------------
    "NotAMember": (
        "{account} is not a member of any organisation on the chain",
        "an admin of its organisation adds it with its consent: `ailedger chain grant "
        "{account} --org ORG --role trainer --key ORG-ADMIN --consent-key ITS-KEY`",
    ),
    "RoleNotHeld": (
        "{account} does not hold the role {role} in its organisation on the chain",
        _GRANT,
    ),
    "NotDeployer": (
        "{caller} may not deploy or roll back in environment {env}",
        "the registry admin allows it: `ailedger chain deployer {caller} --env ENV --key "
        "ADMIN` (or deploy with the admin's key)",
    ),
    "NotRegistrantOrAdmin": (
        "{caller} neither registered this version nor is the registry admin",
        "deprecate with the registrant's key (the one that ran `model register`) or the "
        "registry admin's",
    ),
    "ZeroDigest": ("a digest is zero", "pass the artifact's sha256 subject digest"),
    "VersionExists": (
        "version {versionId} is registered already in this organisation",
        "register the changed artifact under a new version",
    ),
    "UnknownVersion": (
        "version {versionId} is not registered on the chain",
        "register it first: `ailedger model register PATH --name N --version V --key "
        "TRAINER` on this chain-backed workspace",
    ),
    "TooManyDatasets": ("{count} datasets, at most {max}", "name at most {max} datasets"),
    "WrongOrganisation": (
        "{approver} signed for organisation {signedOrgId} but is in {orgId}",
        "sign the approval again now (its organisation changed)",
    ),
    "DigestMismatch": (
        "version {versionId} was registered with subject {registered}, not {subjectDigest}",
        "approve or deploy the artifact that was registered, or register this one as a new version",
    ),
    "AlreadyApproved": (
        "{approver} has approved version {versionId} already",
        "nothing to do (revoke the approval first to approve again)",
    ),
    "NotApproved": (
        "{approver} has no approval of version {versionId} to revoke",
        "nothing to do",
    ),
    "NonceUsed": (
        "{approver}'s approval nonce {nonce} was used or cancelled",
        "sign a new approval (a new nonce); a relayed approval counts once",
    ),
    "TooManyApprovals": ("{count} approvals, at most {max}", "send at most {max} at once"),
    "TooManyRequirements": (
        "{count} required roles, at most {max}",
        "require at most {max} roles per environment in the policy",
    ),
    "LengthMismatch": (
        "{roles} roles but {counts} counts",
        "give one count per role (the policy's approvals table)",
    ),
    "DuplicateRole": ("the role {role} is listed twice", "list each role once in the policy"),
    "NoPendingRequirement": (
        "no requirement change is scheduled for environment {env}",
        "nothing to apply; deploy syncs the policy to the chain",
    ),
    "RequirementNotDue": (
        "the weaker requirement for {env} applies at {eta}, not yet",
        "wait until then (weakening a gate is delayed so everyone can see it coming)",
    ),
    "UnknownEnvironment": (
        "environment {env} has no requirement on the chain",
        "deploy once with the registry admin's key and --policy: it syncs the policy's "
        "requirement for the environment",
    ),
    "VersionDeprecated": (
        "version {versionId} is deprecated",
        "deploy, approve or roll back to another version",
    ),
    "ApprovalsMissing": (
        "version {versionId} has {have} of {need} approvals in role {role} that count",
        "collect them: `ailedger approve N@V --role ROLE --key KEY` by current members of "
        "distinct organisations, not the registrant",
    ),
    "TooFewOrganisations": (
        "version {versionId} is approved by {have} organisations, {need} needed",
        "get approvals from members of more organisations",
    ),
    "AlreadyCurrent": (
        "version {versionId} already serves environment {env}",
        "nothing to do",
    ),
    "NeverDeployed": (
        "version {versionId} never served environment {env}",
        "roll back only to a version deployed there before (`ailedger trace`)",
    ),
    # --- LogAnchors -----------------------------------------------------------------------
    "AlreadyAnchored": (
        "log {logId} is anchored at size {size} already",
        "nothing to do; append more entries before anchoring again",
    ),
    "AlreadyProven": ("anchor {index} of log {logId} is proven already", "nothing to do"),
    "ChangeNotReady": (
        "the witness change of log {logId} takes effect at {effectiveAt}",
        "wait until then (witness changes are delayed and announced)",
    ),
    "ConsistencyProofInvalid": (
        "the consistency proof from size {oldSize} to {size} does not verify",
        "the log may have forked: run `ailedger log verify` and do not anchor until it passes",
    ),
    "LogExists": (
        "log {logId} is registered already",
        "anchor it: `ailedger anchor --key LOG-KEY`",
    ),
    "NoPendingChange": ("log {logId} has no pending witness change", "nothing to apply"),
    "NoSuchAnchor": ("log {logId} has no anchor {index}", "check the anchor index"),
    "NotAWitness": (
        "{account} is not a witness of log {logId}",
        "cosign with a registered witness key (`ailedger chain cosign --key WITNESS`)",
    ),
    "NotLogAdmin": (
        "{caller} is not the admin of log {logId}",
        "sign with the log admin's key (the key that registered the log)",
    ),
    "NotLogSigner": (
        "the checkpoint is signed by {recovered}, not the log's key {expected}",
        "anchor with the log's own key (--key LOG-KEY, see `ailedger log default-key`)",
    ),
    "NotPendingAdmin": (
        "{caller} was not offered the admin role of log {logId}",
        "accept with the key the handover named",
    ),
    "ProofTooLong": ("a proof of {length} hashes is too long", _NOT_YOURS),
    "RootConflict": (
        "size {size} was anchored with root {anchoredRoot}, not {root}",
        "the log has forked: stop and compare `ailedger log verify` with the anchored root",
    ),
    "SizeDecreased": (
        "the anchored size {anchoredSize} is larger than {size}",
        "a log never shrinks: anchor a checkpoint at least as large",
    ),
    "ThresholdNotMet": (
        "{valid} valid witness cosignatures, {threshold} required",
        "collect more cosignatures: `ailedger chain cosign --key WITNESS --out FILE`, then "
        "`ailedger anchor --cosignature FILE`",
    ),
    "ThresholdTooHigh": (
        "a threshold of {threshold} with {witnessCount} witnesses",
        "register more witnesses (--witness) or lower --threshold",
    ),
    "ThresholdZero": ("a threshold of zero", "require at least one cosignature (--threshold 1)"),
    "TooManyWitnesses": ("{count} witnesses, at most {max}", "register at most {max}"),
    "UnknownLog": (
        "log {logId} is not registered on the chain",
        "register and anchor it: `ailedger anchor --key LOG-KEY --witness ADDRESS`",
    ),
    "WitnessExists": ("{witness} is a witness of log {logId} already", "nothing to do"),
    "WitnessIsLogSigner": (
        "{account} is the log's own key and cannot witness it",
        "use an independent witness key",
    ),
    # --- OracleFeeds ----------------------------------------------------------------------
    "BadBounds": ("answer bounds {minAnswer}..{maxAnswer} are invalid", "give min < max"),
    "BadOracleCount": (
        "{n} oracles with f = {f}: a paying feed needs n >= 3f + 1 and f >= 1",
        "configure at least 4 oracles with f = 1",
    ),
    "BadTransmitterCount": ("{count} transmitters", "allow between 1 and the oracle count"),
    "ConfigDigestMismatch": (
        "the report is for configuration {got}, the feed's is {expected}",
        "run the round again under the feed's current configuration",
    ),
    "ConfigMismatch": (
        "the signer set or values sent with the report are not those of configuration "
        "{version} of feed {feedId}",
        "send the configuration transmitConfig returns (the Python client does)",
    ),
    "EpochNotIncreasing": (
        "epoch {epoch} is not after the latest {latestEpoch}",
        "report a later epoch (--epoch)",
    ),
    "EpochStepTooLarge": (
        "epoch {epoch} is more than {maxStep} after {latestEpoch}",
        "report the next epochs in order",
    ),
    "FeedExists": (
        "feed {feedId} exists already (feed ids are per creator)",
        "use it, or another label",
    ),
    "NoReport": ("feed {feedId} has no report for epoch {epoch}", "wait for the round"),
    "NotATransmitter": (
        "{caller} may not transmit reports for this feed",
        "transmit with a key on the feed's transmitter list",
    ),
    "NotAnOracle": (
        "{signer} is not an oracle of this feed",
        "collect signatures from its oracles",
    ),
    "NotFeedCreator": (
        "{caller} did not create feed {feedId}",
        "only the feed's creator configures it",
    ),
    "ObservationOutOfBounds": (
        "an observation {value} is outside {minAnswer}..{maxAnswer}",
        "oracles must report values within the feed's bounds",
    ),
    "ObservationsNotSorted": (
        "observations are not sorted (position {position})",
        "send the observations in ascending order",
    ),
    "ObserverCount": (
        "{observations} observations but {observers} observers",
        "send one observer index per observation",
    ),
    "ObserverRepeated": ("observer {index} appears twice", "each oracle observes once"),
    "ObserverUnknown": ("observer {index} is not in the configuration", _NOT_YOURS),
    "ReportFromFuture": (
        "the report's time {observationsTimestamp} is after the block's {now_}",
        "check the oracles' clocks",
    ),
    "StaleReport": (
        "the report's time {observationsTimestamp} is more than {maxAge} s before {now_}",
        "run a fresh round",
    ),
    "TooFewObservations": (
        "{count} observations, {needed} needed",
        "collect observations from more oracles (2f + 1)",
    ),
    "TooFewSignatures": (
        "{count} signatures, {needed} needed",
        "collect signatures from f + 1 oracles",
    ),
    "TransmittersNotAscending": (
        "transmitters out of order ({previous} then {transmitter})",
        "sort them by address",
    ),
    "UnknownConfig": (
        "feed {feedId} never had configuration {configDigest}",
        "pin a configuration the feed has (`setConfig` first)",
    ),
    "UnknownFeed": (
        "no feed {feedId} on this chain",
        "the operator creates it first; check the feed label and its creator (--feed-creator)",
    ),
    # --- ParametricEscrow -----------------------------------------------------------------
    "BadWindow": ("the window {start}..{expiry} is invalid", "give start < expiry"),
    "FeedNotAccountable": (
        "policy {policyId} pays only while judge {judge} holds feed {feedId} accountable, and "
        "it does not",
        "every oracle of the feed's configuration in force must hold the feed's minimum stake "
        "free (not unbonding) with a judge registered in the StakeManager: check each with "
        "`ailedger stake status`; settle again once they are staked",
    ),
    "InsufficientFreeFunds": (
        "{requested} wei requested, {free} free in the pool",
        "fund the pool or ask for less (reserved payouts are not free)",
    ),
    "NotInsurer": ("{caller} is not the insurer of pool {poolId}", "use the insurer's key"),
    "PolicyExpired": ("policy {policyId} expired at {expiry}", "nothing can trigger it now"),
    "PolicyNotActive": ("policy {policyId} is not active (status {status})", "nothing to do"),
    "PolicyNotExpired": (
        "policy {policyId} expires at {expiry} (plus the grace period)",
        "wait until then",
    ),
    "ReportOutsideWindow": (
        "the round's time {observationsTimestamp} is outside the policy window {start}..{expiry}",
        "settle on a round inside the policy's window",
    ),
    "TriggerNotMet": (
        "the round's answer {answer} does not meet the trigger {threshold}",
        "nothing to pay: the policy did not trigger on this round",
    ),
    "UnknownPolicy": ("no policy {policyId}", "check the policy id"),
    "UnknownPool": ("no pool {poolId}", "check the pool id"),
    # --- PerformanceBonus -----------------------------------------------------------------
    "BadRefundTime": ("refundAfter {refundAfter} is invalid", "set it after the last week"),
    "BadWeeks": ("weeks {firstWeek}..{lastWeek} are invalid", "give first <= last"),
    "RefundNotDue": (
        "agreement {agreementId} cannot be refunded before {refundAfter}",
        "wait until then",
    ),
    "UnknownAgreement": ("no agreement {agreementId}", "check the agreement id"),
    "WeekAlreadySettled": ("week {week} of agreement {agreementId} is settled", "nothing to do"),
    "WeekOutsideAgreement": (
        "week {week} is outside {firstWeek}..{lastWeek}",
        "settle a week of the agreement",
    ),
    "WeekReported": (
        "week {week} of agreement {agreementId} has a round: it cannot be refunded",
        "settle it instead",
    ),
    "WrongFunding": ("{sent} wei sent, {required} required", "send exactly {required} wei"),
    # --- ConsortiumToken (OpenZeppelin ERC20) and SafeERC20 ---------------------------------
    "ERC20InsufficientAllowance": (
        "{spender} may spend {allowance} of the token, {needed} needed",
        "approve the spender for the amount first (`ailedger stake deposit` approves it)",
    ),
    "ERC20InsufficientBalance": (
        "{sender} holds {balance} of the token, {needed} needed",
        "get more of the token, or use a smaller amount",
    ),
    "ERC20InvalidApprover": ("approver {approver} is invalid", "approve from a real account"),
    "ERC20InvalidReceiver": ("receiver {receiver} is invalid", "send to a real account"),
    "ERC20InvalidSender": ("sender {sender} is invalid", "send from a real account"),
    "ERC20InvalidSpender": ("spender {spender} is invalid", "approve a real spender"),
    "SafeERC20FailedOperation": (
        "the token {token} refused a transfer (it reverted or returned false)",
        "check the balance, allowance and any restriction of that token; nothing was booked",
    ),
    # --- StakeManager ---------------------------------------------------------------------
    "AlreadyRegistered": (
        "{account} is already registered (or proposed)",
        "remove it first to register it with other rules",
    ),
    "BadBps": ("{bps} basis points is above 10000", "give a share between 0 and 10000"),
    "BadDelays": (
        "unbonding delay {unbondingDelay} and governance delay {governanceDelay} are invalid",
        "give a positive unbonding delay and a governance delay at least as long",
    ),
    "FaultAlreadySlashed": (
        "judge {judge} already slashed fault {faultId}",
        "nothing to do: one fault is slashed once",
    ),
    "InsufficientFree": (
        "{requested} requested, only {free} of the stake is free (not locked or unbonding)",
        "ask for at most the free stake (`ailedger stake status`); locked stake is freed when "
        "its market closes the work",
    ),
    "InsufficientLocked": (
        "{requested} to unlock, {locked} locked by this market",
        "unlock at most what the market locked",
    ),
    "MarketStillActive": (
        "market {market} is still registered: its locks stay until it unlocks them",
        "wait for the market to close the work (or for governance to remove it)",
    ),
    "NotJudge": (
        "{caller} is not an active judge of the StakeManager",
        "only judge contracts that governance registered (after its delay) may slash",
    ),
    "NotMarket": (
        "{caller} is not an active market of the StakeManager",
        "only market contracts that governance registered (after its delay) may lock stake",
    ),
    "NothingArrived": (
        "no {asset} arrived at the StakeManager on deposit",
        "this token transfers nothing to the contract: use another asset",
    ),
    "NothingOwed": (
        "nothing is owed to {account} in {asset}",
        "check `ailedger stake status` (owed); shares come from slashes",
    ),
    "NothingToSlash": (
        "{participant} has no slashable stake in {asset}",
        "nothing to do: there is no free, unbonding or own locked stake",
    ),
    "NothingUnbonding": (
        "nothing is unbonding",
        "request it first: `ailedger stake request-withdraw AMOUNT --key KEY`",
    ),
    "UnbondingNotDue": (
        "the unbonding stake is withdrawable from {releaseAt} (unix time)",
        "wait until then (`ailedger stake status` shows it), then withdraw",
    ),
    "UseDeposit": (
        "ether sent to the StakeManager outside deposit",
        "stake ether with `ailedger stake deposit AMOUNT` (deposit(address(0), amount))",
    ),
    "WrongValue": (
        "{sent} wei sent with the call, {expected} expected",
        "send the amount as value for ether, and no value with a token",
    ),
    # --- LabelingMarket (`ailedger label ...`) ----------------------------------------------
    "LabelingMarket.BadTask": (
        "the task's counts, roots, threshold or deadlines are invalid",
        "give at least one gold item within the batch, a threshold of at most 100% and a "
        "positive --window",
    ),
    "LabelingMarket.NothingArrived": (
        "no {token} arrived at the market for the pool",
        "this token transfers nothing to the contract: use another token",
    ),
    "LabelingMarket.NoTask": (
        "there is no task {taskId}",
        "use the id `ailedger label task` printed (`ailedger label status TASK`)",
    ),
    "LabelingMarket.TooEarly": (
        "too early: this step opens after {at} (unix time)",
        "wait for the deadline (`ailedger label status TASK` shows them)",
    ),
    "LabelingMarket.TooLate": (
        "too late: the deadline was {deadline} (unix time)",
        "nothing to do for this task: the step closed (`ailedger label status TASK`)",
    ),
    "LabelingMarket.NotRequester": (
        "{caller} did not post this task",
        "reveal the gold with the requester's key: `ailedger label score TASK --key KEY`",
    ),
    "LabelingMarket.RequesterCannotLabel": (
        "the requester cannot label its own task",
        "join with another account's key",
    ),
    "LabelingMarket.AlreadyJoined": ("{labeler} already joined", "go on: `ailedger label commit`"),
    "LabelingMarket.NotJoined": (
        "{labeler} has not joined the task",
        "join first: `ailedger label join TASK --key KEY`",
    ),
    "LabelingMarket.TaskFull": (
        "the task has its {max} labelers",
        "nothing to do: take another task",
    ),
    "LabelingMarket.LengthMismatch": (
        "{labelers} labelers but {labels} label lists",
        "give one label list per labeler (`ailedger label score` reads them from the chain)",
    ),
    "LabelingMarket.NoCommitment": (
        "{labeler} has no commitment in the task",
        "commit first: `ailedger label commit TASK --labels FILE --key KEY`",
    ),
    "LabelingMarket.AlreadyRevealed": ("{labeler} already revealed", "nothing to do"),
    "LabelingMarket.CommitmentMismatch": (
        "the labels and salt do not open {labeler}'s commitment",
        "reveal exactly what this key committed (`ailedger label reveal` reads it from the "
        "workspace); another labeler's labels never open your commitment",
    ),
    "LabelingMarket.WrongLabelCount": (
        "{got} labels, the batch has {expected} items",
        "give one label per item (null to abstain)",
    ),
    "LabelingMarket.GoldAlreadyRevealed": (
        "the gold of task {taskId} is already revealed",
        "score the labelers: `ailedger label score TASK --key KEY`",
    ),
    "LabelingMarket.GoldNotRevealed": (
        "the gold of task {taskId} is not revealed yet",
        "the requester reveals it with `ailedger label score TASK --key KEY`",
    ),
    "LabelingMarket.WrongGoldCount": (
        "{got} gold entries revealed, the task committed to {expected}",
        "reveal the whole gold set the task committed to",
    ),
    "LabelingMarket.BadGoldProof": (
        "gold entry {leafIndex} is not in the committed gold root",
        "reveal the gold set exactly as committed (the workspace keeps it): a changed label or "
        "salt does not prove",
    ),
    "LabelingMarket.GoldIndexOutOfRange": (
        "gold entry {leafIndex} names item {itemIndex}, outside the batch",
        "nothing to do: this gold set is unusable; the labelers are paid after the gold deadline",
    ),
    "LabelingMarket.GoldLabelInvalid": (
        "gold entry {leafIndex} has the abstain label (0xff) as its answer",
        "nothing to do: this gold set is unusable; the labelers are paid after the gold deadline",
    ),
    "LabelingMarket.GoldMismatch": (
        "these gold records are not the revealed ones",
        "score with the records of the GoldRevealed event (`ailedger label score` reads them)",
    ),
    "LabelingMarket.NotRevealed": (
        "{labeler} did not reveal",
        "nothing to score: a labeler who did not reveal is slashed at settlement",
    ),
    "LabelingMarket.LabelsMismatch": (
        "these are not the labels {labeler} revealed",
        "score with the labels of its Revealed event (`ailedger label score` reads them)",
    ),
    "LabelingMarket.NotScored": (
        "{labeler} revealed but is not scored yet",
        "score everyone first: `ailedger label score TASK --key KEY`",
    ),
    "LabelingMarket.AlreadySettled": ("task {taskId} is already settled", "nothing to do"),
    "LabelingMarket.NothingOwed": (
        "nothing is owed to {account} in {token}",
        "rewards are owed after `ailedger label settle`; check the token",
    ),
    # --- OracleFeeds observation signatures and OracleJudge ---------------------------------
    "ObservationSignatureCount": (
        "{signatures} observation signatures for {observations} observations",
        "send one 65-byte signature per observation, by its observer, in observation order",
    ),
    "ObservationNotSigned": (
        "observation {position} is attributed to {observer} but signed by {signer}",
        "each observation must carry its own observer's signature of that value in this round",
    ),
    "OracleJudge.NotFeedCreator": (
        "{caller} did not create feed {feedId}",
        "the feed's creator declares its terms: run it with the creator's key",
    ),
    "TermsAlreadyDeclared": (
        "feed {feedId} already has terms",
        "nothing to do: a feed's terms never change (create a new feed for other terms)",
    ),
    "NoTerms": (
        "feed {feedId} has no terms with this judge",
        "its creator declares them first (minimum stake, slash, tolerance, window)",
    ),
    "BadTerms": (
        "the terms are invalid",
        "give a positive minimum stake, a slash of at most the minimum and a positive window",
    ),
    "WindowTooLong": (
        "a challenge window of {challengeWindow} s exceeds the unbonding delay {unbondingDelay} s",
        "use a window no longer than the unbonding delay, so stake cannot leave before it ends",
    ),
    "NoRound": (
        "feed {feedId} has no round at epoch {epoch}",
        "challenge a round that was accepted (its oracle-report statement names the epoch)",
    ),
    "ChallengeWindowClosed": (
        "the challenge window closed at {closedAt} (unix time)",
        "nothing to do: a round can be challenged only within its window",
    ),
    "NotTheStoredReport": (
        "the report given hashes to {given}, not the stored {stored}",
        "give the round's report exactly as transmitted (the log's oracle-report statement)",
    ),
    "BadPosition": (
        "position {position} is outside the report's {observations} observations",
        "give the index of the observation in the report",
    ),
    "NotTheObserversSignature": (
        "the observation's signature is by {signer}, not its observer {observer}",
        "give the observer's own signature of that observation (from the round's log entry)",
    ),
    "WithinTolerance": (
        "the observation is {deviation} from the median, within the tolerance {tolerance}",
        "nothing to do: the observation is not a fault",
    ),
    "SelfChallenge": (
        "{oracle} may not challenge its own observation",
        "challenge from another account",
    ),
    "AlreadySlashed": (
        "fault {faultId} was already slashed",
        "nothing to do: one fault is slashed once",
    ),
    # --- DatasetVouching -----------------------------------------------------------------
    "DatasetVouching.AlreadyDrawn": (
        "audit {auditId}'s sample is already drawn",
        "answer it: `ailedger vouch audit answer {auditId}`",
    ),
    "DatasetVouching.AlreadyListed": (
        "dataset {datasetId} is already listed",
        "its terms are fixed: vouch for it, or register a new version",
    ),
    "DatasetVouching.AnswerLate": (
        "the answer deadline ({deadline}, unix time) has passed",
        (
            "nothing to answer now: anyone may settle the audit (`ailedger vouch audit settle`), "
            "which slashes the curators"
        ),
    ),
    "DatasetVouching.AnswerStillDue": (
        "the owner may still answer until {deadline} (unix time)",
        "wait for the deadline before settling an unanswered audit",
    ),
    "DatasetVouching.AuditOpen": (
        "audit {auditId} of this dataset is open",
        (
            "vouches, unvouches and new audits wait until it is settled (`ailedger vouch audit "
            "settle {auditId}`)"
        ),
    ),
    "DatasetVouching.BadChecks": (
        "the record checks are inconsistent",
        (
            "need min length <= max, label min <= max, a test-set salt of 0 or 32 bytes and a "
            "size with a test-set root"
        ),
    ),
    "DatasetVouching.BadProof": (
        "the proof of sample {sample} does not lead to the dataset root",
        (
            "answer with the dataset the root was computed from (same salt secret, input order): "
            "`ailedger vouch audit answer`"
        ),
    ),
    "DatasetVouching.BadSampleSize": (
        "{k} records is not a sample size of 1..256",
        "pick k from `ailedger vouch bound --bad P --risk D`, at most 256",
    ),
    "DatasetVouching.BadSeedBlock": (
        "seed block {seedBlock} is not after the current block {current} (and within 128 of it)",
        "name a future block; the CLI picks the next but one",
    ),
    "DatasetVouching.BadTerms": (
        "the listing terms are invalid",
        (
            "need an ERC-20 asset, a size, a salt of 0 or 32 bytes, slash <= 10000 bps, windows "
            "of 1 s..30 days, a minimum vouch and a bond"
        ),
    ),
    "DatasetVouching.BadTestProof": (
        "the test-set proof does not lead to the declared test-set root",
        "prove membership in the test set the listing declared",
    ),
    "DatasetVouching.BelowMinimum": (
        "{amount} is below the dataset's minimum vouch {minimum}",
        "vouch at least the minimum (or withdraw everything)",
    ),
    "DatasetVouching.BondShort": (
        "the bond that arrived ({arrived}) is less than the dataset's bond {required}",
        "send more (a fee-on-transfer token keeps part): --bond AMOUNT",
    ),
    "DatasetVouching.DisputeClosed": (
        "the dispute window closed at {closedAt} (unix time)",
        "too late to prove a duplicate: the audit will pass",
    ),
    "DatasetVouching.DisputeStillOpen": (
        "the answer can be disputed until {closesAt} (unix time)",
        "settle after the dispute window",
    ),
    "DatasetVouching.InsufficientVouch": (
        "{requested} is more than the {vouched} vouched",
        "check `ailedger vouch status --dataset-id ID`",
    ),
    "DatasetVouching.LeavesMismatch": (
        "the leaves given are not the answer's",
        "pass the leaves of the answer's Answered event, in order",
    ),
    "DatasetVouching.NoTestSet": (
        "dataset {datasetId} declared no test set",
        "nothing to prove: duplicates count only against a declared test-set root",
    ),
    "DatasetVouching.NotDrawn": (
        "audit {auditId}'s sample is not drawn yet",
        "draw it once the seed block is mined: `ailedger vouch audit draw {auditId}`",
    ),
    "DatasetVouching.NotDuplicate": (
        "the sampled record is not the test-set record",
        "nothing to prove: the records differ",
    ),
    "DatasetVouching.NotOwner": (
        "{caller} is not the dataset's owner",
        "the registrant of the model version answers audits: use its key",
    ),
    "DatasetVouching.NotRegistrant": (
        "{caller} did not register model version {versionId}",
        "list a dataset with the key that registered the version",
    ),
    "DatasetVouching.NothingArrived": (
        "no {asset} arrived at DatasetVouching",
        "this token transfers nothing to the contract: use another asset",
    ),
    "DatasetVouching.NothingOwed": (
        "DatasetVouching owes {account} nothing in {asset}",
        "rewards come from passed audits, bonds back from failed ones: `ailedger vouch status`",
    ),
    "DatasetVouching.NothingVouched": (
        "nobody vouches for dataset {datasetId}",
        "there is no stake to audit",
    ),
    "DatasetVouching.RecordMismatch": (
        "the record is not sample {sample} of the answer",
        "pass the sampled entry (salt || record) the owner answered",
    ),
    "DatasetVouching.SeedNotMined": (
        "seed block {seedBlock} is not mined yet",
        "wait for the next blocks, then draw",
    ),
    "DatasetVouching.TooManyCurators": (
        "the dataset has its maximum of {max} curators",
        "nothing to do until a curator leaves",
    ),
    "DatasetVouching.UnknownAudit": (
        "there is no audit {auditId}",
        "check the id (`ailedger vouch status --audit ID`)",
    ),
    "DatasetVouching.UnknownDataset": (
        "dataset {datasetId} is not listed",
        "list it first: `ailedger vouch list`",
    ),
    "DatasetVouching.UnknownRoot": (
        "model version {versionId} has no dataset root number {rootIndex}",
        "count from 0 over the roots the version registered",
    ),
    "DatasetVouching.UnvouchNotDue": (
        "leaving is allowed from {at} (unix time; 0: not announced)",
        "announce it with `ailedger vouch request-unstake ID`, then wait a day",
    ),
    "DatasetVouching.WrongCount": (
        "{given} entries or proofs for {expected} samples",
        "answer every sample, in order",
    ),
    "DatasetVouching.WrongStatus": (
        "audit {auditId} is not in a state for this (status {status})",
        "`ailedger vouch status --audit {auditId}` shows where it is",
    ),
    "RoundBeforeTerms": (
        "round {epoch} was accepted before the feed's terms, which judge rounds from {fromEpoch}",
        "nothing to do: terms judge only rounds accepted after their declaration",
    ),
    # --- InferenceMarket ----------------------------------------------------------------
    "InferenceMarket.AlreadyDrawn": (
        "epoch {epoch} of job {jobId} already has its sample",
        "verify the sampled calls (`sampleCounters`) and settle the epoch",
    ),
    "InferenceMarket.BadEpochCalls": (
        (
            "an epoch of {size} receipts cannot hold {calls} of the job's calls ({remaining} left"
            " of its maximum)"
        ),
        (
            "commit the number of the job's receipts in the epoch, at least 1 and no more than "
            "the job has left"
        ),
    ),
    "InferenceMarket.BadProof": (
        "the inclusion proof does not verify against the epoch's committed root",
        (
            "send the RFC 9162 proof of the receipt's position in that epoch's tree (`ailedger "
            "market verify` checks it off-chain)"
        ),
    ),
    "InferenceMarket.BadSignature": (
        "a signature is not a valid 65-byte ECDSA signature with a low s",
        _SIGNATURE,
    ),
    "InferenceMarket.BadTerms": (
        (
            "the job's terms are out of range (zero stake, price or calls, a past deadline, k "
            "outside 1..1024, a pass threshold above 10000 bps, or price x calls overflowing)"
        ),
        "fix the terms and open the job again",
    ),
    "InferenceMarket.BadVerifiers": (
        (
            "the verifier set is empty, over 32, has a zero or repeated address, or the threshold"
            " is 0 or above its size"
        ),
        "name 1 to 32 distinct verifiers and a threshold between 1 and their number",
    ),
    "InferenceMarket.EpochNotFailed": (
        "epoch {epoch} of job {jobId} did not fail its verification (status {status})",
        (
            "a wrong output is disputed only in a failed epoch: settle the epoch with the "
            "verifiers' result first"
        ),
    ),
    "InferenceMarket.EpochNotIncreasing": (
        "epoch {epoch} is not after the job's last committed epoch {last}",
        "commit each epoch once, in increasing order",
    ),
    "InferenceMarket.EscrowShort": (
        "only {arrived} of the {expected} escrow arrived (a fee-on-transfer token takes a fee)",
        "pay with a token that transfers whole amounts",
    ),
    "InferenceMarket.NotAFault": (
        (
            "the receipt shows no fault: it names the job's model, the root holds it where it "
            "says, or its response is the one the verifiers expect"
        ),
        "nothing to dispute with this receipt",
    ),
    "InferenceMarket.NotConsumer": (
        "{caller} is not the job's consumer",
        "only the account that opened (and paid for) the job may do this",
    ),
    "InferenceMarket.NotDrawn": (
        "epoch {epoch} of job {jobId} has no sample yet",
        "wait for the block after the commitment, then `draw` it",
    ),
    "InferenceMarket.NotProvider": (
        "{caller} is not the job's provider",
        "accept and commit epochs with the provider's key (the address the consumer named; "
        "commitments also from its receipt signer)",
    ),
    "InferenceMarket.NotVerifier": (
        "{signer} is not a verifier of the job (or signed another result)",
        "collect signatures of the job's verifiers over this exact result",
    ),
    "InferenceMarket.NothingOwed": (
        "InferenceMarket owes {account} nothing in {asset}",
        "nothing to claim: payments are credited when epochs settle or the job finishes",
    ),
    "InferenceMarket.PastDeadline": (
        "the job's deadline ({deadline}, unix time) has passed",
        "no more commitments: finish the job after the settle window",
    ),
    "InferenceMarket.ReceiptForOtherJob": (
        "the receipt is for job {jobId}, not this one",
        "dispute a receipt of this job (receipts cannot be replayed across jobs)",
    ),
    "InferenceMarket.SeedNotMined": (
        "the sample's seed block {seedBlock} is not mined yet",
        "wait for the next block and draw again",
    ),
    "InferenceMarket.SettleWindowClosed": (
        "the settle window closed at {closes} (unix time)",
        "finish the job: unsettled epochs are paid, the rest refunded",
    ),
    "InferenceMarket.SettleWindowOpen": (
        "the job can be finished only after {closes} (unix time)",
        "wait for the deadline and the settle window",
    ),
    "InferenceMarket.SignersNotSorted": (
        "signature {index} is not from a signer above the previous one (duplicate or unsorted)",
        "send each verifier's signature once, ordered by signer address",
    ),
    "InferenceMarket.TooFewSignatures": (
        "{count} verifier signatures, the job needs {threshold}",
        "collect at least the threshold of distinct verifiers' signatures",
    ),
    "InferenceMarket.UnknownEpoch": (
        "job {jobId} has no committed epoch {epoch} (or it is not a skipped one)",
        "check the epoch number against the job's commitments",
    ),
    "InferenceMarket.UnknownJob": (
        "there is no job {jobId}",
        "check the job id (it is assigned by openJob)",
    ),
    "InferenceMarket.WrongEpochStatus": (
        "epoch {epoch} of job {jobId} is not awaiting settlement (status {status})",
        "nothing to do: an epoch is paid or failed once",
    ),
    "InferenceMarket.WrongJobStatus": (
        "job {jobId} is not in a state that allows this (status {status})",
        "check the job: it may not be accepted yet, or already finished, slashed or cancelled",
    ),
    "InferenceMarket.WrongSigner": (
        "the signature is by {signer}, not by {expected}",
        (
            "sign with the key the job names (the provider's receipt signer), for this chain and "
            "contract"
        ),
    ),
    "InferenceMarket.WrongTotal": (
        "a verification of {total} samples does not match the job's k = {k} (or passed exceeds it)",
        "report the outcome of exactly k sampled calls",
    ),
    "InferenceMarket.WrongValue": (
        "{sent} wei sent where {expected} was expected",
        "send exactly price x maxCalls with an ether job and no ether with a token job",
    ),
    "InferenceMarket.ZeroAddress": (
        "an address is the zero address",
        "pass a real account address",
    ),
    # --- FLRewards --------------------------------------------------------------------------
    "FLRewards.AlreadyClaimed": (
        "{client} already claimed its payout of round {round}",
        "nothing to do: a payout is claimed once",
    ),
    "FLRewards.AlreadyCorrected": (
        "round {round} of task {taskId} was already corrected by the verifiers",
        "nothing to do: a round is corrected once",
    ),
    "FLRewards.AlreadyJoined": ("{client} already joined the task", "nothing to do"),
    "FLRewards.ClaimsOpen": (
        "the task's payouts can still be claimed until {until} (a year after it finished)",
        "wait until then: only after the claim period is what nobody claimed swept to the sponsor",
    ),
    "FLRewards.Swept": (
        "task {taskId} was swept: what nobody claimed went back to its sponsor",
        "nothing to claim or sweep any more (claims close a year after the task finished)",
    ),
    "FLRewards.AlreadyLeft": ("{client} already left the task", "nothing to do"),
    "FLRewards.BadProof": (
        "the inclusion proof does not verify against the round's payout or penalty root",
        (
            "send the proof of the caller's own leaf (client, amount[, reason]) in that round's "
            "tree, as ailedger.markets.flrewards builds it"
        ),
    ),
    "FLRewards.BadSignature": (
        "a signature is not a valid 65-byte ECDSA signature with a low s",
        _SIGNATURE,
    ),
    "FLRewards.BadTerms": (
        (
            "the task's terms are out of range (a zero budget, stake, bond, rounds, held-out root"
            " or model, a past deadline, a window of 0 or over 30 days, or a zero data root)"
        ),
        "fix the terms and try again",
    ),
    "FLRewards.BadVerifiers": (
        (
            "the verifier set is empty, over 32, has a zero or repeated address, or the threshold"
            " is 0 or above its size"
        ),
        "name 1 to 32 distinct verifiers and a threshold between 1 and their number",
    ),
    "FLRewards.ChallengeWindowClosed": (
        "the round's challenge window closed at {closes} (unix time)",
        "nothing to do: the round stands (claims and penalties now apply)",
    ),
    "FLRewards.ChallengeWindowOpen": (
        "the round's challenge window is open until {closes} (unix time)",
        "wait for the window to close, then claim or slash",
    ),
    "FLRewards.EscrowShort": (
        "only {arrived} of the {expected} pool arrived (a fee-on-transfer token takes a fee)",
        "fund the pool with a token that transfers whole amounts",
    ),
    "FLRewards.HeldoutRootMismatch": (
        "the round was scored against held-out root {heldoutRoot}, not the registered {registered}",
        "score against the held-out set registered when the task was created",
    ),
    "FLRewards.NotAggregator": (
        "{caller} is not the task's aggregator",
        "accept with the aggregator account the sponsor named",
    ),
    "FLRewards.NotChallenger": (
        "the correction is for challenger {challenger}, not {caller}",
        "ask the verifiers for a correction naming your own address",
    ),
    "FLRewards.NotClient": (
        "{caller} has not joined the task",
        "join the task first (`join` locks the stake and commits the data root)",
    ),
    "FLRewards.NotFinishable": (
        "the task can be finished only after {at} (unix time)",
        "wait until every round's challenge and slashing windows have passed",
    ),
    "FLRewards.NotSponsor": (
        "{caller} is not the task's sponsor",
        "only the sponsor may cancel, and only before the aggregator accepts",
    ),
    "FLRewards.NotVerifier": (
        "{signer} is not a verifier of the task (or signed another correction)",
        "collect signatures of the task's verifiers over this exact correction",
    ),
    "FLRewards.NothingLocked": (
        "the task locks none of {client}'s stake any more",
        "nothing to slash: its stake for this task is already slashed or released",
    ),
    "FLRewards.NothingRefundable": (
        "FLRewards owes {account} no refund in {asset}",
        "nothing to withdraw: a task's unreserved pool is credited to its sponsor at `finish`",
    ),
    "FLRewards.NothingToCorrect": (
        "the correction changes nothing in the posted round",
        "nothing to challenge: the verifiers agree with the aggregator",
    ),
    "FLRewards.OverBudget": (
        "a round total of {total} exceeds the round budget {budget}",
        "pay at most the round budget (split_budget never exceeds it)",
    ),
    "FLRewards.PastDeadline": (
        "the task's deadline ({deadline}, unix time) has passed",
        "no more rounds or clients: finish the task after its windows",
    ),
    "FLRewards.RoundExhausted": (
        "the round has paid {claimed} of its total {total}; {amount} more does not fit",
        "nothing to do: the aggregator's tree holds more than the total it posted",
    ),
    "FLRewards.RoundOutOfOrder": (
        "round {round} is not the task's next round ({expected}) or is beyond its last",
        "post each round once, in order, up to the task's number of rounds",
    ),
    "FLRewards.SignersNotSorted": (
        "signature {index} is not from a signer above the previous one (duplicate or unsorted)",
        "send each verifier's signature once, ordered by signer address",
    ),
    "FLRewards.TooFewSignatures": (
        "{count} verifier signatures, the task needs {threshold}",
        "collect at least the threshold of distinct verifiers' signatures",
    ),
    "FLRewards.TransferFailed": (
        "sending {amount} to {to} failed",
        "claim from an account that accepts the payment",
    ),
    "FLRewards.UnknownRound": (
        "round {round} of task {taskId} was not posted",
        "check the round number",
    ),
    "FLRewards.UnknownTask": (
        "there is no task {taskId}",
        "check the task id (it is assigned by createTask)",
    ),
    "FLRewards.WrongBaseModel": (
        "the round starts from model {modelBefore}, not the task's current model {current}",
        "train each round from the global model the previous round produced",
    ),
    "FLRewards.WrongRecord": (
        "the correction is for record {recordDigest}, not the round's posted record",
        "have the verifiers sign a correction of the record that was posted",
    ),
    "FLRewards.WrongSigner": (
        "the signature is by {signer}, not by {expected}",
        "sign with the key the aggregator named, for this task, chain and contract",
    ),
    "FLRewards.WrongTaskStatus": (
        "task {taskId} is not in a state that allows this (status {status})",
        "check the task: it may not be accepted yet, or already halted, finished or cancelled",
    ),
    "FLRewards.WrongValue": (
        "{sent} wei sent where {expected} was expected",
        "send exactly roundBudget x rounds with an ether pool and no ether with a token pool",
    ),
}
#: Names whose keccak256 hash may appear as a role or environment id in an error.
_KNOWN_NAMES = (
    "admin",
    "auditor",
    "deployer",
    "oracle",
    "qa",
    "trainer",
    "witness",
    "prod",
    "production",
    "staging",
    "dev",
    "test",
    "security",
    "security-review",
)
_BY_HASH = {keccak(text=name): name for name in _KNOWN_NAMES}


class _Args(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "?"


def _show(value: Any) -> str:
    if isinstance(value, bytes):
        name = _BY_HASH.get(value)
        return f"{name!r}" if name is not None else "0x" + value.hex()
    if isinstance(value, tuple | list):
        return "(" + ", ".join(_show(v) for v in value) + ")"
    return str(value)


def _fields(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


def explain(contract: str, name: str, args: Mapping[str, Any]) -> tuple[str, str] | None:
    """``(message, hint)`` for custom error ``name`` raised through ``contract``, or None."""
    # The contract's own entry first, then the shared one, then another contract's (an error
    # that bubbled up from a called contract): of those whose fields the arguments all
    # have, the one using most of them.
    others = [key for key in HINTS if key.endswith("." + name)]
    candidates = [f"{contract}.{name}", name, *others]
    entries = [HINTS[key] for key in candidates if key in HINTS]
    if not entries:
        return None
    fitting = [e for e in entries if _fields(e[0]) <= set(args)] or entries
    entry = max(fitting, key=lambda e: len(_fields(e[0])))  # the most specific; ties: first
    values = _Args({k: _show(v) for k, v in args.items()})
    if "role" in values and values["role"].startswith("'"):
        values["role"] = values["role"].strip("'")  # a known role is named plainly in hints
    message, hint = entry
    return message.format_map(values), hint.format_map(values)
