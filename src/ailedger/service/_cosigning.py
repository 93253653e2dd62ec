"""The log side of c2sp.org/tlog-witness: gather k of n cosignatures before publishing.

For each configured witness (its URL and verifier key) :class:`WitnessClient` remembers the
size of the last checkpoint the witness cosigned for us (unknown at start: it sends ``old 0``
and learns the size from the 409 ``text/x.tlog.size`` answer, as the spec suggests). It sends
the checkpoint with the consistency proof from that size; on a 409 with a size it retries
from that size (twice at most). A cosignature counts only if it verifies under the configured
verifier key; anything else the witness says is ignored.

:class:`Cosigning` asks every witness at once (each request bounded by a timeout) and returns
the valid cosignatures; the :class:`~ailedger.service._sequencer.Sequencer` publishes a
checkpoint only with at least ``threshold`` of them.
"""

from __future__ import annotations

import asyncio
import http.client
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from ailedger.errors import AiledgerError, InvalidInput
from ailedger.log import AnyNoteKey, Checkpoint, SignedNote, parse_vkey
from ailedger.log.checkpoint import Ed25519Cosigner, NoteSignature, Secp256k1Cosigner
from ailedger.service.witness import MAX_REQUEST_BYTES, TLOG_SIZE_MEDIA_TYPE, format_add_checkpoint

__all__ = [
    "Cosigning",
    "WitnessClient",
    "WitnessConfig",
    "WitnessFailed",
    "parse_witness_option",
]

_log = logging.getLogger("ailedger.service")

#: Default bound on one add-checkpoint round trip.
DEFAULT_TIMEOUT_S = 10.0
_RETRIES_ON_CONFLICT = 2


class WitnessFailed(Exception):
    """A witness did not cosign (refusal, bad answer, network failure)."""


@dataclass(frozen=True)
class WitnessConfig:
    """A witness: where it listens and the key its cosignatures must verify under."""

    url: str
    key: AnyNoteKey


def parse_witness_option(value: str) -> WitnessConfig:
    """``URL=VKEY`` (``--witness`` or an item of ``[serve] witnesses``)."""
    url, sep, text = value.partition("=")
    parts = urlsplit(url)
    if not sep or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"witness {value[:80]!r}: expected URL=VKEY with an http(s) URL")
    key = parse_vkey(text)
    if not isinstance(key, Ed25519Cosigner | Secp256k1Cosigner):
        raise InvalidInput(
            f"witness {value[:80]!r}: {key.name} is not a cosignature key "
            "(the vkey `ailedger witness serve` prints)"
        )
    return WitnessConfig(url.rstrip("/"), key)


class WitnessClient:
    """One witness; its methods run in a worker thread (one request at a time)."""

    def __init__(self, config: WitnessConfig, timeout: float = DEFAULT_TIMEOUT_S) -> None:
        self.config = config
        self.timeout = timeout
        #: The size of the last checkpoint the witness cosigned, as far as we know.
        self.size = 0
        #: The last failure reported (a retry that fails the same way is not logged again).
        self.last_error: str | None = None
        self._conn: http.client.HTTPConnection | None = None

    def post(self, body: bytes) -> tuple[int, str, bytes]:
        """POST /add-checkpoint on a kept-alive connection: (status, content type, body)."""
        parts = urlsplit(self.config.url)
        for attempt in (1, 2):  # a kept-alive connection the witness closed: reconnect once
            if self._conn is None:
                cls = (
                    http.client.HTTPSConnection
                    if parts.scheme == "https"
                    else http.client.HTTPConnection
                )
                self._conn = cls(parts.hostname or "", parts.port, timeout=self.timeout)
            try:
                self._conn.request(
                    "POST",
                    parts.path + "/add-checkpoint",
                    body=body,
                    headers={"Content-Type": "text/plain"},
                )
                response = self._conn.getresponse()
                data = response.read(MAX_REQUEST_BYTES + 1)
                ctype = response.getheader("Content-Type", "")
                if response.will_close:
                    self.close()
                return response.status, ctype, data
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                if attempt == 2 or not isinstance(
                    exc, http.client.RemoteDisconnected | ConnectionResetError | BrokenPipeError
                ):
                    raise WitnessFailed(f"{self.config.url}: {exc}") from None
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def cosignature(self, note: SignedNote, answer: bytes) -> NoteSignature:
        """The witness's cosignature in a 200 answer, verified under the configured key."""
        try:
            lines = answer.decode()
            cosigned = SignedNote.parse(note.text + "\n" + lines)
            return SignedNote(note.text, cosigned.signatures).verify_one(self.config.key)
        except (UnicodeDecodeError, AiledgerError) as exc:
            raise WitnessFailed(f"{self.config.url}: no valid cosignature: {exc}") from None


class Cosigning:
    """Gathers cosignatures for a checkpoint from every configured witness at once."""

    def __init__(
        self,
        witnesses: Sequence[WitnessConfig],
        threshold: int,
        timeout: float = DEFAULT_TIMEOUT_S,
    ) -> None:
        if not 1 <= threshold <= len(witnesses):
            raise InvalidInput(
                f"witness threshold {threshold} is not within 1..{len(witnesses)} "
                "(the number of witnesses)"
            )
        self.threshold = threshold
        self.clients = [WitnessClient(w, timeout) for w in witnesses]
        self._pool = ThreadPoolExecutor(len(witnesses), thread_name_prefix="ailedger-witness")

    @property
    def keys(self) -> list[AnyNoteKey]:
        return [c.config.key for c in self.clients]

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        for c in self.clients:
            c.close()

    def count(self, note: SignedNote) -> int:
        """How many configured witnesses' cosignatures on ``note`` verify."""
        n = 0
        for key in self.keys:
            try:
                note.verify_one(key)
            except AiledgerError:
                continue
            n += 1
        return n

    async def gather(
        self, note: SignedNote, proof: Callable[[int, int], Awaitable[Sequence[bytes]]]
    ) -> list[tuple[NoteSignature, AnyNoteKey]]:
        """The valid cosignatures of ``note`` (``proof(old, new)`` gives consistency proofs)."""
        results = await asyncio.gather(*(self._one(c, note, proof) for c in self.clients))
        return [r for r in results if r is not None]

    async def _one(
        self,
        client: WitnessClient,
        note: SignedNote,
        proof: Callable[[int, int], Awaitable[Sequence[bytes]]],
    ) -> tuple[NoteSignature, AnyNoteKey] | None:
        loop = asyncio.get_running_loop()
        size = Checkpoint.parse(note.text).size
        try:
            for _ in range(1 + _RETRIES_ON_CONFLICT):
                old = client.size
                if old > size:
                    raise WitnessFailed(
                        f"{client.config.url} has cosigned size {old}, above {size}: "
                        "it saw a checkpoint this log never published (or the log rolled back)"
                    )
                hashes = await proof(old, size) if old else []
                body = format_add_checkpoint(old, hashes, note)
                status, ctype, data = await loop.run_in_executor(self._pool, client.post, body)
                if status == 200:
                    sig = client.cosignature(note, data)
                    client.size = size
                    client.last_error = None
                    return sig, client.config.key
                if status == 409 and ctype.startswith(TLOG_SIZE_MEDIA_TYPE):
                    text = data.decode("ascii", "replace").strip()
                    if not text.isdigit() or len(text) > 20:
                        raise WitnessFailed(f"{client.config.url}: bad 409 size {text[:30]!r}")
                    client.size = int(text)
                    continue
                detail = data[:300].decode("utf-8", "replace")
                raise WitnessFailed(f"{client.config.url} answered {status}: {detail}")
            raise WitnessFailed(f"{client.config.url}: the old size kept changing")
        except (WitnessFailed, AiledgerError) as exc:
            message = str(exc)
            if message != client.last_error:  # once per distinct failure, not at every retry
                _log.warning("witness did not cosign size %d: %s", size, message)
            client.last_error = message
            return None
