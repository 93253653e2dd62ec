"""``ailedger prove MODEL --tensor NAME``: the model side of ``prove`` (see ``_dataset``).

A tensor proof is made from a fingerprint of the model (through the same stat cache as
``ailedger fingerprint model``, so proving right after fingerprinting reads nothing again).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ailedger.cli._cache import open_stat_cache
from ailedger.errors import InvalidInput, NotFound
from ailedger.fingerprint.model import HashingConfig, fingerprint_model
from ailedger.fingerprint.proofs import TensorProof, prove_tensor

__all__ = ["write_tensor_proof"]


def write_tensor_proof(
    path: Path,
    out: Path,
    tensor: str,
    *,
    file: str | None,
    algorithm: str,
    use_cache: bool,
) -> dict[str, Any]:
    """Fingerprint the model at ``path``, write the proof of ``tensor`` to ``out``; the
    summary printed by ``prove``."""
    if algorithm not in ("sha256", "blake3"):
        raise InvalidInput(f"--algorithm must be sha256 or blake3, not {algorithm!r}")
    if not path.exists():
        raise NotFound(f"model not found: {path}")
    if path.is_file() and path.suffix != ".safetensors":
        raise InvalidInput(f"{path} is not a .safetensors file or a model directory")
    config = HashingConfig(algorithm="sha256" if algorithm == "sha256" else "blake3")
    cache = open_stat_cache(no_cache=not use_cache)
    try:
        fp = fingerprint_model(path, config, tensors=True, cache=cache)
    finally:
        if cache is not None:
            cache.close()
    if not fp.tensor_leaves:
        raise InvalidInput(f"{path} has no safetensors tensors to prove")
    proof: TensorProof = prove_tensor(fp, tensor, file=file)
    out.write_text(json.dumps(proof.to_dict(), indent=2) + "\n", encoding="utf-8")
    return {
        "proof_file": str(out),
        "kind": "model-tensor",
        "root": proof.model.tensor_root.hex(),
        "size": proof.inclusion.tree_size,
        "subject_digest": proof.model.subject_digest.hex(),
        "file": proof.tensor.file,
        "tensor": proof.tensor.name,
        "leaf_index": proof.inclusion.leaf_index,
    }
