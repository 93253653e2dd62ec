"""The record checks a vouched dataset declares, evaluated exactly as
``contracts/DatasetVouching.sol`` evaluates them on-chain (``_evaluate``), so an owner or a
challenger knows the outcome before sending anything.

A record is a leaf entry without its salt (the encoded bytes of
:mod:`ailedger.fingerprint`, e.g. a CSV row as the RFC 8785 JSON array of its fields). Checks,
in order, each failure giving its reason code:

1. ``REASON_LENGTH``: ``min_length <= len(record) <= max_length``;
2. ``REASON_PREFIX``: the record starts with ``prefix`` (a schema's opening);
3. ``REASON_LABEL`` (when ``label_suffix`` is set): the record ends with ``label_suffix``,
   right before it 1 to 18 ASCII digits, right before those ``label_prefix``; the digits read
   as a decimal number lie in ``label_min .. label_max``;
4. ``REASON_DUPLICATE`` (when ``test_root`` is set) is not a property of the record alone: a
   challenger proves the record is a member of the test-set tree.

``REASON_NO_ANSWER`` is the owner's missing answer.
"""

from __future__ import annotations

from ailedger.chain.vouching import RecordChecks

__all__ = [
    "MAX_LABEL_DIGITS",
    "REASONS",
    "REASON_DUPLICATE",
    "REASON_LABEL",
    "REASON_LENGTH",
    "REASON_NO_ANSWER",
    "REASON_PREFIX",
    "RecordChecks",
    "evaluate_record",
]

REASON_LENGTH = 1
REASON_PREFIX = 2
REASON_LABEL = 3
REASON_DUPLICATE = 4
REASON_NO_ANSWER = 5
#: Reason code -> a short name (the CLI prints it).
REASONS = {
    REASON_LENGTH: "length",
    REASON_PREFIX: "prefix",
    REASON_LABEL: "label",
    REASON_DUPLICATE: "duplicate-of-test-record",
    REASON_NO_ANSWER: "no-answer",
}
MAX_LABEL_DIGITS = 18


def evaluate_record(record: bytes, checks: RecordChecks) -> int:
    """0 when ``record`` passes the declared checks, else the first failing reason code."""
    n = len(record)
    if n < checks.min_length or n > checks.max_length:
        return REASON_LENGTH
    if not record.startswith(checks.prefix):
        return REASON_PREFIX
    suffix = checks.label_suffix
    if not suffix:
        return 0
    if not record.endswith(suffix):
        return REASON_LABEL
    end = n - len(suffix)
    start = end
    while start > 0 and end - start <= MAX_LABEL_DIGITS and 0x30 <= record[start - 1] <= 0x39:
        start -= 1
    if start == end or end - start > MAX_LABEL_DIGITS:
        return REASON_LABEL
    lp = checks.label_prefix
    if start < len(lp) or record[start - len(lp) : start] != lp:
        return REASON_LABEL
    label = int(record[start:end])
    if not checks.label_min <= label <= checks.label_max:
        return REASON_LABEL
    return 0
