"""Event links: each deploy or rollback names the previous event of its environment, so a
trace proves "nothing in between" from the log alone, and a trace document verifies with the
log's public data only."""

from __future__ import annotations

import base64
import dataclasses
import json
import shutil
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _cli import PASSWORD
from _profiles import examples
from _workflow_util import Setup, fast_keystore, make_setup, variant
from ailedger.attest.predicates import DeploymentPredicate, EventLink
from ailedger.attest.statements import attest
from ailedger.errors import ConflictError, ProofInvalid, SignatureInvalid
from ailedger.identity.keys import Secp256k1Signer, Signer
from ailedger.log.checkpoint import Secp256k1NoteKey
from ailedger.registry import Registry
from ailedger.registry._index import EventRow
from ailedger.registry._records import named_subject, utc_now
from ailedger.registry._refs import VersionRef
from ailedger.registry._trace_proof import EntryProof, ServingTrace, event_predicate
from ailedger.registry.policy import parse_policy
from ailedger.registry.trace import trace_at
from ailedger.workspace import Workspace

OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")
VERSIONS = [VersionRef("r", str(i)) for i in range(1, 4)]


def _register(setup: Setup, reg: Registry) -> None:
    trainer = setup.signer("trainer")
    for i, ref in enumerate(VERSIONS):
        reg.register_model(variant(setup, f"m{i}", f'{{"v": {i}}}'), ref, trainer)


def _predicate(reg: Registry, event: EventRow) -> DeploymentPredicate:
    predicate = event_predicate(reg.log.get(event.log_index).envelope)
    assert predicate is not None
    return predicate


def _checkpoint(reg: Registry, signer: Signer) -> Secp256k1NoteKey:
    assert isinstance(signer, Secp256k1Signer)
    key = Secp256k1NoteKey.from_signer(reg.log.origin, signer)
    reg.log.checkpoint(key)
    return Secp256k1NoteKey(reg.log.origin, signer.keyid)


def _proof(reg: Registry, index: int) -> EntryProof:
    return EntryProof(reg.log.get(index), reg.log.inclusion_proof(index, reg.log.size()))


def _document(result: ServingTrace) -> dict[str, Any]:
    """The trace document as a file would hold it (a JSON round trip)."""
    doc = json.loads(json.dumps(result.to_dict()))
    assert isinstance(doc, dict)
    return doc


def _history(setup: Setup, reg: Registry) -> Signer:
    trainer = setup.signer("trainer")
    _register(setup, reg)
    a, b, c = VERSIONS
    reg.deploy(a, "prod", trainer, OPEN)
    reg.deploy(a, "staging", trainer, OPEN)
    reg.deploy(b, "prod", trainer, OPEN)
    reg.deploy(c, "prod", trainer, OPEN)
    reg.rollback("prod", trainer)
    reg.deploy(b, "staging", trainer, OPEN)
    reg.rollback("prod", trainer, to=a)
    return trainer


def test_each_event_names_the_previous_event_of_its_environment(setup: Setup) -> None:
    with setup.registry() as reg:
        _history(setup, reg)
        for env in ("prod", "staging"):
            events = reg.index.events(env)
            predicates = [_predicate(reg, e) for e in events]
            assert all(p.linked for p in predicates)
            assert predicates[0].previous is None
            assert predicates[0].to_dict()["previous"] is None  # present: "first" is a claim
            for before, predicate in zip(events, predicates[1:], strict=False):
                leaf = reg.log.get(before.log_index).leaf_hash.hex()
                assert predicate.previous == EventLink(log_index=before.log_index, leaf_hash=leaf)
        deprecated = reg.deprecate(VERSIONS[1], "old", setup.signer("trainer"))
        assert "previous" not in deprecated.predicate  # a deprecation is not an event


def test_a_deprecation_cannot_carry_a_link() -> None:
    with pytest.raises(ValueError, match="a deprecation is not an event"):
        DeploymentPredicate(
            environment="*", action="deprecate", version="r@1", previous=None, time=utc_now()
        )


def test_a_trace_document_verifies_from_public_data_alone(setup: Setup) -> None:
    with setup.registry() as reg:
        trainer = _history(setup, reg)
        key = _checkpoint(reg, trainer)
        times = [_predicate(reg, e).time for e in reg.index.events("prod")]
        result = trace_at(reg, "prod", times[1])
    assert result.checkpoint is not None
    assert result.log_key is not None
    doc = _document(result)
    assert doc["adjacency"] == "linked"
    assert doc["next_event"]["previous"]["log_index"] == doc["event"]["log_index"]
    parsed = ServingTrace.from_dict(doc)
    checked = parsed.verify(log_key=key, require_checkpoint=True, require_links=True)
    assert checked.log_key_trusted
    assert (checked.ref, checked.since, checked.until) == (VersionRef("r", "2"), *times[1:3])
    untrusted = parsed.verify(require_checkpoint=True, require_links=True)
    assert not untrusted.log_key_trusted  # the document's own key: reported as untrusted
    other = Secp256k1NoteKey(key.name, "0x" + "11" * 20)
    with pytest.raises(SignatureInvalid):
        parsed.verify(log_key=other, require_checkpoint=True)
    unsigned = dataclasses.replace(parsed, checkpoint=None)
    with pytest.raises(ProofInvalid) as caught:
        unsigned.verify(require_checkpoint=True)
    assert caught.value.code == "trace-checkpoint-missing"


def _with_payload(doc: dict[str, Any], where: str, change: dict[str, Any]) -> dict[str, Any]:
    """``doc`` with the statement of ``doc[where]`` changed (signatures left as they were)."""
    out = json.loads(json.dumps(doc))
    envelope = out[where]["envelope"]
    statement = json.loads(base64.b64decode(envelope["payload"]))
    statement["predicate"].update(change)
    envelope["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()
    return dict(out)


def test_a_tampered_link_fails(setup: Setup) -> None:
    with setup.registry() as reg:
        trainer = _history(setup, reg)
        _checkpoint(reg, trainer)
        events = reg.index.events("prod")
        result = trace_at(reg, "prod", _predicate(reg, events[0]).time)
        doc = _document(result)
        older = {"log_index": 0, "leaf_hash": reg.log.get(0).leaf_hash.hex()}
        # Edited in place: the signature no longer holds.
        with pytest.raises(SignatureInvalid):
            ServingTrace.from_dict(_with_payload(doc, "next_event", {"previous": older}))
        # Re-signed by a key holder: no longer the leaf the log proves.
        assert result.next_event is not None
        forged = DeploymentPredicate.model_validate(
            {**_predicate(reg, events[1]).to_dict(), "previous": older}
        )
        envelope = attest(forged, [named_subject(events[1].ref, events[1].digest)], [trainer])
        resigned = json.loads(json.dumps(doc))
        resigned["next_event"]["envelope"] = envelope.to_dict()
        with pytest.raises(ProofInvalid) as caught:
            ServingTrace.from_dict(resigned).verify()
        assert caught.value.code == "trace-leaf-mismatch"


def test_swapped_entries_fail(setup: Setup) -> None:
    with setup.registry() as reg:
        _history(setup, reg)
        events = reg.index.events("prod")
        result = trace_at(reg, "prod", _predicate(reg, events[1]).time)
        assert result.next_event is not None
        swapped = dataclasses.replace(result, event=result.next_event, next_event=result.event)
        with pytest.raises(ProofInvalid) as caught:
            swapped.verify()
        assert caught.value.code in ("trace-claim-mismatch", "trace-link-mismatch")
        doc = _document(result)
        doc["event"], doc["next_event"] = doc["next_event"], doc["event"]
        with pytest.raises(ProofInvalid):
            ServingTrace.from_dict(doc).verify()


def test_a_trace_skipping_an_event_in_between_fails(setup: Setup) -> None:
    with setup.registry() as reg:
        trainer = _history(setup, reg)
        _checkpoint(reg, trainer)
        events = reg.index.events("prod")
        assert len(events) == 5
        result = trace_at(reg, "prod", _predicate(reg, events[1]).time)
        # Claim events[1] served until events[3]: events[2] sits between them.
        skipping = dataclasses.replace(result, next_event=_proof(reg, events[3].log_index))
        with pytest.raises(ProofInvalid, match="not consecutive") as caught:
            skipping.verify()
        assert caught.value.code == "trace-link-mismatch"
        doc = _document(skipping)
        with pytest.raises(ProofInvalid) as caught:
            ServingTrace.from_dict(doc).verify(require_checkpoint=True, require_links=True)
        assert caught.value.code == "trace-link-mismatch"


def _hand_event(reg: Registry, signer: Signer, ref: VersionRef, **link: Any) -> int:
    """Append a deploy of ``ref`` to prod written by hand (an older or a foreign writer)."""
    digest = reg.model(ref).digest
    predicate = DeploymentPredicate(
        environment="prod", action="deploy", version=str(ref), time=utc_now(), **link
    )
    index = reg.log.append(attest(predicate, [named_subject(ref, digest)], [signer]).to_json())
    reg.sync()
    return index


def test_an_unlinked_older_event_is_reported_not_proven(setup: Setup) -> None:
    with setup.registry() as reg:
        trainer = setup.signer("trainer")
        _register(setup, reg)
        _hand_event(reg, trainer, VERSIONS[0])
        _hand_event(reg, trainer, VERSIONS[1])
        events = reg.index.events("prod")
        result = trace_at(reg, "prod", _predicate(reg, events[0]).time)
        assert result.adjacency == "unlinked"
        result.verify()  # the local index vouches for it
        with pytest.raises(ProofInvalid, match="written before links") as caught:
            result.verify(require_links=True)
        assert caught.value.code == "trace-link-missing"
        # The next registry event links to the unlinked one: the chain goes on from there.
        reg.deploy(VERSIONS[2], "prod", trainer, OPEN)
        last = reg.index.events("prod")[-1]
        linked = trace_at(reg, "prod", _predicate(reg, events[1]).time)
        assert linked.adjacency == "linked"
        assert linked.next_event is not None
        assert linked.next_event.entry.index == last.log_index
        linked.verify(require_links=True)


def test_a_false_first_claim_and_a_fork_are_not_events(setup: Setup) -> None:
    """A hand-written event claiming to be the first of prod, or naming an event that
    already has a successor, forks the environment's history: the index keeps the first
    chain in log order (issue 11), so trace answers from it and never builds on the fork."""
    with setup.registry() as reg:
        trainer = _history(setup, reg)
        events = reg.index.events("prod")
        first = _hand_event(reg, trainer, VERSIONS[1], previous=None)
        claim = _predicate(reg, EventRow(first, "prod", 0, "deploy", VERSIONS[1], "")).time
        result = trace_at(reg, "prod", claim)
        assert result.event.entry.index == events[-1].log_index
        result.verify(require_links=True)
    with setup.registry() as reg:
        fork = EventLink(
            log_index=events[0].log_index,
            leaf_hash=reg.log.get(events[0].log_index).leaf_hash.hex(),
        )
        forked = _hand_event(reg, trainer, VERSIONS[2], previous=fork)
        assert reg.index.events("prod") == events
        verdicts = [(r.event.log_index, r.verdict) for r in reg.index.rejected()]
        assert verdicts == [
            (first, "environment-history-fork"),
            (forked, "environment-history-fork"),
        ]
        at = _predicate(reg, EventRow(forked, "prod", 0, "deploy", VERSIONS[2], "")).time
        assert trace_at(reg, "prod", at).event.entry.index == events[-1].log_index


def test_racing_deploys_never_name_the_same_previous_event(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process logs an event of the environment while a deploy is being decided
    (between reading the last event and the append): the later deploy is refused."""
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        _register(setup, reg)
    with setup.registry() as first, setup.registry() as second:
        first.deploy(VERSIONS[0], "prod", trainer, OPEN)
        gate = second.gate
        meanwhile: list[Any] = []

        def racing_gate(*args: Any, **kwargs: Any) -> Any:
            for action in meanwhile:
                action()
            meanwhile.clear()
            return gate(*args, **kwargs)

        monkeypatch.setattr(second, "gate", racing_gate)
        meanwhile.append(lambda: first.deploy(VERSIONS[2], "prod", trainer, OPEN))
        size = second.log.size()
        with pytest.raises(ConflictError, match="logged meanwhile"):
            second.deploy(VERSIONS[1], "prod", trainer, OPEN)
        assert second.log.size() == size + 1  # only the other deploy
        events = second.index.events("prod")
        assert [_predicate(second, e).previous for e in events][1] == _link(second, events[0])
        # Entries that are not events of prod do not refuse it: the same envelope goes in.
        meanwhile.append(
            lambda: first.record_inference(
                VERSIONS[2], "sha256:" + "1" * 64, "sha256:" + "2" * 64, trainer
            )
        )
        meanwhile.append(lambda: first.deploy(VERSIONS[2], "staging", trainer, OPEN))
        done = second.deploy(VERSIONS[1], "prod", trainer, OPEN)
        assert second.log.size() == size + 4
        assert done.predicate["previous"] == _link(second, events[1]).model_dump()


def test_a_deprecation_logged_meanwhile_refuses_the_deploy(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Review finding: a deprecation (environment `*`) logged between the deploy's decision
    and its append is not an event of the environment, yet it must refuse the deploy."""
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        _register(setup, reg)
    with setup.registry() as first, setup.registry() as second:
        first.deploy(VERSIONS[0], "prod", trainer, OPEN)
        gate = second.gate

        def racing_gate(*args: Any, **kwargs: Any) -> Any:
            first.deprecate(VERSIONS[1], "bad weights", trainer)
            return gate(*args, **kwargs)

        monkeypatch.setattr(second, "gate", racing_gate)
        size = second.log.size()
        with pytest.raises(ConflictError, match="deprecated"):
            second.deploy(VERSIONS[1], "prod", trainer, OPEN)
        assert second.log.size() == size + 1  # only the deprecation
        assert second.current("prod") == VERSIONS[0]


def _link(reg: Registry, event: EventRow) -> EventLink:
    leaf = reg.log.get(event.log_index).leaf_hash.hex()
    return EventLink(log_index=event.log_index, leaf_hash=leaf)


def _run_deploys(ws: Workspace, versions: list[VersionRef], errors: list[BaseException]) -> None:
    try:
        store = fast_keystore(ws)
        signer = store.signer("trainer", PASSWORD)
        for ref in versions:
            for _ in range(50):
                with Registry.open(ws, keys=store.list_keys()) as reg:
                    try:
                        reg.deploy(ref, "prod", signer, OPEN)
                        break
                    except ConflictError:
                        continue  # the other thread's event came first: decide again
    except BaseException as exc:  # reported to the test's thread
        errors.append(exc)


def test_concurrent_deployers_keep_one_chain(setup: Setup) -> None:
    """Two threads deploy to one environment at once; whatever the interleaving, every event
    names the one just before it (no fork)."""
    with setup.registry() as reg:
        _register(setup, reg)
    errors: list[BaseException] = []
    plans = [[VERSIONS[i % 3] for i in range(6)], [VERSIONS[(i + 1) % 3] for i in range(6)]]
    threads = [
        threading.Thread(target=_run_deploys, args=(setup.ws, plan, errors)) for plan in plans
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with setup.registry() as reg:
        events = reg.index.events("prod")
        assert len(events) >= 2  # each thread's first deploy differs from the other's
        links = [_predicate(reg, e).previous for e in events]
        assert links[0] is None
        for before, link in zip(events, links[1:], strict=False):
            assert link is not None
            assert link.log_index == before.log_index


# --- a property over random histories ------------------------------------------------------

_OPS = st.lists(
    st.tuples(
        st.sampled_from(["deploy", "deploy", "rollback"]),
        st.sampled_from(["prod", "staging"]),
        st.integers(0, 2),
    ),
    min_size=1,
    max_size=10,
)


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workspace with r@1..r@3 registered, copied for each example."""
    root = tmp_path_factory.mktemp("trace-template")
    setup = make_setup(root)
    with setup.registry() as reg:
        _register(setup, reg)
    return root


def _copy(template: Path) -> Iterator[Setup]:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        shutil.copytree(template, root)
        ws = Workspace.open(root)
        store = fast_keystore(ws)
        yield Setup(ws, store, root, root / "model", root / "patients.csv", root / "policy.toml")


@given(ops=_OPS)
@settings(max_examples=examples(15), deadline=None)
def test_every_trace_answer_verifies_and_dropping_an_event_breaks_it(
    template: Path, ops: list[tuple[str, str, int]]
) -> None:
    for setup in _copy(template):
        trainer = setup.signer("trainer")
        with setup.registry() as reg:
            for op, env, i in ops:
                try:
                    if op == "deploy":
                        reg.deploy(VERSIONS[i], env, trainer, OPEN)
                    else:
                        reg.rollback(env, trainer)
                except ConflictError:
                    pass  # nothing to roll back to: refused, nothing logged
            key = _checkpoint(reg, trainer)
            for env in reg.index.environments():
                events = reg.index.events(env)
                times: list[datetime] = [_predicate(reg, e).time for e in events]
                for i, event in enumerate(events):
                    result = trace_at(reg, env, times[i])
                    assert result.event.entry.index == event.log_index
                    doc = ServingTrace.from_dict(_document(result))
                    checked = doc.verify(log_key=key, require_checkpoint=True, require_links=True)
                    assert checked.ref == event.ref
                    assert checked.adjacency == ("open" if i + 1 == len(events) else "linked")
                    # Any later event but the next: an event in between is dropped.
                    for later in events[i + 2 :]:
                        skipping = dataclasses.replace(
                            result, next_event=_proof(reg, later.log_index)
                        )
                        with pytest.raises(ProofInvalid) as caught:
                            skipping.verify(log_key=key, require_checkpoint=True)
                        assert caught.value.code == "trace-link-mismatch"
                    if i > 0:  # and the previous event does not reach past this one
                        before = trace_at(reg, env, times[i] - timedelta(microseconds=1))
                        assert before.event.entry.index == events[i - 1].log_index
