"""Which files make up a model, the way OpenSSF model-signing 1.1.1 decides it.

- A single file is the model: one resource named ``.``; nothing is ignored.
- A directory: every regular file below it, named by its POSIX path relative to the root,
  except the ignored paths (relative to the root; an ignored directory hides everything
  below it). The default ignore list is model-signing's: ``.git``, ``.gitattributes``,
  ``.github``, ``.gitignore`` at the top level only.
- Symlinks are refused unless allowed. When allowed, a link to a file is hashed as the
  file it points to (under the link's name); a link to a directory below the top is not
  descended into (model-signing's glob does not follow it either), while a top-level path
  that is a link to a directory is walked.
- Anything else (a FIFO, a socket, a device, a broken link, a symlink loop) is an error.

Ignored directories are not walked at all (model-signing walks them and then drops the
files), so a symlink inside ``.git`` is no error here; every model it accepts gives the same
resources here.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import PurePosixPath

from ailedger.errors import InvalidInput, NotFound

__all__ = ["DEFAULT_IGNORE_PATHS", "ModelFile", "list_model_files", "normalize_ignore_paths"]

#: model-signing's ``ignore_git_paths`` list, in the order its source lists it.
DEFAULT_IGNORE_PATHS: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")


@dataclass(frozen=True)
class ModelFile:
    """``name`` is the resource name (relative POSIX path, or ``.`` for a single file)."""

    name: str
    path: str  # absolute, for opening
    stat: os.stat_result

    @property
    def sort_key(self) -> tuple[str, ...]:
        # model-signing sorts PurePosixPath objects, which compare by their parts.
        return PurePosixPath(self.name).parts


def normalize_ignore_paths(paths: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    out = []
    for p in paths:
        pure = PurePosixPath(p.replace(os.sep, "/"))
        if pure.is_absolute() or ".." in pure.parts or not pure.parts:
            raise InvalidInput(f"ignore path {p!r} must be relative to the model, without '..'")
        out.append(pure.parts)
    return tuple(out)


def _stat_target(path: str, shown: str) -> os.stat_result:
    try:
        return os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InvalidInput(f"{shown} is a symlink loop") from None
        if exc.errno == errno.ENOENT and os.path.islink(path):
            raise InvalidInput(f"{shown} is a broken symlink") from None
        if exc.errno == errno.ENOENT:
            raise NotFound(f"{shown} does not exist") from None
        if exc.errno == errno.EACCES:
            raise InvalidInput(f"cannot read {shown}: permission denied") from None
        raise InvalidInput(f"cannot use {shown}: {exc.strerror}") from None


def _symlink_error(shown: str) -> InvalidInput:
    return InvalidInput(
        f"{shown} is a symlink",
        hint="pass --allow-symlinks (allow_symlinks=True) to hash what it points to",
    )


def _check(path: str, shown: str, allow_symlinks: bool) -> os.stat_result | None:
    """The stat of a file or directory to include; ``None`` for a linked directory."""
    lst = os.lstat(path)
    is_link = stat.S_ISLNK(lst.st_mode)
    if is_link:
        st = _stat_target(path, shown)  # loops and broken links first: clearer messages
        if not allow_symlinks:
            raise _symlink_error(shown)
        if stat.S_ISDIR(st.st_mode):
            return None
    else:
        st = lst
    if not (stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode)):
        raise InvalidInput(f"{shown} is not a regular file or a directory")
    return st


def list_model_files(
    root: str | os.PathLike[str],
    *,
    ignore_paths: tuple[str, ...] = DEFAULT_IGNORE_PATHS,
    allow_symlinks: bool = False,
) -> tuple[str, list[ModelFile]]:
    """The model name and its files in manifest order. Raises on anything unhashable."""
    top = os.path.abspath(os.fspath(root))
    shown = os.fspath(root)
    if not os.path.lexists(top):
        raise NotFound(f"{shown} does not exist")
    st = _check(top, shown, allow_symlinks)
    name = os.path.basename(top)
    if st is None:  # an allowed symlink to a directory at the top is walked (as model-signing)
        st = os.stat(top)
    if stat.S_ISREG(st.st_mode):
        return name, [ModelFile(".", top, st)]
    ignored = set(normalize_ignore_paths(ignore_paths))
    files: list[ModelFile] = []
    stack: list[tuple[str, tuple[str, ...]]] = [(top, ())]
    while stack:
        directory, parts = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            where = "/".join(parts) or shown
            raise InvalidInput(f"cannot list {where}: {exc.strerror}") from None
        for entry in entries:
            rel = (*parts, entry.name)
            if any(rel[: len(ig)] == ig for ig in ignored):
                continue
            rel_name = "/".join(rel)
            est = _check(entry.path, rel_name, allow_symlinks)
            if est is None:
                continue
            if stat.S_ISDIR(est.st_mode):
                stack.append((entry.path, rel))
            else:
                files.append(ModelFile(rel_name, entry.path, est))
    files.sort(key=lambda f: f.sort_key)
    return name, files
