"""Oracles: field data, the models that score it, and the observations oracles sign.

- :mod:`ailedger.oracle.sensors`: synthetic weather-station and camera-event batches,
  fingerprinted as Merkle trees.
- :mod:`ailedger.oracle.scoring`: the drought-risk model (trained, fingerprint-checked
  before loading) and the incident counter.
- :mod:`ailedger.oracle.coldchain`: cold-chain sensor batches (CSV) and the IsolationForest
  that flags them (fingerprint-checked before loading), for ``demo consortium``.
- :mod:`ailedger.oracle.observation`: the observation record, its in-toto predicate and
  median aggregation.
- :mod:`ailedger.oracle.node` and :mod:`ailedger.oracle.round`: the oracle node and the round
  its leader runs (every observation signed by its observer, on-chain too).
- :mod:`ailedger.oracle.challenge`: a lying observation challenged from the log alone.
"""

from __future__ import annotations

__all__: list[str] = []
