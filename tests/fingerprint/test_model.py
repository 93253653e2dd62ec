"""Model fingerprints: tensors and their proofs, the stat cache, bad input."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import struct
import time
from pathlib import Path

import blake3
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save, save_file

from _profiles import examples
from ailedger import merkle
from ailedger.demos.samples import SAMPLE_MODEL
from ailedger.errors import FormatError, IntegrityError, InvalidInput, NotFound, ProofInvalid
from ailedger.fingerprint.model import (
    DEFAULT_IGNORE_PATHS,
    HashingConfig,
    MemoryStatCache,
    ModelFingerprint,
    SqliteStatCache,
    TensorLeaf,
    fingerprint_model,
    subject_digest,
    tensor_inclusion_proof,
    verify_tensor,
)

EXAMPLE = SAMPLE_MODEL
OLD = time.time() - 3600  # an hour ago: outside the racy window


def _age(root: Path) -> None:
    """Set every file's mtime an hour back, so the stat cache may trust it."""
    for p in [root, *root.rglob("*")]:
        if p.is_file():
            os.utime(p, (OLD, OLD))


def _model(tmp_path: Path) -> Path:
    root = tmp_path / "m"
    root.mkdir()
    for name in ("config.json", "tokenizer.json", "README.md"):
        (root / name).write_bytes((EXAMPLE / name).read_bytes())
    save_file(
        {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(4, dtype=np.int8)},
        str(root / "model-00001-of-00002.safetensors"),
    )
    save_file(
        {"w": np.zeros((2, 2), np.float16), "head": np.full(5, 7, np.int64)},
        str(root / "model-00002-of-00002.safetensors"),
    )
    _age(root)
    return root


# --- tensors ---------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_tensor_leaves_match_the_tensor_bytes(algorithm: str) -> None:
    fp = fingerprint_model(
        EXAMPLE,
        HashingConfig(algorithm=algorithm),  # type: ignore[arg-type]
        tensor_algorithm=algorithm,  # type: ignore[arg-type]
    )
    assert fp.tensor_leaves is not None
    assert fp.tensor_files is not None

    def ref(data: bytes) -> bytes:
        if algorithm == "sha256":
            return hashlib.sha256(data).digest()
        return blake3.blake3(data).digest()

    with safe_open(str(EXAMPLE / "model.safetensors"), framework="numpy") as f:
        names = sorted(f.keys())
        assert [leaf.name for leaf in fp.tensor_leaves] == names
        for leaf in fp.tensor_leaves:
            array = f.get_tensor(leaf.name)
            assert leaf.file == "model.safetensors"
            assert leaf.shape == tuple(array.shape)
            assert leaf.digest == ref(array.tobytes())
            assert leaf.algorithm == algorithm
    assert fp.tensor_root == merkle.root([leaf.encode() for leaf in fp.tensor_leaves])
    assert [t.to_dict()["count"] for t in fp.tensor_files] == [9]


def test_tensor_digests_are_blake3_by_default_and_named(tmp_path: Path) -> None:
    # issue 11 item 19: BLAKE3 tensor digests whatever the file digests (a second SHA-256
    # pass doubled the CPU); the files keep model-signing's SHA-256, the leaf and the
    # manifest name the tensors' algorithm
    root = _model(tmp_path)
    fp = fingerprint_model(root)
    old = fingerprint_model(root, tensor_algorithm="sha256")
    assert fp.hashing == old.hashing == "sha256"
    assert fp.subject_digest == old.subject_digest
    assert fp.tensor_algorithm == "blake3"
    assert old.tensor_algorithm == "sha256"
    assert fp.tensor_root != old.tensor_root
    assert fp.tensor_leaves is not None
    assert old.tensor_leaves is not None
    with safe_open(str(root / "model-00001-of-00002.safetensors"), framework="numpy") as f:
        for leaf, was in zip(fp.tensor_leaves, old.tensor_leaves, strict=True):
            if leaf.file != "model-00001-of-00002.safetensors":
                continue
            data = f.get_tensor(leaf.name).tobytes()
            assert (leaf.algorithm, leaf.digest) == ("blake3", blake3.blake3(data).digest())
            assert (was.algorithm, was.digest) == ("sha256", hashlib.sha256(data).digest())
            assert json.loads(leaf.encode())["digest"] == {"blake3": leaf.digest.hex()}
    assert fp.to_dict()["tensors"]["digest_algorithm"] == "blake3"
    assert old.to_dict()["tensors"]["digest_algorithm"] == "sha256"
    with pytest.raises(InvalidInput, match="unknown tensor digest algorithm 'md5'"):
        fingerprint_model(root, tensor_algorithm="md5")  # type: ignore[arg-type]


def test_manifests_from_before_the_tensor_digest_was_named_still_read(tmp_path: Path) -> None:
    # a manifest written before "digest_algorithm" existed had tensor digests in the files'
    # algorithm; it reads back as such, and its tensor proofs verify
    root = _model(tmp_path)
    for algorithm in ("sha256", "blake3"):
        cfg = HashingConfig(algorithm=algorithm)  # type: ignore[arg-type]
        fp = fingerprint_model(root, cfg, tensor_algorithm=algorithm)  # type: ignore[arg-type]
        doc = fp.to_dict(leaves=True)
        del doc["tensors"]["digest_algorithm"]
        loaded = ModelFingerprint.from_dict(doc)
        assert loaded == fp
        assert loaded.tensor_algorithm == algorithm
        assert loaded.tensor_leaves is not None
        leaf = loaded.tensor_leaves[0]
        proof = tensor_inclusion_proof(loaded, leaf.name, file=leaf.file)
        verify_tensor(leaf, proof, loaded.tensor_root or b"")
    # the default names BLAKE3 and survives the round trip
    fp = fingerprint_model(root)
    assert ModelFingerprint.from_dict(json.loads(json.dumps(fp.to_dict(leaves=True)))) == fp
    assert ModelFingerprint.from_dict(fp.to_dict()).tensor_algorithm == "blake3"


def test_unknown_or_inconsistent_tensor_digest_algorithms_fail_closed(tmp_path: Path) -> None:
    doc = fingerprint_model(_model(tmp_path)).to_dict(leaves=True)
    for value in ("md5", "BLAKE3", None, 3):
        with pytest.raises(FormatError, match="unknown tensor digest algorithm"):
            ModelFingerprint.from_dict(_tamper(doc, ("tensors", "digest_algorithm"), value))
    # every leaf must carry the named digest (a sha256 manifest's leaves are not blake3)
    with pytest.raises(FormatError, match="every tensor leaf must have a sha256 digest"):
        ModelFingerprint.from_dict(_tamper(doc, ("tensors", "digest_algorithm"), "sha256"))
    no_leaves = copy.deepcopy(doc)
    del no_leaves["tensors"]["leaves"]  # type: ignore[attr-defined]
    with pytest.raises(FormatError, match="unknown tensor digest algorithm"):
        ModelFingerprint.from_dict(_tamper(no_leaves, ("tensors", "digest_algorithm"), "sha512"))


def test_cache_is_keyed_by_tensor_digest_algorithm(tmp_path: Path) -> None:
    root = _model(tmp_path)
    cache = MemoryStatCache()
    fast = fingerprint_model(root, cache=cache)
    old = fingerprint_model(root, tensor_algorithm="sha256", cache=cache)
    assert old == fingerprint_model(root, tensor_algorithm="sha256")
    assert old.tensor_root != fast.tensor_root
    again = fingerprint_model(root, cache=cache)
    assert again == fast
    assert again.stats is not None
    assert again.stats.bytes_read == 0


def test_leaf_encoding_is_canonical_json() -> None:
    leaf = TensorLeaf("m.safetensors", "w", "F32", (2, 3), "sha256", bytes(32))
    assert leaf.encode() == (
        b'{"digest":{"sha256":"' + b"00" * 32 + b'"},"dtype":"F32","file":"m.safetensors",'
        b'"name":"w","shape":[2,3],"type":"https://ailedger.dev/model/tensor/v1"}'
    )
    assert TensorLeaf.from_dict(leaf.to_dict()) == leaf
    with pytest.raises(FormatError):
        TensorLeaf.from_dict({"file": "x", "name": "w"})


def test_sharded_checkpoint_tree(tmp_path: Path) -> None:
    fp = fingerprint_model(_model(tmp_path))
    assert fp.tensor_leaves is not None
    assert fp.tensor_files is not None
    assert [(x.file[6:11], x.name) for x in fp.tensor_leaves] == [
        ("00001", "b"),
        ("00001", "w"),
        ("00002", "head"),
        ("00002", "w"),
    ]
    first, second = fp.tensor_files
    assert (first.first_leaf, first.count, second.first_leaf, second.count) == (0, 2, 2, 2)
    assert second.root == merkle.root([x.encode() for x in fp.tensor_leaves[2:]])
    with pytest.raises(InvalidInput, match="several files"):
        tensor_inclusion_proof(fp, "w")
    proof = tensor_inclusion_proof(fp, "w", file="model-00002-of-00002.safetensors")
    verify_tensor(fp.tensor_leaves[3], proof, fp.tensor_root or b"")
    with pytest.raises(InvalidInput, match="no tensor named"):
        tensor_inclusion_proof(fp, "nope")


def test_proofs_survive_json_and_fail_when_tampered() -> None:
    fp = fingerprint_model(EXAMPLE)
    assert fp.tensor_leaves is not None
    assert fp.tensor_root is not None
    doc = fp.to_dict(leaves=True)
    for i, leaf_doc in enumerate(doc["tensors"]["leaves"]):
        leaf = TensorLeaf.from_dict(leaf_doc)
        proof = merkle.InclusionProof.from_dict(tensor_inclusion_proof(fp, leaf.name).to_dict())
        assert proof.leaf_index == i
        verify_tensor(leaf, proof, bytes.fromhex(doc["tensors"]["root"]))
        for lie in (
            leaf.with_digest(hashlib.sha256(b"other").digest()),
            TensorLeaf(leaf.file, leaf.name, "F64", leaf.shape, leaf.algorithm, leaf.digest),
            TensorLeaf(leaf.file, leaf.name, leaf.dtype, (*leaf.shape, 1), "sha256", leaf.digest),
            TensorLeaf(
                "other.safetensors", leaf.name, leaf.dtype, leaf.shape, "sha256", leaf.digest
            ),
        ):
            with pytest.raises(ProofInvalid):
                verify_tensor(lie, proof, fp.tensor_root)
    with pytest.raises(ProofInvalid):
        verify_tensor(
            fp.tensor_leaves[0],
            tensor_inclusion_proof(fp, fp.tensor_leaves[0].name),
            hashlib.sha256(b"another root").digest(),
        )


@settings(
    max_examples=examples(15),
    suppress_health_check=[*settings().suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(
    shapes=st.lists(st.lists(st.integers(0, 3), max_size=2), min_size=1, max_size=9),
    data=st.data(),
)
def test_every_tensor_proof_verifies_and_any_byte_flip_fails(
    tmp_path_factory: pytest.TempPathFactory, shapes: list[list[int]], data: st.DataObject
) -> None:
    root = tmp_path_factory.mktemp("t")
    arrays = {f"t{i}": np.full(s, i, dtype=np.int16) for i, s in enumerate(shapes)}
    (root / "x.safetensors").write_bytes(save(arrays))
    fp = fingerprint_model(root)
    assert fp.tensor_leaves is not None
    assert fp.tensor_root is not None
    for leaf in fp.tensor_leaves:
        proof = tensor_inclusion_proof(fp, leaf.name)
        verify_tensor(leaf, proof, fp.tensor_root)
    leaf = data.draw(st.sampled_from(fp.tensor_leaves))
    proof = tensor_inclusion_proof(fp, leaf.name)
    blob = bytearray(b"".join([proof.leaf_hash, *proof.hashes, proof.root]))
    pos = data.draw(st.integers(0, len(blob) - 1))
    blob[pos] ^= data.draw(st.integers(1, 255))
    n = len(proof.hashes)
    tampered = merkle.InclusionProof(
        proof.tree_size,
        proof.leaf_index,
        bytes(blob[:32]),
        tuple(bytes(blob[32 * (i + 1) : 32 * (i + 2)]) for i in range(n)),
        bytes(blob[32 * (n + 1) :]),
    )
    with pytest.raises(ProofInvalid):
        verify_tensor(leaf, tampered, fp.tensor_root)


def test_no_tensors_and_bad_safetensors(tmp_path: Path) -> None:
    root = _model(tmp_path)
    good = root / "model-00002-of-00002.safetensors"
    good.write_bytes(good.read_bytes()[:-1])
    with pytest.raises(FormatError, match=r"model-00002-of-00002\.safetensors: "):
        fingerprint_model(root)
    fp = fingerprint_model(root, tensors=False)
    assert fp.tensor_root is None
    assert fp.to_dict()["tensors"] is None


# --- manifest --------------------------------------------------------------------------------


def test_manifest_document(tmp_path: Path) -> None:
    root = _model(tmp_path)
    fp = fingerprint_model(root, HashingConfig(shard_size=100))
    doc = fp.to_dict()
    assert doc["hashing"] == "sha256-sharded-100"
    assert doc["serialization"]["method"] == "shards"
    assert doc["serialization"]["ignore_paths"] == list(DEFAULT_IGNORE_PATHS)
    names = [r["name"] for r in doc["resources"]]
    assert names[0] == "README.md:0:100"
    assert {r["algorithm"] for r in doc["resources"]} == {"sha256-sharded-100"}
    assert doc["subject"]["digest"]["sha256"] == subject_digest(fp.resources).hex()
    whole = fingerprint_model(root, tensors=False)
    assert whole.tensor_root is None
    assert fp.tensor_root == fingerprint_model(root).tensor_root  # tensors ignore sharding


def test_blake3_digests(tmp_path: Path) -> None:
    root = _model(tmp_path)
    fp = fingerprint_model(root, HashingConfig(algorithm="blake3"), tensors=False)
    for r in fp.resources:
        assert r.digest == blake3.blake3((root / r.name).read_bytes()).digest()
    assert fp.hashing == "blake3"


def test_config_validation() -> None:
    with pytest.raises(InvalidInput, match="shard size"):
        HashingConfig(shard_size=0)
    with pytest.raises(InvalidInput, match="unknown algorithm"):
        HashingConfig(algorithm="md5")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="relative"):
        fingerprint_model(EXAMPLE, HashingConfig(ignore_paths=("../x",)))


# --- stat cache ------------------------------------------------------------------------------


def test_second_run_reads_nothing(tmp_path: Path) -> None:
    root = _model(tmp_path)
    cache = MemoryStatCache()
    first = fingerprint_model(root, cache=cache)
    assert first.stats is not None
    assert first.stats.bytes_read >= first.stats.bytes_total  # tensors are read once more
    second = fingerprint_model(root, cache=cache)
    assert second.stats is not None
    assert second.stats.bytes_read == 0
    assert second.stats.cached_items == 5 + 2  # five files, two tensor lists
    assert second == first
    assert second.tensor_leaves == first.tensor_leaves


def test_changed_file_is_read_again_even_with_old_mtime(tmp_path: Path) -> None:
    root = _model(tmp_path)
    cache = MemoryStatCache()
    fingerprint_model(root, cache=cache)
    cfg = root / "config.json"
    before = cfg.stat()
    time.sleep(0.05)  # let the coarse kernel clock tick, so the write gets a new ctime
    data = bytearray(cfg.read_bytes())
    data[0] ^= 1
    cfg.write_bytes(bytes(data))  # same size
    os.utime(cfg, ns=(before.st_atime_ns, before.st_mtime_ns))  # same mtime: only ctime moved
    fp = fingerprint_model(root, cache=cache)
    assert fp.stats is not None
    assert fp.stats.bytes_read == len(data)
    assert fp == fingerprint_model(root)


def test_racy_files_are_not_cached(tmp_path: Path) -> None:
    root = tmp_path / "fresh"
    root.mkdir()
    (root / "a.bin").write_bytes(b"just written")
    cache = MemoryStatCache()
    fingerprint_model(root, cache=cache)
    # written a moment ago: a second write in the same mtime tick would go unnoticed, so the
    # digest was not cached and the file is read again (git's racy-clean rule)
    (root / "a.bin").write_bytes(b"just WRITTEN")
    fp = fingerprint_model(root, cache=cache)
    assert fp.stats is not None
    assert fp.stats.bytes_read == 12
    assert fp.resources[0].digest == hashlib.sha256(b"just WRITTEN").digest()


def test_cache_is_keyed_by_hashing_identifier(tmp_path: Path) -> None:
    root = _model(tmp_path)
    cache = MemoryStatCache()
    a = fingerprint_model(root, cache=cache)
    b = fingerprint_model(root, HashingConfig(algorithm="blake3"), cache=cache)
    c = fingerprint_model(root, HashingConfig(shard_size=64), cache=cache)
    assert b.stats is not None
    assert c.stats is not None
    assert b.stats.bytes_read > 0
    assert c.stats.bytes_read > 0
    assert a.subject_digest != b.subject_digest != c.subject_digest
    assert fingerprint_model(root, HashingConfig(shard_size=64), cache=cache) == c


def test_tensors_after_a_run_without(tmp_path: Path) -> None:
    root = _model(tmp_path)
    cache = MemoryStatCache()
    fingerprint_model(root, tensors=False, cache=cache)
    fp = fingerprint_model(root, cache=cache)
    assert fp == fingerprint_model(root)
    assert fp.stats is not None
    assert 0 < fp.stats.bytes_read < fp.stats.bytes_total  # only the tensor data was read
    assert fp.stats.cached_items == 5


def test_sqlite_cache_persists(tmp_path: Path) -> None:
    root = _model(tmp_path)
    db = tmp_path / "cache" / "stat-cache.sqlite"
    with SqliteStatCache(db) as cache:
        first = fingerprint_model(root, cache=cache)
    with SqliteStatCache(db) as cache:
        second = fingerprint_model(root, cache=cache)
    assert second.stats is not None
    assert second.stats.bytes_read == 0
    assert second == first


def test_corrupt_sqlite_cache(tmp_path: Path) -> None:
    db = tmp_path / "stat-cache.sqlite"
    db.write_bytes(b"this is not a database" * 100)
    with pytest.raises(IntegrityError, match="unusable") as info:
        SqliteStatCache(db)
    assert "--no-cache" in (info.value.hint or "")


# --- bad input -------------------------------------------------------------------------------


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="does not exist"):
        fingerprint_model(tmp_path / "nope")


def test_symlink_loop(tmp_path: Path) -> None:
    root = _model(tmp_path)
    (root / "a").symlink_to(root / "b")
    (root / "b").symlink_to(root / "a")
    for allow in (False, True):
        with pytest.raises(InvalidInput, match="symlink loop"):
            fingerprint_model(root, HashingConfig(allow_symlinks=allow))
    with pytest.raises(InvalidInput, match="symlink loop"):
        fingerprint_model(root / "a")


def test_broken_and_refused_symlinks(tmp_path: Path) -> None:
    root = _model(tmp_path)
    (root / "dangling").symlink_to(root / "nowhere")
    with pytest.raises(InvalidInput, match="dangling is a broken symlink"):
        fingerprint_model(root, HashingConfig(allow_symlinks=True))
    (root / "dangling").unlink()
    (root / "link").symlink_to(root / "config.json")
    with pytest.raises(InvalidInput, match="link is a symlink") as info:
        fingerprint_model(root)
    assert info.value.hint is not None
    fp = fingerprint_model(root, HashingConfig(allow_symlinks=True))
    digests = {r.name: r.digest for r in fp.resources}
    assert digests["link"] == digests["config.json"]


def test_special_file(tmp_path: Path) -> None:
    root = _model(tmp_path)
    os.mkfifo(root / "pipe")
    with pytest.raises(InvalidInput, match="pipe is not a regular file"):
        fingerprint_model(root)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file(tmp_path: Path) -> None:
    root = _model(tmp_path)
    (root / "config.json").chmod(0)
    with pytest.raises(InvalidInput, match=r"cannot read config\.json: permission denied"):
        fingerprint_model(root)


def test_ignored_dirs_are_not_walked(tmp_path: Path) -> None:
    root = _model(tmp_path)
    (root / ".git").mkdir()
    os.mkfifo(root / ".git" / "fifo")
    (root / ".git" / "loop").symlink_to(root / ".git" / "loop")
    (tmp_path / "clean").mkdir()
    clean = fingerprint_model(_model(tmp_path / "clean"))
    assert fingerprint_model(root).subject_digest == clean.subject_digest


class _Recorder:
    def __init__(self) -> None:
        self.total: int | None = None
        self.done = 0

    def start(self, total_bytes: int) -> None:
        self.total = total_bytes

    def advance(self, nbytes: int) -> None:
        self.done += nbytes


def test_progress_reports_every_byte_read(tmp_path: Path) -> None:
    root = _model(tmp_path)
    (root / "big.bin").write_bytes(os.urandom(3 << 20))
    rec = _Recorder()
    fp = fingerprint_model(root, HashingConfig(shard_size=1 << 20), progress=rec)
    assert fp.stats is not None
    assert rec.total == rec.done == fp.stats.bytes_read > 3 << 20


# --- manifest documents ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "config",
    [
        HashingConfig(),
        HashingConfig(algorithm="blake3", shard_size=300),
        HashingConfig(ignore_paths=("README.md",), allow_symlinks=True),
        HashingConfig(ignore_paths=("README.md",), ignore_git_paths=False),
    ],
)
def test_manifest_round_trip(tmp_path: Path, config: HashingConfig) -> None:
    fp = fingerprint_model(_model(tmp_path), config)
    loaded = ModelFingerprint.from_dict(json.loads(json.dumps(fp.to_dict(leaves=True))))
    assert loaded == fp
    assert loaded.config == config
    assert loaded.tensor_leaves is not None
    leaf = loaded.tensor_leaves[-1]
    verify_tensor(
        leaf, tensor_inclusion_proof(loaded, leaf.name, file=leaf.file), fp.tensor_root or b""
    )
    without = ModelFingerprint.from_dict(fp.to_dict())
    assert without.tensor_root == fp.tensor_root
    assert without.tensor_leaves is None
    with pytest.raises(InvalidInput, match="no tensor leaves"):
        tensor_inclusion_proof(without, leaf.name)
    bare = fingerprint_model(fp_root := tmp_path / "m", config, tensors=False)
    assert fp_root.is_dir()
    assert ModelFingerprint.from_dict(bare.to_dict()) == bare


def _tamper(
    doc: dict[str, object], path: tuple[str | int, ...], value: object
) -> dict[str, object]:
    out = copy.deepcopy(doc)
    target: object = out
    for key in path[:-1]:
        target = target[key]  # type: ignore[index]
    target[path[-1]] = value  # type: ignore[index]
    return out


def test_manifest_tampering_is_caught(tmp_path: Path) -> None:
    doc = fingerprint_model(_model(tmp_path)).to_dict(leaves=True)
    flipped = "0" * 64
    cases: list[tuple[tuple[str | int, ...], object, str]] = [
        (("type",), "x", "not a model manifest"),
        (("hashing",), "blake3", "does not match the serialization"),
        (("resources", 0, "digest"), flipped, "subject digest"),
        (("resources", 0, "digest"), "zz", "not hex"),
        (("resources", 1), "x", "must be an object"),
        (("resources", 0, "algorithm"), "blake3", "every resource"),
        (("subject", "digest", "sha256"), flipped, "subject digest"),
        (("serialization", "method"), "tensors", "unsupported serialization"),
        (("serialization", "method"), "shards", "needs an integer shard_size"),
        (("serialization", "allow_symlinks"), "yes", "must be a boolean"),
        (("tensors", "leaves", 0, "dtype"), "F64", "tensor root"),
        (("tensors", "leaves", 0, "dtype"), "F99", "malformed"),
        (("tensors", "root"), flipped, "tensor root"),
        (("tensors", "count"), 3, "count"),
        (("tensors", "files", 0, "root"), flipped, "tensor root of"),
        (("tensors", "files", 0, "first_leaf"), -1, "malformed"),
        (("tensors", "tree"), "other", "unsupported"),
        (("model_name",), 7, "model_name"),
    ]
    for path, value, message in cases:
        with pytest.raises(FormatError, match=message):
            ModelFingerprint.from_dict(_tamper(doc, path, value))
    with pytest.raises(FormatError):
        ModelFingerprint.from_dict([])
    del doc["resources"]
    with pytest.raises(FormatError, match="malformed"):
        ModelFingerprint.from_dict(doc)


@settings(max_examples=examples(40))
@given(data=st.data())
def test_any_flipped_digest_character_is_caught(data: st.DataObject) -> None:
    doc = fingerprint_model(EXAMPLE).to_dict(leaves=True)
    where = data.draw(st.sampled_from(["resource", "leaf", "root", "subject"]))
    if where == "resource":
        path: tuple[str | int, ...] = ("resources", data.draw(st.integers(0, 3)), "digest")
    elif where == "leaf":
        path = ("tensors", "leaves", data.draw(st.integers(0, 8)), "digest", "blake3")
    elif where == "root":
        path = ("tensors", "root")
    else:
        path = ("subject", "digest", "sha256")
    target: object = doc
    for key in path:
        target = target[key]  # type: ignore[index]
    assert isinstance(target, str)
    i = data.draw(st.integers(0, len(target) - 1))
    digit = data.draw(st.sampled_from([c for c in "0123456789abcdef" if c != target[i]]))
    with pytest.raises(FormatError, match="inconsistent manifest"):
        ModelFingerprint.from_dict(_tamper(doc, path, target[:i] + digit + target[i + 1 :]))


def test_single_safetensors_file() -> None:
    fp = fingerprint_model(EXAMPLE / "model.safetensors")
    assert [r.name for r in fp.resources] == ["."]
    assert fp.model_name == "model.safetensors"
    assert fp.tensor_leaves is not None
    assert {leaf.file for leaf in fp.tensor_leaves} == {"."}
    assert len(fp.tensor_leaves) == 9


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "config").write_text("x")
    fp = fingerprint_model(tmp_path)
    assert fp.resources == ()
    assert fp.subject_digest == hashlib.sha256(b"").digest()
    assert fp.tensor_root == merkle.EMPTY_ROOT


@given(
    shard=st.integers(1, 400),
    algorithm=st.sampled_from(["sha256", "blake3"]),
    sizes=st.lists(st.integers(0, 40), min_size=1, max_size=8),
)
@settings(max_examples=examples(40))
def test_tensors_inside_and_across_shards(shard: int, algorithm: str, sizes: list[int]) -> None:
    # tensors wholly inside a shard are hashed in the shard's read pass, the others (across a
    # shard boundary) by jobs of their own: the leaves must not depend on the split
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.safetensors"
        tensors = {f"t{i}": np.arange(n, dtype=np.float32) + i for i, n in enumerate(sizes)}
        save_file(tensors, str(path))
        data = path.read_bytes()
        whole = fingerprint_model(path, HashingConfig(algorithm=algorithm))  # type: ignore[arg-type]
        sharded = fingerprint_model(
            path,
            HashingConfig(algorithm=algorithm, shard_size=shard),  # type: ignore[arg-type]
        )
    assert sharded.tensor_leaves == whole.tensor_leaves
    assert sharded.tensor_root == whole.tensor_root
    assert sharded.stats is not None
    assert sharded.stats.bytes_read >= len(data)
    ref = hashlib.sha256 if algorithm == "sha256" else blake3.blake3
    for r in sharded.resources:
        _, s, e = r.name.rsplit(":", 2)
        assert r.digest == ref(data[int(s) : int(e)]).digest()


def test_a_broken_single_safetensors_file_is_named_in_the_error(tmp_path: Path) -> None:
    """Issue 11 item 15: the message named the file ``.:`` (its manifest name)."""
    header = json.dumps({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}).encode()
    path = tmp_path / "weights.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 8)
    with pytest.raises(FormatError, match=r"^weights\.safetensors: tensor 'w' ends at 16"):
        fingerprint_model(path)
