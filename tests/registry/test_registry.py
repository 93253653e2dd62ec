"""The registry library: index rebuilt from the log, retries, rollback stacks, predicates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from _workflow_util import Setup, make_setup, variant
from ailedger.attest.predicates import DeploymentPredicate, EvaluationPredicate, InferencePredicate
from ailedger.attest.statements import Subject, attest
from ailedger.errors import (
    ConflictError,
    IntegrityError,
    InvalidInput,
    NodeUnavailable,
    NotFound,
)
from ailedger.identity.keys import Signer
from ailedger.registry import LocalBackend, Registry, RoleMissing, VersionRegistration
from ailedger.registry._index import INDEX_DB_NAME, RegistryIndex
from ailedger.registry._refs import VersionRef, parse_digest_or_file, parse_param
from ailedger.registry.evaluation import record_evaluation
from ailedger.registry.policy import parse_policy

OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")
NOW = datetime(2026, 11, 25, 10, 42, tzinfo=UTC)


def _model(setup: Setup, reg: Registry, version: str, content: str | None = None) -> VersionRef:
    ref = VersionRef("triage", version)
    path = setup.model if content is None else variant(setup, f"m-{version}", content)
    reg.register_model(path, ref, setup.signer("trainer"))
    return ref


def test_index_is_rebuilt_from_the_log(setup: Setup) -> None:
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        reg.register_dataset(setup.data, VersionRef("patients", "1"), trainer)
        a = _model(setup, reg, "1")
        b = _model(setup, reg, "2", '{"v": 2}')
        reg.deploy(a, "prod", trainer, OPEN)
        reg.deploy(b, "prod", trainer, OPEN)
        reg.rollback("prod", trainer)
        reg.deprecate(b, "drift", trainer)
        reg.record_inference(a, "sha256:" + "1" * 64, "sha256:" + "2" * 64, trainer)
        reg.record_inference_batch(a, [("sha256:" + "3" * 64, "sha256:" + "4" * 64)], trainer)
        before = reg.index.dump()
    (setup.ws.path / INDEX_DB_NAME).unlink()
    with setup.registry() as reg:
        assert reg.index.dump() == before
        assert reg.current("prod") == a
        assert reg.index.deprecation(b) is not None


def test_a_log_entry_without_its_index_row_is_completed_by_the_next_open(setup: Setup) -> None:
    """A crash after the log append and before the index leaves a state the next run fixes."""
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        ref = _model(setup, reg, "1")
        digest = reg.model(ref).digest
        predicate = DeploymentPredicate(
            environment="prod", action="deploy", version=str(ref), time=NOW
        )
        subject = Subject(name=str(ref), digest={"sha256": digest.split(":")[1]})
        reg.log.append(attest(predicate, [subject], [trainer]).to_json())  # no sync: "crash"
        assert reg.index.events("prod") == []
    with setup.registry() as reg:
        assert reg.current("prod") == ref


def test_registering_again_is_idempotent_and_renotifies_the_backend(setup: Setup) -> None:
    seen: list[VersionRegistration] = []

    class Recording(LocalBackend):
        def register_version(self, version: VersionRegistration, *, signer: Signer) -> None:
            seen.append(version)

    keys = setup.store.list_keys()
    with Registry.open(setup.ws, keys=keys, backend=Recording(setup.ws, keys)) as reg:
        first = reg.register_model(setup.model, VersionRef("m", "1"), setup.signer("trainer"))
        again = reg.register_model(setup.model, VersionRef("m", "1"), setup.signer("trainer"))
        assert not first.already
        assert again.already
        assert again.log_index == first.log_index
        assert reg.log.size() == 1
    assert [v.log_index for v in seen] == [first.log_index, first.log_index]


def test_a_retry_completes_what_the_backend_missed(setup: Setup) -> None:
    """The log took the deploy, the backend (a chain) failed: running it again completes it."""
    calls: list[tuple[str, int]] = []

    class Flaky(LocalBackend):
        name = "flaky"

        def deploy(self, env: str, ref: VersionRef, log_index: int, *, signer: Signer) -> None:
            calls.append((str(ref), log_index))
            if len(calls) == 1:
                raise NodeUnavailable("the node is down")

    keys = setup.store.list_keys()
    with Registry.open(setup.ws, keys=keys, backend=Flaky(setup.ws, keys)) as reg:
        ref = _model(setup, reg, "1")
        with pytest.raises(NodeUnavailable):
            reg.deploy(ref, "prod", setup.signer("trainer"), OPEN)
        assert reg.current("prod") == ref  # the log has it
        size = reg.log.size()
        retry = reg.deploy(ref, "prod", setup.signer("trainer"), OPEN)
        assert retry.already
        assert reg.log.size() == size
    assert calls == [(str(ref), retry.log_index)] * 2


def test_rollback_follows_the_deployment_stack(setup: Setup) -> None:
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        a, b, c = (_model(setup, reg, str(i), f'{{"v": {i}}}') for i in (1, 2, 3))
        for ref in (a, b, c):
            reg.deploy(ref, "prod", trainer, OPEN)
        assert reg.stack("prod") == [a, b, c]
        assert reg.rollback("prod", trainer).ref == str(b)
        assert reg.rollback("prod", trainer, to=a).ref == str(a)
        assert reg.stack("prod") == [a]
        with pytest.raises(ConflictError, match="nothing to roll back to"):
            reg.rollback("prod", trainer)
        reg.deploy(c, "prod", trainer, OPEN)
        reg.deprecate(a, "superseded", trainer)
        with pytest.raises(ConflictError, match="deprecated"):
            reg.rollback("prod", trainer)
        size = reg.log.size()
        assert reg.rollback("prod", trainer, to=c).already
        assert reg.log.size() == size


def test_gate_failure_signs_nothing(setup: Setup) -> None:
    strict = parse_policy('version = 1\n[all.evaluations]\nacc = "acc >= 0.9"\n')
    with setup.registry() as reg:
        ref = _model(setup, reg, "1")
        size = reg.log.size()
        with pytest.raises(Exception, match="evaluation-missing"):
            reg.deploy(ref, "prod", setup.signer("trainer"), strict)
        assert reg.log.size() == size
        result = record_evaluation("acc", {"acc": 0.95}, ["acc>=0.9"])
        reg.record_evaluation(ref, result, setup.signer("trainer"))
        reg.deploy(ref, "prod", setup.signer("trainer"), strict)


def test_roles_come_from_members_or_key_metadata(setup: Setup) -> None:
    keys = setup.store.list_keys()
    backend = LocalBackend(setup.ws, keys)
    qa, trainer, outsider = (setup.store.info(n).keyid for n in ("qa", "trainer", "outsider"))
    assert backend.role_of(qa) == ({"qa"}, "acme")
    assert backend.role_of(trainer) == ({"deployer"}, "acme")  # make_setup grants it
    assert backend.role_of(outsider) is None
    with setup.registry() as reg:
        ref = _model(setup, reg, "1")
        with pytest.raises(RoleMissing):
            reg.approve(ref, "qa", setup.signer("outsider"))
        with pytest.raises(InvalidInput, match="not a role"):
            reg.approve(ref, "Q A", setup.signer("qa"))


def test_index_of_another_log_is_refused(setup: Setup, tmp_path: Path) -> None:
    other = make_setup(tmp_path / "other", origin="example.com/other")
    with other.registry() as reg:
        _model(other, reg, "1")
    index = RegistryIndex(other.ws.path / INDEX_DB_NAME)
    with setup.registry() as reg, pytest.raises(IntegrityError, match="belongs to log"):
        index.sync(reg.log, lambda root: None)
    index.close()
    with other.registry() as reg:
        index = RegistryIndex(other.ws.path / INDEX_DB_NAME)
        index.db.execute("UPDATE meta SET value = '99' WHERE key = 'synced'")
        with pytest.raises(IntegrityError, match="has read 99 entries"):
            index.sync(reg.log, lambda root: None)
        index.close()


def test_unknown_model_lists_what_exists(setup: Setup) -> None:
    with setup.registry() as reg:
        _model(setup, reg, "1")
        with pytest.raises(NotFound, match="versions of triage: triage@1"):
            reg.model(VersionRef("triage", "9"))


# --- predicates ------------------------------------------------------------------------------


def _check(value: float | None, threshold: float) -> dict[str, Any]:
    return {"metric": "m", "comparator": ">=", "threshold": threshold, "value": value}


@given(
    st.lists(
        st.tuples(
            st.one_of(st.none(), st.floats(-10, 10)),
            st.floats(-10, 10),
        ),
        max_size=4,
    ),
    st.one_of(st.none(), st.integers(-3, 3)),
)
def test_evaluation_passed_is_all_checks_and_a_clean_exit(
    checks: list[tuple[float | None, float]], exit_code: int | None
) -> None:
    doc = {
        "name": "suite",
        "metrics": {"m": 1.0},
        "checks": [_check(v, t) for v, t in checks],
        "exit_code": exit_code,
    }
    pred = EvaluationPredicate.model_validate(doc)
    expected = all(v is not None and v >= t for v, t in checks) and exit_code in (None, 0)
    assert pred.passed is expected
    with pytest.raises(ValueError, match="passed"):
        EvaluationPredicate.model_validate({**doc, "passed": not expected})


def test_old_evaluation_documents_stay_valid() -> None:
    old = {"metric": "accuracy", "value": 0.93, "comparator": ">=", "threshold": 0.9}
    assert EvaluationPredicate.model_validate(old).passed is True
    with pytest.raises(ValueError, match="go together"):
        EvaluationPredicate.model_validate({"metric": "accuracy", "value": 0.93})
    with pytest.raises(ValueError, match="name or a metric"):
        EvaluationPredicate.model_validate({"metrics": {"a": 1.0}})
    nothing = EvaluationPredicate.model_validate({"name": "smoke", "exit_code": None})
    assert nothing.passed is False


def test_inference_is_one_record_or_a_batch() -> None:
    digest = "sha256:" + "a" * 64
    one = {"input_digest": digest, "model_digest": digest, "output_digest": digest, "time": NOW}
    assert InferencePredicate.model_validate(one).batch_root is None
    batch = {"model_digest": digest, "batch_root": "b" * 64, "batch_size": 3, "time": NOW}
    assert InferencePredicate.model_validate(batch).leaf_encoding == "jcs-input-output"
    with pytest.raises(ValueError, match="not both"):
        InferencePredicate.model_validate({**one, **batch})
    with pytest.raises(ValueError, match="output_digest"):
        InferencePredicate.model_validate({**one, "output_digest": None})


# --- parsers ---------------------------------------------------------------------------------

_names = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,20}", fullmatch=True)
_versions = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,10}", fullmatch=True)


@given(_names, _versions)
def test_version_refs_round_trip(name: str, version: str) -> None:
    ref = VersionRef(name, version)
    assert VersionRef.parse(str(ref)) == ref


@given(st.text(max_size=30))
@settings(max_examples=examples(200))
def test_version_ref_parser_never_crashes(text: str) -> None:
    try:
        ref = VersionRef.parse(text)
    except InvalidInput:
        return
    assert str(ref) == text


@pytest.mark.parametrize("text", ["model", "@1", "m@", "m@1 2", "-m@1", "m@@"])
def test_bad_refs(text: str) -> None:
    with pytest.raises(InvalidInput):
        VersionRef.parse(text)


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
                       st.one_of(st.integers(), st.booleans(), st.text(max_size=8))))  # fmt: skip
def test_params_parse_json_values_or_keep_text(params: dict[str, Any]) -> None:
    import json

    for key, value in params.items():
        text = json.dumps(value) if not isinstance(value, str) else value
        parsed_key, parsed = parse_param(f"{key}={text}")
        assert parsed_key == key
        if not isinstance(value, str):
            assert parsed == value


def test_digest_or_file(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"abc")
    assert parse_digest_or_file("f", tmp_path).startswith("sha256:ba7816bf")
    assert parse_digest_or_file("sha256:" + "A" * 64) == "sha256:" + "a" * 64
    with pytest.raises(InvalidInput, match="64 hex"):
        parse_digest_or_file("sha256:abc")
    with pytest.raises(NotFound):
        parse_digest_or_file("missing-file", tmp_path)
