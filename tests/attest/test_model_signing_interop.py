"""ailedger's model manifest against the real OpenSSF ``model-signing`` 1.1.1 package.

The same directory hashed by both gives the same per-resource digests (by name, in the same
order) and the same subject digest, computed on model-signing's side by its own in-toto
``Payload`` (what it signs).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.demos.samples import SAMPLE_MODEL
from ailedger.fingerprint.model import HashingConfig, fingerprint_model

ms_hashing = pytest.importorskip("model_signing.hashing")
ms_signing = pytest.importorskip("model_signing._signing.signing")

pytestmark = pytest.mark.interop

EXAMPLE = SAMPLE_MODEL


def _ms(path: Path, config: object) -> tuple[list[tuple[str, str, str]], str, dict[str, object]]:
    manifest = config.hash(path)  # type: ignore[attr-defined]
    payload = ms_signing.Payload(manifest).statement.pb
    subject = payload.subject[0].digest["sha256"]
    resources = [
        (d.identifier, d.digest.algorithm, d.digest.digest_hex)
        for d in manifest.resource_descriptors()
    ]
    return resources, subject, manifest.serialization_type


def _ours(path: Path, config: HashingConfig) -> tuple[list[tuple[str, str, str]], str]:
    fp = fingerprint_model(path, config, tensors=False)
    return [(r.name, r.algorithm, r.digest.hex()) for r in fp.resources], fp.subject_digest.hex()


def _assert_same(path: Path, ours: HashingConfig, theirs: object) -> None:
    ms_resources, ms_subject, ms_serialization = _ms(path, theirs)
    resources, subject = _ours(path, ours)
    assert resources == ms_resources
    assert subject == ms_subject
    mine = fingerprint_model(path, ours, tensors=False).to_dict()["serialization"]
    assert {k: v for k, v in mine.items() if k != "ignore_paths"} == {
        k: v for k, v in ms_serialization.items() if k != "ignore_paths"
    }
    theirs_ignored: list[str] = ms_serialization.get("ignore_paths", [])  # type: ignore[assignment]
    assert sorted(mine.get("ignore_paths", [])) == sorted(theirs_ignored)


def _tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, data in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
    return root


@pytest.fixture
def hf_dir(tmp_path: Path) -> Path:
    return _tree(
        tmp_path / "hf",
        {
            "config.json": b'{"model_type": "x"}',
            "model.safetensors": (EXAMPLE / "model.safetensors").read_bytes(),
            "tokenizer.json": b"{}",
            "empty.bin": b"",
            "a/b": b"nested",
            "a-c": b"sorts after a/ by path parts, before it as a string",
            "a/z/deep.txt": os.urandom(3000),
            ".git/HEAD": b"ref: refs/heads/main",
            ".gitattributes": b"*.safetensors filter=lfs",
            ".github/workflows/ci.yml": b"on: push",
            ".gitignore": b"*.tmp",
            "sub/.git/kept": b"only top-level git paths are ignored",
            ".gitkeep": b"not ignored: .git is matched by path parts",
        },
    )


def test_sample_model_default_hash() -> None:
    # model_signing.hashing.hash(): the library's one-call default
    manifest = ms_hashing.hash(EXAMPLE)
    subject = ms_signing.Payload(manifest).statement.pb.subject[0].digest["sha256"]
    resources, ours = _ours(EXAMPLE, HashingConfig())
    assert ours == subject
    assert [r[0] for r in resources] == [d.identifier for d in manifest.resource_descriptors()]
    assert [r[0] for r in resources] == [
        "README.md",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]
    _assert_same(EXAMPLE, HashingConfig(), ms_hashing.Config())


def test_hf_directory_sha256(hf_dir: Path) -> None:
    _assert_same(hf_dir, HashingConfig(), ms_hashing.Config())


def test_hf_directory_blake3(hf_dir: Path) -> None:
    theirs = ms_hashing.Config().use_file_serialization(hashing_algorithm="blake3")
    _assert_same(hf_dir, HashingConfig(algorithm="blake3"), theirs)


@pytest.mark.parametrize("shard_size", [5, 1000, 1_000_000_000])
def test_hf_directory_sharded(hf_dir: Path, shard_size: int) -> None:
    theirs = ms_hashing.Config().use_shard_serialization(shard_size=shard_size)
    _assert_same(hf_dir, HashingConfig(shard_size=shard_size), theirs)


def test_git_paths_included_when_asked(hf_dir: Path) -> None:
    theirs = ms_hashing.Config().set_ignored_paths(paths=["a"], ignore_git_paths=False)
    ours = HashingConfig(ignore_paths=("a",), ignore_git_paths=False)
    _assert_same(hf_dir, ours, theirs)
    names = [r.name for r in fingerprint_model(hf_dir, ours, tensors=False).resources]
    assert ".git/HEAD" in names
    assert "a/b" not in names


def test_single_file(tmp_path: Path) -> None:
    single = tmp_path / "model.onnx"
    single.write_bytes(os.urandom(5000))
    _assert_same(single, HashingConfig(), ms_hashing.Config())
    theirs = ms_hashing.Config().use_shard_serialization(shard_size=1024)
    _assert_same(single, HashingConfig(shard_size=1024), theirs)


def test_symlinked_file_when_allowed(hf_dir: Path) -> None:
    (hf_dir / "link.json").symlink_to(hf_dir / "config.json")
    (hf_dir / "linkdir").symlink_to(hf_dir / "a")
    theirs = ms_hashing.Config().set_allow_symlinks(True)
    _assert_same(hf_dir, HashingConfig(allow_symlinks=True), theirs)
    top = hf_dir.parent / "top-link"
    top.symlink_to(hf_dir)
    _assert_same(top, HashingConfig(allow_symlinks=True), theirs)
    assert fingerprint_model(top, HashingConfig(allow_symlinks=True), tensors=False).resources


def test_symlink_refused_by_both(hf_dir: Path) -> None:
    (hf_dir / "link.json").symlink_to(hf_dir / "config.json")
    with pytest.raises(ValueError, match="symlink"):
        ms_hashing.Config().hash(hf_dir)
    with pytest.raises(ValueError, match="symlink"):
        fingerprint_model(hf_dir)


_names = st.lists(
    st.lists(
        st.sampled_from(["a", "b", "a-b", "a.b", "B", "_", "é", ".git", "x y"]),
        min_size=1,
        max_size=3,
    ).map("/".join),
    min_size=0,
    max_size=8,
    unique=True,
)


@settings(
    max_examples=examples(25),
    suppress_health_check=[*settings().suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(names=_names, data=st.data())
def test_random_trees(
    tmp_path_factory: pytest.TempPathFactory, names: list[str], data: st.DataObject
) -> None:
    root = tmp_path_factory.mktemp("rand")
    files: dict[str, bytes] = {}
    for name in names:
        # a name cannot be both a file and a directory
        if any(other.startswith(name + "/") or name.startswith(other + "/") for other in files):
            continue
        files[name] = data.draw(st.binary(max_size=64))
    _tree(root, files)
    _assert_same(root, HashingConfig(), ms_hashing.Config())
    shard = data.draw(st.integers(1, 40))
    theirs = ms_hashing.Config().use_shard_serialization(shard_size=shard)
    _assert_same(root, HashingConfig(shard_size=shard), theirs)


def test_empty_and_only_ignored(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    _assert_same(empty, HashingConfig(), ms_hashing.Config())
    _tree(empty, {".git/HEAD": b"x", ".gitignore": b"y"})
    _assert_same(empty, HashingConfig(), ms_hashing.Config())
    _assert_same(
        empty,
        HashingConfig(shard_size=1),
        ms_hashing.Config().use_shard_serialization(shard_size=1),
    )


@pytest.mark.parametrize("shard_size", [None, 2000])
def test_manifest_matches_the_signed_payload(shard_size: int | None) -> None:
    """Our JSON manifest carries model-signing's in-toto predicate fields verbatim, and our
    reader understands the serialization section model-signing signs (issue 3 builds on it)."""
    json_format = pytest.importorskip("google.protobuf.json_format")
    theirs = ms_hashing.Config()
    if shard_size is not None:
        theirs = theirs.use_shard_serialization(shard_size=shard_size)
    statement = json_format.MessageToDict(ms_signing.Payload(theirs.hash(EXAMPLE)).statement.pb)
    fp = fingerprint_model(EXAMPLE, HashingConfig(shard_size=shard_size))
    doc = fp.to_dict()
    assert doc["subject"] == statement["subject"][0]
    assert doc["resources"] == statement["predicate"]["resources"]
    config = HashingConfig.from_serialization(statement["predicate"]["serialization"])
    assert config == fp.config
