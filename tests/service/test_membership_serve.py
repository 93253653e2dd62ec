"""``ailedger serve`` with on-chain membership, as real processes: on the embedded chain it
serves at ``/rpc`` (membership read from that same in-process node) and on anvil. A member is
accepted, an outsider and a removed member get 403 ``signer-not-member``, a chain that is down
503 with nothing appended; how allow-list and chain combine is checked at start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from _anvil import Anvil
from _cli import fails
from _log_util import ALICE, BOB, envelope
from _service import Service, post, server_workspace, wait_for_checkpoint
from ailedger._toml import dumps as toml_dumps
from ailedger.chain import connect_rpc, deploy_contracts
from ailedger.chain.client import Chain
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
from ailedger.chain.membership import Membership
from ailedger.errors import InvalidInput
from ailedger.identity.keys import Secp256k1Signer
from ailedger.log import Checkpoint, SignedNote
from ailedger.service import LogClient, ServiceUnavailable
from ailedger.workspace import Workspace

ADMIN = Secp256k1Signer(bytes.fromhex("55" * 32))
CAROL = Secp256k1Signer(bytes.fromhex("66" * 32))
ORG = "Frostline Pharma"
FAST = ("--checkpoint-interval-ms", "20", "--membership-ttl", "0")


def _deploy(chain: Chain, ws: Workspace) -> Membership:
    """Deploy the contracts as ADMIN (recorded in ``ws``'s deployment book), create ORG."""
    chain.fund(ADMIN.address, 10**19)
    dep = deploy_contracts(chain, ADMIN)
    DeploymentBook(ws.path / DEPLOYMENTS_FILE).put(dep)
    members = Membership(chain, dep.open(chain, "Membership"))
    members.create_org(ORG, ADMIN.address, signer=ADMIN)
    return members


def _join(members: Membership, who: Secp256k1Signer) -> None:
    members.add_member(members.sign_join(ORG, who), signer=ADMIN)  # its consent, relayed


def _size(service: Service) -> int:
    status, _, body = service.request("GET", "/checkpoint")
    assert status == 200
    return Checkpoint.parse(SignedNote.parse(body.decode()).text).size


def _refused(service: Service, body: bytes, status: int, slug: str) -> dict[str, Any]:
    got, problem = post(service, body)
    assert (got, problem["type"].rsplit("/", 1)[-1]) == (status, slug), problem
    return problem


def _membership_lifecycle(service: Service, members: Membership) -> None:
    """Member 201, outsider 403 by name, removed member 403; one entry in the log."""
    _join(members, ALICE)
    assert post(service, envelope(0))[0] == 201
    problem = _refused(service, envelope(1, (BOB,)), 403, "signer-not-member")
    assert BOB.address.lower() in problem["detail"]
    # a co-signed envelope needs every signer to be a member
    _refused(service, envelope(2, (ALICE, BOB)), 403, "signer-not-member")
    members.remove_member(ORG, ALICE.address, signer=ADMIN)
    problem = _refused(service, envelope(3), 403, "signer-not-member")
    assert ALICE.address.lower() in problem["detail"]
    with pytest.raises(InvalidInput, match="not a member"):  # the client: not a bad signature
        LogClient(service.url).submit(envelope(4))
    wait_for_checkpoint(service, 1)
    assert _size(service) == 1


def test_embedded_chain_membership_through_the_services_own_node(tmp_path: Path) -> None:
    ws = server_workspace(tmp_path / "server")
    with Service(ws.root, "--membership", "chain", *FAST) as service:
        assert service.ready["membership"] == "chain"
        # not deployed yet: refused as unavailable (retryable), nothing appended
        problem = _refused(service, envelope(0), 503, "membership-not-deployed")
        assert "deploy" in problem["detail"]
        # the operator deploys and enrols through the service's /rpc (the service holds the
        # chain's lock: its membership check reads the same in-process node)
        with connect_rpc(service.ready["chain"]["rpc"]) as chain:
            members = _deploy(chain, ws)
            _membership_lifecycle(service, members)


def test_default_is_chain_once_deployed_and_the_cache_holds_ttl(tmp_path: Path) -> None:
    ws = server_workspace(tmp_path / "server")
    with (
        Service(ws.root, "--membership", "chain") as service,
        connect_rpc(service.ready["chain"]["rpc"]) as chain,
    ):
        members = _deploy(chain, ws)
        _join(members, ALICE)
    # deployed and no allow-list: chain by default; a long ttl keeps a removed member's
    # answer for that long (what the ttl means), a fresh address is read at once
    with Service(ws.root, "--membership-ttl", "3600") as service:
        assert service.ready["membership"] == "chain"
        assert post(service, envelope(0))[0] == 201
        with connect_rpc(service.ready["chain"]["rpc"]) as chain:
            members = Membership(
                chain,
                DeploymentBook(ws.path / DEPLOYMENTS_FILE).require(chain.chain_id).open(
                    chain, "Membership"),
            )  # fmt: skip
            members.remove_member(ORG, ALICE.address, signer=ADMIN)
            _join(members, CAROL)
        assert post(service, envelope(1))[0] == 201  # cached for the ttl
        assert post(service, envelope(2, (CAROL,)))[0] == 201  # read now: a member
    with Service(ws.root) as service:  # a new service reads afresh
        _refused(service, envelope(3), 403, "signer-not-member")


def test_allow_list_and_chain_are_never_combined(tmp_path: Path) -> None:
    ws = server_workspace(tmp_path / "server")
    root = str(ws.root)
    fails(["--workspace", root, "serve", "--membership", "chain", "--allow", ALICE.address], 3,
          "do not combine")  # fmt: skip
    fails(["--workspace", root, "serve", "--membership", "chain", "--no-chain-rpc"], 3,
          "--no-chain-rpc")  # fmt: skip
    fails(["--workspace", root, "serve", "--require-role", "qa", "--allow", ALICE.address], 3,
          "--membership chain")  # fmt: skip
    fails(["--workspace", root, "serve", "--membership", "members"], 3, "chain or allow-list")
    # nothing deployed and no allow-list: refuses to start, naming both ways out
    fails(["--workspace", root, "serve"], 6, "--allow", "ailedger chain deploy")


def _anvil_workspace(root: Path, anvil: Anvil) -> Workspace:
    ws = server_workspace(root)
    data = dict(ws.config.data) | {"chain": {"backend": "rpc", "url": anvil.url}}
    ws.config_path.write_text(toml_dumps(data), encoding="utf-8")
    return Workspace.open(root)


@pytest.mark.chain
def test_anvil_membership_and_a_chain_that_goes_down(tmp_path: Path, make_anvil: Any) -> None:
    anvil = make_anvil()
    ws = _anvil_workspace(tmp_path / "server", anvil)
    with connect_rpc(anvil.url) as chain:
        members = _deploy(chain, ws)
        with Service(ws.root, "--require-role", "qa", *FAST) as service:
            assert service.ready["membership"] == "chain"  # deployed: chain by default
            _join(members, CAROL)
            problem = _refused(service, envelope(0, (CAROL,)), 403, "signer-not-member")
            assert "role qa" in problem["detail"]  # a member without the role required
        with Service(ws.root, *FAST) as service:
            _membership_lifecycle(service, members)
            _join(members, BOB)
            anvil.stop()  # the chain goes down
            problem = _refused(service, envelope(5, (BOB,)), 503, "chain-unavailable")
            assert "nothing was appended" in problem["detail"]
            status, headers, _ = service.request("POST", "/v1/entries", envelope(6, (BOB,)))
            assert (status, headers["retry-after"]) == (503, "1")
            with pytest.raises(ServiceUnavailable, match="HTTP 503"):
                LogClient(service.url).submit(envelope(7, (BOB,)))
            assert _size(service) == 1  # nothing appended
            status, _, body = service.request("GET", "/healthz")
            assert (status, json.loads(body)["size"]) == (200, 1)
