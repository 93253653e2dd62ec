"""DVC imports: .dvc files and caches laid out as DVC 3 and DVC 2 write them, checked against
digests that the real DVC (3.67.1, dvc-data) computed for the same bytes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import ailedger.cli._integrations  # noqa: F401  (registers `integrations` until _app does)
from _cli import ok, run
from _workflow_util import Setup
from ailedger.errors import FormatError, IntegrityError, NotFound
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.integrations.dvc import (
    CHUNK_SIZE,
    cache_object,
    dvc_md5,
    find_cache,
    parse_dvc_file,
    read_dvc_file,
    verify_cache,
)

CSV = b"id,label\n1,a\n2,b\n"
TREE = {"a.bin": b"AAA", "sub/crlf.txt": b"line1\r\nline2\r\n", "sub/z.dat": b"\x00\x01\x02"}
# What `dvc add` (DVC 3.67.1) wrote for these bytes, and dvc-data's md5-dos2unix (DVC 2).
DVC3_CSV = "611479d52709200acd2623a31c0463d2"
DVC3_TREE = "d16f23c065b5e782598bee2779a8d2e8"
DVC2_CRLF = "4fcc82a88ee38e0aa16c17f512c685c9"
DVC2_TREE = "a639d69f0fda8d1f76c7abaa1256b0ba"


def _md5(data: bytes, legacy: bool) -> str:
    text = b"\x00" not in data[:512]  # enough for these samples; dvc_md5 is the real check
    return hashlib.md5(data.replace(b"\r\n", b"\n") if legacy and text else data).hexdigest()


def _store(cache: Path, data: bytes, md5: str, legacy: bool, suffix: str = "") -> None:
    obj = cache_object(cache, md5, legacy=legacy, suffix=suffix)
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(data)


def dvc_add(repo: Path, rel: str, content: bytes | dict[str, bytes], legacy: bool = False) -> Path:
    """What `dvc add REL` leaves behind: the .dvc file and the cache objects."""
    cache = repo / ".dvc" / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    out: dict[str, object]
    if isinstance(content, bytes):
        md5 = _md5(content, legacy)
        _store(cache, content, md5, legacy)
        out = {"md5": md5, "size": len(content)}
    else:
        entries = []
        for relpath, data in sorted(content.items()):
            md5 = _md5(data, legacy)
            _store(cache, data, md5, legacy)
            entries.append({"md5": md5, "relpath": relpath})
        manifest = json.dumps(entries, sort_keys=True).encode()
        md5 = hashlib.md5(manifest).hexdigest()
        _store(cache, manifest, md5, legacy, ".dir")
        size = sum(len(d) for d in content.values())
        out = {"md5": md5 + ".dir", "size": size, "nfiles": len(content)}
    lines = [f"- md5: {out['md5']}"] + [f"  {k}: {v}" for k, v in out.items() if k != "md5"]
    if not legacy:
        lines.append("  hash: md5")
    lines.append(f"  path: {rel}")
    dvc_file = repo / f"{rel}.dvc"
    dvc_file.write_text("outs:\n" + "\n".join(lines) + "\n")
    return dvc_file


@pytest.mark.parametrize("legacy", [False, True])
def test_layout_matches_real_dvc(tmp_path: Path, legacy: bool) -> None:
    csv = read_dvc_file(dvc_add(tmp_path, "patients.csv", CSV, legacy))
    tree = read_dvc_file(dvc_add(tmp_path, "images", TREE, legacy))
    assert csv.md5 == DVC3_CSV
    assert tree.md5 == (DVC2_TREE if legacy else DVC3_TREE)
    assert tree.is_dir
    assert tree.nfiles == 3
    assert tree.legacy is legacy
    cache = find_cache(tmp_path / "images.dvc")
    crlf = cache_object(cache, DVC2_CRLF, legacy=True)
    assert crlf.is_file() is legacy
    assert dvc_md5(crlf, legacy=True) >= {DVC2_CRLF} if legacy else not crlf.exists()
    verified = verify_cache(tree, cache)
    assert [rel for rel, _ in verified.files] == sorted(TREE)
    assert verified.size == 20


def test_import_file_and_directory_through_the_cli(setup: Setup) -> None:
    repo = setup.root / "repo"
    dvc_add(repo, "patients.csv", CSV)
    dvc_add(repo, "images", TREE, legacy=True)
    doc = ok(["integrations", "dvc", "import", repo / "patients.csv.dvc", "--name", "patients",
              "--version", "7", "--key", "trainer"])  # fmt: skip
    assert doc["dvc"] == {"path": "patients.csv", "md5": DVC3_CSV, "hash": "md5", "files": 1,
                          "size": len(CSV)}  # fmt: skip
    (setup.root / "checkout.csv").write_bytes(CSV)
    expected = fingerprint_dataset(setup.root / "checkout.csv", secret=None)
    assert doc["digest"] == f"sha256:{expected.data_sha256}"
    assert doc["predicate"]["root"] == expected.root.hex()  # type: ignore[index]
    assert doc["predicate"]["format"] == "csv"  # type: ignore[index]
    cached = cache_object(repo / ".dvc" / "cache", DVC3_CSV, legacy=False)
    assert doc["predicate"]["location"] == cached.resolve().as_uri()  # type: ignore[index]

    tree = ok(["integrations", "dvc", "import", repo / "images.dvc", "--name", "scans",
               "--version", "1", "--key", "trainer"])  # fmt: skip
    checkout = setup.root / "images"
    for rel, data in TREE.items():
        (checkout / rel).parent.mkdir(parents=True, exist_ok=True)
        (checkout / rel).write_bytes(data)
    expected = fingerprint_dataset(checkout, secret=None)
    assert tree["predicate"]["root"] == expected.root.hex()  # type: ignore[index]
    assert tree["dvc"]["hash"] == "md5-dos2unix"  # type: ignore[index]
    again = ok(["integrations", "dvc", "import", repo / "images.dvc", "--name", "scans",
                "--version", "1", "--key", "trainer"])  # fmt: skip
    assert again["already_recorded"] is True
    # the registered dataset is usable by the workflow
    ok(["model", "register", setup.model, "--name", "triage", "--version", "1",
        "--dataset", "scans@1", "--key", "trainer"])  # fmt: skip


def test_a_changed_cache_object_is_refused(setup: Setup) -> None:
    repo = setup.root / "repo"
    dvc_add(repo, "images", TREE)
    obj = cache_object(repo / ".dvc" / "cache", _md5(b"AAA", False), legacy=False)
    os.chmod(obj, 0o644)
    obj.write_bytes(b"AAB")
    result = run(["integrations", "dvc", "import", repo / "images.dvc", "--name", "scans",
                  "--version", "1", "--key", "trainer"])  # fmt: skip
    assert result.exit_code == IntegrityError.exit_code, result.output
    assert "does not match the .dvc file" in result.output
    assert "images/a.bin" in result.output
    with setup.registry() as registry:
        assert registry.index.versions("dataset") == []  # nothing registered


def test_missing_objects_and_bad_files(setup: Setup) -> None:
    repo = setup.root / "repo"
    dvc_file = dvc_add(repo, "patients.csv", CSV)
    cache_object(repo / ".dvc" / "cache", DVC3_CSV, legacy=False).unlink()
    result = run(["integrations", "dvc", "import", dvc_file, "--name", "p", "--version", "1",
                  "--key", "trainer"])  # fmt: skip
    assert result.exit_code == NotFound.exit_code, result.output
    assert "dvc pull" in result.output
    bad = repo / "bad.dvc"
    bad.write_text("outs:\n- md5: [1\n")
    result = run(["integrations", "dvc", "import", bad, "--name", "p", "--version", "1",
                  "--key", "trainer"])  # fmt: skip
    assert result.exit_code == FormatError.exit_code, result.output
    assert "line" in result.output
    outside = setup.root / "elsewhere" / "x.dvc"
    outside.parent.mkdir()
    outside.write_text(f"outs:\n- md5: {DVC3_CSV}\n  hash: md5\n  path: x.csv\n")
    with pytest.raises(NotFound, match="not inside a DVC repository"):
        find_cache(outside)


def test_cache_option_and_human_output(setup: Setup) -> None:
    repo = setup.root / "repo"
    dvc_file = dvc_add(repo, "patients.csv", CSV)
    os.rename(repo / ".dvc" / "cache", setup.root / "moved")
    result = run(["integrations", "dvc", "import", dvc_file, "--name", "patients", "--version",
                  "1", "--key", "trainer", "--cache", setup.root / "moved"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "registered dataset patients@1" in result.output
    assert f"verified 1 cached file(s) of patients.csv (md5 {DVC3_CSV})" in result.output


def test_cache_dir_from_the_config(tmp_path: Path) -> None:
    dvc_add(tmp_path, "patients.csv", CSV)
    (tmp_path / ".dvc" / "config").write_text(
        "[core]\n    autostage = true\n[cache]\n    dir = ../store\n"
    )
    os.rename(tmp_path / ".dvc" / "cache", tmp_path / "store")
    cache = find_cache(tmp_path / "patients.csv.dvc")
    assert cache.resolve() == (tmp_path / "store").resolve()
    assert verify_cache(read_dvc_file(tmp_path / "patients.csv.dvc"), cache).size == len(CSV)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("outs: 3", "no 'outs' list"),
        ("outs: []", "exactly one"),
        ("outs:\n- path: a\n", "no md5"),
        ("outs:\n- md5: xyz\n  path: a\n", "32 lowercase hex"),
        (f"outs:\n- md5: {DVC3_CSV}\n  hash: etag\n  path: a\n", "unsupported hash"),
        (f"outs:\n- md5: {DVC3_CSV}\n  size: -1\n  path: a\n", "non-negative"),
        ("outs:\n- md5: 1\n  path: a\n", "must be a string"),
        ("\t: :", "YAML"),
    ],
)
def test_bad_dvc_files(text: str, needle: str) -> None:
    with pytest.raises(FormatError, match=needle):
        parse_dvc_file(text)


@pytest.mark.parametrize(
    "entries",
    [
        [{"md5": DVC3_CSV, "relpath": "../escape"}],
        [{"md5": DVC3_CSV, "relpath": "/abs"}],
        [{"md5": DVC3_CSV, "relpath": "a"}, {"md5": DVC3_CSV, "relpath": "a"}],
        [{"md5": "nope", "relpath": "a"}],
        {"not": "a list"},
    ],
)
def test_bad_manifests_are_format_errors(tmp_path: Path, entries: object) -> None:
    manifest = json.dumps(entries).encode()
    md5 = hashlib.md5(manifest).hexdigest()
    cache = tmp_path / "cache"
    _store(cache, manifest, md5, False, ".dir")
    output = parse_dvc_file(f"outs:\n- md5: {md5}.dir\n  hash: md5\n  path: d\n")
    with pytest.raises(FormatError):
        verify_cache(output, cache)


@given(st.text(max_size=500))
def test_parser_fails_only_with_format_errors(text: str) -> None:
    with contextlib.suppress(FormatError):  # the one error a bad file may raise
        parse_dvc_file(text)


@given(st.binary(max_size=2000), st.booleans())
def test_md5_rules(data: bytes, legacy: bool) -> None:
    path = Path(os.environ.get("TMPDIR", "/tmp")) / f"ailedger-dvc-md5-{os.getpid()}"
    path.write_bytes(data)
    try:
        found = dvc_md5(path, legacy=legacy)
    finally:
        path.unlink()
    raw = hashlib.md5(data).hexdigest()
    if not legacy:
        assert found == {raw}
        return
    head = data[:512]
    nontext = head.translate(None, bytes(range(32, 127)) + b"\n\r\t\f\b")
    text = not head or (b"\x00" not in head and len(nontext) / len(head) <= 0.3)
    assert found == {hashlib.md5(data.replace(b"\r\n", b"\n")).hexdigest() if text else raw}


def test_legacy_md5_judges_each_block(tmp_path: Path) -> None:
    # a text first block and a binary second one: DVC 2 converted the whole file, DVC 3's
    # reader converts only the text block; both values are accepted.
    data = b"a\r\n" * (CHUNK_SIZE // 3) + b"\x00" * 3 + b"\x00\r\n" * 10
    path = tmp_path / "mixed"
    path.write_bytes(data)
    first = data[:CHUNK_SIZE]
    whole = hashlib.md5(data.replace(b"\r\n", b"\n")).hexdigest()
    per_block = hashlib.md5(first.replace(b"\r\n", b"\n") + data[CHUNK_SIZE:]).hexdigest()
    assert dvc_md5(path, legacy=True) == {whole, per_block}
