"""The repair of what the log proves (``ailedger status --repair``): re-index the log, replay
the chain steps it records (see :mod:`ailedger.registry.status`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ailedger.chain.registry import env_id
from ailedger.errors import InvalidInput, NotFound
from ailedger.identity.keys import Signer, checksum_address
from ailedger.registry import _batch
from ailedger.registry._backend import VersionRegistration
from ailedger.registry._chain import ChainBackend
from ailedger.registry._findings import Finding, Step
from ailedger.registry._refs import VersionRef
from ailedger.registry._registry import Registry

__all__ = ["repair"]


def _simulate_deploy(backend: ChainBackend, env: str, ref: VersionRef, signer: Signer) -> None:
    """Run the deploy as a call first: a refusal by the contract sends nothing."""
    sender = checksum_address(signer.keyid)
    vid = backend.version_id(ref)
    info = backend.registry.version(vid)
    if info is None:
        raise NotFound(f"{ref} is not registered on-chain")
    backend.chain.call(
        backend.registry.contract, "deploy", env_id(env), vid, info.subject_digest, sender=sender
    )


def _replay(backend: ChainBackend, step: Step, signer: Signer) -> None:
    if step.action == "register":
        registration = VersionRegistration(step.ref, step.digest, step.roots, step.log_index)
        backend.register_version(registration, signer=signer)
    elif step.action == "approve":
        assert step.role is not None
        backend.approve(step.ref, step.role, True, step.log_index, signer=signer)
    elif step.action == "deploy":
        assert step.env is not None
        _simulate_deploy(backend, step.env, step.ref, signer)
        backend.deploy(step.env, step.ref, step.log_index, signer=signer)
    elif step.action == "rollback":
        assert step.env is not None
        backend.prepare_rollback(step.env, step.ref, signer=signer)
        backend.rollback(step.env, step.ref, step.log_index, signer=signer)
    else:
        backend.deprecate(step.ref, step.log_index, signer=signer)


def repair(
    registry: Registry,
    backend: ChainBackend | None,
    findings: Iterable[Finding],
    *,
    signer_for: Callable[[str], Signer],
    on_step: Callable[[Step], None] | None = None,
) -> list[Finding]:
    """Finish what the log proves: re-index the log when the index needs it, then replay the
    repairable chain steps in log order, each by the key that signed its entry
    (``signer_for(keyid)`` unlocks it). Returns the findings repaired. Stops at the first
    step that fails, raising its error (what was replayed before it stays done; running
    again continues, every write being idempotent). Findings that are not repairable are
    left alone."""
    todo = [f for f in findings if f.repairable]
    done: list[Finding] = []
    index = [f for f in todo if f.kind.startswith("index-")]
    if any(f.kind == "index-differs" for f in index):
        registry.index.rebuild(registry.log, lambda root: _batch.read(registry.batch_dir, root))
        registry.sync()  # judges the events again
    elif index:
        registry.sync()
    done += index
    steps = sorted(
        ((f.step, f) for f in todo if f.step is not None), key=lambda pair: pair[0].log_index
    )
    if steps and backend is None:
        raise InvalidInput("the chain steps need the chain backend")
    for step, finding in steps:
        assert backend is not None
        _replay(backend, step, signer_for(step.keyid))
        done.append(finding)
        if on_step is not None:
            on_step(step)
    done += [f for f in todo if f.kind == "serving-differs"]
    return done
