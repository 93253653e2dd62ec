"""The explorer: a read-only web page over the log, served by ``ailedger serve``.

::

    GET /                         the page (index.html; no-cache)
    GET /explorer/config.json     what the operator trusts: the log's verifier key, the witnesses'
                                  keys and how many must cosign, the P-256 and Ed25519 public
                                  keys of DSSE signers (no-cache)
    GET /explorer/<file>          the bundled script and stylesheet (content-hashed names:
                                  immutable)

The page verifies in the reader's browser what it shows (RFC 9162 inclusion, the checkpoint's
signature and cosignatures, the envelope's signatures); ``config.json`` is only the default
it trusts when the reader has not pinned a key. The static files are built from ``explorer/``
by ``scripts/build_explorer.mjs`` into ``explorer_static/`` (package data; committed, and
rebuilt and diffed by the tests). None of these routes is in the OpenAPI schema.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

from ailedger.errors import NotFound
from ailedger.identity.keys import PublicKey
from ailedger.log import AnyNoteKey, vkey
from ailedger.service.problems import Problem

__all__ = ["STATIC_DIR", "explorer_router", "load_static"]

#: Where the built explorer lives inside the package.
STATIC_DIR = Path(__file__).with_name("explorer_static")

_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}
#: The page loads nothing from elsewhere and runs no inline script.
_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Cache-Control": "no-cache",
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
_ASSET_HEADERS = {
    "Cache-Control": "public, max-age=31536000, immutable",
    "X-Content-Type-Options": "nosniff",
}


def load_static(directory: Path = STATIC_DIR) -> dict[str, bytes]:
    """The explorer's files by name (index.html and the assets it names); raises
    :class:`NotFound` when the build is missing (a broken install: fail at start)."""
    files = {
        p.name: p.read_bytes()
        for p in sorted(directory.glob("*"))
        if p.is_file() and p.suffix in _TYPES
    }
    if "index.html" not in files:
        raise NotFound(
            f"the explorer's static files are missing from {directory}",
            hint="rebuild them with `node scripts/build_explorer.mjs` (or reinstall ailedger)",
        )
    return files


def explorer_router(
    log_key: AnyNoteKey,
    witnesses: Sequence[AnyNoteKey] = (),
    witness_threshold: int = 0,
    files: Mapping[str, bytes] | None = None,
    dsse_keys: Sequence[PublicKey] = (),
) -> APIRouter:
    """The explorer's routes for a log verified by ``log_key`` whose checkpoints need
    ``witness_threshold`` cosignatures of ``witnesses`` (what the page trusts by default).
    ``dsse_keys`` are the envelope signers' public keys the page cannot recover from a
    signature (P-256, Ed25519; their key ID is SHA-256 of their PEM, which the page checks);
    secp256k1 signers need none (the address is recovered)."""
    static = dict(load_static() if files is None else files)
    page = static.pop("index.html")
    config = {
        "origin": log_key.name,
        "log_key": vkey(log_key),
        "witnesses": [vkey(w) for w in witnesses],
        "witness_threshold": witness_threshold,
        "dsse_keys": [
            {"keyid": k.keyid, "type": k.keytype, "pem": k.to_pem()}
            for k in dict.fromkeys(dsse_keys)
            if k.keytype in ("p256", "ed25519")
        ],
    }
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    async def index() -> Response:
        return Response(page, media_type=_TYPES[".html"], headers=_PAGE_HEADERS)

    @router.get("/explorer/config.json")
    async def explorer_config() -> JSONResponse:
        return JSONResponse(config, headers={"Cache-Control": "no-cache"})

    @router.get("/explorer/{name}")
    async def asset(name: str) -> Response:
        data = static.get(name)
        if data is None:
            raise Problem(404, "not-found", "Not found", f"no explorer file {name}")
        media = _TYPES[Path(name).suffix]
        return Response(data, media_type=media, headers=_ASSET_HEADERS)

    return router
