"""``ailedger market serve --commit-epochs`` refuses to start unless the workspace's chain is
the receipts' chain and holds a contract at ``--market-contract`` (one error line, exit 3)."""

from __future__ import annotations

import sys

import pytest

from _cli import fails
from ailedger.chain.backends import workspace_chain_id
from ailedger.workspace import Workspace
from markets._helpers import CHAIN_ID, Market, provider_args

#: Should the checks let the server start, it fails to listen instead of serving for ever.
NO_HOST = ("--host", "256.0.0.1")


def test_serve_commit_epochs_needs_the_market_on_the_workspace_chain(market: Market) -> None:
    env = {"AILEDGER_HOME": str(market.root)}
    ws_chain = workspace_chain_id(Workspace.open(market.root))
    assert ws_chain is not None
    assert ws_chain != CHAIN_ID
    fails(
        ["market", "serve", *provider_args("--commit-epochs"), "--port", "0", *NO_HOST], 3,
        f"the workspace's chain is on chain {ws_chain}, the receipts are for chain {CHAIN_ID}",
        env=env,
    )  # fmt: skip
    args = [a if a != str(CHAIN_ID) else str(ws_chain) for a in provider_args("--commit-epochs")]
    fails(["market", "serve", *args, "--port", "0", *NO_HOST], 3, "no contract at", env=env)


def test_serve_without_the_server_extra_says_so(
    market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "uvicorn", None)  # as if `ailedger[server]` were missing
    monkeypatch.delitem(sys.modules, "ailedger.markets.inference.provider", raising=False)
    fails(
        ["market", "serve", *provider_args(), "--port", "0", *NO_HOST], 3,
        "the provider needs the server extra (uvicorn is missing)", "ailedger[server]",
        env={"AILEDGER_HOME": str(market.root)},
    )  # fmt: skip


def test_serve_needs_one_source_of_job_owners(market: Market) -> None:
    env = {"AILEDGER_HOME": str(market.root)}
    serve = ["market", "serve", "--port", "0", *NO_HOST]
    fails([*serve, *provider_args()], 3, "--commit-epochs", "--jobs FILE", env=env)
    both = provider_args("--commit-epochs", jobs=market.jobs)
    fails([*serve, *both], 3, "not both, not neither", env=env)
    tables = {
        "empty.json": ("{}", 3, "non-empty JSON object"),
        "truncated.json": ('{"0x', 3, "is not JSON"),
        "list.json": ("[]", 3, "non-empty JSON object"),
        "bad-job.json": ('{"0x12": "' + "0x" + "11" * 20 + '"}', 3, "is not 0x and 64 hex"),
        "bad-consumer.json": ('{"0x' + "12" * 32 + '": "nobody"}', 3, "not an Ethereum address"),
    }
    for name, (text, code, needle) in tables.items():
        path = market.root / name
        path.write_text(text)
        fails([*serve, *provider_args(jobs=path)], code, needle, env=env)
    fails(
        [*serve, *provider_args(jobs=market.root / "missing.json")], 4, "no such job table", env=env
    )
