"""The proof of a serving trace, and its verification from the log's public data alone.

A trace document (``ailedger trace --json`` / ``--out``; media type
:data:`TRACE_MEDIA_TYPE`) holds the serving event and the next event of the environment (if
any): each entry's DSSE envelope with its inclusion proof, both against one tree head, the
signed checkpoint of that tree head and the log's verifier key. :meth:`ServingTrace.verify`
checks, with nothing but the document and a trusted log key:

1. the checkpoint's signature by the log key, and that it is the tree head of the proofs;
2. each envelope's signatures, that it is the proven leaf, and its inclusion proof;
3. that both are deploy or rollback statements of the environment, and that the serving one
   is the version, digest and action the document names;
4. the link: the next event names the serving one as ``previous`` (its log index and leaf
   hash), so no other event of the environment lies between them. A next event without a
   link (written before links existed) is *unlinked*: reported, and refused when links are
   required (``trace-link-missing``);
5. the times: the serving statement's signed ``time`` is at or before the traced time and
   the next one's after it;
6. with ``deployers`` (the keys trusted to deploy to the environment), that each envelope is
   signed by one of them (``trace-signer-not-deployer``): anyone who can append to the log
   can sign a deploy statement, so a trace proves nothing about who deployed without them.

Times are the statements' signed times: the log's append times (``logged_at``) are not in
the tree, so nothing public proves them; they are shown, not relied on. Without a next event
the document proves what served from the serving event on, but not that nothing followed
it: only the whole log up to the checkpoint can show that (``adjacency`` is ``open``).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import DeploymentPredicate, EventLink
from ailedger.attest.statements import Statement
from ailedger.errors import AiledgerError, FormatError, ProofInvalid, SignatureInvalid
from ailedger.log import Entry, SignatureCheck, check_ethereum_signature
from ailedger.log.checkpoint import Checkpoint, NoteVerifier, SignedNote, parse_vkey
from ailedger.merkle import InclusionProof, leaf_hash
from ailedger.registry._refs import VersionRef, parse_time

__all__ = [
    "TRACE_MEDIA_TYPE",
    "Adjacency",
    "EntryProof",
    "ServingTrace",
    "TraceVerification",
    "event_predicate",
]

_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")

#: The media type of a trace document.
TRACE_MEDIA_TYPE = "application/vnd.ailedger.trace.v1+json"

#: ``linked``: the next event names the serving one; ``unlinked``: the next event carries
#: no link (an older statement); ``open``: no next event in the tree.
Adjacency = Literal["linked", "unlinked", "open"]


def iso_ms(time_ms: int) -> str:
    return datetime.fromtimestamp(time_ms / 1000, UTC).isoformat(timespec="milliseconds")


def event_predicate(envelope: bytes) -> DeploymentPredicate | None:
    """The deploy or rollback predicate of a log entry's envelope, else None."""
    try:
        statement = Statement.from_json(Envelope.from_json(envelope).payload)
        predicate = statement.typed_predicate()
    except AiledgerError:
        return None
    if not isinstance(predicate, DeploymentPredicate) or predicate.action == "deprecate":
        return None
    return predicate


def _statement(entry: Entry) -> Statement:
    return Statement.from_json(Envelope.from_json(entry.envelope).payload)


@dataclass(frozen=True)
class EntryProof:
    """A log entry and its inclusion proof in the tree of ``proof.tree_size``."""

    entry: Entry
    proof: InclusionProof

    def verify(self) -> None:
        """Raise :class:`ProofInvalid` unless the envelope hashes to the proven leaf."""
        if leaf_hash(self.entry.envelope) != self.proof.leaf_hash:
            raise ProofInvalid(
                f"entry {self.entry.index}: the envelope is not the proven leaf",
                code="trace-leaf-mismatch",
            )
        if self.proof.leaf_index != self.entry.index:
            raise ProofInvalid(
                f"entry {self.entry.index}: the proof is for another leaf",
                code="trace-leaf-mismatch",
            )
        self.proof.verify()

    @property
    def link(self) -> EventLink:
        """The link a next event names this entry by."""
        return EventLink(log_index=self.entry.index, leaf_hash=self.proof.leaf_hash.hex())

    def to_dict(self) -> dict[str, Any]:
        predicate = event_predicate(self.entry.envelope)
        return {
            "log_index": self.entry.index,
            "leaf_hash": leaf_hash(self.entry.envelope).hex(),
            "signed_at": None if predicate is None else predicate.time.isoformat(),
            "logged_at": iso_ms(self.entry.time_ms),
            "signers": list(self.entry.signers),
            "previous": _previous(predicate),
            "envelope": Envelope.from_json(self.entry.envelope).to_dict(),
            "inclusion": self.proof.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: Any, check: SignatureCheck) -> EntryProof:
        """Parse an entry of a trace document, checking the envelope's signatures."""
        if not isinstance(doc, Mapping):
            raise FormatError("a trace document's event must be an object")
        index = doc.get("log_index")
        if not isinstance(index, int) or isinstance(index, bool) or index < 0:
            raise FormatError("a trace event's log_index must be a non-negative integer")
        inclusion = doc.get("inclusion")
        if not isinstance(inclusion, Mapping):
            raise FormatError("a trace event's inclusion must be an object")
        envelope = Envelope.from_dict(doc.get("envelope"))
        if not envelope.signatures:
            raise SignatureInvalid(
                f"entry {index}: the envelope has no signatures",
                code="statement-signature-invalid",
            )
        signers = []
        for sig in envelope.signatures:
            try:
                check(sig.keyid, envelope.pae(), sig.sig)
            except SignatureInvalid as exc:
                raise SignatureInvalid(f"entry {index}: {exc.message}", code=exc.code) from None
            signers.append(sig.keyid.lower() if _ADDRESS.fullmatch(sig.keyid) else sig.keyid)
        canonical = envelope.canonical_json()
        logged = doc.get("logged_at")
        time_ms = int(parse_time(logged).timestamp() * 1000) if isinstance(logged, str) else 0
        statement = Statement.from_json(envelope.payload)
        entry = Entry(
            index=index,
            envelope=canonical,
            leaf_hash=leaf_hash(canonical),
            time_ms=time_ms,
            payload_type=envelope.payload_type,
            predicate_type=statement.predicate_type,
            signers=tuple(dict.fromkeys(signers)),
            subjects=tuple(
                (f"{alg}:{value}", s.name)
                for s in statement.subject
                for alg, value in s.digest.items()
            ),
        )
        return cls(entry, InclusionProof.from_dict(inclusion))


def _previous(predicate: DeploymentPredicate | None) -> dict[str, Any] | str | None:
    """The ``previous`` field as a document shows it: the link, null (first), "unlinked"."""
    if predicate is None or not predicate.linked:
        return "unlinked"
    return None if predicate.previous is None else predicate.previous.model_dump()


@dataclass(frozen=True)
class TraceVerification:
    """What :meth:`ServingTrace.verify` established."""

    env: str
    at: datetime
    ref: VersionRef
    digest: str
    action: str
    since: datetime
    until: datetime | None
    adjacency: Adjacency
    tree_size: int
    root: bytes
    checkpoint: bool
    log_key: str | None
    log_key_trusted: bool
    signers: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": True,
            "env": self.env,
            "at": self.at.isoformat(),
            "model": str(self.ref),
            "digest": self.digest,
            "action": self.action,
            "since": self.since.isoformat(),
            "until": None if self.until is None else self.until.isoformat(),
            "adjacency": self.adjacency,
            "tree_size": self.tree_size,
            "root": self.root.hex(),
            "checkpoint_verified": self.checkpoint,
            "log_key": self.log_key,
            "log_key_trusted": self.log_key_trusted,
            "signers": list(self.signers),
        }


def _event_of(item: EntryProof, env: str) -> DeploymentPredicate:
    predicate = event_predicate(item.entry.envelope)
    if predicate is None or predicate.environment != env:
        raise ProofInvalid(
            f"entry {item.entry.index} is not a deploy or rollback of {env}",
            code="trace-event-mismatch",
        )
    return predicate


@dataclass(frozen=True)
class ServingTrace:
    """What served ``env`` at ``at``, with the proof (see the module docstring).

    ``checkpoint`` is the signed note of the tree head the proofs are against (None when no
    signed checkpoint covers them yet); ``log_key`` the log's verifier key (C2SP vkey).
    """

    env: str
    at: datetime
    ref: VersionRef
    digest: str
    action: str
    event: EntryProof
    next_event: EntryProof | None
    checkpoint: str | None
    log_key: str | None = None

    @property
    def adjacency(self) -> Adjacency:
        if self.next_event is None:
            return "open"
        predicate = event_predicate(self.next_event.entry.envelope)
        return "linked" if predicate is not None and predicate.linked else "unlinked"

    def verify(
        self,
        *,
        log_key: NoteVerifier | None = None,
        require_checkpoint: bool = False,
        require_links: bool = False,
        deployers: Collection[str] | None = None,
    ) -> TraceVerification:
        """Check everything the module docstring lists; raise on the first failure.

        ``log_key`` is the trusted log key; without it the document's own key checks the
        checkpoint and the result says ``log_key_trusted=False``. ``require_checkpoint``
        refuses a trace without a signed checkpoint (``trace-checkpoint-missing``) and
        ``require_links`` an unlinked next event (``trace-link-missing``): a trace document
        is verified with both, a local ``trace`` reports what it found. ``deployers``
        (addresses or key ids) are the keys trusted to sign the events; as a mapping, each
        from that log index on (a workspace's ``deployer_since``); None skips that check (a
        local trace, whose index took only events of allowed signers).
        """
        if deployers is not None:
            since = deployers if isinstance(deployers, Mapping) else {}
            self._check_signers({d.lower(): int(since.get(d, 0)) for d in deployers})
        root, size = self.event.proof.root, self.event.proof.tree_size
        for item in (self.event, self.next_event):
            if item is None:
                continue
            item.verify()
            if (item.proof.root, item.proof.tree_size) != (root, size):
                raise ProofInvalid(
                    "the two entries are proven against different tree heads",
                    code="trace-tree-head-mismatch",
                )
        key_text, trusted = self._check_checkpoint(log_key, require_checkpoint)
        served = _event_of(self.event, self.env)
        statement = _statement(self.event.entry)
        subjects = {(s.name, f"sha256:{s.digest.get('sha256')}") for s in statement.subject}
        if (
            served.version != str(self.ref)
            or served.action != self.action
            or (str(self.ref), self.digest) not in subjects
        ):
            raise ProofInvalid(
                f"entry {self.event.entry.index} is a {served.action} of {served.version}, "
                f"not the {self.action} of {self.ref} ({self.digest}) the trace names",
                code="trace-claim-mismatch",
            )
        if served.time > self.at:
            raise ProofInvalid(
                f"the serving event was signed at {served.time.isoformat()}, after the traced "
                f"time {self.at.isoformat()}",
                code="trace-time-mismatch",
            )
        until = None
        signers = list(self.event.entry.signers)
        if self.next_event is not None:
            following = _event_of(self.next_event, self.env)
            self._check_link(following, require_links)
            if following.time <= self.at:
                raise ProofInvalid(
                    f"the next event was signed at {following.time.isoformat()}, at or before "
                    f"the traced time {self.at.isoformat()}",
                    code="trace-time-mismatch",
                )
            until = following.time
            signers.extend(self.next_event.entry.signers)
        return TraceVerification(
            env=self.env,
            at=self.at,
            ref=self.ref,
            digest=self.digest,
            action=self.action,
            since=served.time,
            until=until,
            adjacency=self.adjacency,
            tree_size=size,
            root=root,
            checkpoint=self.checkpoint is not None,
            log_key=key_text,
            log_key_trusted=trusted,
            signers=tuple(dict.fromkeys(signers)),
        )

    def _check_signers(self, trusted: dict[str, int]) -> None:
        if not trusted:
            raise SignatureInvalid(
                "no trusted deployer keys to check the trace's signers against",
                hint="pass --deployer KEY (repeatable), or run it in the workspace of the log",
                code="trace-deployers-unknown",
            )
        for item in (self.event, self.next_event):
            if item is None:
                continue
            index = item.entry.index
            if not any(trusted.get(s.lower(), index + 1) <= index for s in item.entry.signers):
                signers = ", ".join(item.entry.signers) or "nobody"
                raise SignatureInvalid(
                    f"entry {item.entry.index} is signed by {signers}, none of them a trusted "
                    f"deployer of {self.env}",
                    code="trace-signer-not-deployer",
                )

    def _check_link(self, following: DeploymentPredicate, require: bool) -> None:
        assert self.next_event is not None
        index = self.next_event.entry.index
        if not following.linked:
            if require:
                raise ProofInvalid(
                    f"entry {index} names no previous event (written before links): the log "
                    f"alone does not prove that nothing happened to {self.env} in between",
                    code="trace-link-missing",
                )
            return
        expected = self.event.link
        if following.previous != expected or index <= self.event.entry.index:
            named = (
                "none (it claims to be the first event)"
                if following.previous is None
                else f"entry {following.previous.log_index} "
                f"(leaf {following.previous.leaf_hash[:16]}...)"
            )
            raise ProofInvalid(
                f"entry {index} names {named} as the previous event of {self.env}, not entry "
                f"{self.event.entry.index}: the two events are not consecutive",
                code="trace-link-mismatch",
            )

    def _check_checkpoint(
        self, log_key: NoteVerifier | None, required: bool
    ) -> tuple[str | None, bool]:
        """Verify the checkpoint (when there is one); (the key used as vkey text, trusted)."""
        if self.checkpoint is None:
            if required:
                raise ProofInvalid(
                    "the trace has no signed checkpoint: its proofs are against a tree head "
                    "nobody signed",
                    hint="run `ailedger log checkpoint`, then trace again",
                    code="trace-checkpoint-missing",
                )
            return self.log_key, False
        note = SignedNote.parse(self.checkpoint)
        head = Checkpoint.parse(note.text)
        if (head.size, head.root) != (self.event.proof.tree_size, self.event.proof.root):
            raise ProofInvalid(
                f"the checkpoint is of a tree of {head.size}, not the tree of "
                f"{self.event.proof.tree_size} the entries are proven in",
                code="trace-tree-head-mismatch",
            )
        key: NoteVerifier
        if log_key is not None:
            key = log_key
        elif self.log_key is not None:
            key = parse_vkey(self.log_key)
        elif not required:  # a local trace of a log that names no key: proofs only
            return None, False
        else:
            raise SignatureInvalid(
                "the trace names no log key and none is trusted",
                hint="pass the log's key (--log-key)",
                code="checkpoint-untrusted",
            )
        if key.name != head.origin:
            raise SignatureInvalid(
                f"the checkpoint is from log {head.origin!r}, the log key is {key.name!r}",
                code="checkpoint-origin-mismatch",
            )
        note.verify_one(key)
        return self.log_key, log_key is not None

    def to_dict(self) -> dict[str, Any]:
        served = event_predicate(self.event.entry.envelope)
        following = (
            None if self.next_event is None else event_predicate(self.next_event.entry.envelope)
        )
        origin = None if self.checkpoint is None else self._origin()
        return {
            "mediaType": TRACE_MEDIA_TYPE,
            "env": self.env,
            "at": self.at.isoformat(),
            "model": str(self.ref),
            "digest": self.digest,
            "action": self.action,
            "since": None if served is None else served.time.isoformat(),
            "until": None if following is None else following.time.isoformat(),
            "adjacency": self.adjacency,
            "event": self.event.to_dict(),
            "next_event": None if self.next_event is None else self.next_event.to_dict(),
            "tree_size": self.event.proof.tree_size,
            "root": self.event.proof.root.hex(),
            "checkpoint": self.checkpoint,
            "log": {"origin": origin, "key": self.log_key},
        }

    def _origin(self) -> str | None:
        try:
            return Checkpoint.parse(SignedNote.parse(self.checkpoint or "").text).origin
        except AiledgerError:
            return None

    @classmethod
    def from_dict(cls, doc: Any, check: SignatureCheck = check_ethereum_signature) -> ServingTrace:
        """Parse a trace document (checking its envelopes' signatures with ``check``); the
        proofs are checked by :meth:`verify`."""
        if not isinstance(doc, Mapping) or doc.get("mediaType") != TRACE_MEDIA_TYPE:
            raise FormatError(f"not an ailedger trace (mediaType must be {TRACE_MEDIA_TYPE})")
        fields = {k: doc.get(k) for k in ("env", "at", "model", "digest", "action")}
        if not all(isinstance(v, str) for v in fields.values()):
            raise FormatError("a trace document needs string env, at, model, digest and action")
        checkpoint = doc.get("checkpoint")
        if checkpoint is not None and not isinstance(checkpoint, str):
            raise FormatError("a trace document's checkpoint must be a signed note or null")
        log = doc.get("log")
        key = log.get("key") if isinstance(log, Mapping) else None
        if key is not None and not isinstance(key, str):
            raise FormatError("a trace document's log key must be a verifier key string")
        following = doc.get("next_event")
        return cls(
            env=str(fields["env"]),
            at=parse_time(str(fields["at"])),
            ref=VersionRef.parse(str(fields["model"])),
            digest=str(fields["digest"]),
            action=str(fields["action"]),
            event=EntryProof.from_dict(doc.get("event"), check),
            next_event=None if following is None else EntryProof.from_dict(following, check),
            checkpoint=checkpoint,
            log_key=key,
        )
