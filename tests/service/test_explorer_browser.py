"""The explorer in a real browser: Debian's Chromium driven by Playwright.

One ``ailedger serve`` (secp256k1 log key) with two witnesses (Ed25519 and secp256k1
cosignature/v1, both required) over a few entries, shared by the module. The pages are opened
directly and through a proxy that alters one response (an inclusion proof, an envelope, the
checkpoint's signature), and the badge must turn green only when every check in the browser
passed, red otherwise. Screenshots go to docs/img/ (the README links them) when
``AILEDGER_REGENERATE=1``.

Skipped, with one line saying why, where Chromium or the ``playwright`` wheel is missing
(``scripts/test.sh`` installs both). Playwright's own browsers are never downloaded.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from _browser import WAIT_MS, Proxy, Tamper, settled, shot
from _cli import PASSWORD
from _log_util import ALICE, BOB, LOG_SIGNER, envelope
from _service import LOG_KEY, Service, post, server_workspace, wait_for_checkpoint
from _witness import WitnessProcess, witness_workspace
from _workflow_util import fast_keystore
from ailedger.identity.keys import Ed25519Signer, P256Signer
from ailedger.log import (
    Checkpoint,
    Secp256k1NoteKey,
    SignedNote,
    TransparencyLog,
    known_keys_check,
    open_workspace_log,
    vkey,
)

pytest.importorskip(
    "playwright.sync_api", reason="the playwright wheel is missing: pip install -e '.[test]'"
)

FILE_BYTES = b"the bytes of a model card the auditor has on disk\n"
FILE_DIGEST = hashlib.sha256(FILE_BYTES).hexdigest()
PINNED = f"?key={quote(vkey(LOG_KEY), safe='')}"


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    context.set_default_timeout(WAIT_MS)
    pg = context.new_page()
    errors: list[str] = []
    urls: list[str] = []
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.on("request", lambda request: urls.append(request.url))
    try:
        yield pg
    finally:
        context.close()
    assert not errors, errors  # no uncaught exception in the page
    # nothing from elsewhere (no CDN, no font, no analytics): only the service (or the proxy)
    assert urls
    assert {urlsplit(u).hostname for u in urls} == {"127.0.0.1"}, urls


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The service with two witnesses and 4 entries (entry 2 is about FILE_DIGEST, entry 3
    is signed by ALICE and BOB)."""
    root = tmp_path_factory.mktemp("explorer")
    server_workspace(root / "server")
    witness_workspace(root / "w1", "ed25519")
    witness_workspace(root / "w2", "secp256k1")
    w1 = WitnessProcess(root / "w1", [LOG_KEY]).start()
    w2 = WitnessProcess(root / "w2", [LOG_KEY]).start()
    args = ["--allow", ALICE.address, "--allow", BOB.address, "--checkpoint-interval-ms", "20"]
    args += ["--witness", w1.spec, "--witness", w2.spec, "--witness-threshold", "2"]
    service = Service(root / "server", *args)
    try:
        service.start()
        bodies = [
            envelope(0),
            envelope(1),
            envelope(2, digest=FILE_DIGEST),
            envelope(3, (ALICE, BOB), predicate="https://ailedger.dev/eval/v1"),
        ]
        for body in bodies:
            assert post(service, body)[0] == 201
        wait_for_checkpoint(service, len(bodies))
        yield {"service": service, "witnesses": [w1, w2]}
    finally:
        service.stop()
        w1.stop()
        w2.stop()


@pytest.fixture(scope="module")
def proxy(site: dict[str, Any]) -> Iterator[Proxy]:
    p = Proxy(site["service"].url)
    try:
        yield p
    finally:
        p.close()


def test_entry_page_verifies_everything_in_the_browser(page: Any, site: dict[str, Any]) -> None:
    page.goto(f"{site['service'].url}/{PINNED}#/entry/3")
    text = settled(page, "#badge", expect="ok")
    for check in (
        "leaf hash",
        "checkpoint signature",
        "inclusion proof",
        "witness cosignatures",
        "envelope signatures",
        "consistency",
    ):
        assert f"✔ {check}" in text, text
    assert "2 of 2 trusted witnesses cosigned" in text
    assert ALICE.address in text
    assert BOB.address in text
    assert "pinned in the page's URL" in page.inner_text("aside.trust")
    shot(page, "explorer-entry.png")
    body = page.inner_text("main")
    assert "https://ailedger.dev/eval/v1" in body  # the predicate type, from the payload
    assert "artifact-3" in body
    assert '"n": 3' in page.inner_text("pre.json")  # the predicate, pretty-printed
    witnesses = page.inner_text("section[aria-label='Witnesses']")
    for w in site["witnesses"]:
        assert w.ready["name"] in witnesses
    assert witnesses.count("✔ verified") == 3  # the log key and both witnesses
    assert "did not verify" not in body
    shot(page, "explorer-entry.png")


def test_overview_shows_the_verified_checkpoint_and_recent_entries(
    page: Any, site: dict[str, Any]
) -> None:
    page.goto(site["service"].url + "/")
    text = settled(page, "#badge", expect="ok")
    assert "the latest checkpoint" in text
    # not pinned: the page says it trusts the server's key, and recommends pinning
    trust = page.inner_text("aside.trust")
    assert "handed out by this server" in trust
    assert "pin" in trust
    page.wait_for_selector("section[aria-label='Recent entries'] a[href='#/entry/3']")
    assert "4 entries" in page.inner_text("main")
    shot(page, "explorer-overview.png")
    # keyboard: the first recent entry link opens its page with Enter
    page.focus("section[aria-label='Recent entries'] a[href='#/entry/3']")
    page.keyboard.press("Enter")
    page.wait_for_url("**#/entry/3")
    # the overview remembered the checkpoint: the entry page checks it against it
    assert "extends the checkpoint of size 4 this browser verified" in settled(
        page, "#badge", expect="ok", heading="Entry 3"
    )


def test_search_by_digest_with_the_keyboard(page: Any, site: dict[str, Any]) -> None:
    page.goto(f"{site['service'].url}/{PINNED}#/")
    page.focus("#q")
    page.keyboard.type(f"sha256:{FILE_DIGEST}")
    page.keyboard.press("Enter")
    page.wait_for_selector("#results a[href='#/entry/2']")
    assert page.locator("#results a[href^='#/entry/']").count() == 1
    page.click("#results a[href='#/entry/2']")
    settled(page, "#badge", expect="ok")
    # a signer search lists ALICE's entries (all four)
    page.goto(f"{site['service'].url}/{PINNED}#/search/{ALICE.address}")
    page.wait_for_selector("#results a[href='#/entry/3']")
    assert page.locator("#results a[href^='#/entry/']").count() == 4
    # a signer link on an entry page (here BOB, the second signer of entry 3)
    page.goto(f"{site['service'].url}/{PINNED}#/entry/3")
    settled(page, "#badge", expect="ok")
    page.click(f"section[aria-label='Signatures'] a:text('{BOB.address}')")
    page.wait_for_selector("#results a[href='#/entry/3']")
    assert page.locator("#results a[href^='#/entry/']").count() == 1
    # NAME@VERSION asks the registry index (tests/service/test_explorer_registry.py finds one)
    page.goto(f"{site['service'].url}/{PINNED}#/search/fraud-model@1.2")
    page.wait_for_selector("#results p.warn")
    assert "no version fraud-model@1.2 in the log" in page.inner_text("#results")


def test_the_drop_zone_and_the_file_input_are_keyboard_reachable(
    page: Any, site: dict[str, Any]
) -> None:
    """Tab goes from the search box to the drop zone, and Enter there opens the file input's
    chooser (seen as a click on the input; the chooser itself is cancelled)."""
    page.goto(f"{site['service'].url}/{PINNED}#/")
    page.wait_for_selector("#badge[data-state='ok']")  # the page has settled
    page.evaluate(
        "document.getElementById('file').addEventListener('click', (e) => {"
        " window.chooserOpened = true; e.preventDefault(); })"
    )
    page.focus("#q")
    order = []
    for _ in range(3):  # the search button, the drop zone, the file input
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.type"))
    assert order == ["submit", "drop", "file"], order
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")
    assert page.evaluate("window.chooserOpened === true")


def test_search_by_a_file_hashed_in_the_browser(
    page: Any, site: dict[str, Any], tmp_path: Path
) -> None:
    card = tmp_path / "model-card.md"
    card.write_bytes(FILE_BYTES)
    page.goto(f"{site['service'].url}/{PINNED}#/")
    page.set_input_files("#file", str(card))
    page.wait_for_url(f"**#/search/sha256%3A{FILE_DIGEST}")
    page.wait_for_selector("#results a[href='#/entry/2']")
    assert page.locator("#results a[href^='#/entry/']").count() == 1
    assert "1 statement about digest" in page.inner_text("#results")
    assert "your file model-card.md, hashed in this browser" in page.inner_text("#results")
    shot(page, "explorer-search.png")


def test_readable_at_phone_width(browser: Any, site: dict[str, Any]) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True)
    try:
        pg = context.new_page()
        pg.set_default_timeout(WAIT_MS)
        pg.goto(f"{site['service'].url}/{PINNED}#/entry/2")
        settled(pg, "#badge", expect="ok")
        width = pg.evaluate("document.documentElement.scrollWidth")
        wide = pg.evaluate(_WIDER_THAN_VIEWPORT)
        assert width <= 390, f"the page scrolls sideways at phone width ({width} px): {wide}"
        shot(pg, "explorer-entry-phone.png", full=False)
    finally:
        context.close()


_WIDER_THAN_VIEWPORT = """() => [...document.querySelectorAll("body *")]
    .filter((e) => e.scrollWidth > e.clientWidth + 1 && getComputedStyle(e).overflowX === "visible")
    .slice(0, 5).map((e) => `${e.tagName}.${e.className}: ${(e.textContent || "").slice(0, 30)}`)"""


def _flip_hex(text: str) -> str:
    return ("1" if text[0] != "1" else "2") + text[1:]


def _entry_tamper(path_part: str, alter: Callable[[dict[str, Any]], None]) -> Tamper:
    def tamper(path: str, body: bytes) -> bytes:
        if not path.startswith(path_part):
            return body
        doc = json.loads(body)
        alter(doc)
        return json.dumps(doc).encode()

    return tamper


def _proof(doc: dict[str, Any]) -> None:
    doc["inclusion_proof"][0] = _flip_hex(doc["inclusion_proof"][0])


def _payload(doc: dict[str, Any]) -> None:
    # the statement names another artifact: the envelope no longer hashes to the proven leaf
    statement = json.loads(base64.b64decode(doc["envelope"]["payload"]))
    statement["subject"][0]["name"] = "a-forged-artifact"
    doc["envelope"]["payload"] = base64.b64encode(json.dumps(statement).encode()).decode()


def _checkpoint_signature(doc: dict[str, Any]) -> None:
    text, sigs = doc["checkpoint"].split("\n\n")
    lines = sigs.split("\n")
    name, b64 = lines[0].rsplit(" ", 1)
    raw = bytearray(base64.b64decode(b64))
    raw[10] ^= 1
    lines[0] = f"{name} {base64.b64encode(bytes(raw)).decode()}"
    doc["checkpoint"] = text + "\n\n" + "\n".join(lines)


@pytest.mark.parametrize(
    ("alter", "failing"),
    [
        (_proof, "inclusion proof"),
        (_payload, "leaf hash"),
        (_checkpoint_signature, "checkpoint signature"),
    ],
    ids=["tampered-proof", "tampered-entry", "wrong-checkpoint-signature"],
)
def test_a_tampered_response_turns_the_badge_red(
    page: Any,
    proxy: Proxy,
    alter: Callable[[dict[str, Any]], None],
    failing: str,
) -> None:
    proxy.tamper = _entry_tamper("/v1/entries/3", alter)
    try:
        page.goto(f"{proxy.url}/{PINNED}#/entry/3")
        text = settled(page, "#badge", expect="failed")
    finally:
        proxy.tamper = lambda path, body: body
    assert f"Verification failed: {failing}" in text, text
    assert f"✘ {failing}" in text
    assert "did not verify" in page.inner_text("main")  # the content is flagged
    if failing == "inclusion proof":
        shot(page, "explorer-entry-tampered.png")


def test_the_proxy_alone_changes_nothing(page: Any, proxy: Proxy) -> None:
    """The control of the test above: untampered through the proxy, the badge is green."""
    page.goto(f"{proxy.url}/{PINNED}#/entry/3")
    settled(page, "#badge", expect="ok")


def test_a_key_pinned_in_the_browser_that_the_log_did_not_use_fails(
    page: Any, site: dict[str, Any]
) -> None:
    from ailedger.log import Ed25519NoteKey

    other = vkey(Ed25519NoteKey.generate(LOG_KEY.name))
    page.goto(f"{site['service'].url}/#/trust")
    page.fill("#pin", other)
    page.press("#pin", "Enter")
    page.wait_for_selector("aside.trust.pinned")
    page.goto(f"{site['service'].url}/#/entry/1")
    text = settled(page, "#badge", expect="failed")
    assert "Verification failed: checkpoint signature" in text
    assert "not the key you pinned" in page.inner_text("aside.trust")


def _fork(root: Path, size: int) -> tuple[TransparencyLog, SignedNote]:
    """Another tree of ``size`` entries under the log's own key: what a log operator that
    forks or rewrites its log (or a thief of its key) serves."""
    log = TransparencyLog.open(root / f"fork-{size}.sqlite", LOG_KEY.name)
    log.append_many([envelope(100 + i) for i in range(size)])
    key = Secp256k1NoteKey.from_signer(LOG_KEY.name, LOG_SIGNER)
    return log, SignedNote.sign(Checkpoint(log.origin, size, log.root(size)).body(), [key])


@pytest.mark.parametrize(
    ("size", "why"),
    [
        (4, "two different roots for size 4: the log forked"),
        (3, "older than one this browser verified (size 4): a rollback"),
        (6, "does not extend the one of size 4 this browser saw"),
    ],
    ids=["fork", "rollback", "rewritten-history"],
)
def test_a_fork_of_the_log_that_this_browser_saw_turns_the_badge_red(
    page: Any, site: dict[str, Any], proxy: Proxy, tmp_path: Path, size: int, why: str
) -> None:
    """A checkpoint validly signed by the log key, but for a tree that does not extend the one
    the browser verified before, fails the consistency check (here with no witness required,
    so that only the browser's memory stands between the reader and the fork)."""
    witnesses = "".join(f"&witness={quote(w.vkey, safe='')}" for w in site["witnesses"])
    url = f"{proxy.url}/{PINNED}{witnesses}&k=0"
    page.goto(f"{url}#/entry/1")
    assert "remembered for the next visit" in settled(page, "#badge", expect="ok")
    fork, note = _fork(tmp_path, size)
    with fork:  # the responses are made here: the proxy's threads only serve them
        entry = fork.get(2)
        doc = entry.to_dict()
        doc["envelope"] = json.loads(entry.envelope)
        doc["checkpoint"] = note.format()
        doc["inclusion_proof"] = [h.hex() for h in fork.inclusion_proof(2, size).hashes]
        proof = [] if size < 4 else [h.hex() for h in fork.consistency_proof(4, size).hashes]
    forged = {"/v1/entries/2": doc, "/v1/proof/consistency": {"hashes": proof}}

    def tamper(path: str, body: bytes) -> bytes:
        for prefix, served in forged.items():
            if path.startswith(prefix):
                return json.dumps(served).encode()
        return body

    proxy.tamper = tamper
    try:
        page.goto(f"{url}#/entry/2")
        text = settled(page, "#badge", expect="failed")
    finally:
        proxy.tamper = lambda path, body: body
    assert "Verification failed: consistency" in text, text
    assert why in text
    for check in ("leaf hash", "checkpoint signature", "inclusion proof"):
        assert f"✔ {check}" in text  # everything else about the forged entry checks out


def test_p256_and_ed25519_signers_verify_with_the_keys_the_server_hands_out(
    page: Any, tmp_path: Path
) -> None:
    """Entries signed by the workspace's P-256 and Ed25519 keys (appended locally: the
    service admits Ethereum accounts only) verify with the public keys in config.json."""
    ws = server_workspace(tmp_path / "server")
    signer, notary = P256Signer.generate(), Ed25519Signer.generate()
    store = fast_keystore(ws)
    store.add("signer", signer, PASSWORD)
    store.add("notary", notary, PASSWORD)
    known = [signer.public_key, notary.public_key]
    with open_workspace_log(ws, check_signature=known_keys_check(known)) as log:
        log.append_many([envelope(0, (signer,)), envelope(1, (notary, ALICE))])
    with Service(tmp_path / "server", "--allow", ALICE.address) as service:
        page.goto(f"{service.url}/?key={vkey(LOG_KEY)}#/entry/0")  # pasted unescaped
        assert "pinned in the page's URL" in page.inner_text("aside.trust")
        assert f"DSSE signatures over PAE by {signer.keyid} (p256)" in settled(
            page, "#badge", expect="ok"
        )
        page.goto(f"{service.url}/{PINNED}#/entry/1")
        text = settled(page, "#badge", expect="ok")
        # a P-256 key ID is 64 hex digits, like a digest: its link searches by signer
        page.goto(f"{service.url}/{PINNED}#/entry/0")
        settled(page, "#badge", expect="ok")
        page.click(f"section[aria-label='Signatures'] a:text('{signer.keyid}')")
        page.wait_for_selector("#results a[href='#/entry/0']")
        assert page.locator("#results a[href^='#/entry/']").count() == 1
    assert f"{notary.keyid} (ed25519), {ALICE.address}" in text
