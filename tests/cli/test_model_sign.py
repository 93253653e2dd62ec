"""``ailedger model sign`` / ``model verify`` against the real ``model_signing`` CLI.

``model_signing verify key`` accepts what ``ailedger model sign`` writes, ``ailedger model
verify`` accepts what ``model_signing sign key`` writes, and every failure is one clear error
with the documented exit code (1: verification failed, 3: bad input, 4: not found, 5: key).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import ailedger.cli._model_sign  # noqa: F401  (importing registers the commands)
from _cli import PASSWORD, run
from _workflow_util import NewWorkspace
from ailedger.identity.keys import Keystore
from ailedger.workspace import Workspace

pytest.importorskip("model_signing")

pytestmark = pytest.mark.interop

MODEL_SIGNING = Path(sys.executable).parent / "model_signing"


def model_signing(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MODEL_SIGNING), *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def ws(new_workspace: NewWorkspace, tmp_path: Path) -> Workspace:
    ws, store = new_workspace()
    store.create("lab", PASSWORD, keytype="p256")
    store.create("alice", PASSWORD)
    (tmp_path / "lab.pub").write_text(store.public_key("lab").to_pem())
    return ws


@pytest.fixture
def model(tmp_path: Path) -> Path:
    root = tmp_path / "model"
    for name, data in {
        "config.json": b'{"a": 1}',
        "weights/w1.bin": b"\x01" * 3000,
        "weights/w2.bin": b"\x02" * 10,
        ".git/HEAD": b"ref\n",
    }.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _pem_pair(directory: Path, curve: ec.EllipticCurve) -> tuple[Path, Path]:
    key = ec.generate_private_key(curve)
    private, public = directory / f"{curve.name}.pem", directory / f"{curve.name}.pub"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


def test_ailedger_signs_model_signing_verifies(ws: Workspace, model: Path, tmp_path: Path) -> None:
    sig = tmp_path / "model.sig"
    signed = run(["model", "sign", model, "--key", "lab", "--signature", sig, "--json"])
    assert signed.exit_code == 0, signed.output
    report = json.loads(signed.stdout)
    assert report["key_hint"] == Keystore(ws.keys_dir).info("lab").keyid
    assert report["resources"] == 3
    checked = model_signing("verify", "key", model, "--signature", sig, "--public_key", "lab.pub")
    assert checked.returncode == 0, checked.stderr
    assert "Verification succeeded" in checked.stdout
    ours = run(["model", "verify", model, "--signature", sig, "--public-key", "lab.pub"])
    assert ours.exit_code == 0, ours.output
    assert "Verification succeeded" in ours.stdout
    assert run(["model", "verify", model, "--signature", sig, "--key", "lab"]).exit_code == 0
    (model / "weights/w2.bin").write_bytes(b"tampered")
    rejected = model_signing("verify", "key", model, "--signature", sig, "--public_key", "lab.pub")
    assert rejected.returncode == 1
    assert "Hash mismatch for" in rejected.stderr
    assert "weights/w2.bin" in rejected.stderr


def test_model_signing_signs_ailedger_verifies(ws: Workspace, model: Path, tmp_path: Path) -> None:
    private, public = _pem_pair(tmp_path, ec.SECP256R1())
    sig = model / "model.sig"  # inside the model: both tools leave it out
    made = model_signing("sign", "key", model, "--signature", sig, "--private_key", private)
    assert made.returncode == 0, made.stderr
    result = run(["model", "verify", model, "--signature", sig, "--public-key", public, "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert report["model_name"] == "model"
    assert report["resources"] == 3
    assert "model.sig" in report["serialization"]["ignore_paths"]


def test_signature_inside_the_model(ws: Workspace, model: Path) -> None:
    sig = model / "model.sig"
    assert run(["model", "sign", model, "--key", "lab", "--signature", sig]).exit_code == 0
    checked = model_signing("verify", "key", model, "--signature", sig, "--public_key", "lab.pub")
    assert checked.returncode == 0, checked.stderr
    assert run(["model", "verify", model, "--signature", sig, "--key", "lab"]).exit_code == 0


def test_every_difference_is_listed(ws: Workspace, model: Path, tmp_path: Path) -> None:
    sig = tmp_path / "model.sig"
    assert run(["model", "sign", model, "--key", "lab", "--signature", sig]).exit_code == 0
    (model / "config.json").write_bytes(b"{}")
    (model / "weights/w1.bin").unlink()
    (model / "added.txt").write_bytes(b"new")
    (model / "weights/w3.bin").write_bytes(b"new")
    args = ["model", "verify", model, "--signature", sig, "--public-key", "lab.pub"]
    human = run(args)
    assert human.exit_code == 1
    assert "Verification failed" in human.stderr
    for line in ("added    added.txt", "added    weights/w3.bin", "missing  weights/w1.bin"):
        assert line in human.stderr
    assert "changed  config.json" in human.stderr
    as_json = run([*args, "--json"])
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert report["valid"] is False
    assert report["exit_code"] == 1
    assert report["added"] == ["added.txt", "weights/w3.bin"]
    assert report["missing"] == ["weights/w1.bin"]
    assert [c["name"] for c in report["changed"]] == ["config.json"]
    assert len(report["changed"][0]["expected"]) == 64
    theirs = model_signing("verify", "key", model, "--signature", sig, "--public_key", "lab.pub")
    assert theirs.returncode == 1
    assert "Extra files found in model 'model': added.txt, weights/w3.bin" in theirs.stderr
    assert "Missing files in model 'model': weights/w1.bin" in theirs.stderr
    ignored = run(
        [*args, "--ignore-paths", model / "added.txt", "--ignore", "model/weights/w3.bin", "--json"]
    )
    assert ignored.exit_code == 1
    assert json.loads(ignored.stdout)["added"] == []
    assert json.loads(ignored.stdout)["missing"] == ["weights/w1.bin"]
    unsigned = run([*args, "--ignore-unsigned-files", "--json"])
    assert json.loads(unsigned.stdout)["added"] == []


def test_bad_bundles_and_keys(ws: Workspace, model: Path, tmp_path: Path) -> None:
    sig = tmp_path / "model.sig"
    assert run(["model", "sign", model, "--key", "lab", "--signature", sig]).exit_code == 0
    verify = ["model", "verify", model, "--signature"]
    # a wrong public key
    _, other = _pem_pair(tmp_path, ec.SECP256R1())
    wrong = run([*verify, sig, "--public-key", other])
    assert wrong.exit_code == 1
    assert "key mismatch" in wrong.stderr
    # a tampered bundle: a resource digest changed inside the signed payload
    doc = json.loads(sig.read_bytes())
    payload = json.loads(base64.b64decode(doc["dsseEnvelope"]["payload"]))
    payload["predicate"]["resources"][0]["digest"] = "00" * 32
    doc["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(payload).encode()).decode()
    tampered = tmp_path / "tampered.sig"
    tampered.write_text(json.dumps(doc))
    result = run([*verify, tampered, "--public-key", "lab.pub", "--json"])
    assert result.exit_code == 1
    assert "does not verify" in json.loads(result.stdout)["error"]
    # a truncated bundle, a missing one
    truncated = tmp_path / "truncated.sig"
    truncated.write_bytes(sig.read_bytes()[:100])
    assert run([*verify, truncated, "--public-key", "lab.pub"]).exit_code == 3
    assert run([*verify, tmp_path / "nope.sig", "--public-key", "lab.pub"]).exit_code == 4
    assert run([*verify, sig, "--public-key", tmp_path / "nope.pub"]).exit_code == 4
    # neither or both keys
    assert run([*verify, sig]).exit_code == 3
    assert run([*verify, sig, "--key", "lab", "--public-key", "lab.pub"]).exit_code == 3
    # a secp256k1 key signs nothing here and verifies nothing
    k1 = run(["model", "sign", model, "--key", "alice", "--signature", tmp_path / "k1.sig"])
    assert k1.exit_code == 3
    assert "P-256" in k1.stderr
    assert run([*verify, sig, "--key", "alice"]).exit_code == 3
    _, k1_pub = _pem_pair(tmp_path, ec.SECP256K1())
    refused = run([*verify, sig, "--public-key", k1_pub])
    assert refused.exit_code == 3
    assert "secp256k1" in refused.stderr
    # a wrong password, an unknown key
    bad = run(["model", "sign", model, "--key", "lab", "--signature", sig], password="nope")
    assert bad.exit_code == 5
    assert run(["model", "sign", model, "--key", "who", "--signature", sig]).exit_code == 4
    assert run(["model", "sign", tmp_path / "absent", "--key", "lab"]).exit_code == 4


def test_bundle_signed_with_another_key_type(ws: Workspace, model: Path, tmp_path: Path) -> None:
    private, public = _pem_pair(tmp_path, ec.SECP384R1())
    sig = tmp_path / "p384.sig"
    made = model_signing("sign", "key", model, "--signature", sig, "--private_key", private)
    assert made.returncode == 0, made.stderr
    assert (
        run(["model", "verify", model, "--signature", sig, "--public-key", public]).exit_code == 0
    )
    mismatch = run(["model", "verify", model, "--signature", sig, "--key", "lab"])
    assert mismatch.exit_code == 1
    assert "key mismatch" in mismatch.stderr
    cert = json.loads(sig.read_bytes())
    cert["verificationMaterial"] = {"certificate": {"rawBytes": "AA=="}, "tlogEntries": []}
    cert_sig = tmp_path / "cert.sig"
    cert_sig.write_text(json.dumps(cert))
    refused = run(["model", "verify", model, "--signature", cert_sig, "--public-key", public])
    assert refused.exit_code == 3
    assert "certificate" in refused.stderr


def test_sign_options(ws: Workspace, model: Path, tmp_path: Path) -> None:
    sig = tmp_path / "sharded.sig"
    args = ["model", "sign", model, "--key", "lab", "--signature", sig, "--shard-size", "1024"]
    result = run([*args, "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["hashing"] == "sha256-sharded-1024"
    assert run(["model", "verify", model, "--signature", sig, "--key", "lab"]).exit_code == 0
    assert run([*args, "--algorithm", "md5"]).exit_code == 2
    assert run([*args, "--algorithm", "blake3"]).exit_code == 3
    human = run(["model", "sign", model, "--key", "lab", "--signature", sig])
    assert "signed model 'model' (3 resources, sha256)" in human.stdout
