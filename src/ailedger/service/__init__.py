"""The log as an HTTP service (``ailedger serve``): submissions, C2SP tlog-tiles, proofs.

:mod:`.app` builds the ASGI app (FastAPI) from its dependencies and documents the endpoints
(:mod:`._openapi`: the response schemas of its OpenAPI document);
:mod:`._sequencer` is the group-commit writer; :mod:`.tiles` holds the tlog-tiles paths and
entry bundles; :mod:`.problems` maps errors to RFC 9457 problem responses; :mod:`.ratelimit`
holds the per-signer and per-IP token buckets; :mod:`.membership` admits submitters by their
organisation on-chain (instead of an allow-list); :mod:`.client` talks to a service (standard
library only), :mod:`.tiles_client` verifies a log's checkpoints, proofs and entries from its
tiles alone, and :mod:`.remote` makes it a log source for the CLI (:class:`RemoteLog`, a
verified mirror of the remote log, beside :class:`LocalLog`, behind :class:`LogSource`).
:mod:`.witness` is a C2SP tlog-witness (``ailedger witness serve``; its ASGI app in
:mod:`._witness_server`), and :mod:`._cosigning` the log's side of that protocol: k of n
cosignatures before a checkpoint is published. :mod:`.explorer` serves the web page at ``/``
that verifies entries in the reader's browser (built from ``explorer/``), and
:mod:`.explorer_api` the registry's models, datasets, environments and anchors as JSON for
it. The apps need the ``server`` extra (FastAPI, Starlette, uvicorn), so this package's face
imports none of it; its names load their module on first use, so that importing one module
of the package (``ailedger serve`` imports the app) does not import the others
(:mod:`.remote`, with the registry under it, costs ~0.1 s).
Only the CLI imports this package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ailedger.service.client import LogClient, ServiceUnavailable
    from ailedger.service.ratelimit import RateLimit, TokenBuckets
    from ailedger.service.remote import LocalLog, LogSource, RemoteLog
    from ailedger.service.tiles import (
        MAX_BUNDLED_ENTRY,
        TILE_HEIGHT,
        TILE_WIDTH,
        TileRef,
        encode_index,
        entry_bundle,
        parse_entry_bundle,
        parse_tile_path,
    )

__all__ = [
    "MAX_BUNDLED_ENTRY",
    "TILE_HEIGHT",
    "TILE_WIDTH",
    "LocalLog",
    "LogClient",
    "LogSource",
    "RateLimit",
    "RemoteLog",
    "ServiceUnavailable",
    "TileRef",
    "TokenBuckets",
    "encode_index",
    "entry_bundle",
    "parse_entry_bundle",
    "parse_tile_path",
]

#: Where each exported name lives.
_WHERE = {
    "LogClient": "ailedger.service.client",
    "ServiceUnavailable": "ailedger.service.client",
    "RateLimit": "ailedger.service.ratelimit",
    "TokenBuckets": "ailedger.service.ratelimit",
    "LocalLog": "ailedger.service.remote",
    "LogSource": "ailedger.service.remote",
    "RemoteLog": "ailedger.service.remote",
    "MAX_BUNDLED_ENTRY": "ailedger.service.tiles",
    "TILE_HEIGHT": "ailedger.service.tiles",
    "TILE_WIDTH": "ailedger.service.tiles",
    "TileRef": "ailedger.service.tiles",
    "encode_index": "ailedger.service.tiles",
    "entry_bundle": "ailedger.service.tiles",
    "parse_entry_bundle": "ailedger.service.tiles",
    "parse_tile_path": "ailedger.service.tiles",
}


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
