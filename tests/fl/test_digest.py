"""The parameters digest: the RFC 9162 root over per-tensor leaves, as a safetensors model's."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from _profiles import examples
from ailedger import merkle
from ailedger.errors import InvalidInput
from ailedger.fingerprint import TensorLeaf
from ailedger.fingerprint._hashing import hash_bytes
from ailedger.fl import parameter_leaves, parameters_digest

arrays = st.lists(
    hnp.arrays(
        st.sampled_from([np.float64, np.float32, np.int64, np.int32, np.uint8]),
        hnp.array_shapes(min_dims=0, max_dims=3, max_side=4),
    ),
    min_size=1,
    max_size=4,
)


@given(arrays)
@settings(max_examples=examples(60))
def test_digest_is_the_tree_of_tensor_leaves(params: list[np.ndarray]) -> None:
    leaves = parameter_leaves(params)
    assert [leaf.name for leaf in leaves] == [f"p{i}" for i in range(len(params))]
    for leaf, a in zip(leaves, params, strict=True):
        assert leaf.shape == a.shape
        little = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        assert leaf.digest == hash_bytes("blake3", little.tobytes())
        assert TensorLeaf.from_dict(leaf.to_dict()) == leaf
    assert parameters_digest(params) == merkle.root([leaf.encode() for leaf in leaves])
    assert parameters_digest([a.copy() for a in params]) == parameters_digest(params)


@given(arrays, st.data())
@settings(max_examples=examples(60))
def test_any_change_changes_the_digest(params: list[np.ndarray], data: st.DataObject) -> None:
    before = parameters_digest(params)
    i = data.draw(st.integers(0, len(params) - 1))
    changed = [a.copy() for a in params]
    kind = data.draw(st.sampled_from(["byte", "shape", "dtype", "order"]))
    if kind == "byte" and changed[i].size:
        raw = bytearray(changed[i].tobytes())
        raw[data.draw(st.integers(0, len(raw) - 1))] ^= 1
        changed[i] = np.frombuffer(bytes(raw), dtype=changed[i].dtype).reshape(changed[i].shape)
    elif kind == "shape":
        changed[i] = changed[i].reshape(-1, 1) if changed[i].ndim != 2 else changed[i].reshape(-1)
    elif kind == "dtype":
        other = np.float32 if changed[i].dtype != np.float32 else np.float64
        changed[i] = changed[i].astype(other)
    elif kind == "order" and len(changed) > 1:
        changed = [*changed[1:], changed[0]]
        if all(
            np.array_equal(a, b) and a.dtype == b.dtype
            for a, b in zip(changed, params, strict=True)
        ):
            return  # rotating identical arrays changes nothing
    else:
        return
    assert parameters_digest(changed) != before


def test_byte_order_does_not_matter() -> None:
    a = np.arange(6, dtype="<f8").reshape(2, 3)
    assert parameters_digest([a]) == parameters_digest([a.astype(">f8")])


def test_nothing_or_an_unknown_dtype_is_refused() -> None:
    with pytest.raises(InvalidInput, match="no parameters"):
        parameters_digest([])
    with pytest.raises(InvalidInput, match="cannot be fingerprinted"):
        parameters_digest([np.array(["a"])])
