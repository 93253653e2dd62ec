"""``ailedger.attest.model_signing`` against the real OpenSSF ``model-signing`` 1.1.1 library.

Both directions: what ``sign_model`` writes, model-signing's key verifier accepts; what its key
signer writes, ``verify_model`` accepts. Then every way a bundle or a model can be wrong.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.attest import dsse
from ailedger.attest._sigstore_bundle import key_hint
from ailedger.attest.model_signing import (
    BUNDLE_MEDIA_TYPE,
    PREDICATE_TYPE,
    KeyBundle,
    ModelDiff,
    ModelMismatch,
    diff_resources,
    load_ec_public_key,
    open_signed_model,
    read_bundle,
    relative_ignore_paths,
    sign_model,
    verify_model,
)
from ailedger.errors import AiledgerError, FormatError, InvalidInput, SignatureInvalid
from ailedger.fingerprint.model import HashingConfig, Resource
from ailedger.identity.keys import P256Signer, Secp256k1Signer

ms_hashing = pytest.importorskip("model_signing.hashing")
ms_signing = pytest.importorskip("model_signing.signing")
ms_verifying = pytest.importorskip("model_signing.verifying")

pytestmark = pytest.mark.interop


# --- helpers -----------------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


def _model(tmp_path: Path) -> Path:
    return _tree(
        tmp_path / "model",
        {
            "config.json": b'{"layers": 2}',
            "weights/a.bin": b"\x00\x01" * 5000,
            "weights/b.bin": b"b" * 777,
            "empty": b"",
            ".git/HEAD": b"ref: refs/heads/main\n",
            ".gitignore": b"*.tmp\n",
        },
    )


class Keys:
    """One EC key pair as files (for model-signing) and as ailedger objects."""

    def __init__(self, directory: Path, curve: ec.EllipticCurve = ec.SECP256R1()) -> None:
        self.private = ec.generate_private_key(curve)
        self.private_pem = directory / f"key-{curve.name}-{id(self)}.pem"
        self.public_pem = self.private_pem.with_suffix(".pub")
        self.private_pem.write_bytes(
            self.private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.public_pem.write_bytes(
            self.private.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    @property
    def signer(self) -> P256Signer:
        return P256Signer(self.private)

    @property
    def public(self) -> ec.EllipticCurvePublicKey:
        return self.private.public_key()


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    return Keys(tmp_path)


def _ms_config(
    ignore: list[str] | None = None, shard: int | None = None, algorithm: str = "sha256"
) -> Any:
    config = ms_hashing.Config().set_ignored_paths(paths=ignore or [], ignore_git_paths=True)
    if shard is not None:
        config = config.use_shard_serialization(hashing_algorithm=algorithm, shard_size=shard)
    elif algorithm != "sha256":
        config = config.use_file_serialization(hashing_algorithm=algorithm)
    return config


def ms_sign(model: Path, sig: Path, keys: Keys, config: Any = None) -> None:
    signing = ms_signing.Config().use_elliptic_key_signer(private_key=keys.private_pem)
    if config is not None:
        signing = signing.set_hashing_config(config)
    signing.sign(model, sig)


def ms_verify(model: Path, sig: Path, keys: Keys) -> None:
    ms_verifying.Config().use_elliptic_key_verifier(public_key=keys.public_pem).verify(model, sig)


def _resign(bundle: KeyBundle, payload: bytes, signer: P256Signer) -> KeyBundle:
    """A validly signed bundle around any payload (to test what the signature protects)."""
    sig = signer.sign(dsse.pae(dsse.PAYLOAD_TYPE_IN_TOTO, payload))
    env = dsse.Envelope(dsse.PAYLOAD_TYPE_IN_TOTO, payload, (dsse.Signature("", sig),))
    return KeyBundle(env, bundle.hint)


# --- both directions ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        HashingConfig(),
        HashingConfig(algorithm="blake3"),
        HashingConfig(shard_size=4096),
        HashingConfig(ignore_paths=("weights/b.bin",)),
    ],
    ids=["sha256", "blake3", "shards", "ignore"],
)
def test_ours_verified_by_model_signing(tmp_path: Path, keys: Keys, config: HashingConfig) -> None:
    model = _model(tmp_path)
    sig = tmp_path / "model.sig"
    bundle = sign_model(model, keys.signer, config=config)
    sig.write_bytes(bundle.to_json())
    ms_verify(model, sig, keys)  # raises ValueError on any failure
    assert verify_model(model, read_bundle(sig.read_bytes()), keys.public).signed.config == config
    (model / "weights/a.bin").write_bytes(b"changed")
    with pytest.raises(ValueError, match=r"Signature mismatch: .*weights/a\.bin"):
        ms_verify(model, sig, keys)


@pytest.mark.parametrize("variant", ["sha256", "blake3", "shards", "ignore"])
def test_model_signing_verified_by_ours(tmp_path: Path, keys: Keys, variant: str) -> None:
    model = _model(tmp_path)
    sig = tmp_path / "model.sig"
    config = {
        "sha256": _ms_config(),
        "blake3": _ms_config(algorithm="blake3"),
        "shards": _ms_config(shard=4096),
        "ignore": _ms_config(ignore=["weights/b.bin"]),
    }[variant]
    ms_sign(model, sig, keys, config)
    result = verify_model(model, read_bundle(sig.read_bytes()), keys.public)
    assert result.signed.model_name == "model"
    assert result.signed.key_hint == key_hint(keys.public)
    names = {r.name.split(":")[0] for r in result.signed.resources}
    left_out = {"ignore": {"weights/b.bin"}, "shards": {"empty"}}.get(variant, set())
    assert names == {"config.json", "empty", "weights/a.bin", "weights/b.bin"} - left_out
    assert result.to_dict()["valid"] is True


def test_single_file_model_both_ways(tmp_path: Path, keys: Keys) -> None:
    model = tmp_path / "model.safetensors"
    model.write_bytes(b"not really safetensors" * 100)
    ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
    ours.write_bytes(sign_model(model, keys.signer).to_json())
    ms_verify(model, ours, keys)
    ms_sign(model, theirs, keys)
    signed = verify_model(model, read_bundle(theirs.read_bytes()), keys.signer.public_key).signed
    assert [r.name for r in signed.resources] == ["."]


def test_bundle_layout_matches_model_signing(tmp_path: Path, keys: Keys) -> None:
    model = _model(tmp_path)
    ms_sign(model, tmp_path / "theirs.sig", keys)
    theirs = json.loads((tmp_path / "theirs.sig").read_bytes())
    ours = json.loads(sign_model(model, keys.signer).to_json())
    assert ours["mediaType"] == theirs["mediaType"] == BUNDLE_MEDIA_TYPE
    assert ours["verificationMaterial"] == theirs["verificationMaterial"]
    assert set(ours["dsseEnvelope"]) == set(theirs["dsseEnvelope"])
    a = json.loads(base64.b64decode(ours["dsseEnvelope"]["payload"]))
    b = json.loads(base64.b64decode(theirs["dsseEnvelope"]["payload"]))
    assert a["predicateType"] == b["predicateType"] == PREDICATE_TYPE
    assert a["subject"] == b["subject"]
    assert a["predicate"]["resources"] == b["predicate"]["resources"]
    ser_a, ser_b = a["predicate"]["serialization"], b["predicate"]["serialization"]
    assert sorted(ser_a.pop("ignore_paths")) == sorted(ser_b.pop("ignore_paths"))
    assert ser_a == ser_b


_NAMES = st.text(alphabet="abcXYZ019_-.", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..") and not s.startswith(".git")
)


@settings(
    max_examples=examples(15),
    suppress_health_check=[*settings().suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(
    files=st.dictionaries(
        st.lists(_NAMES, min_size=1, max_size=3).map("/".join),
        st.binary(max_size=300),
        min_size=1,
        max_size=6,
    ),
    shard=st.none() | st.integers(1, 200),
)
def test_random_trees_both_ways(
    tmp_path_factory: pytest.TempPathFactory, files: dict[str, bytes], shard: int | None
) -> None:
    root = tmp_path_factory.mktemp("tree")
    names = sorted(files)
    # a name cannot be both a file and a directory
    files = {n: d for n, d in files.items() if not any(m.startswith(n + "/") for m in names)}
    model = _tree(root / "m", files)
    keys = Keys(root)
    ours, theirs = root / "ours.sig", root / "theirs.sig"
    ours.write_bytes(
        sign_model(model, keys.signer, config=HashingConfig(shard_size=shard)).to_json()
    )
    ms_verify(model, ours, keys)
    ms_sign(model, theirs, keys, _ms_config(shard=shard) if shard else None)
    verify_model(model, read_bundle(theirs.read_bytes()), keys.public)


# --- the model does not match ------------------------------------------------------------------


def _ms_error(model: Path, sig: Path, keys: Keys) -> str:
    with pytest.raises(ValueError, match="mismatch") as info:
        ms_verify(model, sig, keys)
    return str(info.value)


def test_added_missing_changed_listed_like_model_signing(tmp_path: Path, keys: Keys) -> None:
    model = _model(tmp_path)
    sig = tmp_path / "model.sig"
    ms_sign(model, sig, keys)
    (model / "weights/a.bin").write_bytes(b"tampered")
    (model / "config.json").write_bytes(b"{}")
    (model / "empty").unlink()
    (model / "extra.py").write_bytes(b"import os\n")
    (model / "weights/c.bin").write_bytes(b"c")
    with pytest.raises(ModelMismatch) as info:
        verify_model(model, read_bundle(sig.read_bytes()), keys.public)
    diff = info.value.diff
    assert diff.added == ("extra.py", "weights/c.bin")
    assert diff.missing == ("empty",)
    assert [c.name for c in diff.changed] == ["config.json", "weights/a.bin"]
    assert info.value.exit_code == 1
    theirs = _ms_error(model, sig, keys)
    for line in diff.messages("model"):
        head = line.split(": Expected")[0]
        assert head in theirs
    assert "extra.py, weights/c.bin" in info.value.message
    doc = diff.to_dict()
    assert doc["added"] == ["extra.py", "weights/c.bin"]
    assert doc["missing"] == ["empty"]
    assert {c["name"] for c in doc["changed"]} == {"config.json", "weights/a.bin"}


def test_changed_digest_values(tmp_path: Path, keys: Keys) -> None:
    model = _model(tmp_path)
    bundle = sign_model(model, keys.signer)
    (model / "weights/b.bin").write_bytes(b"B")
    with pytest.raises(ModelMismatch) as info:
        verify_model(model, bundle, keys.public)
    (change,) = info.value.diff.changed
    assert change.expected == hashlib.sha256(b"b" * 777).digest()
    assert change.actual == hashlib.sha256(b"B").digest()
    assert not info.value.diff.added
    assert not info.value.diff.missing


def test_ignore_paths_and_unsigned_files(tmp_path: Path, keys: Keys) -> None:
    model = _model(tmp_path)
    bundle = sign_model(model, keys.signer)
    (model / "notes.txt").write_bytes(b"local notes")
    with pytest.raises(ModelMismatch):
        verify_model(model, bundle, keys.public)
    verify_model(model, bundle, keys.public, ignore_paths=["notes.txt"])
    verify_model(model, bundle, keys.public, ignore_unsigned_files=True)
    (model / "empty").unlink()
    with pytest.raises(ModelMismatch, match="Missing files"):
        verify_model(model, bundle, keys.public, ignore_unsigned_files=True)


def test_signature_inside_the_model_is_ignored(tmp_path: Path, keys: Keys) -> None:
    model = _model(tmp_path)
    sig = model / "model.sig"
    ignored = relative_ignore_paths(model, [sig, tmp_path / "elsewhere"])
    assert ignored == ("model.sig",)
    sig.write_bytes(
        sign_model(model, keys.signer, config=HashingConfig(ignore_paths=ignored)).to_json()
    )
    ms_verify(model, sig, keys)
    verify_model(model, read_bundle(sig.read_bytes()), keys.public)


@given(
    want=st.dictionaries(st.sampled_from("abcdef"), st.binary(min_size=1, max_size=2)),
    have=st.dictionaries(st.sampled_from("abcdef"), st.binary(min_size=1, max_size=2)),
)
def test_diff_resources(want: dict[str, bytes], have: dict[str, bytes]) -> None:
    diff = diff_resources(
        [Resource(n, "sha256", d) for n, d in sorted(want.items())],
        [Resource(n, "sha256", d) for n, d in sorted(have.items())],
    )
    assert set(diff.added) == have.keys() - want.keys()
    assert set(diff.missing) == want.keys() - have.keys()
    assert {c.name for c in diff.changed} == {
        n for n in want.keys() & have.keys() if want[n] != have[n]
    }
    assert bool(diff) == (want != have)
    assert ModelDiff() == diff_resources([], [])


# --- the bundle is wrong -----------------------------------------------------------------------


def test_wrong_public_key(tmp_path: Path, keys: Keys) -> None:
    model = _model(tmp_path)
    bundle = sign_model(model, keys.signer)
    other = Keys(tmp_path)
    with pytest.raises(SignatureInvalid, match="key mismatch"):
        verify_model(model, bundle, other.public)
    # without the hint, the signature itself fails
    with pytest.raises(SignatureInvalid, match="does not verify"):
        verify_model(model, KeyBundle(bundle.envelope, None), other.public)
    # and model-signing agrees
    sig = tmp_path / "model.sig"
    sig.write_bytes(bundle.to_json())
    assert "Key mismatch" in _ms_error(model, sig, other)


def test_tampered_payload_and_signature(tmp_path: Path, keys: Keys) -> None:
    model = _model(tmp_path)
    bundle = sign_model(model, keys.signer)
    statement = json.loads(bundle.envelope.payload)
    statement["predicate"]["resources"][0]["digest"] = "00" * 32
    forged = dsse.Envelope(
        bundle.envelope.payload_type, json.dumps(statement).encode(), bundle.envelope.signatures
    )
    with pytest.raises(SignatureInvalid):
        verify_model(model, KeyBundle(forged, bundle.hint), keys.public)
    sig = bytearray(bundle.envelope.signatures[0].sig)
    sig[-1] ^= 1
    flipped = dsse.Envelope(
        bundle.envelope.payload_type, bundle.envelope.payload, (dsse.Signature("", bytes(sig)),)
    )
    with pytest.raises(SignatureInvalid):
        verify_model(model, KeyBundle(flipped, bundle.hint), keys.public)
    other_type = dsse.Envelope("text/plain", bundle.envelope.payload, bundle.envelope.signatures)
    with pytest.raises(SignatureInvalid, match="payload type"):
        verify_model(model, KeyBundle(other_type, bundle.hint), keys.public)


def test_signed_but_inconsistent_statements(tmp_path: Path, keys: Keys) -> None:
    model = _model(tmp_path)
    bundle = sign_model(model, keys.signer)
    base = json.loads(bundle.envelope.payload)

    def signed(mutate: Any) -> KeyBundle:
        doc = json.loads(json.dumps(base))
        mutate(doc)
        return _resign(bundle, json.dumps(doc).encode(), keys.signer)

    cases: list[tuple[Any, type[AiledgerError], str]] = [
        (
            lambda d: d["subject"][0]["digest"].update(sha256="11" * 32),
            SignatureInvalid,
            "inconsistent",
        ),
        (lambda d: d.update(predicateType="https://example.com/x"), FormatError, "predicate type"),
        (
            lambda d: d.update(predicateType="https://model_signing/Digests/v0.1"),
            FormatError,
            "0.2",
        ),
        (lambda d: d.update(_type="https://in-toto.io/Statement/v0.1"), FormatError, "in-toto"),
        (lambda d: d["subject"].append(d["subject"][0]), FormatError, "one subject"),
        (
            lambda d: d["predicate"]["serialization"].update(method="zip"),
            FormatError,
            "serialization",
        ),
        (
            lambda d: d["predicate"]["resources"][0].update(algorithm="blake3"),
            FormatError,
            "hashed with",
        ),
        (lambda d: d["predicate"].pop("resources"), FormatError, "resources"),
        (
            lambda d: d["predicate"]["resources"].append(d["predicate"]["resources"][0]),
            FormatError,
            "twice",
        ),
    ]
    for mutate, error, message in cases:
        with pytest.raises(error, match=message):
            verify_model(model, signed(mutate), keys.public)
    with pytest.raises(FormatError, match="not JSON"):
        verify_model(model, _resign(bundle, b"\xff not json", keys.signer), keys.public)


def test_malformed_and_unsupported_bundles(tmp_path: Path, keys: Keys) -> None:
    good = json.loads(sign_model(_model(tmp_path), keys.signer).to_json())
    with pytest.raises(FormatError, match="not valid JSON"):
        read_bundle(json.dumps(good)[:-20].encode())
    bad: list[tuple[Any, type[AiledgerError], str]] = [
        ({**good, "mediaType": "application/json"}, FormatError, "mediaType"),
        ({k: v for k, v in good.items() if k != "dsseEnvelope"}, FormatError, "DSSE"),
        (
            {**good, "dsseEnvelope": None, "messageSignature": {}},
            FormatError,
            "dsseEnvelope",
        ),
        (
            {**good, "verificationMaterial": {"x509CertificateChain": {"certificates": []}}},
            InvalidInput,
            "certificate",
        ),
        ({**good, "verificationMaterial": {"tlogEntries": []}}, FormatError, "publicKey"),
        (
            {**good, "dsseEnvelope": {**good["dsseEnvelope"], "signatures": []}},
            FormatError,
            "no signature",
        ),
        (
            {**good, "dsseEnvelope": {**good["dsseEnvelope"], "payload": "%%%"}},
            FormatError,
            "base64",
        ),
        ([], FormatError, "object"),
    ]
    for doc, error, message in bad:
        with pytest.raises(error, match=message):
            read_bundle(json.dumps(doc).encode())
    with pytest.raises(FormatError, match="message signature"):
        read_bundle(
            {k: v for k, v in good.items() if k != "dsseEnvelope"} | {"messageSignature": {}}
        )


def test_other_key_types(tmp_path: Path, keys: Keys) -> None:
    model = _model(tmp_path)
    with pytest.raises(InvalidInput, match="P-256"):
        sign_model(model, Secp256k1Signer.generate())
    bundle = sign_model(model, keys.signer)
    with pytest.raises(InvalidInput, match="secp256k1"):
        verify_model(model, bundle, Secp256k1Signer.generate().public_key)
    k1 = ec.generate_private_key(ec.SECP256K1()).public_key()
    with pytest.raises(InvalidInput, match="secp256k1"):
        load_ec_public_key(
            k1.public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    with pytest.raises(InvalidInput, match="not a PEM"):
        load_ec_public_key(b"hello")
    # model-signing also signs with P-384: verified with SHA-384, and refused under a P-256 key
    p384 = Keys(tmp_path, ec.SECP384R1())
    sig = tmp_path / "p384.sig"
    ms_sign(model, sig, p384)
    bundle384 = read_bundle(sig.read_bytes())
    verify_model(model, bundle384, load_ec_public_key(p384.public_pem.read_bytes()))
    with pytest.raises(SignatureInvalid, match="key mismatch"):
        verify_model(model, bundle384, keys.public)
    with pytest.raises(SignatureInvalid, match="does not verify"):
        open_signed_model(KeyBundle(bundle384.envelope, None), keys.public)


# --- the parser ---------------------------------------------------------------------------------

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=examples(200))
@given(
    field=st.sampled_from(
        ["mediaType", "verificationMaterial", "dsseEnvelope", "publicKey", "payload", "signatures"]
    ),
    value=_JSON,
)
def test_parser_only_raises_clear_errors(field: str, value: Any) -> None:
    sig = base64.b64encode(b"sig").decode()
    doc: dict[str, Any] = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "verificationMaterial": {"publicKey": {"hint": "ab"}, "tlogEntries": []},
        "dsseEnvelope": {
            "payload": base64.b64encode(b"{}").decode(),
            "payloadType": dsse.PAYLOAD_TYPE_IN_TOTO,
            "signatures": [{"sig": sig, "keyid": ""}],
        },
    }
    if field in ("publicKey",):
        doc["verificationMaterial"][field] = value
    elif field in ("payload", "signatures"):
        doc["dsseEnvelope"][field] = value
    else:
        doc[field] = value
    try:
        bundle = read_bundle(json.dumps(doc).encode())
    except AiledgerError as exc:
        error = exc
    else:
        assert read_bundle(bundle.to_json()) == bundle
        return
    assert error.exit_code == 3
    assert error.message


@given(
    payload=st.binary(max_size=200), hint=st.none() | st.from_regex(r"[0-9a-f]{64}", fullmatch=True)
)
def test_bundle_json_round_trip(payload: bytes, hint: str | None) -> None:
    env = dsse.Envelope(dsse.PAYLOAD_TYPE_IN_TOTO, payload, (dsse.Signature("", b"\x30\x01"),))
    bundle = KeyBundle(env, hint)
    assert read_bundle(bundle.to_json()) == bundle
    assert re.fullmatch(rb'\{"mediaType":.*\}', bundle.to_json())


def test_symlinks_both_ways(tmp_path: Path, keys: Keys) -> None:
    model = _model(tmp_path)
    (tmp_path / "outside.bin").write_bytes(b"linked weights")
    (model / "linked.bin").symlink_to(tmp_path / "outside.bin")
    with pytest.raises(InvalidInput, match="symlink"):
        sign_model(model, keys.signer)
    ours, theirs = tmp_path / "ours.sig", tmp_path / "theirs.sig"
    ours.write_bytes(
        sign_model(model, keys.signer, config=HashingConfig(allow_symlinks=True)).to_json()
    )
    # model-signing's verifier takes allow_symlinks from its own config (its CLI's flag)
    ms_verifying.Config().use_elliptic_key_verifier(public_key=keys.public_pem).set_hashing_config(
        _ms_config().set_allow_symlinks(True)
    ).verify(model, ours)
    ms_sign(model, theirs, keys, _ms_config().set_allow_symlinks(True))
    signed = verify_model(model, read_bundle(theirs.read_bytes()), keys.public).signed
    assert "linked.bin" in {r.name for r in signed.resources}
    (tmp_path / "outside.bin").write_bytes(b"swapped")
    with pytest.raises(ModelMismatch, match=r"linked\.bin"):
        verify_model(model, read_bundle(theirs.read_bytes()), keys.public)
