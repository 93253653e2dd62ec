"""Whether the log, the registry index and the chain agree; the repair of what the log proves.

A command killed between the log append and the chain transaction leaves the two
disagreeing: the log (and ``trace``, ``audit``, ``gate``) says ``v105`` serves, the
ModelRegistry contract ``v104``. :func:`check_index` compares the stored index with one
rebuilt from the log, :func:`check_chain` compares what the log records with the chain (per
model version and per environment), and :func:`repair` finishes what the log proves::

    findings = check_index(workspace, log)                  # before Registry.open syncs it
    with Registry.open(workspace, keys=keys, backend=backend) as registry:
        findings += check_chain(registry, backend)
        repair(registry, backend, findings, signer_for=unlock)

Each :class:`Finding` has a stable ``kind``:

- ``index-behind``, ``index-differs``: the index lags the log, or differs from a rebuild;
  repaired by indexing the log again (the log is the record; the index is a cache).
- ``chain-registration-missing``, ``chain-approval-missing``, ``chain-deprecation-missing``,
  ``chain-event-missing`` (an environment's trailing deploys and rollbacks): the log records
  a step the chain lacks. Repairable: the step is replayed from the logged statement (its
  signature verified again), by the key that signed it, through the same
  :class:`~ailedger.registry._chain.ChainBackend` writes ``deploy`` and ``rollback`` use; a
  deploy or rollback is first run as a call, so a refusal by the contract sends nothing.
- ``chain-history-gap``: a deploy or rollback in the middle of an environment's log history
  that the chain never saw (the chain moved on without it). Reported only: replaying it now
  would write a history that never happened.
- ``chain-event-unexplained``, ``chain-registration-unexplained``,
  ``chain-deprecation-unexplained``, ``chain-approval-revoked``, ``chain-registration-differs``:
  the chain holds state the log does not explain. Never repaired: someone acted on the
  contract outside this workspace's record, which is for a person to look into; an
  environment with an unexplained event is not repaired at all.
- ``serving-differs``: the log and the chain name different versions serving an environment
  (a summary of that environment's findings, repairable when all of them are).
- ``unauthorised-deploy-event``, ``environment-history-fork`` (:func:`check_events`, with or
  without a chain): a deploy or rollback statement in the log that is no event of its
  environment: its signer may not deploy there (the deployer role: locally in ``[members]``,
  on-chain the registry admin or ``deployerRole(env)``), or it does not extend the
  environment's chain of events (two events naming the same previous: the first in log order
  is kept). Never repaired: the log keeps it and everything else ignores it.
- ``unauthorised-deprecation`` (:func:`check_events`): a deprecation whose signer may not
  deprecate the version (on-chain: the registry admin or the registrant holding the trainer
  role); never repaired, ignored by deploy, rollback, lineage and the audit report.

Environments are compared as sequences: the log's deploy/rollback events and the contract's
``Deployed``/``RolledBack`` events, matched in order by action and version id (a longest
common subsequence), so every unmatched event on either side is named.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ailedger.attest.dsse import Envelope
from ailedger.attest.predicates import ApprovalPredicate, ModelPredicate
from ailedger.attest.statements import verify_statement
from ailedger.chain.eip712 import role_id
from ailedger.chain.registry import env_id
from ailedger.errors import AiledgerError, ConflictError, IntegrityError, InvalidInput, NotFound
from ailedger.identity.keys import checksum_address
from ailedger.log import TransparencyLog
from ailedger.registry import _batch
from ailedger.registry._chain import ChainBackend, digest_bytes
from ailedger.registry._findings import REPAIR_HINT, Action, Finding, Step
from ailedger.registry._index import (
    FORKED,
    INDEX_DB_NAME,
    UNAUTHORISED_DEPRECATION,
    RegistryIndex,
    VersionRow,
)
from ailedger.registry._refs import VersionRef
from ailedger.registry._registry import Registry
from ailedger.registry._repair import repair
from ailedger.workspace import Workspace

__all__ = [
    "REPAIR_HINT",
    "Finding",
    "Step",
    "check_chain",
    "check_events",
    "check_index",
    "check_touched",
    "repair",
]

# --- the index ------------------------------------------------------------------------------


def check_index(workspace: Workspace, log: TransparencyLog) -> list[Finding]:
    """Compare the stored index with the log, before anything syncs it: entries it has not
    read yet, and rows that differ from an index rebuilt from the log (nothing is written)."""
    batch_dir = workspace.path / "inference"

    def reader(root: str) -> list[tuple[str, str]] | None:
        return _batch.read(batch_dir, root)

    path = workspace.path / INDEX_DB_NAME
    size = log.size()
    stored = RegistryIndex(path, read_only=True)
    fresh = RegistryIndex.in_memory()
    try:
        synced = stored.synced() if path.is_file() else 0
        findings: list[Finding] = []
        if synced < size:
            findings.append(
                Finding(
                    "index-behind",
                    f"index: {size - synced} log entries are not indexed yet "
                    f"(indexed {synced} of {size})",
                    True,
                )
            )
        try:
            stored.sync(log, reader)
        except IntegrityError as exc:
            return [*findings, Finding("index-differs", f"index: {exc.message}", True)]
        fresh.sync(log, reader)
        if stored.dump() != fresh.dump():
            findings.append(
                Finding(
                    "index-differs",
                    "index: its rows differ from an index rebuilt from the log",
                    True,
                )
            )
        return findings
    finally:
        stored.close()
        fresh.close()


def check_events(registry: Registry) -> list[Finding]:
    """The deploy and rollback statements the index does not take as events, then the
    deprecations it does not count (see the module docstring), in log order; reported, never
    repaired."""
    out: list[Finding] = []
    for item in registry.index.rejected():
        event = item.event
        where = f"{event.env}: {event.action} of {event.ref} (entry {event.log_index})"
        signers = ", ".join(event.signers) or "nobody"
        if item.verdict == FORKED and not item.linked:
            text = (
                f"{where} names no previous event (an unlinked statement) after its "
                "environment's linked events, or is a copy of an earlier event: ignored"
            )
        elif item.verdict == FORKED:
            named = (
                "none (it claims to be the first)"
                if item.previous is None
                else (f"entry {item.previous}")
            )
            head = "none" if item.head is None else f"entry {item.head}"
            text = (
                f"{where} names {named} as its previous event, but the environment's history "
                f"there is {head}: a fork, ignored (the first event in log order is kept)"
            )
        else:
            text = (
                f"{where} is signed by {signers}, who may not deploy to {event.env}: "
                "ignored (not an event)"
            )
        out.append(Finding(item.verdict, text, False, event.env, str(event.ref), event.log_index))
    for ref, index, keys in registry.index.rejected_deprecations():
        text = (
            f"deprecation of {ref} (entry {index}) is signed by {', '.join(keys) or 'nobody'}, "
            "who may not deprecate it: ignored"
        )
        out.append(Finding(UNAUTHORISED_DEPRECATION, text, False, None, str(ref), index))
    return out


# --- the chain ------------------------------------------------------------------------------


def _account(keyid: str) -> str | None:
    try:
        return checksum_address(keyid)
    except InvalidInput:
        return None


def _hex32(value: object) -> bytes:
    return bytes.fromhex(str(value)[2:])


class _ChainView:
    """What the chain holds about the workspace's versions, read once per check."""

    def __init__(self, registry: Registry, backend: ChainBackend) -> None:
        self.registry = registry
        self.backend = backend
        self.contract = backend.registry.contract
        self.trusted = [k.public_key for k in registry.keys]
        self._vids: dict[VersionRef, bytes | None] = {}
        self.names: dict[bytes, str] = {}

    def vid(self, ref: VersionRef) -> bytes | None:
        """The on-chain id of ``ref``, None when the workspace's organisations never
        registered it (:class:`ConflictError` when several did)."""
        if ref not in self._vids:
            try:
                found: bytes | None = self.backend.version_id(ref)
            except NotFound:
                found = None
            if found is not None and self.backend.registry.version(found) is None:
                found = None  # named by owner_org, never registered
            self._vids[ref] = found
            if found is not None:
                self.names[found] = str(ref)
        return self._vids[ref]

    def known(self, ref: VersionRef) -> bytes | None:
        """Like :meth:`vid`, with a name several organisations registered as unknown (the
        registration finding names that conflict)."""
        try:
            return self.vid(ref)
        except ConflictError:
            return None

    def name(self, vid: bytes) -> str:
        if vid not in self.names:
            for e in self.backend.chain.events(self.contract, "VersionRegistered"):
                self.names.setdefault(
                    _hex32(e.args["versionId"]), f"{e.args['name']}@{e.args['version']}"
                )
        return self.names.get(vid, "0x" + vid.hex())

    def signer_of(self, log_index: int) -> str:
        signers = self.registry.log.get(log_index).signers
        return signers[0] if signers else ""

    # -- versions ---------------------------------------------------------------------------

    def registration(self, row: VersionRow) -> list[Finding]:
        ref = str(row.ref)
        try:
            vid = self.vid(row.ref)
        except ConflictError as exc:
            return [Finding("chain-registration-ambiguous", exc.message, False, ref=ref)]
        if vid is None:
            return [self._missing_registration(row)]
        info = self.backend.registry.version(vid)
        if info is not None and info.subject_digest != digest_bytes(row.digest):
            return [
                Finding(
                    "chain-registration-differs",
                    f"{ref}: registered on the chain with subject 0x{info.subject_digest.hex()}, "
                    f"in the log (entry {row.log_index}) with {row.digest}",
                    False,
                    ref=ref,
                    log_index=row.log_index,
                )
            ]
        return []

    def _missing_registration(self, row: VersionRow) -> Finding:
        ref, message = str(row.ref), f"{row.ref}: registered in the log (entry {row.log_index})"
        try:
            predicate = self._verified(row.log_index)
        except AiledgerError as exc:
            return Finding(
                "chain-registration-missing",
                f"{message}, not on the chain; its statement does not verify: {exc.message}",
                False,
                ref=ref,
                log_index=row.log_index,
            )
        roots = predicate.training.dataset_roots if predicate.training else []
        step = Step(
            "register", row.ref, row.log_index, row.signer, digest=row.digest, roots=tuple(roots)
        )
        return Finding(
            "chain-registration-missing",
            f"{message}, not on the chain",
            True,
            ref=ref,
            log_index=row.log_index,
            step=step,
        )

    def _verified(self, log_index: int) -> ModelPredicate:
        envelope = Envelope.from_json(self.registry.log.get(log_index).envelope)
        predicate = verify_statement(envelope, self.trusted).predicate
        if not isinstance(predicate, ModelPredicate):
            raise IntegrityError(f"log entry {log_index} is not a model statement")
        return predicate

    def approvals(self, row: VersionRow) -> list[Finding]:
        """Approvals whose latest decision in the log is "approve" and that the chain lacks
        (a rejection is recorded in the log only; the contract has none)."""
        latest: dict[tuple[str, str], tuple[int, str]] = {}
        for entry in self.registry.log.query(
            subject=row.digest, predicate_type=ApprovalPredicate.PREDICATE_TYPE, limit=None
        ):
            try:
                verified = verify_statement(Envelope.from_json(entry.envelope), self.trusted)
            except AiledgerError:
                continue  # not signed by a known key: the registry never acted on it
            pred = verified.predicate
            if not isinstance(pred, ApprovalPredicate):
                continue
            for key in verified.signers:
                slot = (pred.role, key.keyid.lower())
                if slot not in latest or entry.index > latest[slot][0]:
                    latest[slot] = (entry.index, pred.decision)
        wanted = sorted((i, role, k) for (role, k), (i, d) in latest.items() if d == "approve")
        if not wanted:
            return []
        try:
            vid = self.vid(row.ref)
        except ConflictError:
            return []  # reported with the registration
        held: set[tuple[str, bytes]] = set()
        revoked: set[tuple[str, bytes]] = set()  # (approver, role): a revocation is per role
        if vid is not None:
            held = {
                (str(a[0]).lower(), bytes(a[4]))
                for a in self.backend.chain.call(self.contract, "approvalsOf", vid)
            }
            revoked = {
                (str(e.args["approver"]).lower(), _hex32(e.args["role"]))
                for e in self.backend.chain.events(
                    self.contract, "ApprovalRevoked", args={"versionId": vid}
                )
            }
        out: list[Finding] = []
        for index, role, keyid in wanted:
            account = _account(keyid)
            where = f"{row.ref}: approval as {role} by {keyid} (entry {index})"
            ref = str(row.ref)
            if account is None:
                text = f"{where} is not on the chain: a P-256 key cannot send it"
                out.append(Finding("chain-approval-missing", text, False, None, ref, index))
            elif (account.lower(), role_id(role)) in held:
                continue
            elif (account.lower(), role_id(role)) in revoked:
                text = f"{where} was revoked on the chain; the log has no revocation"
                out.append(Finding("chain-approval-revoked", text, False, None, ref, index))
            else:
                step = Step("approve", row.ref, index, keyid, role=role)
                text = f"{where} is not on the chain"
                out.append(Finding("chain-approval-missing", text, True, None, ref, index, step))
        return out

    def deprecation(self, ref: VersionRef, log_index: int | None) -> list[Finding]:
        """``log_index``: the log's deprecation of ``ref``, or None when it has none."""
        try:
            vid = self.vid(ref)
        except ConflictError:
            return []
        info = None if vid is None else self.backend.registry.version(vid)
        on_chain = info is not None and info.deprecated
        if log_index is None and on_chain:
            text = f"{ref}: deprecated on the chain; the log has no deprecation"
            return [Finding("chain-deprecation-unexplained", text, False, ref=str(ref))]
        if log_index is not None and not on_chain:
            step = Step("deprecate", ref, log_index, self.signer_of(log_index))
            text = f"{ref}: deprecated in the log (entry {log_index}), not on the chain"
            return [
                Finding(
                    "chain-deprecation-missing",
                    text,
                    True,
                    ref=str(ref),
                    log_index=log_index,
                    step=step,
                )
            ]
        return []

    def unexplained_registrations(self, known: Iterable[VersionRef]) -> list[Finding]:
        """Versions registered on the chain by the workspace's organisations that the log
        does not register."""
        ours: set[bytes] = set()
        for ref in known:
            vid = self._vids.get(ref)
            info = None if vid is None else self.backend.registry.version(vid)
            if info is not None:
                ours.add(info.org_id)
        logged = {(r.name, r.version) for r in known}
        out: list[Finding] = []
        for e in self.backend.chain.events(self.contract, "VersionRegistered"):
            name, version = str(e.args["name"]), str(e.args["version"])
            if _hex32(e.args["orgId"]) in ours and (name, version) not in logged:
                named = f"{name}@{version}"
                out.append(
                    Finding(
                        "chain-registration-unexplained",
                        f"{named}: registered on the chain (block {e.block_number}, tx "
                        f"{e.tx_hash}) by {e.args['registrant']}; the log has no registration",
                        False,
                        ref=named,
                    )
                )
        return out

    # -- environments -----------------------------------------------------------------------

    def serving(self, env: str) -> Finding | None:
        """A ``serving-differs`` finding when the log and the chain name different versions
        serving ``env`` (None when they agree)."""
        logged = self.registry.current(env)
        want = None if logged is None else self.known(logged)
        have = self.backend.registry.current(env)
        if logged is not None and want is not None and want == have:
            return None
        if logged is None and have is None:
            return None
        last = self.registry.index.event_at(env, 2**62)
        said = "nothing serves" if logged is None else f"{logged} serves"
        entry = "" if last is None else f" (entry {last.log_index})"
        chain = "nothing" if have is None else self.name(have)
        return Finding(
            "serving-differs",
            f"{env}: the log says {said}{entry}, the chain says {chain}",
            True,
            env=env,
            ref=None if logged is None else str(logged),
            log_index=None if last is None else last.log_index,
        )

    def environment(self, env: str) -> list[Finding]:
        logged = self.registry.index.events(env)
        on_chain = sorted(
            [
                *self.backend.chain.events(self.contract, "Deployed", args={"env": env_id(env)}),
                *self.backend.chain.events(self.contract, "RolledBack", args={"env": env_id(env)}),
            ],
            key=lambda e: (e.block_number, e.log_index),
        )
        left = [(e.action, self.known(e.ref)) for e in logged]
        right = [
            ("deploy" if e.event == "Deployed" else "rollback", _hex32(e.args["versionId"]))
            for e in on_chain
        ]
        pairs = _match(left, right)
        done_left = {i for i, _ in pairs}
        done_right = {j for _, j in pairs}
        last_left = max(done_left, default=-1)
        stray = [j for j in range(len(right)) if j not in done_right]
        out: list[Finding] = []
        for j in stray:
            e = on_chain[j]
            verb = "deploy" if e.event == "Deployed" else "rollback"
            out.append(
                Finding(
                    "chain-event-unexplained",
                    f"{env}: {verb} of {self.name(right[j][1])} on the chain (block "
                    f"{e.block_number}, tx {e.tx_hash}) has no log entry",
                    False,
                    env=env,
                    ref=self.name(right[j][1]),
                )
            )
        for i, event in enumerate(logged):
            if i in done_left:
                continue
            where = f"{env}: {event.action} of {event.ref} (entry {event.log_index})"
            at = (env, str(event.ref), event.log_index)
            if i < last_left:
                text = f"{where} never reached the chain, which moved on without it"
                out.append(Finding("chain-history-gap", text, False, *at))
            elif stray:
                text = f"{where} is not on the chain (not repaired: the chain holds "
                text += "events the log does not explain)"
                out.append(Finding("chain-event-missing", text, False, *at))
            else:
                action: Action = "deploy" if event.action == "deploy" else "rollback"
                signer = self.signer_of(event.log_index)
                step = Step(action, event.ref, event.log_index, signer, env=env)
                text = f"{where} is not on the chain"
                out.append(Finding("chain-event-missing", text, True, *at, step))
        summary = self.serving(env)
        if summary is not None:
            fixable = bool(out) and all(f.repairable for f in out)
            summary = Finding(
                summary.kind, summary.message, fixable, summary.env, summary.ref, summary.log_index
            )
            out.insert(0, summary)
        return out

    def elsewhere(self, envs: Iterable[str]) -> list[Finding]:
        """Deploys and rollbacks of the workspace's versions on the chain in environments
        the log never names."""
        known = {env_id(e) for e in envs}
        ours = {v for v in self._vids.values() if v is not None}
        out: list[Finding] = []
        for event in ("Deployed", "RolledBack"):
            for e in self.backend.chain.events(self.contract, event):
                env, vid = _hex32(e.args["env"]), _hex32(e.args["versionId"])
                if env in known or vid not in ours:
                    continue
                verb = "deploy" if event == "Deployed" else "rollback"
                out.append(
                    Finding(
                        "chain-event-unexplained",
                        f"environment 0x{env.hex()}: {verb} of {self.name(vid)} on the chain "
                        f"(block {e.block_number}, tx {e.tx_hash}); the log names no such "
                        "environment",
                        False,
                        ref=self.name(vid),
                    )
                )
        return out


def _match(
    left: Sequence[tuple[str, bytes | None]], right: Sequence[tuple[str, bytes]]
) -> list[tuple[int, int]]:
    """The pairs (i, j) of a longest common subsequence of ``left`` and ``right`` (an item
    with no version id matches nothing)."""
    n, m = len(left), len(right)
    table = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n - 1, -1, -1):
        for j in range(m - 1, -1, -1):
            if left[i][1] is not None and left[i] == right[j]:
                table[i][j] = table[i + 1][j + 1] + 1
            else:
                table[i][j] = max(table[i + 1][j], table[i][j + 1])
    pairs: list[tuple[int, int]] = []
    i = j = 0
    while i < n and j < m:
        if left[i][1] is not None and left[i] == right[j]:
            pairs.append((i, j))
            i, j = i + 1, j + 1
        elif table[i + 1][j] >= table[i][j + 1]:
            i += 1
        else:
            j += 1
    return pairs


def check_chain(registry: Registry, backend: ChainBackend) -> list[Finding]:
    """Everything the log records about model versions and environments, compared with the
    chain: registrations, approvals, deprecations, each environment's deploys and
    rollbacks; and what the chain holds that the log does not explain."""
    view = _ChainView(registry, backend)
    models = registry.index.versions("model")
    deprecated = {ref: index for ref, index, _ in registry.index.deprecations()}
    findings: list[Finding] = []
    for row in models:
        findings += view.registration(row)
        findings += view.approvals(row)
    findings += view.unexplained_registrations([r.ref for r in models])
    envs = registry.index.environments()
    for env in envs:
        findings += view.environment(env)
    findings += view.elsewhere(envs)
    for row in models:
        findings += view.deprecation(row.ref, deprecated.get(row.ref))
    return findings


def check_touched(
    registry: Registry,
    backend: ChainBackend,
    *,
    envs: Iterable[str] = (),
    refs: Iterable[VersionRef] = (),
) -> list[Finding]:
    """The cheap check a chain-backed command runs on what it touches: which version serves
    each of ``envs`` on both sides (and, only where they differ, that environment's history,
    to tell a repairable step from chain state the log does not explain), and whether each
    of ``refs`` (model versions) is registered and deprecated on the chain as in the log.
    A few calls: ``ailedger status`` does the full comparison."""
    view = _ChainView(registry, backend)
    findings: list[Finding] = []
    for env in dict.fromkeys(envs):
        if view.serving(env) is not None:
            findings += view.environment(env)
    for ref in dict.fromkeys(refs):
        row = registry.index.version("model", ref)
        if row is None:
            continue
        registered = view.registration(row)
        findings += registered
        if not registered:
            found_dep = registry.index.deprecation(ref)
            findings += view.deprecation(ref, None if found_dep is None else found_dep[0])
    return findings
