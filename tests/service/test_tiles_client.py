"""The verifying tiles client: every consistency and inclusion proof it reads from tiles is the
log's own and verifies, any tampered tile byte fails, and it fetches O(log n) tiles.

Two logs: 700 real signed envelopes (appended through :class:`TransparencyLog`, two tile
levels) and 2**16 + 1,000 synthetic leaves written through the log's storage in bulk (three
tile levels). Bound stated and checked: a consistency or an inclusion proof fetches at most
``2 * ceil(log2(n) / 8)`` tiles (``max_proof_tiles``), i.e. ``c * log2(n)`` with ``c = 2 / 8``
rounded up per tile level (two tiles per 8 tree levels); an entry one bundle more.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _log_util import ALICE, envelope
from _profiles import examples
from _service import LOG_KEY, Service, post, server_workspace, wait_for_checkpoint
from _tiles import bulk_log, signed, tile_source
from ailedger.errors import InvalidInput, NotFound, ProofInvalid, SignatureInvalid
from ailedger.log import Checkpoint, Ed25519NoteKey, SignedNote, TransparencyLog
from ailedger.service.tiles import TileRef
from ailedger.service.tiles_client import (
    TilesClient,
    max_proof_tiles,
    node_tile,
    tile_levels,
    tile_width,
)

ORIGIN = "test.ailedger.dev/tiles"
KEY = Ed25519NoteKey.generate(ORIGIN)
SMALL = 700
BIG = (1 << 16) + 1000


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransparencyLog]:
    path = tmp_path_factory.mktemp("tiles-small") / "log.sqlite"
    with TransparencyLog.open(path, ORIGIN) as log:
        log.append_many(envelope(i, (ALICE,)) for i in range(SMALL))
        yield log


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TransparencyLog]:
    with bulk_log(tmp_path_factory.mktemp("tiles-big") / "log.sqlite", BIG, ORIGIN) as log:
        yield log


def client_of(log: TransparencyLog, fetch: Callable[[str], bytes] | None = None) -> TilesClient:
    return TilesClient(fetch or tile_source(log, log.size()), KEY)


def test_tile_arithmetic_follows_the_spec() -> None:
    assert tile_width(0, 0, 300) == 256
    assert tile_width(0, 1, 300) == 44
    assert tile_width(0, 2, 300) == 0
    assert tile_width(1, 0, 300) == 1
    assert tile_width(1, 0, 255) == 0
    # level 9 = tile level 1, 2 hashes of level 8 from index 2 * 3 = 6
    assert node_tile(9, 3, 1 << 12) == (TileRef(1, 0, 16), 6, 2)
    assert node_tile(0, 300, 1000) == (TileRef(0, 1, 256), 44, 1)
    assert node_tile(0, 300, 301) == (TileRef(0, 1, 45), 44, 1)
    with pytest.raises(InvalidInput):
        node_tile(1, 150, 300)  # the pair (300, 301) is not complete in 300 entries
    assert [tile_levels(n) for n in (0, 1, 255, 256, 65535, 65536, 1 << 20)] == [
        1,
        1,
        1,
        2,
        2,
        3,
        3,
    ]


def check_pair(log: TransparencyLog, m: int, n: int, i: int) -> None:
    old, _ = signed(log, KEY, m)
    new_cp, note = signed(log, KEY, n)
    client = client_of(log)
    assert client.update(old, note) == new_cp
    if 0 < m < n:
        assert client.consistency(old, new_cp).hashes == log.consistency_proof(m, n).hashes
    assert client.fetched <= max_proof_tiles(n)

    fresh = client_of(log)
    proof = fresh.inclusion(i, new_cp)
    assert proof == log.inclusion_proof(i, n)
    assert fresh.fetched <= max_proof_tiles(n)


@given(st.data())
@settings(max_examples=examples(60))
def test_small_log_proofs_from_tiles(small: TransparencyLog, data: st.DataObject) -> None:
    n = data.draw(st.integers(1, SMALL), label="n")
    m = data.draw(st.integers(0, n), label="m")
    i = data.draw(st.integers(0, n - 1), label="i")
    check_pair(small, m, n, i)
    client = client_of(small)
    _, note = signed(small, KEY, n)
    assert client.entry(i, client.verify_note(note)) == small.get(i).envelope


@given(st.data())
@settings(max_examples=examples(40))
def test_three_tile_levels_proofs_from_tiles(big: TransparencyLog, data: st.DataObject) -> None:
    edges = st.sampled_from([1, 255, 256, 257, 65535, 65536, 65537, BIG - 1, BIG])
    n = data.draw(st.one_of(edges, st.integers(1, BIG)), label="n")
    m = data.draw(st.one_of(st.integers(0, n), edges.filter(lambda x: x <= n)), label="m")
    i = data.draw(st.integers(0, n - 1), label="i")
    check_pair(big, m, n, i)


def test_the_bound_holds_on_every_size_pair_of_a_small_tree(small: TransparencyLog) -> None:
    """Near-exhaustive where it is cheap: every n up to 300, every 11th m and those at tile
    edges, tiles counted, none over 2 per tile level (the bound of the module docstring)."""
    worst = 0
    for n in range(1, 301):
        _, note = signed(small, KEY, n)
        for m in sorted({*range(0, n + 1, 11), 1, 255, 256, 257, n - 1, n} - {*range(n + 1, 258)}):
            client = client_of(small)
            client.update(signed(small, KEY, m)[0], note)
            worst = max(worst, client.fetched)
            assert client.fetched <= max_proof_tiles(n), (m, n)
    assert worst == 3  # two level-0 tiles (the old size's, the edge) and the level-1 edge


class Tamper:
    """A fetch that flips one bit of the ``which``-th tile it returns."""

    def __init__(self, fetch: Callable[[str], bytes], which: int, pos: int, bit: int) -> None:
        self.fetch, self.which, self.pos, self.bit = fetch, which, pos, bit
        self.calls = 0
        self.tampered: str | None = None

    def __call__(self, path: str) -> bytes:
        data = self.fetch(path)
        if self.calls == self.which:
            buf = bytearray(data)
            buf[self.pos % len(buf)] ^= 1 << self.bit
            data = bytes(buf)
            self.tampered = path
        self.calls += 1
        return data


@given(st.data())
@settings(max_examples=examples(80))
def test_any_tampered_tile_byte_fails(big: TransparencyLog, data: st.DataObject) -> None:
    n = data.draw(st.integers(2, BIG), label="n")
    m = data.draw(st.integers(1, n - 1), label="m")
    i = data.draw(st.integers(0, n - 1), label="i")
    old, _ = signed(big, KEY, m)
    new, note = signed(big, KEY, n)
    honest = client_of(big)
    honest.update(old, note)
    honest_inclusion = client_of(big)
    honest_inclusion.inclusion(i, new)
    for count, run in (
        (honest.fetched, lambda c: c.update(old, note)),
        (honest_inclusion.fetched, lambda c: c.inclusion(i, new)),
    ):
        which = data.draw(st.integers(0, count - 1), label="which tile")
        pos = data.draw(st.integers(0, 1 << 16), label="byte")
        bit = data.draw(st.integers(0, 7), label="bit")
        tamper = Tamper(tile_source(big, BIG), which, pos, bit)
        with pytest.raises(ProofInvalid):
            run(client_of(big, tamper))
        assert tamper.tampered is not None


@pytest.mark.parametrize("i", [0, 100, 255, 1000, 65_535])
def test_a_parent_hash_the_proof_does_not_use_is_still_checked(
    big: TransparencyLog, i: int
) -> None:
    """The hash of the tile below in a full level-1 tile is recomputed from that tile, never
    read by the proof: only the parent check (tlog's TileHashReader) sees it tampered."""
    cp, _ = signed(big, KEY, BIG)
    parent = node_tile(8, i >> 8, BIG)
    assert not parent[0].partial
    slot = parent[1] * 32 + 5
    source = tile_source(big, BIG)

    def fetch(path: str) -> bytes:
        data = source(path)
        if path == parent[0].path():
            data = data[:slot] + bytes([data[slot] ^ 1]) + data[slot + 1 :]
        return data

    assert client_of(big).inclusion(i, cp).leaf_index == i
    with pytest.raises(ProofInvalid, match="does not hash to its entry"):
        client_of(big, fetch).inclusion(i, cp)


@given(st.integers(0, SMALL - 1), st.integers(0, 1 << 20), st.integers(0, 7))
@settings(max_examples=examples(40))
def test_a_tampered_entry_bundle_fails(small: TransparencyLog, i: int, pos: int, bit: int) -> None:
    source = tile_source(small, SMALL)

    def fetch(path: str) -> bytes:
        data = source(path)
        if path.startswith("tile/entries/"):
            buf = bytearray(data)
            buf[pos % len(buf)] ^= 1 << bit
            data = bytes(buf)
        return data

    client = client_of(small, fetch)
    _, note = signed(small, KEY, SMALL)
    with pytest.raises(ProofInvalid):
        client.entry(i, client.verify_note(note))


def test_truncated_or_padded_tiles_fail(small: TransparencyLog) -> None:
    source = tile_source(small, SMALL)
    old, _ = signed(small, KEY, 100)
    _, note = signed(small, KEY, SMALL)
    for change in (lambda d: d[:-1], lambda d: d + b"\0", lambda d: d[:-32]):
        client = client_of(small, lambda p, change=change: change(source(p)))  # type: ignore[misc]
        with pytest.raises(ProofInvalid):
            client.update(old, note)


def test_only_a_checkpoint_signed_by_the_log_key_is_used(small: TransparencyLog) -> None:
    old, _ = signed(small, KEY, 10)
    cp = Checkpoint(ORIGIN, 20, small.root(20))
    other = Ed25519NoteKey.generate(ORIGIN)
    client = client_of(small)
    with pytest.raises(SignatureInvalid):
        client.update(old, SignedNote.sign(cp.body(), [other]).format())
    forged = SignedNote(cp.body(), SignedNote.sign(cp.body(), [KEY]).signatures)
    forged = SignedNote(forged.text.replace("20\n", "21\n", 1), forged.signatures)
    with pytest.raises(SignatureInvalid):
        client.update(old, forged)
    elsewhere = Checkpoint("elsewhere.example/log", 20, cp.root)
    its_key = Ed25519NoteKey.generate(elsewhere.origin)
    confused = TilesClient(tile_source(small, SMALL), its_key, origin=ORIGIN)
    with pytest.raises(ProofInvalid, match="elsewhere"):
        confused.update(old, SignedNote.sign(elsewhere.body(), [its_key]).format())
    assert confused.fetched == 0
    assert client.fetched == 0  # nothing fetched for a checkpoint that did not verify


def test_a_fork_and_a_rollback_are_refused(small: TransparencyLog, tmp_path: Path) -> None:
    """A checkpoint signed by the log key over a different tree (a fork the log hides behind
    its honest tiles) and one smaller than the trusted one are refused."""
    forked_root = bulk_log(tmp_path / "fork.sqlite", 400, ORIGIN).root(400)
    fork = Checkpoint(ORIGIN, 400, forked_root)
    old, _ = signed(small, KEY, 300)
    client = client_of(small)
    with pytest.raises(ProofInvalid):
        client.update(old, SignedNote.sign(fork.body(), [KEY]).format())
    _, smaller = signed(small, KEY, 299)
    with pytest.raises(ProofInvalid, match="rollback"):
        client.update(old, smaller)
    # same size, other root: a fork too
    with pytest.raises(ProofInvalid):
        client.update(Checkpoint(ORIGIN, 400, small.root(400)), SignedNote.sign(fork.body(), [KEY]))


def test_the_cache_saves_fetches(big: TransparencyLog) -> None:
    """Tiles read for one checkpoint serve its later proofs: the tile around the old size and
    the edge tiles are not fetched again; without a cache, they are."""
    cp1, _ = signed(big, KEY, 60_000)
    _, note2 = signed(big, KEY, 60_500)

    def run(client: TilesClient) -> list[int]:
        cp2 = client.update(cp1, note2)
        counts = [client.fetched]
        for i in (59_999, 60_499, 50_000):  # old size's tile, the edge tile, another tile
            client.inclusion(i, cp2)
            counts.append(client.fetched)
        return counts

    assert run(client_of(big)) == [3, 3, 3, 4]
    assert run(TilesClient(tile_source(big, BIG), KEY, cache_tiles=0)) == [3, 6, 8, 11]
    small_cache = TilesClient(tile_source(big, BIG), KEY, cache_tiles=2)
    assert run(small_cache)[-1] < 11


def test_a_missing_tile_is_not_found(small: TransparencyLog) -> None:
    client = TilesClient(tile_source(small, 100), KEY)
    old, _ = signed(small, KEY, 10)
    _, note = signed(small, KEY, 600)  # signed, but the source serves only 100 entries
    with pytest.raises(NotFound):
        client.update(old, note)


# --- against a real `ailedger serve` ---------------------------------------------------------

FIRST, TOTAL = 40, 300


@pytest.fixture(scope="module")
def two_checkpoints(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Service, SignedNote, SignedNote]]:
    root = tmp_path_factory.mktemp("tiles-client") / "server"
    server_workspace(root)
    with Service(root, "--allow", ALICE.address, "--checkpoint-interval-ms", "20") as service:
        for i in range(FIRST):
            assert post(service, envelope(i, (ALICE,)))[0] == 201
        first = wait_for_checkpoint(service, FIRST)
        for i in range(FIRST, TOTAL):
            assert post(service, envelope(i, (ALICE,)))[0] == 201
        yield service, first, wait_for_checkpoint(service, TOTAL)


def test_a_served_log_verifies_through_tiles(
    two_checkpoints: tuple[Service, SignedNote, SignedNote],
) -> None:
    service, first, _ = two_checkpoints
    client = TilesClient.over_http(service.url, LOG_KEY)
    trusted = client.verify_note(first.format())
    latest = client.update(trusted, client.latest_note())
    assert latest.size == TOTAL
    assert 0 < client.fetched <= max_proof_tiles(TOTAL)
    for i in (0, trusted.size - 1, 255, 256, TOTAL - 1):
        proof = client.inclusion(i, latest)
        assert proof.root == latest.root
        entry = client.entry(i, latest)
        assert entry == client.entry(i, latest)
        assert b'"payloadType"' in entry
    # the old checkpoint's own tiles (partial ones of its size) are served too
    assert client.inclusion(trusted.size - 1, trusted).tree_size == trusted.size


def test_a_served_log_is_refused_under_another_key(
    two_checkpoints: tuple[Service, SignedNote, SignedNote],
) -> None:
    service, first, _ = two_checkpoints
    client = TilesClient.over_http(service.url, LOG_KEY)
    trusted = client.verify_note(first.format())
    stranger = TilesClient.over_http(service.url, Ed25519NoteKey.generate(LOG_KEY.name))
    with pytest.raises(SignatureInvalid):
        stranger.update(trusted, stranger.latest_note())


def test_the_service_tile_cache_keeps_recent_tiles_within_its_byte_bound() -> None:
    from ailedger.service.app import TileCache  # the server extra: FastAPI

    cache = TileCache(3 * 8192)
    refs = ["/" + TileRef(0, i).path() for i in range(5)]
    for i, ref in enumerate(refs[:3]):
        cache.put(ref, bytes([i]) * 8192)
    assert cache.get(refs[0]) == b"\0" * 8192  # now the most recent
    cache.put(refs[3], b"\3" * 8192)  # drops refs[1], the least recent
    assert cache.get(refs[1]) is None
    assert [cache.get(r) is not None for r in refs] == [True, False, True, True, False]
    assert cache.size == 3 * 8192
    cache.put(refs[4], b"x" * (3 * 8192 + 1))  # larger than the cache: not kept
    assert cache.get(refs[4]) is None
    assert cache.size == 3 * 8192


def test_a_served_tile_is_the_same_from_the_cache(
    two_checkpoints: tuple[Service, SignedNote, SignedNote],
) -> None:
    service = two_checkpoints[0]
    for path in ("/tile/0/000", "/tile/0/001.p/44", "/tile/entries/001.p/3"):
        first = service.request("GET", path)
        again = service.request("GET", path)  # from the cache, before routing
        assert first[0] == again[0] == 200
        assert first[2] == again[2]
        for name in ("content-type", "cache-control", "content-length"):
            assert first[1][name] == again[1][name]
        assert again[1]["cache-control"] == "public, max-age=31536000, immutable"
        assert service.request("POST", path)[0] == 405  # only a GET is answered from it
        assert service.request("GET", path + "?x=1")[0] == 200
    assert service.request("GET", "/tile/0/001.p/45")[0] == 404  # beyond the checkpoint
    assert service.request("GET", "/tile/0/x000/000")[0] == 400  # not canonical: never cached


GO_TLOG = Path("/usr/share/gocode/src/golang.org/x/mod/sumdb/tlog")


def test_go_sumdb_tlog_proves_the_same_from_the_same_tiles(
    two_checkpoints: tuple[Service, SignedNote, SignedNote], tmp_path: Path
) -> None:
    """golang.org/x/mod/sumdb/tlog (TileHashReader, ProveTree + CheckTree, ProveRecord) reads
    the served tiles and must produce exactly the proofs this client reads and verifies.
    Skipped where Go or x/mod is missing (Debian: golang-go, golang-golang-x-mod-dev)."""
    go = shutil.which("go")
    if go is None or not GO_TLOG.is_dir():
        pytest.skip("go or golang.org/x/mod (GOPATH /usr/share/gocode) is not installed")
    service, _, last = two_checkpoints
    client = TilesClient.over_http(service.url, LOG_KEY)
    latest = client.verify_note(last)
    olds = [1, 2, FIRST - 1, FIRST, 255, 256, 257, TOTAL - 1]
    indexes = [0, 1, FIRST, 255, 256, TOTAL - 1]
    env = {
        **os.environ,
        "GO111MODULE": "off",
        "GOPATH": "/usr/share/gocode",
        "GOCACHE": str(tmp_path / "gocache"),
        "GOFLAGS": "",
    }
    binary = tmp_path / "tlogproofs"
    source = Path(__file__).parent / "go" / "tlogproofs.go"
    build = subprocess.run(
        [go, "build", "-o", str(binary), str(source)], env=env, capture_output=True, text=True
    )
    assert build.returncode == 0, build.stderr
    root = base64.b64encode(latest.root).decode()
    args = [str(binary), service.url, str(latest.size), root, *map(str, olds), "--"]
    result = subprocess.run([*args, *map(str, indexes)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    go_proofs = {tuple(line.split()[:2]): line.split()[2:] for line in result.stdout.splitlines()}
    assert len(go_proofs) == len(olds) + len(indexes)
    db = service.root / ".ailedger" / "log.sqlite"
    with TransparencyLog.open(db, read_only=True) as log:
        for m in olds:
            old = Checkpoint(latest.origin, m, log.root(m))
            ours = client.consistency(old, latest).hashes
            assert [h.hex() for h in ours] == go_proofs["tree", str(m)], m
    for i in indexes:
        ours = client.inclusion(i, latest).hashes
        assert [h.hex() for h in ours] == go_proofs["record", str(i)], i
