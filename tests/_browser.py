"""Browser test helpers: a tampering proxy in front of ``ailedger serve``, badge waits and
screenshots (docs/img/, rewritten with ``AILEDGER_REGENERATE=1``)."""

from __future__ import annotations

import http.client
import os
import shutil
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

from _anvil import REPO

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOTS = REPO / "docs" / "img"
REGENERATE = os.environ.get("AILEDGER_REGENERATE") == "1"
#: A guard against a hung page, never a performance bound.
WAIT_MS = 30_000

Tamper = Callable[[str, bytes], bytes]


class Proxy:
    """Forwards GETs to ``target``; ``tamper(path, body)`` may replace a response body (a
    replaced one is served with status 200)."""

    def __init__(self, target: str) -> None:
        self.target = urlsplit(target)
        self.tamper: Tamper = lambda path, body: body
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                conn = http.client.HTTPConnection(
                    proxy.target.hostname or "", proxy.target.port, timeout=60
                )
                try:
                    conn.request("GET", self.path)
                    r = conn.getresponse()
                    original = r.read()
                    body = proxy.tamper(self.path, original)
                    self.send_response(r.status if body is original else 200)
                    for k, v in r.getheaders():
                        if k.lower() not in ("content-length", "connection", "date", "server"):
                            self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    conn.close()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


#: The badge at ``selector`` once it is no longer pending, on the page whose ``main h1`` is
#: ``heading`` (any page when null): its state and text, read in one evaluation.
_SETTLED = """([selector, heading]) => {
  const h1 = document.querySelector("main h1");
  if (heading !== null && (h1 === null || h1.textContent !== heading)) return null;
  const el = document.querySelector(selector);
  if (el === null || el.getAttribute("data-state") === "pending") return null;
  return { state: el.getAttribute("data-state"), text: el.innerText };
}"""


def settled(page: Any, selector: str, *, expect: str, heading: str | None = None) -> str:
    """Wait until the badge at ``selector`` settles; check its state; return its text.

    State and text come from one evaluation in the page, so a page that re-renders meanwhile
    cannot mix two badges. After an in-page navigation (a link, a search) pass the new page's
    ``heading``: until the router has run, the badge the previous page left is still there,
    settled."""
    found = page.wait_for_function(_SETTLED, arg=[selector, heading]).json_value()
    text = str(found["text"])
    assert found["state"] == expect, f"the badge is {found['state']}, not {expect}: {text}"
    return text


def shot(page: Any, name: str, *, full: bool = True) -> None:
    """A PNG of the page, written to docs/img/NAME with AILEDGER_REGENERATE=1."""
    png = page.screenshot(full_page=full)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    if REGENERATE:
        (SCREENSHOTS / name).write_bytes(png)
    assert (SCREENSHOTS / name).is_file(), f"docs/img/{name} is missing: AILEDGER_REGENERATE=1"
