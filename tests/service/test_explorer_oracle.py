"""The explorer's oracle-feed pages over the crop-insurance demo's workspace.

The main demo (``ailedger demo``) runs no oracle feed; ``ailedger demo crop-insurance --dir D``
does (five feeds of four rounds each, four oracles, the last one lying, two policies paid by
a ParametricEscrow), and ``ailedger serve D --read-only`` serves it, reading the embedded
chain's events for the payouts. One demo run and one service are shared by the module. The
JSON endpoints are checked against what the demo did; then, in Chromium, the feed page
verifies every report and observation entry and turns red when a response is altered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from _browser import WAIT_MS, Proxy, settled, shot
from _cli import run_process
from _service import Service

pytest.importorskip("sklearn", reason="the demo needs scikit-learn: pip install -e '.[ml]'")

FEED = "drought/farm-2"  # in drought: its policy paid at epoch 2


class _ServeDir(Service):
    by_argument = True  # ailedger serve D


@pytest.fixture(scope="module")
def crop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, dict[str, Any]]]:
    out = tmp_path_factory.mktemp("crop") / "D"
    done = run_process("demo", "crop-insurance", "--dir", out, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    with _ServeDir(out, "--read-only") as service:
        yield service, report


def _get(service: Service, path: str, status: int = 200) -> Any:
    got, _, body = service.request("GET", path)
    assert got == status, body
    return json.loads(body)


def _feed_id(service: Service, name: str = FEED) -> str:
    feeds = _get(service, "/v1/oracle/feeds")["feeds"]
    return str(next(f["feed_id"] for f in feeds if f["feed"] == name))


# --- the JSON the pages read ---------------------------------------------------------------


def test_the_feeds_of_the_crop_insurance_demo(crop: tuple[Service, dict[str, Any]]) -> None:
    service, report = crop
    feeds = _get(service, "/v1/oracle/feeds")["feeds"]
    assert [f["feed"] for f in feeds] == [f"drought/{f['farm']}" for f in report["farms"]]
    assert {f["rounds"] for f in feeds} == {4}
    assert {f["contract"] for f in feeds} == {report["contracts"]["feeds"]}


def test_a_feed_has_its_rounds_observations_and_payouts(
    crop: tuple[Service, dict[str, Any]],
) -> None:
    service, report = crop
    doc = _get(service, f"/v1/oracle/feeds/{_feed_id(service)}")
    assert doc["feed"] == FEED
    assert doc["chain"]["read"] is True
    farm = next(f for f in report["farms"] if f["farm"] == "farm-2")
    assert [r["answer"] for r in doc["rounds"]] == farm["scores"]
    assert all(r["on_chain"] is True for r in doc["rounds"])
    for r in doc["rounds"]:
        assert len(r["observation_entries"]) == 4
        assert sorted(o["value"] for o in r["observation_entries"]) == r["observations"]
        assert r["report_log_index"] > max(o["log_index"] for o in r["observation_entries"])
    paid = {r["epoch"]: r["payouts"] for r in doc["rounds"] if r["payouts"]}
    why = farm["why"]
    assert list(paid) == [why["epoch"]]
    (payout,) = paid[why["epoch"]]
    assert payout["holder"] == farm["farmer"]
    assert int(payout["payout_wei"]) == farm["paid_wei"]
    assert payout["transaction"] == why["settle_transaction"]
    unpaid = _get(service, f"/v1/oracle/feeds/{_feed_id(service, 'drought/farm-1')}")
    assert all(r["payouts"] == [] for r in unpaid["rounds"])


def test_feed_ids_are_strict(crop: tuple[Service, dict[str, Any]]) -> None:
    service, _ = crop
    _get(service, "/v1/oracle/feeds/drought", 400)
    _get(service, "/v1/oracle/feeds/0x" + "g" * 64, 400)
    _get(service, "/v1/oracle/feeds/0x" + "0" * 64, 404)
    upper = _feed_id(service).upper().replace("0X", "0x")
    assert _get(service, f"/v1/oracle/feeds/{upper}")["feed"] == FEED
    _get(service, f"/v1/oracle/feeds/{_feed_id(service)}?x=1&x=2", 422)


# --- in the browser ------------------------------------------------------------------------

pytest.importorskip(
    "playwright.sync_api", reason="the playwright wheel is missing: pip install -e '.[test]'"
)


@pytest.fixture(scope="module")
def proxy(crop: tuple[Service, dict[str, Any]]) -> Iterator[Proxy]:
    p = Proxy(crop[0].url)
    try:
        yield p
    finally:
        p.close()


def _pinned(service: Service) -> str:
    return f"?key={quote(service.ready['log_key'], safe='')}"


def test_the_feed_page_verifies_every_round(
    page: Any, crop: tuple[Service, dict[str, Any]]
) -> None:
    service, report = crop
    page.goto(f"{service.url}/{_pinned(service)}#/feeds")
    page.wait_for_selector("main table")
    page.click(f"main a:text('{FEED}')")
    text = settled(page, "#badge", expect="ok")
    assert "✔ rounds: 4 reports of feed drought/farm-2" in text, text
    assert "16 observation entries are signed by the oracles" in text
    body = page.inner_text("main")
    assert "2 ETH to" in body
    assert report["lying_oracle"][:8] in body
    shot(page, "explorer-feed.png")


def _tamper_entry(index: int) -> Any:
    def tamper(path: str, body: bytes) -> bytes:
        if path != f"/v1/entries/{index}":
            return body
        doc = json.loads(body)
        payload = doc["envelope"]["payload"]
        doc["envelope"]["payload"] = payload[:-8] + (
            "A" * 8 if payload[-8:] != "A" * 8 else "B" * 8
        )
        return json.dumps(doc).encode()

    return tamper


def test_a_tampered_observation_turns_the_feed_red(
    page: Any, crop: tuple[Service, dict[str, Any]], proxy: Proxy
) -> None:
    service, _ = crop
    feed_id = _feed_id(service)
    target = _get(service, f"/v1/oracle/feeds/{feed_id}")["rounds"][1]["observation_entries"][3]
    proxy.tamper = _tamper_entry(target["log_index"])
    try:
        page.goto(f"{proxy.url}/{_pinned(service)}#/feed/{feed_id}")
        text = settled(page, "#badge", expect="failed")
    finally:
        proxy.tamper = lambda path, body: body
    assert f"entry {target['log_index']}" in text, text


def test_a_summary_that_the_entries_contradict_turns_the_feed_red(
    page: Any, crop: tuple[Service, dict[str, Any]], proxy: Proxy
) -> None:
    """Every entry verifies, but the server claims another median and another observer's
    entry for a round: the page checks what the verified statements say."""
    service, _ = crop
    feed_id = _feed_id(service)

    def tamper(path: str, body: bytes) -> bytes:
        if not path.startswith(f"/v1/oracle/feeds/{feed_id}"):
            return body
        doc = json.loads(body)
        doc["rounds"][1]["answer"] += 1
        return json.dumps(doc).encode()

    proxy.tamper = tamper
    try:
        page.goto(f"{proxy.url}/{_pinned(service)}#/feed/{feed_id}")
        text = settled(page, "#badge", expect="failed")
    finally:
        proxy.tamper = lambda path, body: body
    assert "Verification failed: rounds" in text, text
    assert "gives answer" in text

    def swap(path: str, body: bytes) -> bytes:
        if not path.startswith(f"/v1/oracle/feeds/{feed_id}"):
            return body
        doc = json.loads(body)
        first, second = doc["rounds"][0], doc["rounds"][1]
        first["observation_entries"][0] = second["observation_entries"][0]
        return json.dumps(doc).encode()

    proxy.tamper = swap
    page.goto("about:blank")  # the same URL again would be a same-document navigation
    try:
        page.goto(f"{proxy.url}/{_pinned(service)}#/feed/{feed_id}")
        text = settled(page, "#badge", expect="failed")
    finally:
        proxy.tamper = lambda path, body: body
    assert "is not one of the observations" in text, text


def test_the_feed_pages_work_with_the_keyboard(
    page: Any, crop: tuple[Service, dict[str, Any]]
) -> None:
    service, _ = crop
    page.goto(f"{service.url}/{_pinned(service)}#/")
    settled(page, "#badge", expect="ok")
    for _ in range(10):  # from the page's main (focused), back to "Oracles" in the header
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.textContent") == "Oracles":
            break
    else:
        raise AssertionError("the Oracles link is not reachable with Tab")
    page.keyboard.press("Enter")
    # the feeds page's table, not one of the log page's (there until the router runs)
    page.wait_for_selector("main:has(h1:text-is('Oracle feeds')) table")
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == FEED:
            break
    else:
        raise AssertionError(f"the link to {FEED} is not reachable with Tab")
    page.keyboard.press("Enter")
    settled(page, "#badge", expect="ok")
    assert page.url.endswith(f"#/feed/{_feed_id(service)}")


@pytest.mark.parametrize("route", ["#/feeds", "#/feed/{feed}"])
def test_the_feed_pages_are_readable_at_phone_width(
    browser: Any, crop: tuple[Service, dict[str, Any]], route: str
) -> None:
    service, _ = crop
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        pg = context.new_page()
        pg.set_default_timeout(WAIT_MS)
        pg.goto(f"{service.url}/{_pinned(service)}{route.format(feed=_feed_id(service))}")
        if "{feed}" in route:
            settled(pg, "#badge", expect="ok")
            shot(pg, "explorer-feed-phone.png")
        else:
            pg.wait_for_selector("main table")
        width = pg.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, f"{route} scrolls sideways at phone width ({width} px)"
    finally:
        context.close()


def test_the_transactions_of_a_round_and_a_payout(
    page: Any, crop: tuple[Service, dict[str, Any]]
) -> None:
    service, _ = crop
    doc = _get(service, f"/v1/oracle/feeds/{_feed_id(service)}")
    paid = next(r for r in doc["rounds"] if r["payouts"])
    transmit = _get(service, f"/v1/transactions/{paid['transaction']}")
    assert transmit["receipt"]["contract"] == "OracleFeeds"
    assert transmit["oracle_reports"] == [
        {
            "feed": FEED,
            "feed_id": _feed_id(service),
            "epoch": paid["epoch"],
            "answer": paid["answer"],
            "report_log_index": paid["report_log_index"],
        }
    ]
    settle = _get(service, f"/v1/transactions/{paid['payouts'][0]['transaction']}")
    assert settle["receipt"]["contract"] == "ParametricEscrow"
    assert [p["holder"] for p in settle["payouts"]] == [paid["payouts"][0]["holder"]]
    # in the browser: the round's transaction is checked against its signed report
    page.goto(f"{service.url}/{_pinned(service)}#/feed/{_feed_id(service)}")
    settled(page, "#badge", expect="ok")
    page.click(f"main a[href='#/tx/{paid['transaction'].lower()}']")
    text = settled(page, "#badge", expect="ok", heading="Transaction")
    assert "✔ oracle reports: 1 signed report in the log names this transaction" in text
    # a payout's transaction: nothing in the log names it, and the page says so
    page.goto(f"{service.url}/{_pinned(service)}#/tx/{paid['payouts'][0]['transaction']}")
    page.wait_for_selector("#badge[data-state='unverifiable']")
    assert "2 ETH" in page.inner_text("main")


@pytest.mark.parametrize("field", ["signers", "observation"])
def test_a_summary_with_other_signers_or_values_turns_the_feed_red(
    page: Any, crop: tuple[Service, dict[str, Any]], proxy: Proxy, field: str
) -> None:
    """The server shows another co-signer, or another value for an observation entry, than
    the verified statements give."""
    service, _ = crop
    feed_id = _feed_id(service)

    def tamper(path: str, body: bytes) -> bytes:
        if not path.startswith(f"/v1/oracle/feeds/{feed_id}"):
            return body
        doc = json.loads(body)
        r = doc["rounds"][0]
        if field == "signers":
            r["signers"] = [*r["signers"][:-1], "0x" + "ab" * 20]
        else:
            r["observation_entries"][3]["value"] = r["answer"]
        return json.dumps(doc).encode()

    proxy.tamper = tamper
    try:
        page.goto(f"{proxy.url}/{_pinned(service)}#/feed/{feed_id}")
        text = settled(page, "#badge", expect="failed")
    finally:
        proxy.tamper = lambda path, body: body
    assert "Verification failed: rounds" in text, text
    assert ("other signers" if field == "signers" else "as the server shows") in text, text
