"""Runnable demonstrations: the whole path on the embedded chain, the oracle settlements, and
a consortium over the log service.

Only the CLI imports this package (``ailedger demo``, ``ailedger demo crop-insurance``,
``ailedger demo safety-bonus``, ``ailedger demo consortium``, ``ailedger demo
imaging-dispute``); :mod:`.samples` holds the small artifacts they use. :mod:`.consortium`
runs ``ailedger serve`` and ``witness serve`` as child processes (:mod:`._children`) and takes
its client of the service from the CLI (the service package is this one's sibling, not below
it); :mod:`.imaging` runs ``ailedger market serve`` the same way.
"""

from __future__ import annotations

__all__: list[str] = []
