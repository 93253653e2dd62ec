"""Bring records from other tools into the registry.

- :mod:`ailedger.integrations.dvc`: datasets tracked by DVC (a ``.dvc`` file and its cache),
  verified against DVC's md5 before they are fingerprinted.
- :mod:`ailedger.integrations.mlflow`: every version of an MLflow registered model, with its
  run parameters, code revision and logged metrics (needs the ``mlflow`` extra).

Both register through :class:`ailedger.registry.Registry`; they only find and check the
artifacts and translate the other tool's metadata.
"""

from __future__ import annotations

__all__: list[str] = []
