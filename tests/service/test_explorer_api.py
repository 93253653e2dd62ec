"""The explorer's registry JSON follows the index's judgement: a deploy statement whose signer
may not deploy is listed as rejected, never as an event, and "which served at T" skips it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _log_util import ALICE, BOB, envelope
from _service import Service, post, server_workspace, wait_for_checkpoint
from ailedger.identity.keys import Signer
from ailedger.registry import LocalBackend


def _deploy(version: int, previous: dict[str, Any] | None, signer: Signer, time: str) -> bytes:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"m@{version}", "digest": {"sha256": f"{version:064x}"}}],
        "predicateType": "https://ailedger.dev/predicates/deployment/v1",
        "predicate": {
            "action": "deploy",
            "environment": "prod",
            "previous": previous,
            "time": time,
            "version": f"m@{version}",
        },
    }
    return envelope(0, (signer,), payload=json.dumps(statement).encode())


def _get(service: Service, path: str) -> Any:
    status, _, body = service.request("GET", path)
    assert status == 200, body
    return json.loads(body)


def test_an_unauthorised_deploy_is_listed_as_rejected(tmp_path: Path) -> None:
    ws = server_workspace(tmp_path / "server")
    LocalBackend.grant(ws, ALICE.address, "deployer", "org-a")  # BOB may not deploy
    args = ["--allow", ALICE.address, "--allow", BOB.address, "--checkpoint-interval-ms", "20"]
    with Service(tmp_path / "server", *args) as service:
        status, first = post(service, _deploy(1, None, ALICE, "2026-01-01T00:00:00Z"))
        assert status == 201
        link = {"log_index": first["index"], "leaf_hash": first["leaf_hash"]}
        _, forged = post(service, _deploy(2, link, BOB, "2026-01-02T00:00:00Z"))
        _, third = post(service, _deploy(3, link, ALICE, "2026-01-03T00:00:00Z"))
        wait_for_checkpoint(service, 3)
        doc = _get(service, "/v1/registry/environments/prod")
        assert [e["log_index"] for e in doc["events"]] == [first["index"], third["index"]]
        assert [(r["log_index"], r["verdict"]) for r in doc["rejected"]] == [
            (forged["index"], "unauthorised-deploy-event")
        ]
        at = _get(service, "/v1/registry/environments/prod/at?time=2099-01-01T00:00:00Z")
        assert at["event"]["ref"] == "m@3"  # never m@2
        ms = _get(service, f"/v1/registry/environments/prod/at?time={4102444800000}")  # 2100
        assert ms["event"]["log_index"] == third["index"]
        for bad in (str(10**15), "1969-12-31T23:59:59Z", "9999-99-99"):
            status, _, body = service.request(
                "GET", f"/v1/registry/environments/prod/at?time={bad}"
            )
            assert status == 400, body
