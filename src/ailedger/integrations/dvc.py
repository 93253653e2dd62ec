"""Register a dataset tracked by DVC from its ``.dvc`` file and the DVC cache.

::

    output = read_dvc_file(Path("data/patients.csv.dvc"))
    verified = verify_cache(output, find_cache(Path("data/patients.csv.dvc")))
    import_dvc(registry, Path("data/patients.csv.dvc"), VersionRef("patients", "3"), signer)

A ``.dvc`` file names one output: its ``path`` (relative to the file), its ``md5`` (a
directory's ends in ``.dir``) and, since DVC 3, ``hash: md5``. DVC 3 outputs live in
``<cache>/files/md5/xx/yyyy`` and hash the raw bytes; older (DVC 2) outputs, without
``hash``, live in ``<cache>/xx/yyyy`` and hash text files with CRLF turned into LF
(``md5-dos2unix``). A directory's md5 is that of its ``.dir`` manifest, a JSON list of
``{"md5": ..., "relpath": ...}`` entries, one per file.

Nothing is fingerprinted before every cached object has been re-hashed and matches: a
missing object is :class:`NotFound` (fetch it with ``dvc pull``), different bytes are
:class:`IntegrityError`, a malformed ``.dvc`` file or manifest is :class:`FormatError`.
The verified objects are then laid out under their tracked names as a tree of symbolic
links in the ailedger workspace (``dvc/<md5>/<name>``) and registered from there, so the
fingerprint sees the same names and bytes as a checkout and nothing is copied.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ailedger.errors import FormatError, IntegrityError, InvalidInput, NotFound
from ailedger.identity.keys import Signer
from ailedger.registry import Recorded, Registry, VersionRef

__all__ = [
    "CHUNK_SIZE",
    "DvcOutput",
    "VerifiedDvcData",
    "cache_object",
    "dvc_md5",
    "find_cache",
    "import_dvc",
    "link_tree",
    "parse_dvc_file",
    "read_dvc_file",
    "verify_cache",
]

#: DVC hashes in blocks of this size; ``md5-dos2unix`` decides text or binary per block.
CHUNK_SIZE = 2**20

_MD5 = re.compile(r"[0-9a-f]{32}")
_TEXT_CHARS = bytes(range(32, 127)) + b"\n\r\t\f\b"
_TEXT_BLOCK = 512


@dataclass(frozen=True)
class DvcOutput:
    """The one output a ``.dvc`` file tracks. ``legacy``: a DVC 2 hash and cache layout."""

    path: str
    md5: str
    is_dir: bool
    legacy: bool
    size: int | None = None
    nfiles: int | None = None

    @property
    def hash_name(self) -> str:
        return "md5-dos2unix" if self.legacy else "md5"


@dataclass(frozen=True)
class VerifiedDvcData:
    """An output whose cached objects all matched: ``files`` maps each relative path
    (``""`` for a single-file output) to its cache object."""

    output: DvcOutput
    files: tuple[tuple[str, Path], ...]

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for _, p in self.files)


# --- the .dvc file -------------------------------------------------------------------------


def _int_field(out: dict[str, Any], key: str, where: str) -> int | None:
    value = out.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise FormatError(f"{where}: {key} must be a non-negative integer, not {value!r}")
    return value


def parse_dvc_file(text: str, source: str = "<dvc file>") -> DvcOutput:
    """Parse the YAML of a ``.dvc`` file; it must track exactly one output with an md5."""
    import yaml  # imported here: only this command needs PyYAML

    try:
        doc = yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark is not None else "?"
        raise FormatError(f"{source}: line {line}: not YAML: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise FormatError(f"{source}: not YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("outs"), list):
        raise FormatError(f"{source}: not a .dvc file (no 'outs' list)")
    outs = doc["outs"]
    if len(outs) != 1:
        raise FormatError(f"{source}: tracks {len(outs)} outputs; expected exactly one")
    out = outs[0]
    if not isinstance(out, dict):
        raise FormatError(f"{source}: outs[0] is not a mapping")
    where = f"{source}: outs[0]"
    path, md5 = out.get("path"), out.get("md5")
    if not isinstance(path, str) or not path.strip():
        raise FormatError(f"{where}: no path")
    if md5 is None:
        raise FormatError(
            f"{where}: no md5 (was it added with `dvc add`, or is it a cloud import?)"
        )
    if not isinstance(md5, str):
        raise FormatError(f"{where}: md5 must be a string, not {md5!r}")
    is_dir = md5.endswith(".dir")
    digest = md5.removesuffix(".dir")
    if not _MD5.fullmatch(digest):
        raise FormatError(f"{where}: md5 {md5!r} is not 32 lowercase hex digits")
    kind = out.get("hash")
    if kind not in (None, "md5"):
        raise FormatError(f"{where}: unsupported hash {kind!r} (only md5 and DVC 2 outputs)")
    return DvcOutput(
        path=path,
        md5=digest,
        is_dir=is_dir,
        legacy=kind is None,
        size=_int_field(out, "size", where),
        nfiles=_int_field(out, "nfiles", where),
    )


def read_dvc_file(path: Path) -> DvcOutput:
    """Read and parse the ``.dvc`` file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound(f"no such .dvc file: {path}") from None
    except UnicodeDecodeError:
        raise FormatError(f"{path}: not UTF-8 text") from None
    except IsADirectoryError:
        raise InvalidInput(f"{path} is a directory, not a .dvc file") from None
    return parse_dvc_file(text, str(path))


# --- the cache -----------------------------------------------------------------------------


def _configured_cache(dvc_dir: Path) -> Path | None:
    found: Path | None = None
    for name in ("config", "config.local"):  # config.local overrides config
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(dvc_dir / name, encoding="utf-8")
        except configparser.Error as exc:
            raise FormatError(f"{dvc_dir / name}: {exc}") from None
        value = parser.get("cache", "dir", fallback=None)
        if value:
            found = dvc_dir / Path(value.strip().strip("'\""))
    return found


def find_cache(dvc_file: Path) -> Path:
    """The cache of the DVC repository holding ``dvc_file``: ``cache.dir`` from
    ``.dvc/config`` (or ``config.local``), else ``.dvc/cache``."""
    start = dvc_file.resolve().parent
    for directory in (start, *start.parents):
        dvc_dir = directory / ".dvc"
        if dvc_dir.is_dir():
            return _configured_cache(dvc_dir) or dvc_dir / "cache"
    raise NotFound(
        f"{dvc_file} is not inside a DVC repository (no .dvc/ directory above it)",
        hint="pass --cache DIR",
    )


def cache_object(cache: Path, md5: str, *, legacy: bool, suffix: str = "") -> Path:
    """Where DVC keeps the object: ``files/md5/xx/yyyy`` (DVC 3) or ``xx/yyyy`` (DVC 2)."""
    base = cache if legacy else cache / "files" / "md5"
    return base / md5[:2] / (md5[2:] + suffix)


def _is_text_block(block: bytes) -> bool:
    if not block:
        return True
    if b"\x00" in block:
        return False
    return len(block.translate(None, _TEXT_CHARS)) / len(block) <= 0.30


def dvc_md5(path: Path, *, legacy: bool) -> set[str]:
    """The md5 DVC records for the file: the raw md5 (DVC 3), or for DVC 2 outputs the md5
    with CRLF as LF in text blocks. DVC 2 judged text by the file's first block and DVC 3
    reads old outputs judging each block; both values are returned (equal for most files)."""
    raw = hashlib.md5(usedforsecurity=False)
    per_block = hashlib.md5(usedforsecurity=False)
    first_block = hashlib.md5(usedforsecurity=False)
    text_file: bool | None = None
    with path.open("rb") as f:
        while chunk := f.read(CHUNK_SIZE):
            if not legacy:
                raw.update(chunk)
                continue
            unix = chunk.replace(b"\r\n", b"\n")
            text = _is_text_block(chunk[:_TEXT_BLOCK])
            if text_file is None:
                text_file = text
            per_block.update(unix if text else chunk)
            first_block.update(unix if text_file else chunk)
    if not legacy:
        return {raw.hexdigest()}
    return {per_block.hexdigest(), first_block.hexdigest()}


def _check_object(obj: Path, md5: str, legacy: bool, what: str) -> None:
    if not obj.is_file():
        raise NotFound(
            f"{what} is not in the DVC cache (expected {obj})",
            hint="fetch it first: `dvc pull` (or `dvc fetch`)",
        )
    found = dvc_md5(obj, legacy=legacy)
    if md5 not in found:
        raise IntegrityError(
            f"{what}: the cached content does not match the .dvc file: md5 "
            f"{sorted(found)[0]}, expected {md5} ({obj})",
            hint="the cache is corrupt or was changed; run `dvc pull --force` or re-add it",
        )


def _safe_relpath(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise FormatError(f"{where}: relpath must be a non-empty string")
    parts = PurePosixPath(value).parts
    if value.startswith("/") or "\\" in value or any(p in ("..", ".") for p in parts):
        raise FormatError(f"{where}: unsafe relpath {value!r}")
    return PurePosixPath(*parts).as_posix()


def _manifest(data: bytes, where: str) -> list[tuple[str, str]]:
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"{where}: the .dir manifest is not JSON: {exc}") from None
    if not isinstance(doc, list):
        raise FormatError(f"{where}: the .dir manifest is not a list")
    entries: dict[str, str] = {}
    for i, item in enumerate(doc):
        at = f"{where}: entry {i}"
        if not isinstance(item, dict):
            raise FormatError(f"{at} is not an object")
        rel = _safe_relpath(item.get("relpath"), at)
        md5 = item.get("md5")
        if not isinstance(md5, str) or not _MD5.fullmatch(md5):
            raise FormatError(f"{at}: md5 {md5!r} is not 32 lowercase hex digits")
        if rel in entries:
            raise FormatError(f"{at}: {rel!r} is listed twice")
        entries[rel] = md5
    return sorted(entries.items())


def verify_cache(output: DvcOutput, cache: Path) -> VerifiedDvcData:
    """Re-hash every cached object of ``output``; raise unless all match the ``.dvc`` file."""
    legacy = output.legacy
    if not output.is_dir:
        obj = cache_object(cache, output.md5, legacy=legacy)
        _check_object(obj, output.md5, legacy, output.path)
        verified = VerifiedDvcData(output, (("", obj),))
    else:
        manifest = cache_object(cache, output.md5, legacy=legacy, suffix=".dir")
        _check_object(manifest, output.md5, legacy, f"{output.path} (.dir manifest)")
        entries = _manifest(manifest.read_bytes(), str(manifest))
        if output.nfiles is not None and output.nfiles != len(entries):
            raise IntegrityError(
                f"{output.path}: the .dvc file says {output.nfiles} files, the manifest "
                f"lists {len(entries)}"
            )
        files: list[tuple[str, Path]] = []
        for rel, md5 in entries:
            obj = cache_object(cache, md5, legacy=legacy)
            _check_object(obj, md5, legacy, f"{output.path}/{rel}")
            files.append((rel, obj))
        verified = VerifiedDvcData(output, tuple(files))
    if output.size is not None and output.size != verified.size:
        raise IntegrityError(
            f"{output.path}: the .dvc file says {output.size} bytes, the cache holds "
            f"{verified.size}"
        )
    return verified


def link_tree(verified: VerifiedDvcData, parent: Path) -> Path:
    """Lay the verified objects out under ``parent/<name>`` as symbolic links (replacing
    an earlier tree there) and return that path."""
    name = PurePosixPath(verified.output.path.replace("\\", "/")).name or "data"
    target = parent / name
    if target.is_symlink() or target.is_file():
        target.unlink()
    elif target.is_dir():
        shutil.rmtree(target)
    parent.mkdir(parents=True, exist_ok=True)
    if not verified.output.is_dir:
        os.symlink(verified.files[0][1].resolve(), target)
        return target
    target.mkdir()
    for rel, obj in verified.files:
        link = target.joinpath(*PurePosixPath(rel).parts)
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(obj.resolve(), link)
    return target


def import_dvc(
    registry: Registry,
    dvc_file: Path,
    ref: VersionRef,
    signer: Signer,
    *,
    format: str | None = None,
    cache: Path | None = None,
) -> tuple[Recorded, VerifiedDvcData]:
    """Verify the output of ``dvc_file`` in the cache and register it as ``ref``."""
    output = read_dvc_file(dvc_file)
    verified = verify_cache(output, cache if cache is not None else find_cache(dvc_file))
    if output.is_dir and format not in (None, "files"):
        raise InvalidInput(f"{output.path} is a directory: its format is 'files', not {format!r}")
    tree = link_tree(verified, registry.workspace.path / "dvc" / output.md5)
    recorded = registry.register_dataset(tree, ref, signer, format=format, secret=None)
    return recorded, verified
