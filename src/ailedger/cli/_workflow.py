"""Shared pieces of the workflow commands, and ``ailedger roles grant|list``.

The workflow commands (``dataset register``, ``model register``, ``eval``, ``approve``,
``gate``, ``deploy``, ``rollback``, ``deprecate``, ``infer``, ``trace``, ``lineage``) live in
``_register``, ``_eval``, ``_deploy`` and ``_trace``; each opens the registry through
:func:`open_registry` and signs with :func:`signer_for`. The local registry backend takes
roles from ``[members]`` in the workspace config, which ``roles grant`` writes; an on-chain
backend takes them from the Membership contract instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from ailedger._registry_refs import VersionRef
from ailedger.cli._app import app
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._keys import PasswordFileOpt, open_workspace, read_password
from ailedger.errors import NotFound
from ailedger.keys import Keystore, Signer
from ailedger.policy import Policy, load_policy
from ailedger.registry import LocalBackend, Recorded, Registry

__all__ = [
    "POLICY_NAME",
    "KeyOpt",
    "PasswordFileOpt",
    "open_registry",
    "parse_ref",
    "print_recorded",
    "roles_app",
    "signer_for",
    "workspace_policy",
]

#: The policy ``deploy`` applies when no ``--policy`` is given, inside ``.ailedger/``.
POLICY_NAME = "policy.toml"

KeyOpt = Annotated[str, typer.Option("--key", help="Name of the signing key.")]

roles_app = typer.Typer(
    help="Grant and list the roles of keys in the local registry.", no_args_is_help=True
)
app.add_typer(roles_app, name="roles")

_KEYID = re.compile(r"0x[0-9a-fA-F]{40}|[0-9a-f]{16,}")


def parse_ref(text: str) -> VersionRef:
    return VersionRef.parse(text)


def signer_for(store: Keystore, key: str, password_file: Path | None) -> Signer:
    """The named key's signer, asking for its password when it is encrypted."""
    info = store.info(key)
    password = None
    if info.encrypted:
        password = read_password(password_file, confirm=False, prompt=f"Password for {key}")
    return store.signer(key, password)


@contextmanager
def open_registry(store: Keystore | None = None) -> Iterator[Registry]:
    """The current workspace's registry, trusting the workspace's keys."""
    workspace = open_workspace()
    keys = (store or Keystore(workspace.keys_dir)).list_keys()
    with Registry.open(workspace, keys=keys) as registry:
        yield registry


def workspace_policy(path: Path | None) -> Policy:
    """``path``, else the workspace's ``.ailedger/policy.toml``."""
    if path is not None:
        return load_policy(path)
    default = open_workspace().path / POLICY_NAME
    if not default.is_file():
        raise NotFound(
            f"no policy: pass --policy FILE or put one at {default}",
            hint="a deploy always runs the gate; see examples/policy.toml",
        )
    return load_policy(default)


def print_recorded(recorded: Recorded, verb: str) -> None:
    again = " (already in the log)" if recorded.already else ""
    console.print(
        f"{escape(verb)} [bold]{escape(recorded.ref)}[/bold]: log entry {recorded.log_index}"
        f"{again}, subject {recorded.digest}"
    )


@roles_app.command("grant")
def grant_cmd(
    key: Annotated[str, typer.Argument(help="A workspace key name, or a key id / address.")],
    role: Annotated[str, typer.Argument(help="Role name, e.g. qa, trainer, auditor.")],
    org: Annotated[
        str | None, typer.Option("--org", help="Organisation (default: the key's own).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Give a key a role in the local registry (the chain's Membership contract later)."""
    workspace = open_workspace()
    store = Keystore(workspace.keys_dir)
    if _KEYID.fullmatch(key):
        keyid = key.lower()
        found = store.find(key)
    else:
        found = store.info(key)
        keyid = found.keyid.lower()
    org = org or (found.org if found is not None else None)
    if org is None:
        raise NotFound(f"key {key} has no organisation: pass --org")
    workspace = LocalBackend.grant(workspace, keyid, role, org)
    entry = LocalBackend.members(workspace)[keyid]
    data = {"keyid": keyid, **entry}
    emit(data, as_json, lambda: console.print(f"{keyid}: org {org}, roles {entry['roles']}"))


@roles_app.command("list")
def list_cmd(as_json: JsonOpt = False) -> None:
    """List the keys with roles in the local registry."""
    members = LocalBackend.members(open_workspace())

    def human() -> None:
        table = Table("key id", "org", "roles")
        for keyid, entry in sorted(members.items()):
            roles = entry.get("roles", [])
            shown = ", ".join(map(str, roles)) if isinstance(roles, list) else ""
            table.add_row(keyid, str(entry.get("org", "")), shown)
        console.print(table)

    emit(members, as_json, human)
