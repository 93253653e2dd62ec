"""The explorer's registry JSON follows the index's judgement: a deploy statement whose signer
may not deploy is listed as rejected, never as an event, and "which served at T" skips it.
"Which served at T" goes by the times the statements are signed as of, as the browser checks:
at the edges (T exactly at a signed time; T after a signed time but before the log took the
statement) the server's answer verifies in Chromium."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from _browser import WAIT_MS, settled
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


def _iso(when: datetime) -> str:
    return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def signed_earlier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Two deploys signed as of 10 and 8 days ago, appended now."""
    root = tmp_path_factory.mktemp("signed-earlier")
    ws = server_workspace(root / "server")
    LocalBackend.grant(ws, ALICE.address, "deployer", "org-a")
    now = datetime.now(UTC).replace(microsecond=0)
    t1 = now - timedelta(days=10) + timedelta(milliseconds=250)
    t2 = t1 + timedelta(days=2)
    args = ["--allow", ALICE.address, "--checkpoint-interval-ms", "20"]
    with Service(root / "server", *args) as service:
        _, first = post(service, _deploy(1, None, ALICE, _iso(t1)))
        link = {"log_index": first["index"], "leaf_hash": first["leaf_hash"]}
        _, second = post(service, _deploy(2, link, ALICE, _iso(t2)))
        wait_for_checkpoint(service, 2)
        yield {"service": service, "t1": t1, "t2": t2, "indices": [first["index"], second["index"]]}


def _edges(site: dict[str, Any]) -> list[tuple[datetime, str | None, str | None]]:
    """(T, the version served, the next one) at the edges of the signed times."""
    t1, t2 = site["t1"], site["t2"]
    ms = timedelta(milliseconds=1)
    return [
        (t1 - ms, None, "m@1"),
        (t1, "m@1", "m@2"),  # exactly at m@1's signed time
        (t2 - ms, "m@1", "m@2"),
        (t2, "m@2", None),  # exactly at m@2's signed time
        (t2 + timedelta(days=5), "m@2", None),  # signed before T, appended after T
    ]


def test_served_at_goes_by_the_signed_times(signed_earlier: dict[str, Any]) -> None:
    service = signed_earlier["service"]
    for when, served, following in _edges(signed_earlier):
        at = _get(service, f"/v1/registry/environments/prod/at?time={quote(_iso(when))}")
        got = (at["event"] and at["event"]["ref"], at["next"] and at["next"]["ref"])
        assert got == (served, following), (when, at)
    at = _get(
        service, f"/v1/registry/environments/prod/at?time={quote(_iso(signed_earlier['t1']))}"
    )
    assert at["event"]["signed_time"] == _iso(signed_earlier["t1"]).replace("Z", "+00:00")


pytest.importorskip(
    "playwright.sync_api", reason="the playwright wheel is missing: pip install -e '.[test]'"
)


def test_served_at_the_edges_verifies_in_the_browser(
    browser: Any, signed_earlier: dict[str, Any]
) -> None:
    service = signed_earlier["service"]
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        page.goto(f"{service.url}/?key={quote(service.ready['log_key'], safe='')}#/env/prod")
        settled(page, "#badge", expect="ok")
        for when, served, _ in _edges(signed_earlier):
            page.fill(
                "#at", when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}"
            )
            page.press("#at", "Enter")
            text = settled(page, "#at-badge", expect="ok")
            expected = f"{served} served prod" if served else "nothing served prod"
            assert f"{expected} at {_iso(when)}" in text, (when, text)
    finally:
        context.close()
