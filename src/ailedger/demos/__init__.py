"""Runnable demonstrations: the whole path on the embedded chain, and the oracle settlements.

Only the CLI imports this package (``ailedger demo``, ``ailedger demo crop-insurance``,
``ailedger demo safety-bonus``); :mod:`.samples` holds the small artifacts they use.
"""

from __future__ import annotations

__all__: list[str] = []
