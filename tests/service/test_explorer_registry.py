"""The explorer over the demo's workspace: ``ailedger demo --dir D && ailedger serve D``.

One demo run (a scikit-learn model registered, evaluated, approved, deployed twice, rolled
back and anchored on the embedded chain) is served read-only by ``serve D`` (the demo marks
its workspace ``[serve] read_only``), shared by the module. The JSON endpoints are checked
against what the demo did; then, in Chromium, the environment page answers "which model
served at T" with both entries and the link between them verified, the model page draws its
metrics only after its entries verified, and the log page checks the anchors; a proxy that
alters one response turns each badge red. Screenshots go to docs/img/ with
``AILEDGER_REGENERATE=1``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest

from _browser import WAIT_MS, Proxy, settled, shot
from _cli import run_process
from _log_util import envelope
from _service import Service, post

pytest.importorskip("sklearn", reason="the demo needs scikit-learn: pip install -e '.[ml]'")


class _ServeDir(Service):
    by_argument = True  # ailedger serve D


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    out = tmp_path_factory.mktemp("demo") / "D"
    done = run_process("demo", "--dir", out)
    assert done.returncode == 0, done.stderr
    with _ServeDir(out) as service:
        yield service


def _get(service: Service, path: str, status: int = 200) -> Any:
    got, _, body = service.request("GET", path)
    assert got == status, body
    return json.loads(body)


def _events(service: Service) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = _get(service, "/v1/registry/environments/prod")["events"]
    return events


def _between(a: dict[str, Any], b: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp((a["time_ms"] + b["time_ms"]) / 2000, UTC)


# --- the JSON the pages read ---------------------------------------------------------------


def test_serve_d_is_read_only_with_the_whole_demo_log(demo_site: Service) -> None:
    assert demo_site.ready["chain"]["rpc"] is None  # no /rpc: it would take transactions
    assert post(demo_site, envelope(0))[0] == 403
    assert _get(demo_site, "/healthz")["size"] == demo_site.ready["size"]


def test_models_datasets_and_lookup(demo_site: Service) -> None:
    models = _get(demo_site, "/v1/registry/models")["models"]
    assert [(m["name"], [v["version"] for v in m["versions"]]) for m in models] == [
        ("cancer-classifier", ["1", "2"])
    ]
    doc = _get(demo_site, "/v1/registry/models/cancer-classifier")
    v1, v2 = doc["versions"]
    assert [e["name"] for e in v1["evaluations"]] == ["accuracy", "bias-audit"]
    assert v1["evaluations"][0]["metrics"]["accuracy"] > 0.9
    assert sorted(a["role"] for a in v1["approvals"]) == ["auditor", "qa"]
    assert [d["action"] for d in v1["deployments"]] == ["deploy", "rollback"]
    assert [d["action"] for d in v2["deployments"]] == ["deploy"]
    ds = _get(demo_site, "/v1/registry/datasets/breast-cancer-train")["versions"]
    assert [m["ref"] for m in ds[0]["models"]] == ["cancer-classifier@1", "cancer-classifier@2"]
    found = _get(demo_site, "/v1/registry/lookup?ref=cancer-classifier@2")["versions"]
    assert [(f["kind"], f["digest"]) for f in found] == [("model", v2["digest"])]
    _get(demo_site, "/v1/registry/lookup?ref=cancer-classifier@9", 404)
    _get(demo_site, "/v1/registry/models/nothing-here", 404)


def test_the_environment_and_which_model_served_at_t(demo_site: Service) -> None:
    doc = _get(demo_site, "/v1/registry/environments/prod")
    events = doc["events"]
    assert [(e["action"], e["ref"]) for e in events] == [
        ("deploy", "cancer-classifier@1"),
        ("deploy", "cancer-classifier@2"),
        ("rollback", "cancer-classifier@1"),
    ]
    assert doc["rejected"] == []
    at = _between(events[1], events[2]).isoformat()
    answer = _get(demo_site, f"/v1/registry/environments/prod/at?time={quote(at)}")
    assert answer["event"]["log_index"] == events[1]["log_index"]
    assert answer["next"]["log_index"] == events[2]["log_index"]
    before = _get(demo_site, "/v1/registry/environments/prod/at?time=2000-01-01T00:00:00Z")
    assert before["event"] is None
    assert before["next"]["log_index"] == events[0]["log_index"]
    _get(demo_site, "/v1/registry/environments/prod/at?time=yesterday", 400)
    _get(demo_site, "/v1/registry/environments/nowhere/at?time=0", 404)


def test_the_anchor_is_read_back_from_the_chain(demo_site: Service) -> None:
    anchors = _get(demo_site, "/v1/anchors")["anchors"]
    assert len(anchors) == 1
    assert anchors[0]["on_chain"] is True
    assert anchors[0]["size"] <= demo_site.ready["size"]
    assert anchors[0]["transaction"].startswith("0x")


# --- in the browser ------------------------------------------------------------------------

pytest.importorskip(
    "playwright.sync_api", reason="the playwright wheel is missing: pip install -e '.[test]'"
)


@pytest.fixture(scope="module")
def proxy(demo_site: Service) -> Iterator[Proxy]:
    p = Proxy(demo_site.url)
    try:
        yield p
    finally:
        p.close()


def _pinned(service: Service) -> str:
    return f"?key={quote(service.ready['log_key'], safe='')}"


def _ask(page: Any, when: datetime) -> str:
    page.fill("#at", when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}")
    page.press("#at", "Enter")
    return settled(page, "#at-badge", expect="ok")


def test_environment_page_answers_which_model_served_at_t(page: Any, demo_site: Service) -> None:
    events = _events(demo_site)
    page.goto(f"{demo_site.url}/{_pinned(demo_site)}#/env/prod")
    text = settled(page, "#badge", expect="ok")
    assert "environment history: 3 events, each naming the one before it" in text
    # serve D trusts no witness (threshold 0): the badge must not claim a witness check
    assert "witness cosignatures" not in text, text
    assert "no witness trusted" in text
    assert page.locator("svg.timeline").count() == 1
    text = _ask(page, _between(events[1], events[2]))
    assert "cancer-classifier@2 served prod" in text
    assert "witness cosignatures" not in text, text
    assert f"names entry {events[1]['log_index']} and its leaf hash" in text
    shot(page, "explorer-environment.png")
    text = _ask(page, datetime(2000, 1, 1, tzinfo=UTC))
    assert "nothing served prod" in text


def _swap_answer(demo_site: Service) -> Any:
    """The answer names v1's first deploy as the event before T, with the real next event:
    each entry verifies, but the next one does not name it."""
    events = _events(demo_site)

    def tamper(path: str, body: bytes) -> bytes:
        if not path.startswith("/v1/registry/environments/prod/at"):
            return body
        doc = json.loads(body)
        doc["event"] = events[0]
        return json.dumps(doc).encode()

    return tamper


def test_a_tampered_answer_turns_the_badge_red(page: Any, demo_site: Service, proxy: Proxy) -> None:
    events = _events(demo_site)
    proxy.tamper = _swap_answer(demo_site)
    try:
        page.goto(f"{proxy.url}/{_pinned(demo_site)}#/env/prod")
        settled(page, "#badge", expect="ok")
        page.fill("#at", _between(events[1], events[2]).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3])
        page.press("#at", "Enter")
        text = settled(page, "#at-badge", expect="failed")
    finally:
        proxy.tamper = lambda path, body: body
    assert "Verification failed: the next event" in text, text
    assert f"does not name entry {events[0]['log_index']}" in text


def test_a_tampered_entry_turns_the_environment_red(
    page: Any, demo_site: Service, proxy: Proxy
) -> None:
    last = _events(demo_site)[-1]["log_index"]

    def tamper(path: str, body: bytes) -> bytes:
        if path != f"/v1/entries/{last}":
            return body
        doc = json.loads(body)
        doc["inclusion_proof"][0] = "00" * 32
        return json.dumps(doc).encode()

    proxy.tamper = tamper
    try:
        page.goto(f"{proxy.url}/{_pinned(demo_site)}#/env/prod")
        text = settled(page, "#badge", expect="failed")
    finally:
        proxy.tamper = lambda path, body: body
    assert f"entry {last}: inclusion proof" in text, text


def test_model_page_draws_verified_metrics(page: Any, demo_site: Service) -> None:
    page.goto(f"{demo_site.url}/{_pinned(demo_site)}#/model/cancer-classifier")
    text = settled(page, "#badge", expect="ok")
    assert "statements name the version and digest the server shows" in text
    assert page.locator(".charts svg").count() >= 2  # accuracy, the bias audit's metrics
    assert "accuracy_gap" in page.inner_text(".charts")
    shot(page, "explorer-model.png")


def test_a_tampered_metric_statement_leaves_the_chart_undrawn(
    page: Any, demo_site: Service, proxy: Proxy
) -> None:
    v1 = _get(demo_site, "/v1/registry/models/cancer-classifier")["versions"][0]
    target = v1["evaluations"][0]["log_index"]

    def tamper(path: str, body: bytes) -> bytes:
        if path != f"/v1/entries/{target}":
            return body
        doc = json.loads(body)
        payload = doc["envelope"]["payload"]
        doc["envelope"]["payload"] = payload[:-8] + (
            "A" * 8 if payload[-8:] != "A" * 8 else "B" * 8
        )
        return json.dumps(doc).encode()

    proxy.tamper = tamper
    try:
        page.goto(f"{proxy.url}/{_pinned(demo_site)}#/model/cancer-classifier")
        text = settled(page, "#badge", expect="failed")
    finally:
        proxy.tamper = lambda path, body: body
    assert f"entry {target}" in text, text
    assert page.locator(".charts svg").count() == 0
    assert "did not verify" in page.inner_text(".charts")


def test_the_log_page_checks_the_anchors(page: Any, demo_site: Service, proxy: Proxy) -> None:
    page.goto(f"{demo_site.url}/{_pinned(demo_site)}#/")
    text = settled(page, "#anchors-badge", expect="ok")
    assert "anchor #0" in text
    assert "consistent with the verified checkpoint" in page.inner_text("main")

    def tamper(path: str, body: bytes) -> bytes:
        if path != "/v1/anchors":
            return body
        doc = json.loads(body)
        root = doc["anchors"][0]["root"]
        doc["anchors"][0]["root"] = ("0" if root[0] != "0" else "1") + root[1:]
        return json.dumps(doc).encode()

    proxy.tamper = tamper
    try:
        page.goto(f"{proxy.url}/{_pinned(demo_site)}#/")
        text = settled(page, "#anchors-badge", expect="failed")
    finally:
        proxy.tamper = lambda path, body: body
    assert "anchor #0" in text


def test_search_by_name_at_version(page: Any, demo_site: Service) -> None:
    page.goto(f"{demo_site.url}/#/search/{quote('cancer-classifier@2')}")
    page.wait_for_selector("#results table")
    page.click("#results a:text('cancer-classifier@2')")
    settled(page, "#badge", expect="ok")
    assert page.url.endswith("#/model/cancer-classifier")


def test_dataset_page_checks_the_models_trained_on_it(page: Any, demo_site: Service) -> None:
    page.goto(f"{demo_site.url}/{_pinned(demo_site)}#/dataset/breast-cancer-train")
    text = settled(page, "#badge", expect="ok")
    assert "each model's signed training metadata names the dataset's Merkle root" in text


@pytest.mark.parametrize(
    "route", ["#/env/prod", "#/model/cancer-classifier", "#/tx/{tx}", "#/search/audit-co"]
)
def test_readable_at_phone_width(browser: Any, demo_site: Service, route: str) -> None:
    tx = _get(demo_site, "/v1/anchors")["anchors"][0]["transaction"].lower()
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        pg = context.new_page()
        pg.set_default_timeout(WAIT_MS)
        pg.goto(f"{demo_site.url}/{_pinned(demo_site)}{route.format(tx=tx)}")
        if route.startswith("#/search/"):
            pg.wait_for_selector("#results table")
        else:
            settled(pg, "#badge", expect="ok")
        width = pg.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{route} scrolls sideways at phone width ({width} px)"
    finally:
        context.close()


# --- transactions and organisations --------------------------------------------------------


def test_a_transaction_and_an_organisation_as_json(demo_site: Service) -> None:
    anchor = _get(demo_site, "/v1/anchors")["anchors"][0]
    doc = _get(demo_site, f"/v1/transactions/{anchor['transaction'].upper().replace('0X', '0x')}")
    assert doc["anchors"] == [anchor]
    assert doc["receipt"]["contract"] == "LogAnchors"
    assert doc["receipt"]["block"] == anchor["block"]
    assert doc["oracle_reports"] == doc["payouts"] == []
    _get(demo_site, "/v1/transactions/0x" + "0" * 64, 404)
    _get(demo_site, "/v1/transactions/0x1234", 400)
    org = _get(demo_site, "/v1/organisations/acme-ml")
    roles = {s["address"]: s["roles"] for s in org["signers"]}
    assert sorted(r for rs in roles.values() for r in rs) == ["admin", "deployer", "qa", "trainer"]
    assert all("key metadata" in s["sources"] for s in org["signers"])
    auditors = _get(demo_site, "/v1/organisations/audit-co")["signers"]
    assert [s["roles"] for s in auditors if "auditor" in s["roles"]] == [["admin", "auditor"]]
    _get(demo_site, "/v1/organisations/nobody-at-all", 404)


def test_a_transaction_hash_finds_the_anchor_and_the_page_checks_it(
    page: Any, demo_site: Service, proxy: Proxy
) -> None:
    anchor = _get(demo_site, "/v1/anchors")["anchors"][0]
    tx = anchor["transaction"]
    page.goto(f"{demo_site.url}/{_pinned(demo_site)}#/")
    settled(page, "#badge", expect="ok")
    page.fill("#q", tx)
    page.press("#q", "Enter")
    page.wait_for_url(f"**#/tx/{tx}")
    text = settled(page, "#badge", expect="ok", heading="Transaction")
    assert f"✔ anchor #{anchor['index']}: the anchored checkpoint (size {anchor['size']}" in text
    assert "LogAnchors" in page.inner_text("main")

    def tamper(path: str, body: bytes) -> bytes:
        if not path.startswith("/v1/transactions/"):
            return body
        doc = json.loads(body)
        root = doc["anchors"][0]["root"]
        doc["anchors"][0]["root"] = ("0" if root[0] != "0" else "1") + root[1:]
        return json.dumps(doc).encode()

    proxy.tamper = tamper
    try:
        page.goto(f"{proxy.url}/{_pinned(demo_site)}#/tx/{tx}")
        text = settled(page, "#badge", expect="failed")
    finally:
        proxy.tamper = lambda path, body: body
    assert f"✘ anchor #{anchor['index']}" in text, text


def test_an_entry_page_links_its_anchor_transaction(page: Any, demo_site: Service) -> None:
    anchor = _get(demo_site, "/v1/anchors")["anchors"][0]
    page.goto(f"{demo_site.url}/{_pinned(demo_site)}#/entry/0")
    text = settled(page, "#badge", expect="ok")
    assert "\u2013 no witness trusted: the checkpoint rests on the log key alone" in text, text
    assert "witness cosignatures" not in text
    link = page.locator("section[aria-label='On chain'] a[href^='#/tx/']")
    assert link.get_attribute("href") == f"#/tx/{anchor['transaction'].lower()}"
    link.focus()
    page.keyboard.press("Enter")
    # the transaction page's badge, not the entry page's (still there until the router runs)
    text = settled(page, "#badge", expect="ok", heading="Transaction")
    assert f"anchor #{anchor['index']}: the anchored checkpoint" in text, text
    # the log page's anchors link their transactions too
    page.goto(f"{demo_site.url}/{_pinned(demo_site)}#/")
    settled(page, "#anchors-badge", expect="ok", heading="Log overview")
    assert page.locator(f"main a[href='#/tx/{anchor['transaction'].lower()}']").count() == 1


def test_the_page_being_left_goes_at_once(page: Any, demo_site: Service) -> None:
    """While the next page loads (its index status held back by the proxy until the test lets
    it go), nothing of the page being left, least of all its green badge, stays under the new
    address: the reader never sees another page's verdict."""
    held, release = threading.Event(), threading.Event()
    p = Proxy(demo_site.url)

    def hold(path: str, body: bytes) -> bytes:
        if path.startswith("/v1/registry/status"):
            held.set()
            release.wait(WAIT_MS / 1000)
        return body

    try:
        page.goto(f"{p.url}/{_pinned(demo_site)}#/entry/0")
        settled(page, "#badge", expect="ok", heading="Entry 0")
        p.tamper = hold
        page.locator("section[aria-label='On chain'] a[href^='#/tx/']").click()
        assert held.wait(WAIT_MS / 1000)
        assert page.locator("#badge").count() == 0
        assert page.inner_text("main") == "Loading\u2026"
        assert page.get_attribute("main", "aria-busy") == "true"
        release.set()
        settled(page, "#badge", expect="ok", heading="Transaction")
        assert page.get_attribute("main", "aria-busy") is None
    finally:
        release.set()
        p.close()


def test_an_organisation_lists_its_signers_and_their_entries(page: Any, demo_site: Service) -> None:
    org = _get(demo_site, "/v1/organisations/audit-co")["signers"]
    auditor = next(s for s in org if "auditor" in s["roles"])
    entries = {
        e["index"]
        for s in org
        for e in _get(demo_site, f"/v1/entries?signer={s['address']}")["entries"]
    }
    assert entries
    page.goto(f"{demo_site.url}/{_pinned(demo_site)}#/search/audit-co")
    page.wait_for_selector("#results table")
    text = page.inner_text("#results")
    assert f"Organisation audit-co: {len(org)} signers known to the operator" in text
    assert auditor["address"] in text
    assert "admin, auditor" in text
    links = page.locator("#results a[href^='#/entry/']")
    assert links.count() == len(entries)


# --- the index is built at start, and the pages wait for it --------------------------------


def test_the_status_says_when_the_index_is_ready(demo_site: Service) -> None:
    _get(demo_site, "/v1/registry/models")  # answered once the index is built
    assert _get(demo_site, "/v1/registry/status") == {"ready": True, "error": None}


def test_a_page_says_indexing_until_the_index_is_ready(
    page: Any, demo_site: Service, proxy: Proxy
) -> None:
    """The proxy answers "not ready" three times: the page shows "indexing", then opens."""
    left = [3]

    def tamper(path: str, body: bytes) -> bytes:
        if path != "/v1/registry/status" or not left[0]:
            return body
        left[0] -= 1
        return json.dumps({"ready": False, "error": None}).encode()

    proxy.tamper = tamper
    try:
        page.goto(f"{proxy.url}/{_pinned(demo_site)}#/env/prod")
        # the element found, read as it is: the page may open before a second look at main
        assert "indexing the log" in page.wait_for_selector("#indexing").inner_text()
        settled(page, "#badge", expect="ok")
    finally:
        proxy.tamper = lambda path, body: body
    assert left == [0]
