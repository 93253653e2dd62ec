"""The log as an HTTP service (``ailedger serve``): submissions, C2SP tlog-tiles, proofs.

:mod:`.app` builds the ASGI app (FastAPI) from its dependencies and documents the endpoints;
:mod:`._sequencer` is the group-commit writer; :mod:`.tiles` holds the tlog-tiles paths and
entry bundles; :mod:`.problems` maps errors to RFC 9457 problem responses; :mod:`.ratelimit`
holds the per-signer and per-IP token buckets; :mod:`.membership` admits submitters by their
organisation on-chain (instead of an allow-list); :mod:`.client` talks to a service (standard
library only), :mod:`.tiles_client` verifies a log's checkpoints, proofs and entries from its
tiles alone, and :mod:`.remote` makes it a log source for the CLI (:class:`RemoteLog`, a
verified mirror of the remote log, beside :class:`LocalLog`, behind :class:`LogSource`).
:mod:`.witness` is a C2SP tlog-witness (``ailedger witness serve``; its ASGI app in
:mod:`._witness_server`), and :mod:`._cosigning` the log's side of that protocol: k of n
cosignatures before a checkpoint is published. The apps need the ``server`` extra (FastAPI,
Starlette, uvicorn), so this package's face imports none of it.
Only the CLI imports this package.
"""

from __future__ import annotations

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
