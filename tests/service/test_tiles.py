"""C2SP tlog-tiles: path encoding and bundles (hypothesis), and a tiles client against a real
``ailedger serve`` that recomputes the checkpoint's root from tiles alone."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _log_util import ALICE, envelope
from _service import LOG_KEY, Service, post, server_workspace, wait_for_checkpoint
from ailedger.errors import FormatError
from ailedger.log import Checkpoint, SignedNote
from ailedger.merkle import leaf_hash, root_of_leaf_hashes
from ailedger.service import (
    MAX_BUNDLED_ENTRY,
    TileRef,
    encode_index,
    entry_bundle,
    parse_entry_bundle,
    parse_tile_path,
)


def test_the_spec_example_paths() -> None:
    assert encode_index(1234067) == "x001/x234/067"
    assert encode_index(0) == "000"
    assert encode_index(999) == "999"
    assert encode_index(1000) == "x001/000"
    assert TileRef(0, 1234067, 7).path() == "tile/0/x001/x234/067.p/7"
    assert TileRef(None, 5).path() == "tile/entries/005"
    assert parse_tile_path("0/x001/x234/067") == TileRef(0, 1234067)
    assert parse_tile_path("entries/x001/234.p/255") == TileRef(None, 1234, 255)


@given(
    st.one_of(st.none(), st.integers(0, 63)),
    st.integers(0, 2**63),
    st.integers(1, 256),
)
def test_paths_round_trip(level: int | None, index: int, width: int) -> None:
    ref = TileRef(level, index, width)
    assert parse_tile_path(ref.path().removeprefix("tile/")) == ref


@pytest.mark.parametrize(
    "path",
    [
        "0",
        "0/1",
        "0/0001",
        "0/x000/001",
        "00/000",
        "64/000",
        "-1/000",
        "0/000.p/0",
        "0/000.p/256",
        "0/000.p/01",
        "0/000.p",
        "0/x12/000",
        "0/001/x002",
        "blobs/000",
        "0/000/",
        "0/" + "x999/" * 1450 + "999",  # review finding: int() of > 4,300 digits was a 500
        "entries/" + "x001/" * 7 + "000",  # more groups than a 64-bit index needs
    ],
)
def test_non_canonical_paths_are_refused(path: str) -> None:
    with pytest.raises(FormatError):
        parse_tile_path(path)


@given(st.text(max_size=40))
def test_any_text_parses_or_is_a_format_error(path: str) -> None:
    try:
        ref = parse_tile_path(path)
    except FormatError:
        return
    assert ref.path() == "tile/" + path  # what parses is the canonical spelling


@given(st.lists(st.binary(max_size=300), max_size=20))
def test_bundles_round_trip(entries: list[bytes]) -> None:
    assert list(parse_entry_bundle(entry_bundle(entries))) == entries


def test_a_bundle_refuses_an_entry_over_65535_bytes_and_a_truncated_bundle() -> None:
    with pytest.raises(FormatError):
        entry_bundle([b"x" * (MAX_BUNDLED_ENTRY + 1)])
    assert entry_bundle([b"x" * MAX_BUNDLED_ENTRY])[:2] == b"\xff\xff"
    for bad in (b"\x00", b"\x00\x05abc"):
        with pytest.raises(FormatError):
            parse_entry_bundle(bad)


N = 300  # one full level-0 tile and a partial one of 44; one level-1 hash


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, SignedNote]]:
    """A served log of N entries and the checkpoint covering them."""
    root = tmp_path_factory.mktemp("tiles") / "server"
    server_workspace(root)
    with Service(root, "--allow", ALICE.address, "--checkpoint-interval-ms", "20") as service:
        for i in range(N):
            assert post(service, envelope(i, (ALICE,)))[0] == 201
        yield service, wait_for_checkpoint(service, N)


def test_a_tiles_client_recomputes_the_signed_root(filled: tuple[Service, SignedNote]) -> None:
    served, note = filled
    n = N
    note.verify_one(LOG_KEY)  # trust the checkpoint's signature, nothing else
    cp = Checkpoint.parse(note.text)
    assert cp.size == n

    def get(path: str) -> tuple[bytes, dict[str, str]]:
        status, headers, body = served.request("GET", "/" + path)
        assert status == 200, (path, body)
        assert headers["content-type"] == "application/octet-stream"
        return body, headers

    full, headers = get(TileRef(0, 0).path())
    assert "immutable" in headers["cache-control"]
    partial, _ = get(TileRef(0, 1, n - 256).path())
    hashes = [full[i : i + 32] for i in range(0, len(full), 32)]
    hashes += [partial[i : i + 32] for i in range(0, len(partial), 32)]
    assert len(hashes) == n
    assert root_of_leaf_hashes(hashes) == cp.root

    # entry bundles carry the leaves themselves: each hashes to its tile hash
    entries = list(parse_entry_bundle(get(TileRef(None, 0).path())[0]))
    entries += parse_entry_bundle(get(TileRef(None, 1, n - 256).path())[0])
    assert [leaf_hash(e) for e in entries] == hashes

    # the level-1 tile holds the hash of the first 256 leaves
    level1, _ = get(TileRef(1, 0, 1).path())
    assert level1 == root_of_leaf_hashes(hashes[:256])

    # nothing beyond the checkpoint is served
    for ref in (TileRef(0, 1), TileRef(0, 1, n - 255), TileRef(None, 2, 1), TileRef(1, 0, 2)):
        status, headers, _ = served.request("GET", "/" + ref.path())
        assert status == 404
        assert headers["content-type"] == "application/problem+json"


GO_TLOG = Path("/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog")


def test_go_sumdb_tlog_reads_and_proves_from_our_tiles(
    filled: tuple[Service, SignedNote], tmp_path: Path
) -> None:
    """An independent tiles client: golang.org/x/mod/sumdb/tlog authenticates every tile it
    reads against the signed root, proves records hashed from the entry bundles, and encodes
    tile paths as we do. Skipped where Go or x/mod is missing (Debian: golang-go,
    golang-golang-x-mod-dev)."""
    go = shutil.which("go")
    if go is None or not GO_TLOG.is_dir():
        pytest.skip("go or golang.org/x/mod (GOPATH /usr/share/gocode) is not installed")
    served, note = filled
    cp = Checkpoint.parse(note.text)
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": "/usr/share/gocode",
        "GOCACHE": str(tmp_path / "gocache"),
        "GOFLAGS": "",
    }
    binary = tmp_path / "tlogcheck"
    source = Path(__file__).parent / "go" / "tlogcheck.go"
    build = subprocess.run(
        [go, "build", "-o", str(binary), str(source)], env=env, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    root = base64.b64encode(cp.root).decode()
    result = subprocess.run(
        [str(binary), served.url, str(cp.size), root], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.split()
    assert lines == [
        TileRef(0, 1234067).path().removeprefix("tile/"),
        TileRef(None, 5, 7).path().removeprefix("tile/"),
        "ok",
    ]
