"""Model fingerprints compatible with OpenSSF model signing (``model-signing`` 1.1.1).

A model is a file or a directory. Its manifest lists one resource per file (or per shard of a
file) by relative POSIX path with its digest; the subject digest is SHA-256 over the raw
resource digests in path order, exactly what model-signing puts in its in-toto subject, so
the same directory fingerprinted here and there gives the same subject digest.

The hashing identifier names every parameter that changes the digests, in model-signing's own
words: ``sha256``, ``blake3``, ``sha256-sharded-1000000000`` (shard size in bytes). With a
shard size, a file of ``n`` bytes gives the resources ``path:0:s``, ``path:s:2s``, ... (an
empty file gives none), as model-signing's shard serialization does. ``blake3-sharded-N`` is
accepted too but is ailedger's own: model-signing hashes BLAKE3 by whole files only (BLAKE3
is parallel inside one file), so use plain ``blake3`` when the other side is model-signing.

As an addition, every ``.safetensors`` file contributes one RFC 9162 Merkle leaf per tensor:
the RFC 8785 canonical JSON of (file, tensor name, dtype, shape, digest of the tensor's bytes),
sorted by file then name. The tensor digests are BLAKE3 by default, whatever the file digests
(``tensor_algorithm``; the leaf and the manifest name it): a second SHA-256 pass over every
byte would double the CPU of a fingerprint, BLAKE3 in the same read pass adds about a fifth.
:func:`tensor_inclusion_proof` proves that a tensor belongs to a fingerprinted model (its
``tensor_root``); :func:`verify_tensor` checks such a proof, and
:func:`ailedger.fingerprint.proofs.prove_tensor` wraps one in a proof document (``ailedger prove
--tensor``).

Hashing runs on a thread pool over files and shards, one read pass per file feeding the file
digest and the tensor digests (see :mod:`ailedger.fingerprint._hashing`); a stat cache (passed
explicitly, see :class:`MemoryStatCache` and :class:`SqliteStatCache`) lets a re-fingerprint
skip unchanged files.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field, replace
from typing import Protocol

from ailedger import merkle
from ailedger.errors import InvalidInput, ProofInvalid
from ailedger.fingerprint._hashing import ALGORITHMS, Algorithm, Job, run_jobs
from ailedger.fingerprint._manifest import (
    DEFAULT_SHARD_SIZE,
    MANIFEST_TYPE,
    FingerprintStats,
    HashingConfig,
    ModelFingerprint,
    Resource,
    subject_digest,
)
from ailedger.fingerprint._statcache import (
    FileStat,
    MemoryStatCache,
    SqliteStatCache,
    StatCache,
    is_racy,
)
from ailedger.fingerprint._tensors import (
    DEFAULT_TENSOR_ALGORITHM,
    TENSOR_LEAF_TYPE,
    TensorFile,
    TensorLeaf,
    decode_leaves,
    encode_leaves,
    tensor_ranges,
)
from ailedger.fingerprint._walk import DEFAULT_IGNORE_PATHS, ModelFile, list_model_files

__all__ = [
    "DEFAULT_IGNORE_PATHS",
    "DEFAULT_SHARD_SIZE",
    "DEFAULT_TENSOR_ALGORITHM",
    "MANIFEST_TYPE",
    "TENSOR_LEAF_TYPE",
    "FingerprintStats",
    "HashingConfig",
    "MemoryStatCache",
    "ModelFingerprint",
    "Progress",
    "Resource",
    "SqliteStatCache",
    "StatCache",
    "TensorFile",
    "TensorLeaf",
    "fingerprint_model",
    "subject_digest",
    "tensor_inclusion_proof",
    "verify_tensor",
]


class Progress(Protocol):
    def start(self, total_bytes: int) -> None: ...

    def advance(self, nbytes: int) -> None: ...


def _leaf_for(fp: ModelFingerprint, tensor: str, file: str | None) -> int:
    if fp.tensor_leaves is None:
        raise InvalidInput("this fingerprint has no tensor leaves (fingerprint with tensors)")
    hits = [
        i
        for i, leaf in enumerate(fp.tensor_leaves)
        if leaf.name == tensor and (file is None or leaf.file == file)
    ]
    if not hits:
        raise InvalidInput(f"no tensor named {tensor!r} in the fingerprint")
    if len(hits) > 1:
        files = ", ".join(fp.tensor_leaves[i].file for i in hits)
        raise InvalidInput(f"tensor {tensor!r} is in several files ({files}); name the file")
    return hits[0]


def tensor_inclusion_proof(
    fp: ModelFingerprint, tensor: str, *, file: str | None = None
) -> merkle.InclusionProof:
    """An RFC 9162 inclusion proof of the named tensor's leaf in ``fp.tensor_root``."""
    index = _leaf_for(fp, tensor, file)
    assert fp.tensor_leaves is not None
    assert fp.tensor_root is not None
    hashes = [leaf.leaf_hash() for leaf in fp.tensor_leaves]
    path = merkle.inclusion_proof_from_leaf_hashes(hashes, index)
    return merkle.InclusionProof(len(hashes), index, hashes[index], tuple(path), fp.tensor_root)


def verify_tensor(leaf: TensorLeaf, proof: merkle.InclusionProof, expected_root: bytes) -> None:
    """Check that ``leaf`` (a tensor's name, dtype, shape, digest) is in the tree with root
    ``expected_root``. Returns ``None`` or raises :class:`~ailedger.errors.ProofInvalid`."""
    if proof.leaf_hash != leaf.leaf_hash():
        raise ProofInvalid(
            f"the proof is for another leaf than tensor {leaf.name!r}", code="tensor-leaf-mismatch"
        )
    proof.verify(expected_root)


# --- Fingerprinting --------------------------------------------------------------------------


def _shards(size: int, shard_size: int) -> list[tuple[int, int]]:
    return [(s, min(s + shard_size, size)) for s in range(0, size, shard_size)]


#: When the file digest comes from the cache or from shards, tensors are hashed in groups of
#: about this many bytes, each group a job of its own. Otherwise the file's one job digests its
#: tensors in the same read pass (see :mod:`ailedger.fingerprint._hashing`).
_TENSOR_GROUP = 64 << 20


def _groups(ranges: tuple[tuple[int, int], ...]) -> list[tuple[int, tuple[tuple[int, int], ...]]]:
    """(index of the first tensor, ranges) of consecutive tensors, about _TENSOR_GROUP each."""
    out: list[tuple[int, tuple[tuple[int, int], ...]]] = []
    first = 0
    for i in range(len(ranges)):
        if ranges[i][1] - ranges[first][0] >= _TENSOR_GROUP or i == len(ranges) - 1:
            out.append((first, ranges[first : i + 1]))
            first = i + 1
    return out


@dataclass
class _Plan:
    """One file: its resources (ident, start, end), what is known so far, what is missing."""

    file: ModelFile
    stat: FileStat
    items: list[tuple[str, int, int]]
    digests: dict[str, bytes] = field(default_factory=dict)
    leaves: list[TensorLeaf] | None = None
    tensor_digests: list[bytes] | None = None  # filled by jobs when the leaves were not cached


def _plan(
    mf: ModelFile, cfg: HashingConfig, talg: Algorithm | None, cache: StatCache | None
) -> tuple[_Plan, list[tuple[Job, str | None, int]], int]:
    """The plan of one file (``talg``: the tensor digest, None: no tensors), its jobs (job,
    resource ident or None, first tensor) and cache hits."""
    st = FileStat.of(mf.stat)
    ident = cfg.identifier
    if cfg.shard_size is None:
        items = [(ident, 0, st.size)]
    else:
        items = [(f"{ident}:{s}:{e}", s, e) for s, e in _shards(st.size, cfg.shard_size)]
    plan = _Plan(mf, st, items)
    expect = (st.size, st.mtime_ns, st.ctime_ns)
    jobs: list[tuple[Job, str | None, int]] = []
    hits = 0
    for item_ident, s, e in items:
        hit = cache.get(mf.path, item_ident, st) if cache is not None else None
        if hit is None:
            job = Job(mf.path, mf.name, s, e, expect=expect, tensor_algorithm=talg)
            jobs.append((job, item_ident, 0))
        else:
            plan.digests[item_ident] = hit
            hits += 1
    if talg is not None and mf.path.endswith(".safetensors"):
        hit = cache.get(mf.path, f"tensors/{talg}", st) if cache is not None else None
        if hit is not None:
            plan.leaves = decode_leaves(hit, mf.name, talg)
            hits += 1
        else:
            # a single-file model's manifest name is "."; messages name the file itself
            shown = mf.name if mf.name != "." else os.path.basename(mf.path)
            header, ranges = tensor_ranges(mf.path, shown)
            plan.leaves = [
                TensorLeaf(mf.name, t.name, t.dtype, t.shape, talg, b"") for t in header.tensors
            ]
            plan.tensor_digests = [b""] * len(ranges)
            jobs.extend(_tensor_jobs(mf, expect, jobs, ranges, talg))
    return plan, jobs, hits


def _tensor_jobs(
    mf: ModelFile,
    expect: tuple[int, int, int],
    jobs: list[tuple[Job, str | None, int]],
    ranges: tuple[tuple[int, int], ...],
    talg: Algorithm,
) -> list[tuple[Job, str | None, int]]:
    """Give each file or shard job of ``jobs`` the tensors that lie inside it (one read pass
    for both); return jobs for the rest (tensors across shards or in a cached shard)."""
    done = [False] * len(ranges)
    for k, (job, ident, _) in enumerate(jobs):
        inside = [
            i for i, (b, e) in enumerate(ranges) if not done[i] and job.start <= b and e <= job.end
        ]
        if inside:
            first, last = inside[0], inside[-1] + 1  # contiguous: the ranges tile the data
            jobs[k] = (replace(job, tensors=ranges[first:last]), ident, first)
            done[first:last] = [True] * (last - first)
    extra: list[tuple[Job, str | None, int]] = []
    i = 0
    while i < len(ranges):
        end = i
        while end < len(ranges) and not done[end]:
            end += 1
        for first, group in _groups(ranges[i:end]):
            job = Job(mf.path, mf.name, group[0][0], group[-1][1], False, group, expect, talg)
            extra.append((job, None, i + first))
        i = end + 1 if end == i else end
    return extra


def fingerprint_model(
    path: str | os.PathLike[str],
    config: HashingConfig | None = None,
    *,
    tensors: bool = True,
    tensor_algorithm: Algorithm = DEFAULT_TENSOR_ALGORITHM,
    cache: StatCache | None = None,
    progress: Progress | None = None,
) -> ModelFingerprint:
    """Fingerprint the model at ``path`` (a file or a directory).

    ``tensors`` adds per-tensor leaves for ``.safetensors`` files (their headers must then be
    valid), with tensor digests in ``tensor_algorithm`` (``blake3`` or ``sha256``; the file
    digests follow ``config``). ``cache`` (None: no cache) skips files unchanged since they were
    last hashed. Raises ``NotFound`` / ``InvalidInput`` / ``FormatError`` with one message on
    bad input.
    """
    if tensor_algorithm not in ALGORITHMS:
        raise InvalidInput(
            f"unknown tensor digest algorithm {tensor_algorithm!r} (use blake3 or sha256)"
        )
    cfg = config or HashingConfig()
    talg = tensor_algorithm if tensors else None
    started_ns, t0 = time.time_ns(), time.perf_counter()
    name, files = list_model_files(
        path, ignore_paths=cfg.effective_ignore_paths, allow_symlinks=cfg.allow_symlinks
    )
    plans: list[_Plan] = []
    work: list[tuple[_Plan, Job, str | None, int]] = []
    cached = 0
    for mf in files:
        plan, jobs, hits = _plan(mf, cfg, talg, cache)
        plans.append(plan)
        work.extend((plan, job, ident, first) for job, ident, first in jobs)
        cached += hits
    total = sum(job.end - job.start for _, job, _, _ in work)
    if progress is not None:
        progress.start(total)
    results = run_jobs(
        [job for _, job, _, _ in work],
        cfg.algorithm,
        max_workers=cfg.max_workers,
        progress=progress.advance if progress is not None else None,
    )
    to_cache: list[tuple[str, str, FileStat, bytes]] = []
    for (plan, _job, ident, first), result in zip(work, results, strict=True):
        if ident is not None and result.digest is not None:
            plan.digests[ident] = result.digest
            to_cache.append((plan.file.path, ident, plan.stat, result.digest))
        if result.tensor_digests and plan.tensor_digests is not None:
            n = len(result.tensor_digests)
            plan.tensor_digests[first : first + n] = result.tensor_digests
    for plan in plans:
        if plan.tensor_digests is not None and plan.leaves is not None:
            plan.leaves = [
                leaf.with_digest(d)
                for leaf, d in zip(plan.leaves, plan.tensor_digests, strict=True)
            ]
            blob = encode_leaves(plan.leaves)
            to_cache.append((plan.file.path, f"tensors/{talg}", plan.stat, blob))
    if cache is not None:
        # git's racy-clean rule: never remember a file modified just before we read it
        fresh = [item for item in to_cache if not is_racy(item[2], started_ns)]
        if fresh:
            cache.put_many(fresh)
    return _assemble(name, cfg, plans, talg, total, cached, time.perf_counter() - t0)


def _assemble(
    name: str,
    cfg: HashingConfig,
    plans: list[_Plan],
    talg: Algorithm | None,
    bytes_read: int,
    cached: int,
    seconds: float,
) -> ModelFingerprint:
    resources: list[Resource] = []
    for plan in plans:
        for item_ident, s, e in plan.items:
            rname = plan.file.name if cfg.shard_size is None else f"{plan.file.name}:{s}:{e}"
            resources.append(Resource(rname, cfg.identifier, plan.digests[item_ident]))
    tensor_files: list[TensorFile] = []
    all_leaves: list[TensorLeaf] = []
    all_hashes: list[bytes] = []
    for plan in plans:
        if plan.leaves is None:
            continue
        leaves = sorted(plan.leaves, key=lambda leaf: leaf.name)
        hashes = [leaf.leaf_hash() for leaf in leaves]
        file_root = merkle.root_from_leaf_hashes(hashes)
        tensor_files.append(TensorFile(plan.file.name, len(leaves), len(all_leaves), file_root))
        all_leaves.extend(leaves)
        all_hashes.extend(hashes)
    tensors = talg is not None
    stats = FingerprintStats(
        len(plans), sum(p.stat.size for p in plans), bytes_read, cached, seconds
    )
    return ModelFingerprint(
        model_name=name,
        config=cfg,
        resources=tuple(resources),
        subject_digest=subject_digest(resources),
        tensor_files=tuple(tensor_files) if tensors else None,
        tensor_leaves=tuple(all_leaves) if tensors else None,
        tensor_root=merkle.root_from_leaf_hashes(all_hashes) if tensors else None,
        tensor_algorithm=talg,
        stats=stats,
    )
