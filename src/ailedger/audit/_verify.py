"""The verification an audit report shows for each log entry.

Four independent checks, each with its own status, so a reader sees what was established and
what was not:

- ``signature``: the DSSE envelope verifies against the workspace's known keys
  (``verified``), or it does not (``invalid``: altered, or signed by a key this workspace does
  not know).
- ``inclusion``: the entry's leaf hash, recomputed from its stored envelope bytes, is in the
  tree whose root the latest checkpoint signs (``verified``); ``pending`` when no signed
  checkpoint covers the entry yet; ``failed`` otherwise. All leaves below the checkpoint size
  are checked at once by recomputing the RFC 9162 root, which implies every inclusion proof.
- ``anchor``: the smallest anchor recorded in the workspace's anchor book whose size covers
  the entry and whose root matches the log's tree of that size; with a ``confirm`` check
  (:func:`ailedger.audit.on_chain`) the anchor must also be on the chain with that size and
  root, else it is dropped and named in the problems.
- ``artifact`` (only with ``check_artifacts``): the file on disk re-hashed to the registered
  digest (``match``, ``mismatch``, ``missing``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ailedger.chain.anchoring import AnchorRecord
from ailedger.errors import AiledgerError
from ailedger.log import Entry
from ailedger.log.checkpoint import AnyNoteKey, Checkpoint, SignedNote
from ailedger.merkle import leaf_hash, root_from_leaf_hashes

__all__ = ["AnchorCheck", "LogCheck", "Verification", "check_log"]

#: Whether an anchor record is on the chain as recorded (size and root).
AnchorCheck = Callable[[AnchorRecord], bool]


@dataclass(frozen=True)
class Verification:
    """The status of one item; see the module docstring for the values."""

    signature: str
    signers: tuple[str, ...]
    inclusion: str
    anchor: dict[str, Any] | None = None
    artifact: str | None = None

    @property
    def verified(self) -> bool:
        return (
            self.signature == "verified"
            and self.inclusion == "verified"
            and self.artifact in (None, "match")
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "signature": self.signature,
            "signers": list(self.signers),
            "inclusion": self.inclusion,
            "anchor": self.anchor,
            "artifact": self.artifact,
        }


@dataclass(frozen=True)
class LogCheck:
    """What was established about the log as a whole."""

    size: int
    checkpoint_size: int  # 0 when no checkpoint is signed (or it failed)
    checkpoint_status: str  # verified | missing | failed
    checkpoint_note: str
    root_ok: bool
    leaf_ok: frozenset[int]  # entries whose stored leaf hash matches their envelope
    anchors: tuple[AnchorRecord, ...]  # those whose root matches the log (and the chain)
    anchors_on_chain: bool  # whether ``anchors`` were confirmed on the chain
    problems: tuple[str, ...]

    def inclusion(self, index: int) -> str:
        if index not in self.leaf_ok:
            return "failed"
        if index >= self.checkpoint_size:
            return "failed" if self.checkpoint_status == "failed" else "pending"
        return "verified" if self.root_ok else "failed"

    def anchor(self, index: int) -> dict[str, Any] | None:
        for record in self.anchors:
            if index < record.size:
                return {
                    "chain_id": record.chain_id,
                    "contract": record.contract,
                    "index": record.index,
                    "size": record.size,
                    "transaction": record.tx_hash,
                    "block": record.block,
                    "checked": "root matches the log and the chain"
                    if self.anchors_on_chain
                    else "root matches the log; chain not queried",
                }
        return None

    def to_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "checkpoint": {
                "status": self.checkpoint_status,
                "size": self.checkpoint_size,
                "root_matches": self.root_ok,
                "note": self.checkpoint_note or None,
            },
            "anchors": [r.to_dict() for r in self.anchors],
            "anchors_confirmed_on_chain": self.anchors_on_chain,
            "problems": list(self.problems),
        }


def check_log(
    entries: Sequence[Entry],
    note: SignedNote | None,
    log_key: AnyNoteKey | None,
    anchors: Sequence[AnchorRecord],
    confirm: AnchorCheck | None = None,
) -> LogCheck:
    """Check leaf hashes, the latest checkpoint and the recorded anchors against ``entries``
    (every entry of the log, in index order), and each anchor with ``confirm`` if given."""
    problems: list[str] = []
    leaves = [e.leaf_hash for e in entries]
    leaf_ok = frozenset(e.index for e in entries if leaf_hash(e.envelope) == e.leaf_hash)
    if len(leaf_ok) != len(entries):
        bad = sorted({e.index for e in entries} - leaf_ok)
        problems.append(f"{len(bad)} entries do not hash to their leaf: {bad[:10]}")
    status, size, text, root_ok = "missing", 0, "", False
    if note is not None:
        text = note.format()
        try:
            if log_key is None:
                raise AiledgerError("the log has no recorded log key")
            note.verify_one(log_key)
            cp = Checkpoint.parse(note.text)
            size = cp.size
            root_ok = size <= len(leaves) and root_from_leaf_hashes(leaves[:size]) == cp.root
            status = "verified" if root_ok else "failed"
            if not root_ok:
                problems.append(f"the log's tree of size {size} does not match the checkpoint")
        except AiledgerError as exc:
            status, size = "failed", 0
            problems.append(f"the latest checkpoint does not verify: {exc}")
    good: list[AnchorRecord] = []
    for record in sorted(anchors, key=lambda r: r.size):
        if record.size <= len(leaves) and root_from_leaf_hashes(leaves[: record.size]) == (
            record.root
        ):
            if confirm is None or confirm(record):
                good.append(record)
            else:
                problems.append(
                    f"anchor {record.index} (size {record.size}) is not on chain "
                    f"{record.chain_id} at {record.contract} as recorded"
                )
        else:
            problems.append(f"anchor {record.index} (size {record.size}) does not match the log")
    return LogCheck(
        len(entries),
        size,
        status,
        text,
        root_ok,
        leaf_ok,
        tuple(good),
        confirm is not None,
        tuple(problems),
    )
