"""Per-test example caps that follow the hypothesis profile (see tests/README.md).

Expensive property tests and state machines cap ``max_examples`` below the profile's count
(12 sequences of a contract state machine are what a CI run can afford). A cap written as
``examples(12)`` keeps 12 under ``dev`` and ``ci``, and under ``slow`` (or any profile whose
``max_examples`` is above ``dev``'s) becomes that profile's count, 1,000: every test and
machine then runs >= 1,000 examples (sequences), as issue 10 asks of the state machines.
``AILEDGER_STATEFUL_EXAMPLES=N`` sets the count of every state machine in any profile.

The profile in force is read when the test module is imported (after ``tests/conftest.py``
and ``--hypothesis-profile`` have loaded one), from ``settings.default``.
"""

from __future__ import annotations

import os

from hypothesis import settings

__all__ = ["SLOW_MINIMUM", "examples", "stateful_examples"]

#: What ``slow`` guarantees every capped test at least (its own count is higher still).
SLOW_MINIMUM = 200


def _profile_examples() -> int | None:
    """The active profile's ``max_examples`` when it asks for more than ``dev``, else None."""
    active = settings.default.max_examples
    return active if active > settings.get_profile("dev").max_examples else None


def examples(cap: int) -> int:
    """``cap`` in the dev and ci profiles; at least the active profile's count in ``slow``."""
    wanted = _profile_examples()
    return cap if wanted is None else max(cap, wanted, SLOW_MINIMUM)


def stateful_examples(cap: int) -> int:
    """Sequences of a state machine: :func:`examples`, or ``$AILEDGER_STATEFUL_EXAMPLES``."""
    override = os.environ.get("AILEDGER_STATEFUL_EXAMPLES")
    return int(override) if override else examples(cap)
