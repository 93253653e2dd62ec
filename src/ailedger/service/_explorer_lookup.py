"""Lookups for the explorer's search: a transaction hash, an organisation's name.

A transaction is what this service knows about it: the log's anchors it recorded
(the workspace's anchor book), the oracle reports in the log that name it (their ``transmit``
transaction), the payouts it made (ParametricEscrow ``PolicyTriggered``), and, with a chain
to read, its receipt (block, sender, the contract it called by name when the chain's event
index tracks it, success). An organisation is who signs for it as far as the operator knows:
the organisation in the key metadata of the service's workspace, its ``[members]`` table, and,
with the Membership contract recorded for the chain, the accounts holding a role in it.
All of it is the server's word; the explorer verifies the entries and anchors it names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ailedger.errors import AiledgerError

if TYPE_CHECKING:
    from ailedger.chain import Chain
    from ailedger.service._explorer_oracle import FeedReader

__all__ = ["organisation", "transaction"]


def _receipt(chain: Chain, tx: str) -> dict[str, Any] | None:
    r = chain.receipt(tx)
    if r is None:
        return None
    to = r.get("to") or r.get("contractAddress")
    tracked = chain.status()["tracked_contracts"]
    names = {str(a).lower(): n for a, n in tracked.items()}
    return {
        "block": int(r["blockNumber"]),
        "from": str(r["from"]),
        "to": None if to is None else str(to),
        "contract": None if to is None else names.get(str(to).lower()),
        "created": r.get("contractAddress") is not None,
        "status": int(r["status"]),
    }


def transaction(
    tx: str,
    size: int,
    anchors: list[dict[str, Any]],
    feeds: FeedReader,
) -> dict[str, Any] | None:
    """What the service knows about transaction ``tx`` (lower-case 0x hash) among the first
    ``size`` entries; ``anchors`` are the log's anchors as ``/v1/anchors`` gives them. None:
    nothing at all."""
    mine = [a for a in anchors if str(a.get("transaction", "")).lower() == tx]
    reports = feeds.reports_by_transaction(tx, size)
    chain: dict[str, Any] = {"read": feeds.chain is not None, "detail": feeds.no_chain}
    receipt = None
    payouts: list[dict[str, Any]] = []
    if feeds.chain is not None:
        try:
            receipt = _receipt(feeds.chain, tx)
            payouts = feeds.payouts_by_transaction(tx)
            chain["detail"] = f"read from chain {feeds.chain.chain_id} ({feeds.chain.backend})"
        except AiledgerError as exc:
            chain = {"read": False, "detail": f"the chain could not be read: {exc.message}"}
    if not (mine or reports or payouts or receipt):
        return None
    return {
        "transaction": tx,
        "chain": chain,
        "receipt": receipt,
        "anchors": mine,
        "oracle_reports": reports,
        "payouts": payouts,
    }


def organisation(
    name: str,
    keys: dict[str, str],
    members: dict[str, str],
    on_chain: Callable[[str], list[tuple[str, str]]] | None,
) -> dict[str, Any] | None:
    """Who signs for organisation ``name``: ``keys`` and ``members`` map addresses to their
    organisation (key metadata, ``[members]``), ``on_chain(org)`` lists (account, role)
    pairs. None: nobody is known to."""
    found: dict[str, dict[str, Any]] = {}

    def add(address: str, source: str, role: str | None = None) -> None:
        item = found.setdefault(address.lower(), {"address": address, "roles": [], "sources": []})
        if source not in item["sources"]:
            item["sources"].append(source)
        if role is not None and role not in item["roles"]:
            item["roles"].append(role)

    for address, org in keys.items():
        if org == name:
            add(address, "key metadata")
    for address, org in members.items():
        if org == name:
            add(address, "workspace [members]")
    chain_note = None
    if on_chain is not None:
        try:
            for account, role in on_chain(name):
                add(account, "Membership contract", role)
        except AiledgerError as exc:
            chain_note = f"the Membership contract could not be read: {exc.message}"
    if not found:
        return None
    signers = sorted(found.values(), key=lambda s: str(s["address"]).lower())
    return {"organisation": name, "signers": signers, "chain_error": chain_note}
