"""The audit report: releases, evidence, bias audits, verification status, HTML and JSON."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import ClassVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _workflow_util import PASSWORD, Setup, variant
from ailedger.attest.predicates import DeploymentPredicate, EvaluationPredicate
from ailedger.attest.statements import attest
from ailedger.audit import (
    AUDIT_SCHEMA,
    DEFAULT_AUDIT_NAMES,
    AuditReport,
    audit_names_for,
    build_report,
    on_chain,
    write_report,
)
from ailedger.audit._items import _artifact_status
from ailedger.audit._svg import esc, metrics_svg, timeline_svg
from ailedger.chain import open_embedded
from ailedger.chain.anchoring import ANCHORS_FILE, AnchorBook, anchor_checkpoint
from ailedger.chain.anchors import LogAnchors
from ailedger.chain.deployments import deploy_contracts
from ailedger.errors import StorageError
from ailedger.identity.keys import (
    PBKDF2_ROUNDS_TEST_ONLY,
    SCRYPT_N_TEST_ONLY,
    Keystore,
    Secp256k1Signer,
    Signer,
)
from ailedger.log import LOG_DB_NAME, TransparencyLog
from ailedger.log.checkpoint import Secp256k1NoteKey, vkey
from ailedger.registry._records import named_subject
from ailedger.registry._refs import VersionRef
from ailedger.registry.evaluation import record_evaluation
from ailedger.registry.policy import parse_policy

OPEN = parse_policy("version = 1\nunsafe_allow_no_requirements = true\n")
V1, V2 = VersionRef("triage", "1"), VersionRef("triage", "2")


def _secp(signer: Signer) -> Secp256k1Signer:
    assert isinstance(signer, Secp256k1Signer)
    return signer


def _scenario(setup: Setup, *, checkpoint: bool = True) -> None:
    """Two releases: v1 with a passed bias audit, v2 with a failed evaluation and none;
    deploys to prod and staging, a rollback, a deprecation; then a signed checkpoint."""
    trainer, qa = setup.signer("trainer"), setup.signer("qa")
    with setup.registry() as reg:
        reg.register_dataset(setup.data, VersionRef("patients", "1"), trainer)
        reg.register_model(
            setup.model, V1, trainer, datasets=[VersionRef("patients", "1")], team="ml"
        )
        reg.register_model(variant(setup, "m2", '{"v": 2}'), V2, trainer)
        reg.record_evaluation(V1, record_evaluation("accuracy", {"accuracy": 0.93}), trainer)
        reg.record_evaluation(V1, record_evaluation("bias-audit", {"parity": 0.97}), qa)
        reg.record_evaluation(
            V2, record_evaluation("accuracy", {"accuracy": 0.5}, ["accuracy>=0.9"]), trainer
        )
        reg.approve(V1, "qa", qa, comment="looks good")
        reg.deploy(V1, "prod", trainer, OPEN)
        reg.deploy(V1, "staging", trainer, OPEN)
        reg.deploy(V2, "prod", trainer, OPEN)
        reg.rollback("prod", trainer)
        reg.deprecate(V2, "worse on the holdout", trainer)
        if checkpoint:
            reg.log.checkpoint(Secp256k1NoteKey.from_signer(reg.log.origin, _secp(trainer)))


def _report(setup: Setup, **kwargs: object) -> AuditReport:
    with setup.registry() as reg:
        return build_report(reg, **kwargs)  # type: ignore[arg-type]


def test_report_lists_every_release_with_its_evidence(setup: Setup) -> None:
    _scenario(setup)
    report = _report(setup)
    doc = report.to_dict()
    assert doc["schema"] == AUDIT_SCHEMA
    first, second = report.releases
    assert (str(first.ref), str(second.ref)) == ("triage@1", "triage@2")
    assert [d.details["name"] for d in first.datasets] == ["patients@1"]
    assert [(e.details["name"], e.details["passed"]) for e in first.evaluations] == [
        ("accuracy", True),
        ("bias-audit", True),
    ]
    approval = first.approvals[0].details
    assert (approval["role"], approval["org"], approval["decision"], approval["comment"]) == (
        "qa",
        "acme",
        "approve",
        "looks good",
    )
    assert approval["signer"] == setup.store.info("qa").keyid
    assert [d.details["action"] for d in first.deployments] == ["deploy", "deploy", "rollback"]
    assert [d.details["action"] for d in second.deployments] == ["deploy", "deprecate"]
    assert (first.bias_audit, second.bias_audit) == ("passed", "missing")
    assert second.deprecated
    assert not first.deprecated
    summary = doc["summary"]
    assert summary["releases"] == 2
    assert summary["releases_lacking_bias_audit"] == 1
    assert summary["failed_evaluations"] == 1
    assert summary["deployments"] == {
        "prod": {"deploy": 2, "rollback": 1},
        "staging": {"deploy": 1},
    }
    assert [e["version"] for e in doc["timeline"]["prod"]] == ["triage@1", "triage@2", "triage@1"]
    # everything is signed by known keys and under the signed checkpoint
    assert summary["unverified_items"] == 0
    assert summary["items"] == 12
    assert doc["log"]["checkpoint"]["status"] == "verified"
    assert all(i.verification.anchor is None for r in report.releases for i in r.items())


def test_items_after_the_checkpoint_are_pending(setup: Setup) -> None:
    _scenario(setup, checkpoint=False)
    report = _report(setup)
    statuses = {i.verification.inclusion for r in report.releases for i in r.items()}
    assert statuses == {"pending"}
    assert report.summary()["unverified"]["inclusion_pending"] == report.summary()["items"]
    assert report.log.checkpoint_status == "missing"


def test_a_statement_by_an_unknown_key_is_shown_unverified(setup: Setup, tmp_path: Path) -> None:
    _scenario(setup)
    stranger = Keystore(
        tmp_path / "other", scrypt_n=SCRYPT_N_TEST_ONLY, pbkdf2_rounds=PBKDF2_ROUNDS_TEST_ONLY
    )
    stranger.create("mallory", PASSWORD)
    with setup.registry() as reg:
        digest = reg.model(V2).digest
    envelope = attest(
        EvaluationPredicate(name="fairness", metrics={"parity": 0.99}),
        [named_subject(V2, digest)],
        [stranger.signer("mallory", PASSWORD)],
    )
    # the workspace log admits only known keys; a log opened without that check does not
    with TransparencyLog.open(setup.ws.path / LOG_DB_NAME) as log:
        log.append(envelope.to_json())
    report = _report(setup)
    audit = report.releases[1].evaluations[-1]
    assert audit.details["name"] == "fairness"
    assert audit.verification.signature == "invalid"
    assert audit.verification.inclusion == "pending"
    assert report.releases[1].bias_audit == "unverified"  # an unverified audit does not count
    assert report.summary()["unverified"]["signature"] == 1


def _alter(setup: Setup, index: int, old: bytes, new: bytes) -> None:
    with setup.registry() as reg:
        stored = reg.log.get(index).envelope
    assert old in stored
    db = sqlite3.connect(setup.ws.path / LOG_DB_NAME)
    with db:
        db.execute(
            "UPDATE entries SET envelope = ? WHERE idx = ?", (stored.replace(old, new, 1), index)
        )
    db.close()


def test_an_altered_signature_fails_inclusion_and_signature(setup: Setup) -> None:
    _scenario(setup)
    with setup.registry() as reg:
        index = reg.model(V1).log_index
        sig = json.loads(reg.log.get(index).envelope)["signatures"][0]["sig"]
    flipped = sig[:10] + ("A" if sig[10] != "A" else "B") + sig[11:]
    _alter(setup, index, sig.encode(), flipped.encode())
    report = _report(setup)
    item = report.releases[0].registration
    assert (item.verification.signature, item.verification.inclusion) == ("invalid", "failed")
    assert item.summary == "registered triage@1"
    assert any("do not hash to their leaf" in p for p in report.log.problems)
    assert report.summary()["unverified_items"] == 1


def test_an_unreadable_registration_is_listed_as_failed(setup: Setup) -> None:
    _scenario(setup)
    with setup.registry() as reg:
        index = reg.dataset(VersionRef("patients", "1")).log_index
    _alter(setup, index, b'"payload":"', b'"payload":"ey')
    report = _report(setup, check_artifacts=True)
    item = report.releases[0].datasets[0]
    assert item.summary == "registration entry unreadable"
    assert not item.verification.verified
    assert item.verification.artifact == "match"
    write_report(report, setup.root / "out")  # renders without the predicate


def test_a_forged_checkpoint_fails_every_inclusion(setup: Setup) -> None:
    _scenario(setup, checkpoint=False)
    trainer, qa = setup.signer("trainer"), setup.signer("qa")
    with setup.registry() as reg:
        reg.log.checkpoint(Secp256k1NoteKey.from_signer(reg.log.origin, _secp(trainer)))
    db = sqlite3.connect(setup.ws.path / LOG_DB_NAME)
    with db:  # the recorded log key becomes another key: the checkpoint no longer verifies
        other = Secp256k1NoteKey.from_signer(setup.ws.config.origin, _secp(qa))
        db.execute("UPDATE meta SET value = ? WHERE key = 'log_key'", (vkey(other),))
    db.close()
    report = _report(setup)
    assert report.log.checkpoint_status == "failed"
    assert {i.verification.inclusion for r in report.releases for i in r.items()} == {"failed"}


def test_check_artifacts_rehashes_models_and_datasets(setup: Setup) -> None:
    _scenario(setup)
    plain = _report(setup, check_artifacts=False)
    assert plain.releases[0].registration.verification.artifact is None
    (setup.model / "config.json").write_text('{"tampered": true}')
    report = _report(setup, check_artifacts=True)
    first, second = report.releases
    assert first.registration.verification.artifact == "mismatch"
    assert second.registration.verification.artifact == "match"
    assert first.datasets[0].verification.artifact == "match"
    setup.data.unlink()
    report = _report(setup, check_artifacts=True)
    assert report.releases[0].datasets[0].verification.artifact == "missing"
    assert report.summary()["unverified"]["artifact"] == 2


def test_a_csv_registered_with_skip_lines_is_rehashed(setup: Setup) -> None:
    """Issue 11 item 13: the predicate does not carry --skip-lines, so the artifact check must
    not need it (it re-hashes the file's bytes, which data_sha256 is)."""
    data = setup.root / "summary.csv"
    data.write_bytes(b"2,2,a summary line\nx,y\n1,2\n3,4\n")
    ref = VersionRef("summary", "1")
    with setup.registry() as reg:
        reg.register_dataset(data, ref, setup.signer("trainer"), skip_lines=1)
        row = reg.dataset(ref)
    assert _artifact_status(row, None) == "match"
    data.write_bytes(b"3,2,a summary line\nx,y\n1,2\n3,4\n")  # only the skipped line changed
    assert _artifact_status(row, None) == "mismatch"


def test_audit_names_come_from_options_then_policy_then_defaults() -> None:
    policy = parse_policy('version = 1\n[env.prod.audits.Fairness-Review]\nroles = ["qa"]\n')
    assert audit_names_for(policy, ["Bias", " bias "]) == ("bias",)
    assert audit_names_for(policy) == ("fairness-review",)
    assert audit_names_for(OPEN) == DEFAULT_AUDIT_NAMES
    assert audit_names_for(None, ["", " "]) == DEFAULT_AUDIT_NAMES


def test_require_audit_changes_which_evaluation_counts(setup: Setup) -> None:
    _scenario(setup)
    report = _report(setup, audit_names=["accuracy"])
    assert [r.bias_audit for r in report.releases] == ["passed", "failed"]


def test_anchors_cover_entries_and_are_confirmed_on_chain(setup: Setup, tmp_path: Path) -> None:
    _scenario(setup)
    trainer = _secp(setup.signer("trainer"))
    witness = Secp256k1Signer.generate()
    chain = open_embedded(tmp_path / "chain")
    try:
        chain.fund(trainer.address, 10**19)
        anchors = LogAnchors(chain, deploy_contracts(chain, trainer).open(chain, "LogAnchors"))
        book = AnchorBook(setup.ws.path / ANCHORS_FILE)
        with setup.registry() as reg:
            anchored = reg.log.size()
            anchor_checkpoint(reg.log, anchors, trainer, witness_keys=[witness], book=book)
            reg.approve(V2, "qa", setup.signer("qa"))  # after the anchor: not covered
        records = book.records(setup.ws.config.origin)
        report = _report(setup, anchors=records, confirm_anchor=on_chain(anchors))
        assert report.log.anchors_on_chain
        covered = [i for r in report.releases for i in r.items() if i.verification.anchor]
        assert covered
        assert all(i.log_index < anchored for i in covered)
        assert report.releases[1].approvals[0].verification.anchor is None
        assert covered[0].verification.anchor is not None
        assert covered[0].verification.anchor["block"] == records[0].block
        # a record the chain does not hold (another root) is dropped and named
        forged = dataclasses.replace(records[0], root=b"\x00" * 32)
        report = _report(setup, anchors=[forged], confirm_anchor=on_chain(anchors))
        assert report.summary()["anchored_items"] == 0
        assert any("does not match the log" in p for p in report.log.problems)
        wrong_index = dataclasses.replace(records[0], index=7)
        report = _report(setup, anchors=[wrong_index], confirm_anchor=on_chain(anchors))
        assert report.summary()["anchored_items"] == 0
        assert any("is not on chain" in p for p in report.log.problems)
    finally:
        chain.close()


class _Structure(HTMLParser):
    """Collects tags, checking every non-void element is closed in order."""

    VOID: ClassVar[set[str]] = {"meta", "br", "line", "rect", "circle", "path", "polyline"}

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in self.VOID:
            return
        assert self.stack, tag
        assert self.stack[-1] == tag, (self.stack[-5:], tag)
        self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_user_text_is_escaped_and_the_page_is_self_contained(setup: Setup) -> None:
    _scenario(setup)
    evil = "<script>alert(1)</script>"
    trainer = setup.signer("trainer")
    with setup.registry() as reg:
        digest = reg.model(V1).digest
        envelopes = [
            attest(EvaluationPredicate(name=evil, metrics={'"><img src=x>': 0.5}),
                   [named_subject(V1, digest)], [trainer]),
            attest(DeploymentPredicate(environment=f"prod{evil}", action="deploy",
                                       version=str(V1), time=datetime.now(UTC)),
                   [named_subject(V1, digest)], [trainer]),
        ]  # fmt: skip
        for envelope in envelopes:
            reg.log.append(envelope.to_json())
        reg.approve(V1, "qa", setup.signer("qa"), comment=f"fine {evil} & more")
        reg.approve(V2, "qa", setup.signer("qa"), comment="not yet", reject=True)
    html_path, json_path = write_report(_report(setup), setup.root / "out")
    html = html_path.read_text()
    assert "<script" not in html
    assert "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert '<span class="bad">REJECT</span>' in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in html
    parser = _Structure()
    parser.feed(html)
    parser.close()
    assert parser.stack == []
    assert {"svg", "table", "style"} <= parser.tags
    assert not parser.tags & {"script", "img", "link", "iframe", "object"}
    text = "".join(parser.text)
    assert evil in text
    assert f"fine {evil} & more" in text
    doc = json.loads(json_path.read_text())
    assert doc["schema"] == AUDIT_SCHEMA
    assert doc["releases"][0]["evaluations"][-1]["name"] == evil
    assert f"prod{evil}" in doc["timeline"]
    for release in doc["releases"]:
        assert release["model"] in text


_TEXT = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=20)


@given(
    versions=st.lists(_TEXT, min_size=1, max_size=5),
    metric=_TEXT,
    values=st.lists(st.floats(-1e6, 1e6), min_size=5, max_size=5),
)
def test_metric_charts_are_well_formed_svg_for_any_text(
    versions: list[str], metric: str, values: list[float]
) -> None:
    points = [(v, {metric: values[i]}) for i, v in enumerate(versions)]
    svg = metrics_svg("model<&>", points)
    root = ET.fromstring(svg)
    titles = [t.text for t in root.iter("{http://www.w3.org/2000/svg}title")]
    assert len(titles) == len(versions)
    texts = {t.text for t in root.iter("{http://www.w3.org/2000/svg}text")}
    assert metric in texts


@given(envs=st.lists(_TEXT, min_size=1, max_size=4, unique=True), seconds=st.integers(0, 10**7))
def test_timelines_are_well_formed_svg_for_any_text(envs: list[str], seconds: int) -> None:
    base = 1_700_000_000
    timeline = {
        env: [
            {"time": datetime.fromtimestamp(base + k * seconds, UTC).isoformat(),
             "action": action, "version": f"{env}@{k}", "log_index": k}
            for k, action in enumerate(("deploy", "deploy", "rollback"))
        ]
        for env in envs
    }  # fmt: skip
    svg = timeline_svg(timeline, datetime.fromtimestamp(base + 4 * seconds, UTC).isoformat())
    root = ET.fromstring(svg)
    texts = root.iter("{http://www.w3.org/2000/svg}text")
    lanes = [t.text or "" for t in texts if t.get("font-weight") == "bold"]
    assert sorted(lanes) == sorted(envs)
    assert timeline_svg({}, "2026-01-01T00:00:00+00:00") == ""


@given(st.text())
def test_esc_leaves_no_markup(text: str) -> None:
    out = esc(text)
    assert not {"<", ">", '"', "'"} & set(out)


def test_a_report_on_a_full_disk_is_a_storage_error(setup: Setup) -> None:
    out = setup.root / "out"
    out.mkdir()
    (out / "report.html").symlink_to("/dev/full")  # every write: ENOSPC
    with pytest.raises(StorageError, match="the disk is full") as caught:
        write_report(_report(setup), out)
    assert caught.value.exit_code == 11
