"""``ailedger serve --read-only`` (or ``[serve] read_only``): the log and the explorer, no key
unlocked, no submissions, no chain /rpc; options it cannot honour are refused at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from _cli import fails
from _log_util import ALICE, envelope
from _service import LOG_KEY, Service, post, server_workspace, wait_for_checkpoint
from ailedger.log import Checkpoint, SignedNote, vkey
from ailedger.workspace import Workspace


class _ByArgument(Service):
    by_argument = True


def _logged(root: Path, n: int) -> Workspace:
    """A server workspace whose log holds ``n`` entries under a signed checkpoint."""
    ws = server_workspace(root)
    with Service(root, "--allow", ALICE.address, "--checkpoint-interval-ms", "20") as service:
        for i in range(n):
            assert post(service, envelope(i))[0] == 201
        wait_for_checkpoint(service, n)
    return ws


def test_read_only_serves_the_stored_checkpoint_and_refuses_submissions(tmp_path: Path) -> None:
    _logged(tmp_path / "server", 3)
    with Service(tmp_path / "server", "--read-only") as service:
        assert service.ready["log_key"] == vkey(LOG_KEY)
        assert service.ready["size"] == 3
        status, _, body = service.request("GET", "/checkpoint")
        assert status == 200
        assert Checkpoint.parse(SignedNote.parse(body.decode()).text).size == 3
        status, doc = post(service, envelope(7))
        assert (status, doc["type"].rsplit("/", 1)[-1]) == (403, "read-only")
        assert service.request("GET", "/v1/entries/2")[0] == 200
        assert service.request("GET", "/")[0] == 200  # the explorer
    # nothing was written: the log still has 3 entries
    with Service(tmp_path / "server", "--read-only") as service:
        assert service.ready["size"] == 3


def test_the_config_makes_a_workspace_read_only_and_serve_takes_its_directory(
    tmp_path: Path,
) -> None:
    ws = _logged(tmp_path / "server", 2)
    data = dict(ws.config.data)
    data["serve"] = {"read_only": True}
    ws.save_config(type(ws.config).from_dict(data, source=ws.config_path))
    with _ByArgument(tmp_path / "server") as service:
        assert service.ready["size"] == 2
        assert post(service, envelope(9))[0] == 403
    # --no-read-only overrides the config: then an allow-list is needed again (fail closed)
    fails(
        ["--workspace", tmp_path / "server", "serve", "--no-read-only"],
        6,
        "no signer is allowed to submit",
    )


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--allow", ALICE.address], "--read-only takes no submissions"),
        (["--anchor-every", "5"], "--read-only signs nothing"),
    ],
)
def test_read_only_refuses_what_it_cannot_honour(
    tmp_path: Path, args: list[str], needle: str
) -> None:
    server_workspace(tmp_path / "server")
    fails(["--workspace", tmp_path / "server", "serve", "--read-only", *args], 3, needle)


def test_read_only_needs_a_signed_checkpoint(tmp_path: Path) -> None:
    server_workspace(tmp_path / "server")
    fails(
        ["--workspace", tmp_path / "server", "serve", "--read-only"],
        4,
        "has no signed checkpoint: nothing to serve read-only",
    )
