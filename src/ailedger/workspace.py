"""The ``.ailedger/`` workspace: where keys, the log and chain state live.

::

    project/
    └── .ailedger/
        ├── config.toml      schema version, log origin and default log key, chain backend
        ├── keys/            0700: keystores and their public metadata (see ailedger.identity.keys)
        └── ...              the log, chain state and index add their own files

A workspace is found like git finds a repository: :meth:`Workspace.find` walks up from a
directory to the nearest ``.ailedger/``. :meth:`Workspace.open` takes an explicit path (the
CLI passes ``--workspace`` / ``AILEDGER_HOME`` there). Library code never reads the
environment.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import shutil
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger._toml import dumps as toml_dumps
from ailedger.errors import StorageError, WorkspaceError

__all__ = [
    "CONFIG_NAME",
    "CONFIG_SCHEMA_VERSION",
    "WORKSPACE_DIR",
    "Workspace",
    "WorkspaceConfig",
    "default_origin",
]

#: Name of the workspace directory, as ``.git`` is for git.
WORKSPACE_DIR = ".ailedger"
#: Name of the config file inside :data:`WORKSPACE_DIR`.
CONFIG_NAME = "config.toml"
#: Version of the config layout this code writes and reads.
CONFIG_SCHEMA_VERSION = 1

_INIT_HINT = "run `ailedger init` in your project directory, or pass --workspace"
#: The form of a key name (as :class:`ailedger.identity.keys.Keystore` accepts it).
_KEY_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_ORIGIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._~:/-]{0,253}$")


@dataclass(frozen=True)
class WorkspaceConfig:
    """The parsed ``config.toml``.

    ``data`` keeps every section, including ones other modules add (``[log]``, ``[chain]``
    ...), so reading and writing back never drops them.
    """

    schema_version: int
    origin: str
    chain_backend: str
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def default(cls, origin: str) -> WorkspaceConfig:
        """The config ``ailedger init`` writes."""
        data: dict[str, Any] = {
            "schema_version": CONFIG_SCHEMA_VERSION,
            "log": {"origin": origin},
            "chain": {"backend": "embedded"},
        }
        return cls.from_dict(data, source=Path(CONFIG_NAME))

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, source: Path) -> WorkspaceConfig:
        """Validate a parsed config document; :class:`WorkspaceError` names what is wrong."""
        version = data.get("schema_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise WorkspaceError(f"{source}: missing or non-integer schema_version")
        if version != CONFIG_SCHEMA_VERSION:
            raise WorkspaceError(
                f"{source}: schema_version {version} is not supported "
                f"(this ailedger reads version {CONFIG_SCHEMA_VERSION})",
                hint="upgrade ailedger",
            )
        log = data.get("log")
        origin = log.get("origin") if isinstance(log, dict) else None
        if not isinstance(origin, str) or not _ORIGIN_RE.match(origin):
            raise WorkspaceError(f"{source}: [log] origin is missing or not a valid log origin")
        key = log.get("key") if isinstance(log, dict) else None
        if key is not None and (not isinstance(key, str) or not _KEY_NAME_RE.match(key)):
            raise WorkspaceError(f"{source}: [log] key must be the name of a workspace key")
        chain = data.get("chain", {})
        backend = chain.get("backend") if isinstance(chain, dict) else None
        if not isinstance(backend, str) or not backend:
            raise WorkspaceError(f"{source}: [chain] backend is missing or empty")
        return cls(schema_version=version, origin=origin, chain_backend=backend, data=data)

    @property
    def log_key(self) -> str | None:
        """``[log] key``: the name of the workspace's default log key, if one is set.

        Only its form is checked here; that the key exists and is secp256k1 is checked where
        it is used (the keystore is a layer above)."""
        key = self.section("log").get("key")
        return key if isinstance(key, str) else None

    def with_log_key(self, name: str | None) -> WorkspaceConfig:
        """This config with ``[log] key`` set to ``name`` (removed when ``None``)."""
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.data.items()}
        log = data.setdefault("log", {})
        if name is None:
            log.pop("key", None)
        else:
            log["key"] = name
        return WorkspaceConfig.from_dict(data, source=Path(CONFIG_NAME))

    def with_log_remote(
        self,
        url: str | None,
        key: str | None,
        *,
        witnesses: Sequence[str] = (),
        witness_threshold: int = 0,
    ) -> WorkspaceConfig:
        """This config with ``[log] url`` and ``url_key`` (the log service commands use by
        default and its trusted log key) and the witnesses its checkpoints need
        (``witnesses``, ``witness_threshold``: left out when empty) set, or all removed
        when ``url`` is ``None``."""
        data = {k: (dict(v) if isinstance(v, dict) else v) for k, v in self.data.items()}
        log = data.setdefault("log", {})
        on = url is not None
        settings: tuple[tuple[str, object], ...] = (
            ("url", url),
            ("url_key", key if on else None),
            ("witnesses", list(witnesses) if on and witnesses else None),
            ("witness_threshold", witness_threshold if on and witness_threshold else None),
        )
        for name, value in settings:
            if value is None:
                log.pop(name, None)
            else:
                log[name] = value
        return WorkspaceConfig.from_dict(data, source=Path(CONFIG_NAME))

    def section(self, name: str) -> dict[str, Any]:
        """A ``[name]`` table (empty if absent), for modules that keep their settings here."""
        value = self.data.get(name, {})
        return dict(value) if isinstance(value, dict) else {}

    def to_toml(self) -> str:
        """The config as TOML text."""
        return toml_dumps(self.data)


def _refuse_broken_config(config_path: Path) -> None:
    """A config.toml that is there but cannot be a file (a dangling or looping link, a
    directory) is a broken workspace, not a missing one: say so instead of walking on."""
    if not config_path.is_symlink() and not config_path.exists():
        return
    if config_path.is_symlink():
        try:
            config_path.resolve(strict=True)
        except RuntimeError:  # Python 3.11 reports a loop so; later versions with ELOOP
            raise WorkspaceError(f"{config_path} is a symbolic link that loops") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise WorkspaceError(f"{config_path} is a symbolic link that loops") from None
            target = os.readlink(config_path)
            raise WorkspaceError(
                f"{config_path} is a symbolic link to {target}, which does not exist",
                hint="restore the file it points to, or replace the link with the config",
            ) from None
    raise WorkspaceError(f"{config_path} is not a regular file")


def default_origin(root: Path) -> str:
    """A log origin unique to this workspace: ``ailedger.local/<dir>-<random>``."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", root.resolve().name).strip("-.") or "workspace"
    return f"ailedger.local/{name[:64]}-{secrets.token_hex(4)}"


def _undo_init(ws_dir: Path, tmp: Path, created: bool) -> None:
    """After a failed :meth:`Workspace.init`: remove what it made, so no half workspace stays."""
    with contextlib.suppress(OSError):
        tmp.unlink(missing_ok=True)
    if created:
        shutil.rmtree(ws_dir, ignore_errors=True)


@dataclass(frozen=True)
class Workspace:
    """An opened workspace. ``root`` is the directory that contains ``.ailedger/``."""

    root: Path
    config: WorkspaceConfig

    @property
    def path(self) -> Path:
        """The ``.ailedger/`` directory itself."""
        return self.root / WORKSPACE_DIR

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_NAME

    @property
    def keys_dir(self) -> Path:
        """Where :class:`ailedger.identity.keys.Keystore` keeps keys (mode 0700)."""
        return self.path / "keys"

    @classmethod
    def init(
        cls, root: Path, *, origin: str | None = None, log_key: str | None = None
    ) -> Workspace:
        """Create ``root/.ailedger/`` with a fresh config and keys directory; ``log_key``
        names the default log key in the config (the caller creates the key).

        Raises :class:`WorkspaceError` if a workspace already exists there.
        """
        root = root.resolve()
        ws_dir = root / WORKSPACE_DIR
        if (ws_dir / CONFIG_NAME).exists():
            raise WorkspaceError(
                f"{ws_dir} already exists", hint="use the existing workspace or pick another path"
            )
        if origin is not None and not _ORIGIN_RE.match(origin):
            raise WorkspaceError(
                f"invalid log origin {origin!r}",
                hint="use a schema-less URL such as example.com/ailedger/log",
            )
        if log_key is not None and not _KEY_NAME_RE.match(log_key):
            raise WorkspaceError(
                f"invalid log key name {log_key!r}",
                hint="use letters, digits, '-' and '_' (at most 64)",
            )
        created = not ws_dir.exists()
        tmp = ws_dir / (CONFIG_NAME + ".tmp")
        try:
            ws_dir.mkdir(parents=True, exist_ok=True)
            keys = ws_dir / "keys"
            keys.mkdir(mode=0o700, exist_ok=True)
            os.chmod(keys, 0o700)  # mkdir's mode is masked by the umask
            config = WorkspaceConfig.default(origin or default_origin(root))
            if log_key is not None:
                config = config.with_log_key(log_key)
            tmp.write_text(config.to_toml(), encoding="utf-8")
            os.replace(tmp, ws_dir / CONFIG_NAME)
        except OSError as exc:
            _undo_init(ws_dir, tmp, created)
            where = ws_dir if exc.filename is None else None  # (a failed write names no file)
            fault = StorageError.from_exception(exc, where)  # a full or read-only disk: exit 11
            if fault is not None:
                raise fault from exc
            raise WorkspaceError(f"cannot create workspace in {root}: {exc.strerror}") from exc
        return cls(root=root, config=config)

    @classmethod
    def open(cls, path: Path) -> Workspace:
        """Open the workspace at ``path`` (the project directory or its ``.ailedger/``)."""
        path = path.resolve()
        if path.name == WORKSPACE_DIR and (path / CONFIG_NAME).is_file():
            path = path.parent
        config_path = path / WORKSPACE_DIR / CONFIG_NAME
        if not config_path.is_file():
            _refuse_broken_config(config_path)
            raise WorkspaceError(f"no ailedger workspace at {path}", hint=_INIT_HINT)
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise WorkspaceError(f"{config_path} is not valid TOML: {exc}") from exc
        except OSError as exc:
            raise WorkspaceError(f"cannot read {config_path}: {exc.strerror}") from exc
        return cls(root=path, config=WorkspaceConfig.from_dict(data, source=config_path))

    @classmethod
    def find(cls, start: Path) -> Workspace:
        """Open the nearest workspace at or above ``start``, walking up like git."""
        start = start.resolve()
        for candidate in (start, *start.parents):
            if (candidate / WORKSPACE_DIR / CONFIG_NAME).is_file():
                return cls.open(candidate)
            _refuse_broken_config(candidate / WORKSPACE_DIR / CONFIG_NAME)
        raise WorkspaceError(f"no ailedger workspace in {start} or any parent", hint=_INIT_HINT)

    def save_config(self, config: WorkspaceConfig) -> Workspace:
        """Write ``config`` atomically and return the workspace that holds it."""
        tmp = self.path / (CONFIG_NAME + ".tmp")
        tmp.write_text(config.to_toml(), encoding="utf-8")
        os.replace(tmp, self.config_path)
        return Workspace(root=self.root, config=config)
