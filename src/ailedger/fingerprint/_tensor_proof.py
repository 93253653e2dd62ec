"""Tensor proof documents: one tensor of a safetensors file belongs to a fingerprinted model.

The document (``TENSOR_PROOF_TYPE``) names the model (its name, hashing identifier, the
model-signing subject digest and the root of its per-tensor tree), the tensor's leaf fields and
an RFC 9162 inclusion proof of that leaf::

    {"type": "https://ailedger.dev/model/tensor-proof/v1",
     "model": {"name": "m", "hashing": "sha256", "subject_digest": "<hex>",
               "tensor_root": "<hex>", "tensor_count": 291, "tensor_algorithm": "blake3"},
     "tensor": {"file": "model.safetensors", "name": "lm_head.weight", "dtype": "BF16",
                "shape": [32, 64], "algorithm": "blake3", "digest": "<hex>"},
     "inclusion": {<ailedger.merkle inclusion proof, root = tensor_root>}}

``tensor_algorithm`` is the digest of the model's tensors (the tensor's ``algorithm`` must be
it). Proofs made before it existed lack it: their tensors were digested with the files'
algorithm (the one ``hashing`` names), and they still verify.

A verifier rebuilds the leaf (:class:`~ailedger.fingerprint.model.TensorLeaf`) from the tensor
fields,
checks that it is the proven leaf and walks the path to ``tensor_root``; given the tensor's raw
bytes or the model on disk it also re-hashes the tensor. An RFC 9162 root does not commit to
the tree size, so ``tensor_count`` (the manifest's count) must equal the proof's tree size.

The subject digest (model-signing's, over the per-file digests) is carried so the proof can be
matched with a signed model, but the tensor tree does not commit to it: it is a claim until
the verifier pins it (``expected_subject``, ``--subject``) to a digest it trusts, e.g. from a
signed statement that names both, or re-fingerprints the model. The model name is a label.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ailedger.errors import FormatError, InvalidInput, NotFound, ProofInvalid
from ailedger.fingerprint._hashing import ALGORITHMS, Algorithm, Job, hash_bytes, run_job
from ailedger.fingerprint._proof_fields import (
    check_type,
    hex_bytes,
    inclusion,
    mapping,
    only_keys,
    string,
    uint,
)
from ailedger.fingerprint._safetensors import DTYPE_BITS
from ailedger.fingerprint._tensors import TensorLeaf, tensor_ranges
from ailedger.fingerprint.model import ModelFingerprint, tensor_inclusion_proof
from ailedger.merkle import InclusionProof

__all__ = [
    "TENSOR_PROOF_TYPE",
    "ModelRef",
    "TensorProof",
    "prove_tensor",
    "read_tensor_leaf",
]

TENSOR_PROOF_TYPE = "https://ailedger.dev/model/tensor-proof/v1"
_HASHING = re.compile(r"(sha256|blake3)(-sharded-[1-9][0-9]*)?")
_MODEL_KEYS = {
    "name",
    "hashing",
    "subject_digest",
    "tensor_root",
    "tensor_count",
    "tensor_algorithm",
}
_TENSOR_KEYS = {"file", "name", "dtype", "shape", "algorithm", "digest"}


@dataclass(frozen=True)
class ModelRef:
    """The fingerprinted model a tensor proof refers to."""

    name: str
    hashing: str
    subject_digest: bytes
    tensor_root: bytes
    tensor_count: int
    tensor_algorithm: str | None = None  # None: a proof from before it existed

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": self.name,
            "hashing": self.hashing,
            "subject_digest": self.subject_digest.hex(),
            "tensor_root": self.tensor_root.hex(),
            "tensor_count": self.tensor_count,
        }
        if self.tensor_algorithm is not None:
            doc["tensor_algorithm"] = self.tensor_algorithm
        return doc

    @property
    def algorithm(self) -> str:
        """The files' digest algorithm."""
        return self.hashing.split("-", 1)[0]

    @property
    def tensor_digest(self) -> str:
        """The tensors' digest algorithm (older proofs: the files')."""
        return self.tensor_algorithm or self.algorithm

    @classmethod
    def from_dict(cls, value: Any) -> ModelRef:
        d = mapping(value, "model")
        only_keys(d, _MODEL_KEYS)
        hashing = string(d, "hashing")
        if not _HASHING.fullmatch(hashing):
            raise FormatError(f"proof field 'hashing' is not a hashing identifier: {hashing!r}")
        tensor_algorithm = string(d, "tensor_algorithm") if "tensor_algorithm" in d else None
        if tensor_algorithm is not None and tensor_algorithm not in ALGORITHMS:
            raise FormatError(f"unknown tensor digest algorithm {tensor_algorithm!r}")
        return cls(
            string(d, "name"),
            hashing,
            hex_bytes(d, "subject_digest"),
            hex_bytes(d, "tensor_root"),
            uint(d, "tensor_count"),
            tensor_algorithm,
        )


def _leaf_to_dict(leaf: TensorLeaf) -> dict[str, Any]:
    return {
        "file": leaf.file,
        "name": leaf.name,
        "dtype": leaf.dtype,
        "shape": list(leaf.shape),
        "algorithm": leaf.algorithm,
        "digest": leaf.digest.hex(),
    }


def _leaf_from_dict(value: Any) -> TensorLeaf:
    d = mapping(value, "tensor")
    only_keys(d, _TENSOR_KEYS)
    file, name, dtype = string(d, "file"), string(d, "name"), string(d, "dtype")
    algorithm, shape = string(d, "algorithm"), d.get("shape")
    if algorithm not in ALGORITHMS:
        raise FormatError(f"unknown tensor digest algorithm {algorithm!r}")
    if dtype not in DTYPE_BITS:
        raise FormatError(f"unknown safetensors dtype {dtype!r}")
    if not isinstance(shape, list) or not all(
        isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape
    ):
        raise FormatError("proof field 'shape' must be a list of non-negative integers")
    parts = PurePosixPath(file).parts
    if file != "." and (not parts or parts[0] == "/" or ".." in parts or "\\" in file):
        raise FormatError(f"proof field 'file' is not a relative model path: {file!r}")
    return TensorLeaf(file, name, dtype, tuple(shape), algorithm, hex_bytes(d, "digest"))


def _nbytes(leaf: TensorLeaf) -> int | None:
    bits = math.prod(leaf.shape) * DTYPE_BITS[leaf.dtype]
    return bits // 8 if bits % 8 == 0 else None


@dataclass(frozen=True)
class TensorProof:
    """Tensor ``tensor`` is leaf ``inclusion.leaf_index`` of the model's tensor tree."""

    model: ModelRef
    tensor: TensorLeaf
    inclusion: InclusionProof

    def verify(
        self,
        expected_root: bytes | None = None,
        *,
        expected_subject: bytes | None = None,
        tensor_data: bytes | None = None,
        model_path: str | os.PathLike[str] | None = None,
    ) -> bool:
        """Raise ``ProofInvalid`` unless the proof holds. ``expected_root`` pins the tensor
        root, ``expected_subject`` the model's subject digest (otherwise only a claim);
        ``tensor_data`` (the raw bytes) or ``model_path`` (the model on disk) re-hash the
        tensor. Returns whether the tensor's bytes were checked."""
        ref, leaf = self.model, self.tensor
        root = ref.tensor_root
        if expected_root is not None and expected_root != root:
            raise ProofInvalid(
                f"proof is for tensor root {root.hex()}, expected {expected_root.hex()}",
                code="proof-root-mismatch",
            )
        if expected_subject is not None and expected_subject != ref.subject_digest:
            raise ProofInvalid(
                f"proof is for model subject {ref.subject_digest.hex()}, "
                f"expected {expected_subject.hex()}",
                code="proof-subject-mismatch",
            )
        if leaf.algorithm != ref.tensor_digest:
            raise ProofInvalid(
                f"the tensor digest is {leaf.algorithm}, "
                f"the model's tensors are {ref.tensor_digest}",
                code="tensor-digest-algorithm-mismatch",
            )
        if self.inclusion.root != root or self.inclusion.tree_size != ref.tensor_count:
            raise ProofInvalid(
                "the inclusion proof is for another tree than the model's tensors",
                code="proof-tree-mismatch",
            )
        if _nbytes(leaf) is None:
            raise ProofInvalid(
                f"{leaf.dtype}{list(leaf.shape)} is not a whole number of bytes",
                code="tensor-shape-invalid",
            )
        if self.inclusion.leaf_hash != leaf.leaf_hash():
            raise ProofInvalid(
                f"the tensor fields do not hash to the proven leaf ({leaf.name!r})",
                code="tensor-leaf-mismatch",
            )
        self.inclusion.verify(root)
        checked = False
        if tensor_data is not None:
            if len(tensor_data) != _nbytes(leaf):
                raise ProofInvalid(
                    f"the tensor data is {len(tensor_data)} bytes, "
                    f"{leaf.dtype}{list(leaf.shape)} is {_nbytes(leaf)}",
                    code="tensor-data-mismatch",
                )
            if hash_bytes(_algorithm(leaf), tensor_data) != leaf.digest:
                raise ProofInvalid(
                    f"the tensor data does not hash to the digest of {leaf.name!r}",
                    code="tensor-data-mismatch",
                )
            checked = True
        if model_path is not None:
            on_disk = read_tensor_leaf(model_path, leaf.file, leaf.name, _algorithm(leaf))
            for what in ("dtype", "shape", "digest"):
                if getattr(on_disk, what) != getattr(leaf, what):
                    raise ProofInvalid(
                        f"tensor {leaf.name!r} on disk has another {what}",
                        code="tensor-on-disk-mismatch",
                    )
            checked = True
        return checked

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": TENSOR_PROOF_TYPE,
            "model": self.model.to_dict(),
            "tensor": _leaf_to_dict(self.tensor),
            "inclusion": self.inclusion.to_dict(),
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> TensorProof:
        """Parse strictly: unknown fields, upper-case hex, bad types raise ``FormatError``."""
        check_type(doc, TENSOR_PROOF_TYPE)
        only_keys(doc, {"type", "model", "tensor", "inclusion"})
        return cls(
            ModelRef.from_dict(doc.get("model")),
            _leaf_from_dict(doc.get("tensor")),
            inclusion(doc.get("inclusion"), strict_keys=True),
        )


def _algorithm(leaf: TensorLeaf) -> Algorithm:
    return "sha256" if leaf.algorithm == "sha256" else "blake3"


def prove_tensor(fp: ModelFingerprint, tensor: str, *, file: str | None = None) -> TensorProof:
    """A tensor proof document for the named tensor (``file`` when the name is ambiguous)."""
    proof = tensor_inclusion_proof(fp, tensor, file=file)
    assert fp.tensor_leaves is not None
    assert fp.tensor_root is not None
    count = len(fp.tensor_leaves)
    ref = ModelRef(
        fp.model_name,
        fp.hashing,
        fp.subject_digest,
        fp.tensor_root,
        count,
        fp.tensor_algorithm or fp.config.algorithm,
    )
    return TensorProof(ref, fp.tensor_leaves[proof.leaf_index], proof)


def read_tensor_leaf(
    model: str | os.PathLike[str], file: str, tensor: str, algorithm: Algorithm
) -> TensorLeaf:
    """The leaf of ``tensor`` in ``file`` (``.``: ``model`` is the file) hashed from disk."""
    root = Path(model)
    if not root.exists():
        raise NotFound(f"model not found: {root}")
    if file == ".":
        if root.is_dir():
            raise InvalidInput(f"the proof is for a single-file model; {root} is a directory")
        path = root
    elif root.is_dir():
        path = root / file
    else:
        raise InvalidInput(f"the proof is for {file} in a model directory; {root} is a file")
    if not path.is_file():
        raise NotFound(f"{file} not found in {root}")
    header, _ = tensor_ranges(str(path), file)
    info = next((t for t in header.tensors if t.name == tensor), None)
    if info is None:
        raise ProofInvalid(
            f"{file} on disk has no tensor named {tensor!r}", code="tensor-on-disk-mismatch"
        )
    job = Job(str(path), file, info.begin, info.end, False, ((info.begin, info.end),))
    (digest,) = run_job(job, algorithm).tensor_digests
    return TensorLeaf(file, tensor, info.dtype, info.shape, algorithm, digest)
