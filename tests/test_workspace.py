"""Workspace creation, discovery and config parsing; the tiny TOML writer."""

from __future__ import annotations

import stat
import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ailedger._toml import dumps
from ailedger.errors import WorkspaceError
from ailedger.workspace import CONFIG_SCHEMA_VERSION, WORKSPACE_DIR, Workspace


def test_init_creates_config_and_private_keys_dir(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path, origin="example.com/log")
    assert ws.path == tmp_path.resolve() / WORKSPACE_DIR
    config = tomllib.loads(ws.config_path.read_text())
    assert config == {
        "schema_version": CONFIG_SCHEMA_VERSION,
        "log": {"origin": "example.com/log"},
        "chain": {"backend": "embedded"},
    }
    assert stat.S_IMODE(ws.keys_dir.stat().st_mode) == 0o700
    assert ws.config.chain_backend == "embedded"


def test_default_origin_is_unique_and_valid(tmp_path: Path) -> None:
    a = Workspace.init(tmp_path / "my project")
    b = Workspace.init(tmp_path / "other")
    assert a.config.origin.startswith("ailedger.local/my-project-")
    assert a.config.origin != b.config.origin
    assert Workspace.open(tmp_path / "my project").config.origin == a.config.origin


def test_init_twice_is_refused(tmp_path: Path) -> None:
    Workspace.init(tmp_path)
    with pytest.raises(WorkspaceError, match="already exists"):
        Workspace.init(tmp_path)


def test_init_rejects_bad_origin(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="invalid log origin"):
        Workspace.init(tmp_path, origin="has space")


def test_find_walks_up(tmp_path: Path) -> None:
    Workspace.init(tmp_path)
    deep = tmp_path / "a" / "b" / "c"
    deep.mkdir(parents=True)
    assert Workspace.find(deep).root == tmp_path.resolve()


def test_find_without_workspace_says_run_init(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError) as info:
        Workspace.find(tmp_path)
    assert info.value.hint is not None
    assert "ailedger init" in info.value.hint


def test_open_accepts_project_or_ailedger_dir(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path)
    assert Workspace.open(tmp_path) == ws
    assert Workspace.open(tmp_path / WORKSPACE_DIR) == ws
    with pytest.raises(WorkspaceError, match="no ailedger workspace"):
        Workspace.open(tmp_path / "elsewhere")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("schema_version = [", "not valid TOML"),
        ('schema_version = 99\n[log]\norigin = "a/b"\n', "not supported"),
        ("[log]\norigin = 'a/b'\n", "schema_version"),
        ("schema_version = 1\n", "origin"),
        ("schema_version = 1\n[log]\norigin = 'a/b'\n[chain]\nbackend = ''\n", "backend"),
    ],
)
def test_broken_config_is_a_workspace_error(tmp_path: Path, text: str, message: str) -> None:
    ws = Workspace.init(tmp_path)
    ws.config_path.write_text(text)
    with pytest.raises(WorkspaceError, match=message):
        Workspace.open(tmp_path)


def test_save_config_keeps_other_sections(tmp_path: Path) -> None:
    ws = Workspace.init(tmp_path)
    data = dict(ws.config.data)
    data["index"] = {"enabled": True, "shards": [1, 2]}
    ws.save_config(type(ws.config).from_dict(data, source=ws.config_path))
    again = Workspace.open(tmp_path)
    assert again.config.section("index") == {"enabled": True, "shards": [1, 2]}
    assert again.config.section("missing") == {}


_scalars = (
    st.text(max_size=20)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.booleans()
    | st.floats(allow_nan=False, allow_infinity=False)
)
_keys = st.text(min_size=1, max_size=10)
_tables: st.SearchStrategy[dict[str, Any]] = st.recursive(
    st.dictionaries(_keys, _scalars | st.lists(_scalars, max_size=4), max_size=4),
    lambda inner: st.dictionaries(_keys, inner, max_size=3),
    max_leaves=12,
)


@given(_tables)
def test_toml_writer_round_trips(document: dict[str, Any]) -> None:
    assert tomllib.loads(dumps(document)) == document


@pytest.mark.parametrize("key", ["0\n", "a\n", "a b", "\n"])
def test_toml_writer_quotes_keys_a_regex_anchor_would_let_through(key: str) -> None:
    """``^...$`` matched "0\n" (``$`` matches before a final newline): keys are now matched
    whole, so such a key is quoted and the document round-trips."""
    assert tomllib.loads(dumps({key: 1, "t": {key: 2}})) == {key: 1, "t": {key: 2}}


@pytest.mark.parametrize("value", [None, float("nan"), {1: 2}, "\ud800", object()])
def test_toml_writer_refuses_what_it_cannot_write(value: object) -> None:
    with pytest.raises(TypeError):
        dumps({"k": value})


def test_a_dangling_config_link_is_a_broken_workspace_not_a_missing_one(tmp_path: Path) -> None:
    """Issue 11 item 15: say what is wrong with the config instead of "no workspace"."""
    (tmp_path / ".ailedger").mkdir()
    (tmp_path / ".ailedger" / "config.toml").symlink_to(tmp_path / "gone.toml")
    with pytest.raises(WorkspaceError, match=r"symbolic link to .*gone\.toml, which does not"):
        Workspace.find(tmp_path)
    with pytest.raises(WorkspaceError, match="which does not exist"):
        Workspace.open(tmp_path)


def test_a_looping_config_link_is_named(tmp_path: Path) -> None:
    (tmp_path / ".ailedger").mkdir()
    (tmp_path / ".ailedger" / "config.toml").symlink_to("config.toml")
    with pytest.raises(WorkspaceError, match="loops"):
        Workspace.find(tmp_path)


def test_a_config_directory_is_not_a_config(tmp_path: Path) -> None:
    (tmp_path / ".ailedger" / "config.toml").mkdir(parents=True)
    with pytest.raises(WorkspaceError, match="is not a regular file"):
        Workspace.open(tmp_path)
