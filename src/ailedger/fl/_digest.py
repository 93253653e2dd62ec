"""The digest of a model's parameters held in memory (a list of numpy arrays, as Flower passes
them): one RFC 9162 tree of per-tensor leaves, the same leaves as a safetensors file's
(:class:`ailedger.fingerprint.TensorLeaf`, BLAKE3 tensor digests), named ``p0``, ``p1``, ...
in order, in the file :data:`PARAMETERS_FILE`. Two parameter lists have the same digest exactly
when they hold the same dtypes, shapes and bytes in the same order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from ailedger import merkle
from ailedger.errors import InvalidInput
from ailedger.fingerprint import TensorLeaf
from ailedger.fingerprint._hashing import hash_bytes

__all__ = ["PARAMETERS_DIGEST_TYPE", "PARAMETERS_FILE", "parameter_leaves", "parameters_digest"]

#: The file name the leaves name (the parameters are not a file: a fixed name keeps the leaf
#: format of :class:`~ailedger.fingerprint.TensorLeaf`).
PARAMETERS_FILE = "parameters"
#: How a parameters digest is computed, as statements name it.
PARAMETERS_DIGEST_TYPE = "rfc9162-tensor-leaves-blake3"

_DTYPES: dict[str, str] = {
    "float64": "F64",
    "float32": "F32",
    "float16": "F16",
    "int64": "I64",
    "int32": "I32",
    "int16": "I16",
    "int8": "I8",
    "uint8": "U8",
    "bool": "BOOL",
}


def parameter_leaves(arrays: Sequence[npt.NDArray[np.generic]]) -> list[TensorLeaf]:
    """One leaf per array (little-endian, C order), ``p0``, ``p1``, ..."""
    leaves = []
    for i, array in enumerate(arrays):
        dtype = _DTYPES.get(np.dtype(array.dtype).name)
        if dtype is None:
            raise InvalidInput(f"parameter {i}: dtype {array.dtype} cannot be fingerprinted")
        data = np.ascontiguousarray(array, dtype=np.dtype(array.dtype).newbyteorder("<"))
        digest = hash_bytes("blake3", data.tobytes())
        shape = tuple(int(d) for d in array.shape)
        leaves.append(TensorLeaf(PARAMETERS_FILE, f"p{i}", dtype, shape, "blake3", digest))
    return leaves


def parameters_digest(arrays: Sequence[npt.NDArray[np.generic]]) -> bytes:
    """The RFC 9162 root over :func:`parameter_leaves` (32 bytes)."""
    if not arrays:
        raise InvalidInput("no parameters to fingerprint")
    return merkle.root([leaf.encode() for leaf in parameter_leaves(arrays)])
