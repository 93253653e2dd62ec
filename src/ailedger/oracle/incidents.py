"""The incident oracle: a node whose "model" is a fingerprinted counting rule.

The rule is a directory holding one ``rule.json`` (the scoring function's name, the camera
confidence threshold, the de-duplication window), fingerprinted like any model; the node
verifies that fingerprint before every score, so a changed rule is refused, not used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ailedger.errors import InvalidInput
from ailedger.fingerprint.model import fingerprint_model
from ailedger.identity.keys import Secp256k1Signer
from ailedger.oracle.node import OracleNode
from ailedger.oracle.scoring import ModelMismatch, count_incidents

__all__ = ["RULE_FILE", "IncidentNode", "write_rule"]

RULE_FILE = "rule.json"


def write_rule(directory: Path, threshold: float = 0.8, dedupe_seconds: int = 60) -> Path:
    """The incident rule as a model directory (one ``rule.json``) to fingerprint."""
    directory.mkdir(parents=True, exist_ok=True)
    rule = {
        "rule": "ailedger.oracle.scoring.count_incidents",
        "threshold": threshold,
        "dedupe_seconds": dedupe_seconds,
    }
    (directory / RULE_FILE).write_text(json.dumps(rule, indent=2, sort_keys=True) + "\n")
    return directory


class IncidentNode(OracleNode):
    """An oracle node whose model is the incident rule in ``model_dir/rule.json``."""

    def __init__(
        self,
        feed: str,
        signer: Secp256k1Signer,
        model_dir: Path,
        model_digest: str,
        *,
        creator: str,
        lie_by: int = 0,
        threshold: float = 0.8,
    ) -> None:
        super().__init__(feed, signer, model_dir, model_digest, creator=creator, lie_by=lie_by)
        self.threshold = threshold

    def _rule(self) -> dict[str, Any]:
        fp = fingerprint_model(self.model_dir, tensors=False)
        if fp.subject_digest.hex() != self.model_digest:
            raise ModelMismatch(f"{self.model_dir}: the rule is not sha256:{self.model_digest}")
        rule: dict[str, Any] = json.loads((self.model_dir / RULE_FILE).read_text())
        if rule.get("threshold") != self.threshold:
            raise InvalidInput(f"the rule's threshold is not {self.threshold}")
        return rule

    def check_model(self) -> None:
        self._rule()

    def score(self, batch: Path) -> int:
        rule = self._rule()  # fingerprint first
        return count_incidents(batch, self.threshold, dedupe_seconds=rule["dedupe_seconds"])
