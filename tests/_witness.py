"""``ailedger witness serve`` as a real child process, and hand-built logs to feed it.

:class:`WitnessProcess` starts a witness over its own workspace (key ``witness``) trusting the
logs given, reads its JSON ready line (``url``, ``name``, ``vkey``) and stops it by its PID.
:func:`add_checkpoint` posts one C2SP tlog-witness request.
"""

from __future__ import annotations

from pathlib import Path

from _cli import PASSWORD
from _service import Service
from _workflow_util import fast_keystore
from ailedger.identity.keys import KeyType
from ailedger.log import AnyNoteKey, Checkpoint, SignedNote, TransparencyLog, vkey
from ailedger.service.witness import format_add_checkpoint
from ailedger.workspace import Workspace


def witness_workspace(root: Path, keytype: KeyType = "ed25519") -> Workspace:
    """A workspace at ``root`` holding the witness key ``witness``."""
    root.mkdir(parents=True, exist_ok=True)
    ws = Workspace.init(root, origin=f"example.com/{root.name}")
    fast_keystore(ws).create("witness", PASSWORD, keytype=keytype)
    return ws


class WitnessProcess(Service):
    """One ``ailedger witness serve`` child process (state in ``root/state``)."""

    command = ("witness", "serve")

    def __init__(self, root: Path, logs: list[AnyNoteKey], *args: str) -> None:
        log_args = [a for key in logs for a in ("--log", f"{key.name}={vkey(key)}")]
        super().__init__(root, "--key", "witness", "--state", str(root / "state"), *log_args, *args)

    @property
    def vkey(self) -> str:
        return str(self.ready["vkey"])

    @property
    def spec(self) -> str:
        """``URL=VKEY``, as ``ailedger serve --witness`` takes it."""
        return f"{self.url}={self.vkey}"


def add_checkpoint(
    witness: Service, old: int, proof: tuple[bytes, ...] | list[bytes], note: SignedNote
) -> tuple[int, dict[str, str], bytes]:
    """POST /add-checkpoint: (status, lower-cased headers, body)."""
    return witness.request("POST", "/add-checkpoint", format_add_checkpoint(old, proof, note))


def sign(log: TransparencyLog, key: AnyNoteKey, size: int | None = None) -> SignedNote:
    """A checkpoint of ``log`` (at ``size``, default its size) signed by ``key``, not stored:
    any key can sign any tree here, as a misbehaving log would."""
    n = log.size() if size is None else size
    return SignedNote.sign(Checkpoint(log.origin, n, log.root(n)).body(), [key])


def request_from(log: TransparencyLog, old: int, key: AnyNoteKey) -> tuple[bytes, SignedNote]:
    """The add-checkpoint body for a checkpoint of ``log`` (signed by ``key``) with the
    consistency proof from ``old``."""
    note = sign(log, key)
    proof = log.consistency_proof(old, log.size()).hashes if old else ()
    return format_add_checkpoint(old, proof, note), note
