"""Trace: what served an environment at a time, with proofs that verify and catch tampering."""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _workflow_util import Setup, variant
from ailedger import merkle
from ailedger.errors import InvalidInput, NotFound, ProofInvalid
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log.checkpoint import Secp256k1NoteKey
from ailedger.registry import Registry, _batch
from ailedger.registry._refs import VersionRef, parse_time
from ailedger.registry._trace_proof import event_predicate
from ailedger.registry.policy import parse_policy
from ailedger.registry.trace import trace_at, trace_output

OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")


def _at(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _deploy_history(setup: Setup, reg: Registry) -> list[VersionRef]:
    """Deploy 1, 2, 3, roll back to 2, roll back to 1, deploy 3: the ref after each event."""
    trainer = setup.signer("trainer")
    refs = []
    for i in (1, 2, 3):
        ref = VersionRef("triage", str(i))
        reg.register_model(variant(setup, f"m{i}", f'{{"v": {i}}}'), ref, trainer)
        refs.append(ref)
    a, b, c = refs
    reg.deploy(a, "prod", trainer, OPEN)
    reg.deploy(b, "prod", trainer, OPEN)
    reg.deploy(c, "prod", trainer, OPEN)
    reg.rollback("prod", trainer)
    reg.rollback("prod", trainer)
    reg.deploy(c, "prod", trainer, OPEN)
    reg.deploy(a, "staging", trainer, OPEN)
    return [a, b, c, b, a, c]


def signed_times(reg: Registry, env: str) -> list[datetime]:
    """The signed times of the deploy and rollback statements of ``env``, in log order."""
    out = []
    for event in reg.index.events(env):
        predicate = event_predicate(reg.log.get(event.log_index).envelope)
        assert predicate is not None
        out.append(predicate.time)
    return out


def test_trace_at_every_event_and_between(setup: Setup) -> None:
    with setup.registry() as reg:
        expected = _deploy_history(setup, reg)
        events = reg.index.events("prod")
        assert [e.ref for e in events] == expected
        times = signed_times(reg, "prod")
        assert times == sorted(times)
        for i, (event, when) in enumerate(zip(events, times, strict=True)):
            for at in (when, when + (times[i + 1] - when) / 2 if i + 1 < len(times) else when):
                result = trace_at(reg, "prod", at)
                result.verify(require_links=True)
                assert result.ref == event.ref
                assert result.event.entry.index == event.log_index
                if i + 1 == len(events):
                    assert result.next_event is None
                    assert result.adjacency == "open"
                else:
                    assert result.next_event is not None
                    assert result.next_event.entry.index == events[i + 1].log_index
                    assert result.adjacency == "linked"
            if i > 0:  # just before its signed time, the previous event served
                assert (
                    trace_at(reg, "prod", when - timedelta(microseconds=1)).ref == expected[i - 1]
                )
        with pytest.raises(NotFound, match="the first was triage@1"):
            trace_at(reg, "prod", times[0] - timedelta(microseconds=1))
        with pytest.raises(NotFound, match="environments: prod, staging"):
            trace_at(reg, "dev", times[-1])
        late = trace_at(reg, "staging", times[-1] + timedelta(days=1))
        assert late.ref == VersionRef("triage", "1")


def test_tampered_trace_proofs_are_rejected(setup: Setup) -> None:
    with setup.registry() as reg:
        _deploy_history(setup, reg)
        first = signed_times(reg, "prod")[0]
        result = trace_at(reg, "prod", first)
        assert result.next_event is not None
        other = dataclasses.replace(result.event, entry=result.next_event.entry)
        with pytest.raises(ProofInvalid, match="not the proven leaf"):
            dataclasses.replace(result, event=other).verify()
        swapped = dataclasses.replace(result, next_event=result.event)
        with pytest.raises(ProofInvalid, match=r"not consecutive") as caught:
            swapped.verify()
        assert caught.value.code == "trace-link-mismatch"
        with pytest.raises(ProofInvalid, match=r"not a deploy or rollback of staging"):
            dataclasses.replace(result, env="staging").verify()
        earlier = dataclasses.replace(result, at=first - timedelta(microseconds=1))
        with pytest.raises(ProofInvalid, match="after the traced time"):
            earlier.verify()
        claimed = dataclasses.replace(result, ref=VersionRef("triage", "2"))
        with pytest.raises(ProofInvalid, match="the trace names") as caught:
            claimed.verify()
        assert caught.value.code == "trace-claim-mismatch"


def test_trace_uses_a_signed_checkpoint_when_it_covers_the_events(setup: Setup) -> None:
    with setup.registry() as reg:
        _deploy_history(setup, reg)
        last = signed_times(reg, "prod")[-1]
        signer = setup.signer("trainer")
        assert isinstance(signer, Secp256k1Signer)
        reg.log.checkpoint(Secp256k1NoteKey.from_signer(reg.log.origin, signer))
        result = trace_at(reg, "prod", last)
        assert result.checkpoint is not None
        assert result.checkpoint.startswith(reg.log.origin)
        assert result.to_dict()["tree_size"] == reg.log.size()


def test_trace_output_single_and_batched(setup: Setup) -> None:
    trainer = setup.signer("trainer")
    digest = "sha256:{:064x}".format
    with setup.registry() as reg:
        ref = VersionRef("triage", "1")
        reg.register_model(setup.model, ref, trainer)
        reg.record_inference(ref, digest(1), digest(2), trainer)
        records = [(digest(100 + i), digest(200 + i)) for i in range(7)]
        reg.record_inference_batch(ref, records, trainer)
        single = trace_output(reg, digest(1))
        assert [(t.ref, t.output_digest, t.position) for t in single] == [(ref, digest(2), None)]
        single[0].verify()
        found = trace_output(reg, digest(104))
        assert found[0].position == 4
        assert found[0].output_digest == digest(204)
        found[0].verify()
        forged = dataclasses.replace(found[0], output_digest=digest(999))
        with pytest.raises(ProofInvalid, match="not the proven leaf"):
            forged.verify()
        # The record's proof is pinned to the batch root, size and position the statement
        # signs: the same record proven in another tree (here: a one-record batch of its
        # own, where the leaf is the root) is refused.
        rec = found[0].record_proof
        assert rec is not None
        alone = merkle.InclusionProof(1, 0, rec.leaf_hash, (), rec.leaf_hash)
        elsewhere = [
            dataclasses.replace(found[0], record_proof=alone),
            dataclasses.replace(found[0], record_proof=dataclasses.replace(rec, tree_size=6)),
            dataclasses.replace(found[0], position=3),
        ]
        for other in elsewhere:
            with pytest.raises(ProofInvalid) as exc:
                other.verify()
            assert exc.value.code == "inference-record-mismatch"
        with pytest.raises(NotFound, match="no inference record"):
            trace_output(reg, digest(3))


@given(st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5, minutes=-30))])))
def test_parse_time_round_trips(when: datetime) -> None:
    assert parse_time(when.isoformat()) == when
    if when.tzinfo is UTC:
        assert parse_time(when.isoformat().replace("+00:00", "Z")) == when


@given(st.datetimes())
def test_parse_time_needs_a_zone(when: datetime) -> None:
    with pytest.raises(InvalidInput, match="no time zone"):
        parse_time(when.isoformat())


@given(st.text(max_size=40))
def test_parse_time_never_crashes(text: str) -> None:
    try:
        value = parse_time(text)
    except InvalidInput:
        return
    assert value.tzinfo is not None


_digests = st.integers(0, 2**64).map("sha256:{:064x}".format)


@given(st.lists(st.tuples(_digests, _digests), min_size=1, max_size=40), st.data())
def test_every_batch_record_is_provable(
    records: list[tuple[str, str]], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = _batch.write(Path(tmp), records)
        assert _batch.read(Path(tmp), root) == records
        position = data.draw(st.integers(0, len(records) - 1))
        record, proof = _batch.proof(Path(tmp), root, position)
        assert record == records[position]
        proof.verify(bytes.fromhex(root))
        assert merkle.leaf_hash(_batch.leaf(*record)) == proof.leaf_hash
        forged = merkle.leaf_hash(_batch.leaf(record[0], "sha256:" + "f" * 64))
        if forged != proof.leaf_hash:
            with pytest.raises(ProofInvalid):
                dataclasses.replace(proof, leaf_hash=forged).verify()
        (Path(tmp) / f"{root}.jsonl").write_text("")
        assert _batch.read(Path(tmp), root) is None  # emptied: no longer the batch
