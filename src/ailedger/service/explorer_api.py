"""The registry as JSON for the explorer's pages: models, datasets, environments, anchors.

::

    GET /v1/registry/models                      names and versions
    GET /v1/registry/models/{name}               each version's lineage: registration,
                                                 evaluations with metrics (bias audits are
                                                 evaluations), approvals, deployments
    GET /v1/registry/datasets                    names and versions
    GET /v1/registry/datasets/{name}             versions and the models trained on each
    GET /v1/registry/environments                names
    GET /v1/registry/environments/{env}          deploy / rollback events in log order, and
                                                 the statements judged not to be events
    GET /v1/registry/environments/{env}/at?time= the event serving at T and the next one
    GET /v1/registry/lookup?ref=NAME@VERSION     a version's kind, digest and entry
    GET /v1/registry/status                      whether the first indexing is done
    GET /v1/anchors                              the log's on-chain anchors
    GET /v1/oracle/feeds                         oracle feeds with reports in the log
    GET /v1/oracle/feeds/{feed_id}               a feed's rounds (report and observation
                                                 entries) and, read from the chain when the
                                                 service has one, the payouts they triggered
    GET /v1/transactions/{tx_hash}               what the service knows of a transaction: the
                                                 anchors and oracle reports naming it, the
                                                 payouts it made, its receipt
    GET /v1/organisations/{name}                 who signs for an organisation (key metadata,
                                                 [members], the Membership contract)

Everything here is read from the log by the registry index (:mod:`ailedger.registry`): the
server's summary, never the proof. Every item names the log entries it comes from, and the
explorer verifies those entries (inclusion, checkpoint, signatures) and reads what they say
from the verified statements before a badge turns green. Items of entries that the published
checkpoint does not cover yet are left out. Which deploy statements are events is the index's
judgement (the signer's role, the environment's chain of links): rejected statements are
listed as rejected, never as events.

The registry (SQLite, maybe a chain connection) lives on one worker thread of its own; it is
opened when the service starts, in the background (``ExplorerApi.start``), by the
``open_source`` the service was given, and brought up to date with the log before each
answer. The index reads only the registry's statements (the log's predicate-type index
skips the rest), and keeps what it read: each sync reads the entries appended since.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query

from ailedger.errors import AiledgerError, InvalidInput
from ailedger.service._explorer_lookup import organisation, transaction
from ailedger.service._explorer_oracle import FeedReader
from ailedger.service._openapi import json_body
from ailedger.service.problems import Problem, problem_responses

if TYPE_CHECKING:  # the registry and the chain load on the first request, not at start
    from ailedger.chain import Chain
    from ailedger.chain.anchoring import AnchorRecord
    from ailedger.chain.anchors import OnChainAnchor
    from ailedger.registry import EventRow, Registry, VersionRow

__all__ = ["ExplorerApi", "ExplorerSource", "explorer_api_router"]

_T = TypeVar("_T")
#: 9999-12-31T23:59:59.999Z: the latest time an answer can name (datetime's range).
_LATEST_MS = 253_402_300_799_999
_OBJECT: dict[str, Any] = {"type": "object"}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_FEED_ID = re.compile(r"0x[0-9a-fA-F]{64}")
_TX_HASH = _FEED_ID


def _list_of(key: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": [key],
        "properties": {key: {"type": "array", "items": _OBJECT}},
    }


@dataclass
class ExplorerSource:
    """What the pages read: the ``registry`` (its index judged with its backend's rules),
    ``anchors()`` (the log's anchors as recorded by whoever sent them), and ``on_chain``,
    which reads an anchor back from the chain (None: no chain to ask); ``orgs``: the
    organisation of each known signer (lower-case address), as the operator knows them;
    ``chain``: the chain the oracle pages read events from (None: ``no_chain`` says why);
    ``members``: the organisation of each address in the workspace's ``[members]``;
    ``org_members(org)``: the (account, role) pairs of an organisation on chain (None: no
    Membership contract to read)."""

    registry: Registry
    anchors: Callable[[], list[AnchorRecord]]
    on_chain: Callable[[AnchorRecord], OnChainAnchor | None] | None = None
    close: Callable[[], None] = field(default=lambda: None)
    orgs: dict[str, str] = field(default_factory=dict)
    chain: Chain | None = None
    no_chain: str = "this service reads no chain"
    members: dict[str, str] = field(default_factory=dict)
    org_members: Callable[[str], list[tuple[str, str]]] | None = None
    _feeds: FeedReader | None = None
    _signed: dict[int, int | None] = field(default_factory=dict)

    def signed_ms(self, log_index: int) -> int | None:
        """The time a deploy or rollback statement is signed as of (its predicate's ``time``)
        in ms, read from the log once per entry (None: it gives none that parses)."""
        if log_index not in self._signed:
            self._signed[log_index] = _predicate_time(self.registry.log.get(log_index).envelope)
        return self._signed[log_index]

    @property
    def feeds(self) -> FeedReader:
        """The oracle feeds' reader over the registry's log and ``chain`` (made once)."""
        if self._feeds is None:
            self._feeds = FeedReader(self.registry.log, self.chain, self.no_chain)
        return self._feeds


def _predicate_time(envelope: bytes) -> int | None:
    """The ``predicate.time`` of a statement envelope in ms since the epoch (None: none)."""
    try:
        statement = json.loads(base64.b64decode(json.loads(envelope)["payload"]))
        when = datetime.fromisoformat(str(statement["predicate"]["time"]).replace("Z", "+00:00"))
    except (ValueError, KeyError, TypeError):
        return None
    if when.tzinfo is None:
        return None
    return _ms(when)


def _ms(when: datetime) -> int:
    """Milliseconds since the epoch, truncated like JavaScript's Date.parse (exact: no float)."""
    return (when - _EPOCH) // timedelta(milliseconds=1)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def _version(row: VersionRow) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "ref": str(row.ref),
        "name": row.ref.name,
        "version": row.ref.version,
        "digest": row.digest,
        "root": row.root,
        "log_index": row.log_index,
        "time": _iso(row.time_ms),
        "signer": row.signer,
    }


def _event(row: EventRow) -> dict[str, Any]:
    return {
        "log_index": row.log_index,
        "environment": row.env,
        "action": row.action,
        "ref": str(row.ref),
        "digest": row.digest,
        "time": _iso(row.time_ms),
        "time_ms": row.time_ms,
        "signers": list(row.signers),
    }


def _parse_time(text: str) -> int:
    """Milliseconds since the epoch from ISO 8601 (a naive time is UTC) or a number of ms."""
    if text.isdigit():
        ms = int(text)
    else:
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InvalidInput(f"time {text!r} is not ISO 8601 nor milliseconds") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        ms = _ms(when)
    if not 0 <= ms <= _LATEST_MS:
        raise InvalidInput(f"time {text!r} is not between 1970 and 9999")
    return ms


@dataclass(frozen=True)
class ExplorerApi:
    """The routes (``router``); ``start()`` opens the source and indexes the log in the
    background (call it once the service listens: the source may read the chain through
    the service's own ``/rpc``); ``close()`` closes the source once the service stopped."""

    router: APIRouter
    start: Callable[[], None]
    close: Callable[[], None]


def explorer_api_router(
    open_source: Callable[[], ExplorerSource], published: Callable[[], int]
) -> ExplorerApi:
    """The routes above over the source ``open_source`` opens (once, on the registry's own
    thread); ``published()`` is the size of the published checkpoint (what may be shown).
    ``GET /v1/registry/status`` says whether the first indexing is done (answered at once,
    not on that thread): the pages show "indexing" until it is."""
    executor = ThreadPoolExecutor(1, thread_name_prefix="ailedger-explorer-registry")
    opened: list[ExplorerSource] = []
    status: dict[str, Any] = {"ready": False, "error": None}

    def source() -> ExplorerSource:
        try:
            if not opened:
                opened.append(open_source())
            opened[0].registry.sync()
        except AiledgerError as exc:
            status["error"] = exc.message
            raise
        status.update(ready=True, error=None)
        return opened[0]

    def warm() -> None:
        with contextlib.suppress(AiledgerError):  # in the status; a request tries again
            source()

    async def run(fn: Callable[[ExplorerSource, int], _T]) -> _T:
        size = published()
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, lambda: fn(source(), size))

    router = APIRouter(tags=["explorer"])
    errors = problem_responses(404, 422, 429, 503)

    @router.get(
        "/v1/registry/models",
        summary="Registered models and their versions",
        responses=errors,
        openapi_extra=json_body(_list_of("models")),
    )
    async def models() -> dict[str, Any]:
        return await run(lambda s, n: {"models": _names(s.registry, "model", n)})

    @router.get(
        "/v1/registry/models/{name}",
        summary="A model: each version's registration, evaluations, approvals, deployments",
        responses=errors,
        openapi_extra=json_body(_list_of("versions")),
    )
    async def model(name: str) -> dict[str, Any]:
        return await run(lambda s, n: _model(s.registry, name, n, s.orgs))

    @router.get(
        "/v1/registry/datasets",
        summary="Registered datasets and their versions",
        responses=errors,
        openapi_extra=json_body(_list_of("datasets")),
    )
    async def datasets() -> dict[str, Any]:
        return await run(lambda s, n: {"datasets": _names(s.registry, "dataset", n)})

    @router.get(
        "/v1/registry/datasets/{name}",
        summary="A dataset: its versions and the models trained on each",
        responses=errors,
        openapi_extra=json_body(_list_of("versions")),
    )
    async def dataset(name: str) -> dict[str, Any]:
        return await run(lambda s, n: _dataset(s.registry, name, n))

    @router.get(
        "/v1/registry/environments",
        summary="Environments with deploy events",
        responses=errors,
        openapi_extra=json_body(_list_of("environments")),
    )
    async def environments() -> dict[str, Any]:
        def answer(s: ExplorerSource, n: int) -> dict[str, Any]:
            index = s.registry.index
            names = [e for e in index.environments() if index.events(e)[0].log_index < n]
            return {"environments": [{"name": e} for e in names]}

        return await run(answer)

    @router.get(
        "/v1/registry/environments/{env}",
        summary="An environment's deploy and rollback events, and the rejected statements",
        responses=errors,
        openapi_extra=json_body(_list_of("events")),
    )
    async def environment(env: str) -> dict[str, Any]:
        return await run(lambda s, n: _environment(s.registry, env, n))

    @router.get(
        "/v1/registry/environments/{env}/at",
        summary="Which version served at a time: the event before it and the next one",
        responses=problem_responses(400, 404, 422, 429, 503),
        openapi_extra=json_body(
            {"type": "object", "required": ["environment", "time", "event", "next"]}
        ),
    )
    async def served_at(
        env: str, time: Annotated[str, Query(min_length=1, max_length=64)]
    ) -> dict[str, Any]:
        try:
            ms = _parse_time(time)
        except InvalidInput as exc:
            raise Problem(400, "invalid", "Invalid time", exc.message) from None
        return await run(lambda s, n: _served_at(s, env, ms, n))

    @router.get(
        "/v1/registry/lookup",
        summary="A version by NAME@VERSION (model or dataset)",
        responses=problem_responses(400, 404, 422, 429, 503),
        openapi_extra=json_body(_list_of("versions")),
    )
    async def lookup(ref: Annotated[str, Query(min_length=1, max_length=512)]) -> dict[str, Any]:
        from ailedger.registry import VersionRef

        try:
            parsed = VersionRef.parse(ref)
        except AiledgerError as exc:
            raise Problem(400, "invalid", "Invalid reference", exc.message) from None

        def answer(s: ExplorerSource, n: int) -> dict[str, Any]:
            rows = [s.registry.index.version(k, parsed) for k in ("model", "dataset")]
            found = [_version(r) for r in rows if r is not None and r.log_index < n]
            if not found:
                raise Problem(404, "not-found", "Not found", f"no version {parsed} in the log")
            return {"versions": found}

        return await run(answer)

    @router.get(
        "/v1/anchors",
        summary="The log's on-chain anchors (checked against the chain when it can be read)",
        responses=problem_responses(429, 503),
        openapi_extra=json_body(_list_of("anchors")),
    )
    async def anchors() -> dict[str, Any]:
        return await run(lambda s, _: {"anchors": [_anchor(s, r) for r in s.anchors()]})

    @router.get(
        "/v1/oracle/feeds",
        summary="Oracle feeds with reports in the log",
        responses=problem_responses(429, 503),
        openapi_extra=json_body(_list_of("feeds")),
    )
    async def oracle_feeds() -> dict[str, Any]:
        return await run(lambda s, n: {"feeds": s.feeds.feeds(n)})

    @router.get(
        "/v1/oracle/feeds/{feed_id}",
        summary="An oracle feed: its rounds, their log entries and the payouts they triggered",
        responses=problem_responses(400, 404, 422, 429, 503),
        openapi_extra=json_body(
            {"type": "object", "required": ["feed", "feed_id", "chain", "rounds"]}
        ),
    )
    async def oracle_feed(feed_id: str) -> dict[str, Any]:
        if not _FEED_ID.fullmatch(feed_id):
            detail = f"feed id {feed_id[:80]!r} is not 0x and 64 hex digits"
            raise Problem(400, "invalid", "Invalid feed id", detail)

        def answer(s: ExplorerSource, n: int) -> dict[str, Any]:
            found = s.feeds.feed(feed_id.lower(), n)
            if found is None:
                raise Problem(404, "not-found", "Not found", f"no reports of feed {feed_id}")
            return found

        return await run(answer)

    @router.get(
        "/v1/transactions/{tx_hash}",
        summary="A transaction: the anchors and oracle reports naming it, its payouts, receipt",
        responses=problem_responses(400, 404, 422, 429, 503),
        openapi_extra=json_body(
            {
                "type": "object",
                "required": ["transaction", "chain", "anchors", "oracle_reports", "payouts"],
            }
        ),
    )
    async def transaction_page(tx_hash: str) -> dict[str, Any]:
        if not _TX_HASH.fullmatch(tx_hash):
            detail = f"transaction {tx_hash[:80]!r} is not 0x and 64 hex digits"
            raise Problem(400, "invalid", "Invalid transaction hash", detail)
        tx = tx_hash.lower()

        def answer(s: ExplorerSource, n: int) -> dict[str, Any]:
            anchors = [_anchor(s, r) for r in s.anchors() if r.size <= n]
            found = transaction(tx, n, anchors, s.feeds)
            if found is None:
                raise Problem(404, "not-found", "Not found", f"this service knows no {tx}")
            return found

        return await run(answer)

    @router.get(
        "/v1/organisations/{name}",
        summary="An organisation: the signers known to act for it",
        responses=problem_responses(404, 422, 429, 503),
        openapi_extra=json_body(_list_of("signers")),
    )
    async def organisation_page(
        name: Annotated[str, Path(min_length=1, max_length=128)],
    ) -> dict[str, Any]:
        def answer(s: ExplorerSource, _: int) -> dict[str, Any]:
            found = organisation(name, s.orgs, s.members, s.org_members)
            if found is None:
                raise Problem(404, "not-found", "Not found", f"no signers of organisation {name}")
            return found

        return await run(answer)

    @router.get(
        "/v1/registry/status",
        summary="Whether the registry index is built (the pages wait for it)",
        responses=problem_responses(429),
        openapi_extra=json_body({"type": "object", "required": ["ready", "error"]}),
    )
    async def registry_status() -> dict[str, Any]:
        return dict(status)

    def start() -> None:
        executor.submit(warm)

    def close() -> None:
        if opened:
            executor.submit(opened.pop().close).result()
        executor.shutdown()

    return ExplorerApi(router, start, close)


def _names(registry: Registry, kind: str, size: int) -> list[dict[str, Any]]:
    by_name: dict[str, list[dict[str, Any]]] = {}
    for row in registry.index.versions(kind):
        if row.log_index < size:
            by_name.setdefault(row.ref.name, []).append(_version(row))
    return [{"name": k, "versions": v} for k, v in sorted(by_name.items())]


def _rows(registry: Registry, kind: str, name: str, size: int) -> list[VersionRow]:
    rows = [r for r in registry.index.versions(kind, name) if r.log_index < size]
    if not rows:
        raise Problem(404, "not-found", "Not found", f"no {kind} {name} in the log")
    return rows


def _model(registry: Registry, name: str, size: int, orgs: dict[str, str]) -> dict[str, Any]:
    from ailedger.registry.lineage import lineage

    versions = []
    for row in _rows(registry, "model", name, size):
        tree = lineage(registry, row.ref).to_dict()
        for group in ("evaluations", "approvals", "deployments", "provenance"):
            tree[group] = [i for i in tree[group] if i["log_index"] < size]
        for item in tree["approvals"]:
            item["orgs"] = [orgs.get(x.lower()) for x in item["signers"]]
        deprecation = registry.index.deprecation(row.ref)
        versions.append(
            {
                **_version(row),
                **{k: tree[k] for k in ("evaluations", "approvals", "deployments", "datasets")},
                "deprecated": deprecation is not None and deprecation[0] < size,
            }
        )
    return {"name": name, "versions": versions}


def _dataset(registry: Registry, name: str, size: int) -> dict[str, Any]:
    from ailedger.registry.lineage import lineage

    trained: dict[str, list[dict[str, Any]]] = {}
    for row in registry.index.versions("model"):
        if row.log_index >= size:
            continue
        for d in lineage(registry, row.ref).datasets:
            for ref in d["registered_as"]:
                trained.setdefault(ref, []).append(_version(row))
    versions = [
        {**_version(row), "models": trained.get(str(row.ref), [])}
        for row in _rows(registry, "dataset", name, size)
    ]
    return {"name": name, "versions": versions}


def _environment(registry: Registry, env: str, size: int) -> dict[str, Any]:
    events = [_event(e) for e in registry.index.events(env) if e.log_index < size]
    rejected = [
        {**_event(r.event), "verdict": r.verdict, "previous": r.previous, "head": r.head}
        for r in registry.index.rejected()
        if r.event.env == env and r.event.log_index < size
    ]
    if not events and not rejected:
        raise Problem(404, "not-found", "Not found", f"no events of environment {env} in the log")
    return {"environment": env, "events": events, "rejected": rejected}


def _served_at(source: ExplorerSource, env: str, ms: int, size: int) -> dict[str, Any]:
    """The event serving ``env`` at ``ms`` by the times the statements are signed as of (what
    the browser checks, not the log's append times, which come a little later): the last
    published event in log order signed at or before ``ms``, and the one after it in log
    order (signed after ``ms``, or it would have been chosen); with none, the first event."""
    index = source.registry.index
    events = [e for e in index.events(env) if e.log_index < size]
    if not events and index.first_event(env) is None:
        raise Problem(404, "not-found", "Not found", f"no events of environment {env} in the log")
    chosen = None
    for pos, e in enumerate(events):
        signed = source.signed_ms(e.log_index)
        if signed is not None and signed <= ms:
            chosen = pos
    event = None if chosen is None else events[chosen]
    after = 0 if chosen is None else chosen + 1
    following = events[after] if after < len(events) else None
    return {
        "environment": env,
        "time": _iso(ms),
        "event": None if event is None else _signed_event(source, event),
        "next": None if following is None else _signed_event(source, following),
    }


def _signed_event(source: ExplorerSource, row: EventRow) -> dict[str, Any]:
    signed = source.signed_ms(row.log_index)
    return {**_event(row), "signed_time": None if signed is None else _iso(signed)}


def _anchor(source: ExplorerSource, record: AnchorRecord) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "index": record.index,
        "size": record.size,
        "root": record.root.hex(),
        "transaction": record.tx_hash,
        "block": record.block,
        "chain_id": record.chain_id,
        "contract": record.contract,
        "log_signer": record.log_signer,
        "on_chain": None,
    }
    if source.on_chain is not None:
        try:
            found = source.on_chain(record)
        except AiledgerError as exc:
            doc["on_chain_error"] = exc.message
        else:
            doc["on_chain"] = (
                found is not None and found.size == record.size and found.root == record.root
            )
    return doc
