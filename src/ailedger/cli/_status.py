"""``ailedger status [--repair]``: whether the log, the registry index and the chain agree.

The log is verified first (a corrupt log is exit 7, never repaired). Then the stored index
is compared with the log, and the chain (when contracts are recorded for the workspace's
chain, or ``--backend chain`` / ``--rpc``) with what the log records; see
:mod:`ailedger.registry.status` for what each finding means. Exit 0 when everything checked
agrees, 12 (:class:`~ailedger.errors.OutOfStep`) when something is out of step. Without a
chain, only the log and the index are compared, and the output says the chain was not checked;
a chain that is configured but cannot be reached is exit 8 (nothing is said about it).

``--repair`` unlocks the keys that signed the entries it replays (``$AILEDGER_PASSWORD``,
``--password-file`` or a prompt), as the commands that wrote them did. It stops at the first
step that fails and exits with that error, after printing what it did; it is idempotent, so
running it again continues.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from ailedger.cli._app import app
from ailedger.cli._chain_common import ensure_dev_funds
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._keys import (
    PasswordFileOpt,
    default_log_key,
    open_keystore,
    open_log,
    open_workspace,
    unlock_signer,
)
from ailedger.cli._remote import (
    LogUrlOpt,
    RemoteKeyOpt,
    TimeoutOpt,
    WitnessKeyOpt,
    WitnessThresholdOpt,
    remote_for,
)
from ailedger.cli._workflow import BackendOpt, RpcOpt, open_registry
from ailedger.errors import AiledgerError, InvalidInput, NotFound, OutOfStep
from ailedger.identity.keys import Keystore, Secp256k1Signer, Signer
from ailedger.log.checkpoint import Secp256k1NoteKey
from ailedger.registry import Registry
from ailedger.registry._chain import ChainBackend
from ailedger.registry.status import (
    REPAIR_HINT,
    Finding,
    Step,
    check_chain,
    check_events,
    check_index,
    repair,
)

if TYPE_CHECKING:  # the service package loads on demand
    from ailedger.service.remote import RemoteLog

__all__ = ["status_cmd"]


def _check(
    registry: Registry, forced_local: bool, *, index: bool
) -> tuple[list[Finding], dict[str, Any]]:
    """The chain findings of an open registry (with the index's when ``index``), and what
    was said of the chain."""
    findings = check_index(registry.workspace, registry.log) if index else []
    findings += check_events(registry)
    backend = registry.backend
    if not isinstance(backend, ChainBackend):
        reason = (
            "--backend local"
            if forced_local
            else "no contracts are recorded for the workspace's chain (`ailedger chain deploy`)"
        )
        return findings, {"checked": False, "reason": reason}
    chain = backend.chain
    info = {
        "checked": True,
        "chain_id": chain.chain_id,
        "endpoint": chain.endpoint,
        "model_registry": backend.registry.address,
    }
    return findings + check_chain(registry, backend), info


def _signers(
    store: Keystore, password_file: Path | None, registry: Registry
) -> Callable[[str], Signer]:
    """``keyid -> Signer``: the workspace key that signed a log entry, unlocked once."""
    unlocked: dict[str, Signer] = {}

    def signer_for(keyid: str) -> Signer:
        if keyid.lower() not in unlocked:
            info = store.find(keyid)
            if info is None:
                raise NotFound(
                    f"the key {keyid} that signed the log entry is not in the workspace keystore",
                    hint="import it (`ailedger keys import`) and run `ailedger status --repair` "
                    "again",
                )
            signer = unlock_signer(store, info.name, password_file)
            if isinstance(signer, Secp256k1Signer) and isinstance(registry.backend, ChainBackend):
                ensure_dev_funds(registry.backend.chain, signer.address)
            unlocked[keyid.lower()] = signer
        return unlocked[keyid.lower()]

    return signer_for


def _show(doc: dict[str, Any]) -> None:
    log, chain = doc["log"], doc["chain"]
    console.print(f"log: {log['size']} entries verified, root {log['root']}")
    if chain["checked"]:
        console.print(
            f"chain: {chain['chain_id']} ({escape(str(chain['endpoint']))}), ModelRegistry "
            f"{chain['model_registry']}: checked"
        )
    else:
        console.print(
            f"chain: [yellow]not checked[/yellow]: {escape(chain['reason'])}; only the log "
            "and the index were compared"
        )
    for step in doc["repaired"]:
        console.print(f"repaired: {escape(step)}")
    for finding in doc["findings"]:
        tag = "repairable" if finding["repairable"] else "not repairable"
        console.print(f"[red]out of step:[/red] {escape(finding['message'] + f' [{tag}]')}")
    if not doc["findings"]:
        what = "log, index and chain" if chain["checked"] else "log and index"
        console.print(f"[green]in step[/green]: {what} agree")


@app.command("status")
def status_cmd(
    do_repair: Annotated[
        bool,
        typer.Option(
            "--repair",
            help="Finish what the log proves: re-index the log, replay the chain steps it "
            "records (each by the key that signed it). Chain state the log does not explain "
            "is never repaired.",
        ),
    ] = False,
    password_file: PasswordFileOpt = None,
    backend: BackendOpt = None,
    rpc: RpcOpt = None,
    as_json: JsonOpt = False,
    log_url: LogUrlOpt = None,
    log_key: RemoteKeyOpt = None,
    _timeout: TimeoutOpt = None,
    _witness_key: WitnessKeyOpt = None,
    _witness_threshold: WitnessThresholdOpt = None,
) -> None:
    """Compare the log, the registry index and the chain; exit 12 where they disagree.

    With --log URL (or \\[log] url): the verified mirror of that log service and its index
    (rebuilt from the verified entries on every read, so --repair is refused)."""
    remote = remote_for(log_url, log_key)
    if remote is not None:
        if do_repair:
            raise InvalidInput(
                "--repair works on the workspace's own log, not on a log service",
                hint="the mirror of a log service is verified and indexed on every read; "
                "repair the chain with `--log local` where the steps were recorded",
            )
        _remote_status(remote, backend, rpc, as_json)
        return
    ws = open_workspace()
    store = open_keystore()
    forced_local = backend == "local"
    with open_log(read_only=not do_repair) as log:
        trusted = default_log_key(ws)
        key = Secp256k1NoteKey(log.origin, trusted.keyid) if trusted else log.log_key()
        verified = log.verify(key, log.witness_keys())
        index_findings = check_index(ws, log)
    repaired: list[str] = []
    failure: AiledgerError | None = None
    with open_registry(store, backend=backend, rpc=rpc, read_only=not do_repair) as registry:
        findings, chain = _check(registry, forced_local, index=False)
        findings = index_findings + findings
        if do_repair and any(f.repairable for f in findings):
            chain_backend = registry.backend if isinstance(registry.backend, ChainBackend) else None

            def on_step(step: Step) -> None:
                repaired.append(step.describe())

            try:
                fixed = repair(
                    registry,
                    chain_backend,
                    findings,
                    signer_for=_signers(store, password_file, registry),
                    on_step=on_step,
                )
                repaired[:0] = [
                    f"index: indexed the log again ({f.kind})"
                    for f in fixed
                    if f.kind.startswith("index-")
                ]
            except AiledgerError as exc:
                failure = exc
            findings, chain = _check(registry, forced_local, index=True)
    doc = {
        "in_step": not findings,
        "log": {"size": verified.size, "root": verified.root.hex(), "verified": True},
        "chain": chain,
        "findings": [f.to_dict() for f in findings],
        "repaired": repaired,
    }
    _report(doc, findings, failure, as_json)


def _remote_status(remote: RemoteLog, backend: str | None, rpc: str | None, as_json: bool) -> None:
    """``status`` over the verified mirror of a log service."""
    with open_registry(backend=backend, rpc=rpc, read_only=True, remote=remote) as registry:
        verified = registry.log.verify(registry.log.log_key(), registry.log.witness_keys())
        findings, chain = _check(registry, backend == "local", index=False)
    doc = {
        "in_step": not findings,
        "log": {
            "size": verified.size,
            "root": verified.root.hex(),
            "verified": True,
            "url": remote.url,
        },
        "chain": chain,
        "findings": [f.to_dict() for f in findings],
        "repaired": [],
    }
    _report(doc, findings, None, as_json)


def _report(
    doc: dict[str, Any], findings: list[Finding], failure: AiledgerError | None, as_json: bool
) -> None:
    emit(doc, as_json, lambda: _show(doc))
    if failure is not None:
        raise failure
    if findings:
        fixable = sum(f.repairable for f in findings)
        raise OutOfStep(
            f"the workspace is out of step: {len(findings)} finding(s), {fixable} repairable",
            hint=REPAIR_HINT
            if fixable
            else "the log does not prove the rest (chain state it does not explain, deploy "
            "statements that are no events): it is for a person to look into",
        )
