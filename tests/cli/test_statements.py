"""``ailedger attest`` and ``ailedger verify statement`` through the real entry point."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest
from click.testing import Result

import ailedger.cli._keys
import ailedger.cli._statements  # noqa: F401  (importing registers the commands)
from _cli import PASSWORD, run
from _workflow_util import NewWorkspace, fast_keystore
from ailedger.attest import dsse
from ailedger.cli._statements import parse_sets
from ailedger.errors import InvalidInput
from ailedger.identity.keys import (
    SECP256K1_N,
    Keystore,
    Secp256k1Signer,
)
from ailedger.workspace import Workspace

EVAL = [
    "--set",
    "metric=accuracy",
    "--set",
    "value=0.93",
    "--set",
    "comparator=>=",
    "--set",
    "threshold=0.9",
]


@pytest.fixture
def ws(new_workspace: NewWorkspace) -> Workspace:
    ws, store = new_workspace()
    store.create("alice", PASSWORD, org="acme")
    store.create("bob", PASSWORD, keytype="p256", org="lab")
    store.create("carol", PASSWORD)
    return ws


@pytest.fixture
def artifact(tmp_path: Path) -> Path:
    path = tmp_path / "model.bin"
    path.write_bytes(b"weights" * 100)
    return path


def _attest(artifact: Path, out: Path, key: str = "alice") -> Result:
    result = run(["attest", "evaluation", "--subject", artifact, *EVAL, "--key", key, "--out", out])
    assert result.exit_code == 0, result.output
    return result


def test_attest_then_verify(ws: Workspace, artifact: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval.dsse.json"
    _attest(artifact, out)
    envelope = dsse.Envelope.from_json(out.read_bytes())
    statement = json.loads(envelope.payload)
    assert statement["subject"] == [
        {
            "name": "model.bin",
            "digest": {"sha256": hashlib.sha256(artifact.read_bytes()).hexdigest()},
        }
    ]
    assert statement["predicate"]["passed"] is True
    ok = run(["verify", "statement", out, "--key", "alice", "--json"])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert report["valid"] is True
    alice = Keystore(ws.keys_dir).info("alice").keyid
    assert report["signers"] == [alice]
    assert "OK" in run(["verify", "statement", out, "--address", alice.lower()]).stdout


def test_attest_to_stdout_and_json(ws: Workspace) -> None:
    digest = "sha256:" + "ab" * 32
    args = [
        "attest",
        "approval",
        "--subject",
        f"release-1.2={digest}",
        "--set",
        "role=qa",
        "--set",
        "decision=approve",
        "--key",
        "bob",
    ]
    printed = run(args)
    assert printed.exit_code == 0, printed.output
    envelope = dsse.Envelope.from_json(printed.stdout)
    assert json.loads(envelope.payload)["subject"][0]["name"] == "release-1.2"
    summary = json.loads(run([*args, "--json"]).stdout)
    assert summary["predicateType"] == "https://ailedger.dev/predicates/approval/v1"
    assert summary["keyid"] == Keystore(ws.keys_dir).info("bob").keyid
    assert dsse.Envelope.from_dict(summary["envelope"]).payload_type == dsse.PAYLOAD_TYPE_IN_TOTO


def test_predicate_file_and_nested_sets(ws: Workspace, tmp_path: Path) -> None:
    predicate = tmp_path / "model.json"
    resources = [{"name": "w.bin", "digest": "01" * 32}]
    predicate.write_text(json.dumps({"serialization": {"method": "files"}, "resources": resources}))
    subject = "sha256:" + hashlib.sha256(bytes.fromhex("01" * 32)).hexdigest()
    out = tmp_path / "m.json"
    result = run(
        [
            "attest",
            "model",
            "--subject",
            subject,
            "--predicate",
            predicate,
            "--set",
            "training.code_revision=0123",
            "--set",
            'training.hyperparameters={"lr": 0.1}',
            "--set",
            "training.team=vision",
            "--key",
            "alice",
            "--out",
            out,
        ]
    )
    assert result.exit_code == 0, result.output
    training = json.loads(dsse.Envelope.from_json(out.read_bytes()).payload)["predicate"][
        "training"
    ]
    assert training == {
        "code_revision": "0123",
        "hyperparameters": {"lr": 0.1},
        "team": "vision",
        "dataset_roots": [],
    }
    wrong_subject = run(
        [
            "attest",
            "model",
            "--subject",
            "sha256:" + "00" * 32,
            "--predicate",
            predicate,
            "--key",
            "alice",
        ]
    )
    assert wrong_subject.exit_code == 3
    assert "no subject has that digest" in wrong_subject.stderr


def test_attest_model_from_fingerprint_json(ws: Workspace, tmp_path: Path) -> None:
    digest = hashlib.sha256(bytes.fromhex("07" * 32)).hexdigest()
    manifest = tmp_path / "fingerprint.json"
    manifest.write_text(
        json.dumps(
            {
                "type": "https://ailedger.dev/model/manifest/v1",
                "model_name": "resnet",
                "hashing": "sha256",
                "subject": {"name": "resnet", "digest": {"sha256": digest}},
                "serialization": {"method": "files", "hash_type": "sha256"},
                "resources": [{"name": "w.bin", "algorithm": "sha256", "digest": "07" * 32}],
                "tensors": None,
            }
        )
    )
    result = run(
        [
            "attest",
            "model",
            "--predicate",
            manifest,
            "--key",
            "alice",
            "--set",
            f'training.dataset_roots=["{"0a" * 32}"]',
            "--json",
        ]
    )
    assert result.exit_code == 0, result.output
    envelope = dsse.Envelope.from_dict(json.loads(result.stdout)["envelope"])
    statement = json.loads(envelope.payload)
    assert statement["subject"] == [{"name": "resnet", "digest": {"sha256": digest}}]
    assert statement["predicate"]["subject_digest"] == digest
    assert statement["predicate"]["training"]["dataset_roots"] == ["0a" * 32]


def test_parse_sets() -> None:
    assert parse_sets({"a": {"b": 1}}, ["a.c=x", "d=null", "e=[1]"]) == {
        "a": {"b": 1, "c": "x"},
        "d": None,
        "e": [1],
    }
    for bad in (["novalue"], ["=x"], ["a.b.c=1"], ["x={bad"]):
        with pytest.raises(InvalidInput):
            parse_sets({"a": {"b": 1}}, bad)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["attest", "bogus", "--subject", "sha256:" + "00" * 32, "--key", "alice"],
            3,
            "unknown predicate type",
        ),
        (
            [
                "attest",
                "evaluation",
                "--subject",
                "sha256:" + "00" * 32,
                "--key",
                "alice",
                "--set",
                "metric=a",
                "--set",
                "value=high",
                "--set",
                "comparator=>=",
                "--set",
                "threshold=1",
            ],
            3,
            "field 'value'",
        ),
        (
            ["attest", "evaluation", "--subject", "nowhere.bin", *EVAL, "--key", "alice"],
            4,
            "neither a file nor a digest",
        ),
        (["attest", "evaluation", "--subject", "sha256:abc", *EVAL, "--key", "alice"], 3, "64 hex"),
        (
            ["attest", "evaluation", "--subject", "sha256:" + "00" * 32, *EVAL, "--key", "zed"],
            4,
            "no key named 'zed'",
        ),
        (
            [
                "attest",
                "evaluation",
                "--subject",
                "sha256:" + "00" * 32,
                *EVAL,
                "--key",
                "alice",
                "--predicate",
                "missing.json",
            ],
            4,
            "no such predicate file",
        ),
    ],
)
def test_attest_bad_input(ws: Workspace, args: list[str], code: int, message: str) -> None:
    result = run(args)
    assert result.exit_code == code, result.output
    assert message in result.stderr


def test_attest_wrong_password_and_corrupted_keystore(ws: Workspace, artifact: Path) -> None:
    args = ["attest", "evaluation", "--subject", artifact, *EVAL, "--key", "alice"]
    wrong = run(args, password="guess")
    assert wrong.exit_code == 5
    assert "wrong password for key 'alice'" in wrong.stderr
    keyfile = ws.keys_dir / "alice.keystore.json"
    doc = json.loads(keyfile.read_text())
    doc["crypto"]["mac"] = "00" * 32
    keyfile.write_text(json.dumps(doc))
    corrupted = run(args)
    assert corrupted.exit_code == 5
    assert "corrupted" in corrupted.stderr
    assert "wrong password" not in corrupted.stderr


def _rewrite(path: Path, mutate: object) -> None:
    doc = json.loads(path.read_text())
    mutate(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))


def _high_s(doc: dict[str, list[dict[str, str]]]) -> None:
    sig = base64.b64decode(doc["signatures"][0]["sig"])
    s = int.from_bytes(sig[32:64], "big")
    twin = sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])
    doc["signatures"][0]["sig"] = base64.b64encode(twin).decode()


def _payload(doc: dict[str, str]) -> None:
    statement = json.loads(base64.b64decode(doc["payload"]))
    statement["predicate"]["value"] = 0.99
    doc["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()


def _sig(doc: dict[str, list[dict[str, str]]]) -> None:
    sig = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
    sig[5] ^= 1
    doc["signatures"][0]["sig"] = base64.b64encode(sig).decode()


@pytest.mark.parametrize("mutate", [_payload, _sig, _high_s], ids=lambda f: f.__name__)
def test_tampered_envelopes_fail_with_exit_1(
    ws: Workspace, artifact: Path, tmp_path: Path, mutate: object
) -> None:
    out = tmp_path / "e.json"
    _attest(artifact, out)
    _rewrite(out, mutate)
    result = run(["verify", "statement", out, "--key", "alice", "--json"])
    assert result.exit_code == 1, result.output
    assert json.loads(result.stdout)["valid"] is False
    assert json.loads(result.stdout)["code"] == "statement-signature-invalid"
    assert "trusted signatures are valid" in result.stderr
    assert result.stderr.startswith("error: [statement-signature-invalid] ")


def test_keyid_is_only_a_hint(ws: Workspace, artifact: Path, tmp_path: Path) -> None:
    """DSSE keyids are unauthenticated: a keyid naming no trusted key is tried against every
    trusted key (and the key that verified is reported); one naming a trusted key is checked
    against that key only, so alice's signature relabelled as carol's fails."""
    out = tmp_path / "e.json"
    _attest(artifact, out)
    alice = Keystore(ws.keys_dir).info("alice").keyid
    stranger = Secp256k1Signer.generate().address
    _rewrite(out, lambda doc: doc["signatures"][0].update(keyid=stranger))
    result = run(["verify", "statement", out, "--key", "carol", "--key", "alice", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["signers"] == [alice]
    assert doc["keyid_fallbacks"] == [{"keyid": stranger, "verified_by": alice}]
    human = run(["verify", "statement", out, "--key", "alice"])
    assert f"keyid {stranger} verified by key {alice}" in human.stdout
    carol = Keystore(ws.keys_dir).info("carol").keyid
    _rewrite(out, lambda doc: doc["signatures"][0].update(keyid=carol))
    relabelled = run(["verify", "statement", out, "--key", "alice", "--key", "carol", "--json"])
    assert relabelled.exit_code == 1, relabelled.output
    assert json.loads(relabelled.stdout)["code"] == "statement-signature-invalid"


def test_truncated_and_unknown_signer(ws: Workspace, artifact: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.json"
    _attest(artifact, out)
    cut = tmp_path / "cut.json"
    cut.write_bytes(out.read_bytes()[:100])
    truncated = run(["verify", "statement", cut, "--key", "alice"])
    assert truncated.exit_code == 3
    assert "truncated" in truncated.stderr
    unknown = run(["verify", "statement", out, "--key", "carol"])
    assert unknown.exit_code == 1
    stranger = run(["verify", "statement", out, "--address", Secp256k1Signer.generate().address])
    assert stranger.exit_code == 1
    assert run(["verify", "statement", out]).exit_code == 3  # no trust given: fail closed
    assert run(["verify", "statement", tmp_path / "none.json", "--key", "alice"]).exit_code == 4


def test_cosigned_threshold(ws: Workspace, artifact: Path, tmp_path: Path) -> None:
    out = tmp_path / "e.json"
    _attest(artifact, out, key="alice")
    store = Keystore(ws.keys_dir)
    envelope = dsse.add_signature(
        dsse.Envelope.from_json(out.read_bytes()), store.signer("bob", PASSWORD)
    )
    out.write_bytes(envelope.to_json(indent=2))
    bob_pub = tmp_path / "bob.pub"
    bob_pub.write_text(store.public_key("bob").to_pem())
    both = ["verify", "statement", out, "--key", "alice", "--public-key", bob_pub]
    assert run([*both, "--threshold", "2"]).exit_code == 0
    three = run([*both, "--key", "carol", "--threshold", "3"])
    assert three.exit_code == 1
    assert "2 of the required 3" in three.stderr
    assert run([*both, "--threshold", "5"]).exit_code == 3


def test_attest_appends_to_the_log_and_writes_a_receipt(
    ws: Workspace, artifact: Path, tmp_path: Path
) -> None:
    out, receipt = tmp_path / "env.json", tmp_path / "receipt.json"
    args = ["attest", "evaluation", "--subject", artifact, *EVAL, "--key", "alice"]
    first = run([*args, "--out", out, "--json"])
    assert first.exit_code == 0, first.output
    assert json.loads(first.stdout)["log_index"] == 0
    second = run([*args, "--out", out, "--receipt", receipt, "--log-key", "carol", "--json"])
    assert second.exit_code == 0, second.output
    assert json.loads(second.stdout)["log_index"] == 1
    checked = run(["verify", "receipt", receipt, "--artifact", artifact, "--json"])
    assert checked.exit_code == 0, checked.output
    other = tmp_path / "other.bin"
    other.write_bytes(b"not the artifact")
    wrong = run(["verify", "receipt", receipt, "--artifact", other])
    assert wrong.exit_code == 1
    assert wrong.stderr.startswith("error: [receipt-artifact-mismatch] artifact sha256 ")
    assert run(["log", "verify"]).exit_code == 0


def test_attest_no_log_leaves_the_log_empty(ws: Workspace, artifact: Path, tmp_path: Path) -> None:
    args = ["attest", "evaluation", "--subject", artifact, *EVAL, "--key", "alice", "--no-log"]
    result = run([*args, "--out", tmp_path / "env.json", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["log_index"] is None
    shown = run(["log", "show", "--json"])
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.stdout)["size"] == 0


def test_attest_receipt_needs_a_log_key(ws: Workspace, artifact: Path, tmp_path: Path) -> None:
    args = ["attest", "evaluation", "--subject", artifact, *EVAL, "--key", "alice"]
    result = run([*args, "--receipt", tmp_path / "r.json"])
    assert result.exit_code == 3


def test_a_model_receipt_verifies_against_the_model_directory(
    ws: Workspace, tmp_path: Path
) -> None:
    """Issue 11 item 8: ``verify receipt R --artifact DIR`` failed with "Is a directory"; a
    model statement's receipt now verifies against the folder, re-fingerprinted."""
    import shutil

    from ailedger.demos.samples import SAMPLE_MODEL

    model = tmp_path / "model"
    shutil.copytree(SAMPLE_MODEL, model)
    fast_keystore(ws).create("logkey", PASSWORD)
    fp = run(["fingerprint", "model", model, "--no-cache", "--json"])
    assert fp.exit_code == 0, fp.output
    (tmp_path / "fp.json").write_text(fp.stdout)
    made = run(
        [
            "attest",
            "model",
            "--predicate",
            tmp_path / "fp.json",
            "--key",
            "alice",
            "--out",
            tmp_path / "m.json",
            "--receipt",
            tmp_path / "m.receipt.json",
            "--log-key",
            "logkey",
        ]
    )
    assert made.exit_code == 0, made.output
    good = run(["verify", "receipt", tmp_path / "m.receipt.json", "--artifact", model, "--json"])
    assert good.exit_code == 0, good.output
    digest = json.loads(fp.stdout)["subject"]["digest"]["sha256"]
    assert json.loads(good.stdout)["artifact_sha256"] == digest
    (model / "config.json").write_text("{}")
    bad = run(["verify", "receipt", tmp_path / "m.receipt.json", "--artifact", model])
    assert bad.exit_code == 1
    assert "[receipt-artifact-mismatch]" in bad.output
