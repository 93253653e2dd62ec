"""The labeling workflow of one party: the secrets it keeps between steps and what it reads
back from the chain.

A requester keeps its gold set (items, labels, salts) from posting a task until it reveals it;
a labeler keeps its labels and salt from committing until it reveals. Both are JSON files in
the workspace (``labeling/``, private: mode 0600), named by chain, market and task. Revealed
labels and gold records are public once revealed: they are read from the contract's events,
so anyone can score a labeler or check a settlement.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ailedger.chain.client import Chain
from ailedger.chain.labeling import LabelingMarket
from ailedger.errors import InvalidInput, NotFound
from ailedger.identity.keys import checksum_address
from ailedger.markets.labeling import ABSTAIN, GoldSet

__all__ = [
    "LABELING_DIR",
    "Outcome",
    "TaskFiles",
    "gold_revealed",
    "labels_from_json",
    "new_salt",
    "outcomes",
    "revealed_labels",
]

LABELING_DIR = "labeling"


def new_salt() -> bytes:
    return secrets.token_bytes(32)


def labels_from_json(doc: Any, item_count: int) -> bytes:
    """A JSON list of labels (0..254; null abstains), one per batch item, as label bytes."""
    if not isinstance(doc, list) or len(doc) != item_count:
        raise InvalidInput(f"the labels must be a JSON list of {item_count} labels")
    out = bytearray()
    for i, v in enumerate(doc):
        if v is None:
            out.append(ABSTAIN)
        elif isinstance(v, int) and not isinstance(v, bool) and 0 <= v < ABSTAIN:
            out.append(v)
        else:
            raise InvalidInput(f"label {i} is {v!r}: give an integer 0..254 or null")
    return bytes(out)


def _hex(value: Any) -> bytes:
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    return bytes.fromhex(str(value).removeprefix("0x"))


@dataclass(frozen=True)
class TaskFiles:
    """Where a workspace keeps its secrets of one task."""

    directory: Path
    chain_id: int
    market: str
    task: int

    @classmethod
    def of(cls, workspace_path: Path, chain_id: int, market: str, task: int) -> TaskFiles:
        return cls(workspace_path / LABELING_DIR, chain_id, checksum_address(market), task)

    def _path(self, suffix: str) -> Path:
        return self.directory / f"{self.chain_id}-{self.market.lower()}-{self.task}.{suffix}"

    def _write(self, path: Path, doc: dict[str, Any]) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh, indent=2, sort_keys=True)
            fh.write("\n")
        tmp.replace(path)

    def _read(self, path: Path, what: str) -> dict[str, Any]:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise NotFound(f"no {what} for task {self.task} in this workspace ({path})") from None
        if not isinstance(doc, dict):
            raise InvalidInput(f"{path} is not a {what} file")
        return doc

    def save_gold(self, gold: GoldSet) -> Path:
        path = self._path("gold.json")
        self._write(
            path,
            {
                "items": [list(i) for i in gold.items],
                "salts": [s.hex() for s in gold.salts],
            },
        )
        return path

    def load_gold(self) -> GoldSet:
        doc = self._read(self._path("gold.json"), "gold set")
        return GoldSet(
            tuple((int(a), int(b)) for a, b in doc["items"]),
            tuple(bytes.fromhex(s) for s in doc["salts"]),
        )

    def save_commit(self, labeler: str, labels: bytes, salt: bytes) -> Path:
        path = self._path(f"{checksum_address(labeler).lower()}.labels.json")
        self._write(path, {"labels": labels.hex(), "salt": salt.hex()})
        return path

    def load_commit(self, labeler: str) -> tuple[bytes, bytes]:
        path = self._path(f"{checksum_address(labeler).lower()}.labels.json")
        doc = self._read(path, "commitment of " + labeler)
        return bytes.fromhex(doc["labels"]), bytes.fromhex(doc["salt"])


def revealed_labels(chain: Chain, market: LabelingMarket, task: int) -> dict[str, bytes]:
    """Every labeler's revealed labels in ``task``, from the Revealed events."""
    out: dict[str, bytes] = {}
    for e in chain.events(market.contract, "Revealed"):
        if int(e.args["taskId"]) == task:
            out[checksum_address(str(e.args["labeler"]))] = _hex(e.args["labels"])
    return out


def gold_revealed(chain: Chain, market: LabelingMarket, task: int) -> bytes | None:
    """The revealed gold records of ``task`` (from its GoldRevealed event), or None."""
    for e in chain.events(market.contract, "GoldRevealed"):
        if int(e.args["taskId"]) == task:
            return _hex(e.args["records"])
    return None


@dataclass(frozen=True)
class Outcome:
    """One labeler's settlement, read from the settle transaction's events."""

    labeler: str
    outcome: str  # "paid", "low-accuracy" or "late"
    amount: int  # the reward, or the stake slashed
    reason_code: int = 0
    fault_id: str = ""
    evidence_hash: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def outcomes(chain: Chain, market: LabelingMarket, task: int) -> list[Outcome]:
    """Who was paid and who was slashed (and why) in ``task``, from the chain's events."""
    out: list[Outcome] = []
    for e in chain.events(market.contract, "LabelerPaid"):
        if int(e.args["taskId"]) == task:
            out.append(
                Outcome(checksum_address(str(e.args["labeler"])), "paid", int(e.args["reward"]))
            )
    for e in chain.events(market.contract, "LabelerSlashed"):
        if int(e.args["taskId"]) == task:
            code = int(e.args["reasonCode"])
            out.append(
                Outcome(
                    checksum_address(str(e.args["labeler"])),
                    "late" if code == 2 else "low-accuracy",
                    int(e.args["amount"]),
                    code,
                    "0x" + _hex(e.args["faultId"]).hex(),
                    "0x" + _hex(e.args["evidenceHash"]).hex(),
                )
            )
    return out
