"""The safetensors header parser against the reference ``safetensors`` package and bad input."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.numpy import save

from _profiles import examples
from ailedger.errors import FormatError
from ailedger.fingerprint._safetensors import (
    DTYPE_BITS,
    SafetensorsHeader,
    parse_header,
    read_header,
)

_NP = {
    "F32": np.float32,
    "F16": np.float16,
    "F64": np.float64,
    "I8": np.int8,
    "U8": np.uint8,
    "I32": np.int32,
    "I64": np.int64,
    "BOOL": np.bool_,
}


def _file(header: object, data: bytes = b"", *, size: int | None = None) -> bytes:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    return struct.pack("<Q", len(raw) if size is None else size) + raw + data


def _parse(blob: bytes) -> SafetensorsHeader:
    return parse_header(blob, len(blob), "m.safetensors")


tensors_strategy = st.dictionaries(
    st.text(st.characters(codec="utf-8", exclude_characters="\x00"), min_size=1, max_size=8).filter(
        lambda s: s != "__metadata__"
    ),
    st.tuples(st.sampled_from(sorted(_NP)), st.lists(st.integers(0, 4), max_size=3)),
    max_size=6,
)


@settings(max_examples=examples(60))
@given(spec=tensors_strategy, metadata=st.dictionaries(st.text(max_size=5), st.text(max_size=5)))
def test_matches_reference_implementation(
    tmp_path_factory: pytest.TempPathFactory,
    spec: dict[str, tuple[str, list[int]]],
    metadata: dict[str, str],
) -> None:
    arrays: dict[str, np.ndarray] = {
        name: np.zeros(shape, dtype=_NP[dtype]) for name, (dtype, shape) in spec.items()
    }
    blob = save(arrays, metadata=metadata or None)
    header = parse_header(blob, len(blob))
    assert header.metadata == metadata
    assert {t.name for t in header.tensors} == set(spec)
    path = tmp_path_factory.mktemp("st") / "m.safetensors"
    path.write_bytes(blob)
    with safe_open(str(path), framework="numpy") as f:
        for t in header.tensors:
            ref = f.get_tensor(t.name)
            assert list(t.shape) == list(ref.shape)
            assert blob[t.begin : t.end] == ref.tobytes()
            assert t.dtype == spec[t.name][0]
    with path.open("rb") as fh:
        assert read_header(fh) == header


@settings(max_examples=examples(200))
@given(cut=st.integers(0, 10_000), flip=st.tuples(st.integers(0, 10_000), st.integers(1, 255)))
def test_damaged_files_raise_only_format_error(cut: int, flip: tuple[int, int]) -> None:
    blob = save({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(3, np.int8)})
    truncated = blob[: cut % len(blob)]
    with pytest.raises(FormatError):
        _parse(truncated)
    pos, x = flip
    mutated = bytearray(blob)
    mutated[pos % len(blob)] ^= x
    try:
        header = _parse(bytes(mutated))
    except FormatError:
        return
    # a mutation that still parses must still describe a consistent layout
    assert header.tensors[-1].end == len(blob) or header.tensors == ()


def test_empty_header_and_metadata_only() -> None:
    header = _parse(_file({"__metadata__": {"k": "v"}}))
    assert header.tensors == ()
    assert header.metadata == {"k": "v"}


def test_zero_sized_tensors() -> None:
    blob = _file(
        {
            "e": {"dtype": "F32", "shape": [0, 3], "data_offsets": [0, 0]},
            "x": {"dtype": "U8", "shape": [2], "data_offsets": [0, 2]},
        },
        b"ab",
    )
    assert [t.nbytes for t in _parse(blob).tensors] == [0, 2]


def test_sub_byte_dtype() -> None:
    ok = _file({"q": {"dtype": "F4", "shape": [4], "data_offsets": [0, 2]}}, b"ab")
    assert _parse(ok).tensors[0].dtype == "F4"
    odd = _file({"q": {"dtype": "F4", "shape": [3], "data_offsets": [0, 2]}}, b"ab")
    with pytest.raises(FormatError, match="span 2 bytes"):
        _parse(odd)
    assert DTYPE_BITS["F6_E2M3"] == 6


def _t(dtype: str, shape: list[int], begin: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


@pytest.mark.parametrize(
    ("blob", "message"),
    [
        (b"", "truncated"),
        (b"\x10\x00\x00", "truncated"),
        (_file({"a": _t("U8", [4], 0, 4)}, b"abcd", size=10_000), "beyond the end"),
        (struct.pack("<Q", 200_000_000) + b"{}", "limit"),
        (_file({"a": _t("U8", [4], 0, 4)}, b"ab"), "beyond the 2 data bytes"),
        (_file({"a": _t("U8", [2], 0, 2)}, b"abcd"), "cover 2 of the 4"),
        (_file({"a": _t("U8", [2], 0, 2), "b": _t("U8", [2], 1, 3)}, b"abc"), "overlaps"),
        (_file({"a": _t("U8", [1], 0, 1), "b": _t("U8", [1], 2, 3)}, b"abc"), "gap"),
        (_file({"a": _t("F32", [2], 0, 4)}, b"abcd"), "span 4 bytes"),
        (_file({"a": _t("Q7", [1], 0, 1)}, b"a"), "unknown dtype"),
        (_file({"a": _t("U8", [-1], 0, 1)}, b"a"), "shape"),
        (_file({"a": _t("U8", [1], 1, 0)}, b"a"), "data_offsets"),
        (_file({"a": {"dtype": "U8", "shape": [1]}}, b"a"), "exactly"),
        (_file({"a": {**_t("U8", [1], 0, 1), "x": 1}}, b"a"), "exactly"),
        (_file({"__metadata__": {"k": 1}}), "__metadata__"),
        (_file(b'{"a": 1, "a": 2}'), "duplicate key"),
        (_file(b"[1, 2]"), "not a JSON object"),
        (_file(b"{not json"), "not valid UTF-8 JSON"),
        (_file(b'{"\xff": 1}'), "not valid UTF-8 JSON"),
        (_file(b"  {}"), "not a JSON object"),
    ],
)
def test_bad_headers(blob: bytes, message: str) -> None:
    with pytest.raises(FormatError, match=message) as info:
        _parse(blob)
    assert str(info.value).startswith("m.safetensors: ")


def test_read_header_of_truncated_file(tmp_path: Path) -> None:
    blob = save({"a": np.ones(10, np.float32)})
    p = tmp_path / "t.safetensors"
    p.write_bytes(blob[:20])
    with p.open("rb") as f, pytest.raises(FormatError, match="beyond the end"):
        read_header(f, "t.safetensors")
