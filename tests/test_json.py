"""ailedger._json: hostile documents are refused by size and nesting before they are parsed."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailedger import _json
from ailedger.errors import FormatError

_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab', max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=20,
)


def _depth(value: object) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@given(_values)
def test_documents_within_bounds_parse_as_json_does(value: object) -> None:
    text = json.dumps(value)
    assert _json.loads(text, what="doc") == json.loads(text)
    assert _json.loads(text.encode(), what="doc", max_depth=max(_depth(value), 1)) == value


@given(_values)
def test_depth_is_counted_exactly_and_strings_do_not_count(value: object) -> None:
    depth = _depth(value)
    data = json.dumps(value).encode()
    if depth > 0:
        with pytest.raises(FormatError, match=f"nests deeper than {depth - 1} levels"):
            _json.check_bounds(data, what="doc", max_depth=depth - 1)
    _json.check_bounds(data, what="doc", max_depth=depth)


@pytest.mark.parametrize("opener", ["[", '{"a":'])
def test_a_hundred_thousand_levels_are_refused(opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    with pytest.raises(FormatError, match="nests deeper than 64 levels"):
        _json.loads(opener * 100_000 + closer * 100_000, what="proof")


def test_size_is_bounded_before_anything_else() -> None:
    with pytest.raises(FormatError, match="over the 10-byte limit"):
        _json.loads(b"[" * 11, what="doc", max_bytes=10)


@pytest.mark.parametrize("bad", [b"", b"{", b"\xff", b"[1,]", b"NaN-"])
def test_malformed_json_is_a_format_error(bad: bytes) -> None:
    with pytest.raises(FormatError, match="is not valid JSON"):
        _json.loads(bad, what="doc")


@pytest.mark.parametrize(
    "argv",
    [
        ["verify", "receipt", "{path}"],
        ["verify", "statement", "{path}", "--address", "0x" + "11" * 20],
        ["verify", "proof", "{path}", "--root", "00" * 32],
    ],
)
def test_deep_documents_are_one_error_line_even_with_eth_account_loaded(
    tmp_path: Path, argv: list[str]
) -> None:
    """Issue 11 item 4: with py_ecc's recursion limit of 100,000 in force (eth-account
    imports it), a 100,000-level document used to kill the process (exit 139)."""
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    code = (
        "import sys, eth_account\n"
        "assert sys.getrecursionlimit() >= 10000, sys.getrecursionlimit()\n"
        "from ailedger.cli import main\n"
        "main(sys.argv[1:])\n"
    )
    args = [a.replace("{path}", str(deep)) for a in argv]
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )
    assert done.returncode in (1, 3), (done.returncode, done.stderr)
    assert "nests deeper than 64 levels" in done.stderr
    assert "internal error" not in done.stderr
