"""``ailedger label task|join|commit|reveal|score|settle|claim|status``: the labeling market
(LabelingMarket, recorded by ``ailedger chain deploy``, or ``--market``).

A requester posts a task over a JSONL batch (fingerprinted: the task commits to its root) with a
gold set (a JSON list of ``[item, label]`` pairs, kept salted and secret in the workspace until
``score`` reveals it), a reward pool and a minimum stake in an ERC-20 (``--token``). Labelers
stake it first (``ailedger stake deposit AMOUNT --token ADDR``), ``join``, ``commit`` a JSON
list of labels (kept with its salt in the workspace), then ``reveal``. ``score`` reveals the
gold (requester) and scores every revealed labeler on-chain; ``settle`` slashes the late and
the inaccurate and pays the others; ``claim`` sends what the market owes. A revert is one
decoded line and a hint (exit 9).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from ailedger.chain.client import Chain
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
from ailedger.chain.labeling import LabelingMarket, TaskParams
from ailedger.chain.stake import Token, format_units, parse_units
from ailedger.cli._app import app
from ailedger.cli._chain_common import RpcOpt, ensure_dev_funds, open_chain
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._keys import PasswordFileOpt, log_signer, open_workspace
from ailedger.errors import InvalidInput, NotFound
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.identity.keys import Secp256k1Signer, checksum_address
from ailedger.markets.labeling import GoldSet, labels_commitment
from ailedger.markets.labeling_flow import (
    TaskFiles,
    gold_revealed,
    labels_from_json,
    new_salt,
    outcomes,
    revealed_labels,
)
from ailedger.workspace import Workspace

__all__ = ["label_app"]

#: Labelers scored per transaction (their labels travel as calldata).
_SCORE_BATCH = 16

label_app = typer.Typer(
    help="The labeling market: post tasks, stake and label, reveal gold, score, settle.",
    no_args_is_help=True,
)
app.add_typer(label_app, name="label")

KeyOpt = Annotated[str, typer.Option("--key", help="Name of a secp256k1 key in the workspace.")]
TaskArg = Annotated[int, typer.Argument(help="The task id (printed by `label task`).", min=1)]
MarketOpt = Annotated[
    str | None,
    typer.Option("--market", help="LabelingMarket address (default: the workspace's deployment)."),
]


def _market(ws: Workspace, chain: Chain, address: str | None) -> LabelingMarket:
    if address is None:
        dep = DeploymentBook(ws.path / DEPLOYMENTS_FILE).require(chain.chain_id)
        address = dep.address("LabelingMarket")
    return LabelingMarket(chain, chain.at("LabelingMarket", address))


@dataclass(frozen=True)
class _Session:
    ws: Workspace
    chain: Chain
    market: LabelingMarket
    signer: Secp256k1Signer

    def files(self, task: int) -> TaskFiles:
        return TaskFiles.of(self.ws.path, self.chain.chain_id, self.market.address, task)


@contextmanager
def _session(
    key: str, market: str | None, rpc: str | None, password_file: Any
) -> Iterator[_Session]:
    signer = log_signer(key, password_file)
    ws = open_workspace()
    with open_chain(ws, rpc) as chain:
        m = _market(ws, chain, market)
        ensure_dev_funds(chain, signer.address)
        yield _Session(ws, chain, m, signer)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InvalidInput(f"no {what} file {path}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path} is not JSON: {exc}") from None


@label_app.command("task")
def task_cmd(
    batch: Annotated[
        Path, typer.Option("--batch", help="The image batch (JSONL, one item a line).")
    ],
    gold: Annotated[
        Path, typer.Option("--gold", help="JSON list of [item, label] pairs: the hidden gold set.")
    ],
    token: Annotated[str, typer.Option("--token", help="ERC-20 of the pool and the stakes.")],
    pool: Annotated[str, typer.Option("--pool", help="Reward pool in token units, e.g. 1000.")],
    min_stake: Annotated[str, typer.Option("--min-stake", help="Stake each labeler locks.")],
    key: KeyOpt,
    threshold: Annotated[
        float, typer.Option("--threshold", min=0.0, max=1.0, help="Minimum gold accuracy kept.")
    ] = 0.8,
    window: Annotated[
        int, typer.Option("--window", min=1, help="Seconds for each phase: commit, reveal, gold.")
    ] = 86_400,
    market: MarketOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Post a task: the batch's Merkle root, the salted gold set's root (the gold stays in the
    workspace until `label score`), the pool (escrowed now) and the deadlines."""
    fp = fingerprint_dataset(batch, secret=None, format="jsonl")
    pairs = _read_json(gold, "gold")
    if not isinstance(pairs, list) or not all(
        isinstance(p, list) and len(p) == 2 and all(isinstance(v, int) for v in p) for p in pairs
    ):
        raise InvalidInput("the gold file must be a JSON list of [item, label] pairs")
    if any(not 0 <= item < fp.size for item, _ in pairs):
        raise InvalidInput(f"a gold item is outside the batch of {fp.size} items")
    gold_set = GoldSet.derive(pairs, new_salt())
    with _session(key, market, rpc, password_file) as s:
        decimals = Token.at(s.chain, token).decimals()
        now = s.chain.block_timestamp()
        params = TaskParams(
            token,
            fp.root,
            fp.size,
            gold_set.root(),
            len(gold_set.items),
            parse_units(pool, decimals),
            parse_units(min_stake, decimals),
            round(threshold * 10_000),
            now + window,
            now + 2 * window,
            now + 3 * window,
        )
        task = s.market.create_task(params, signer=s.signer)
        kept = s.files(task).save_gold(gold_set)
        info = s.market.task(task)
    doc = {"task": task, "market": s.market.address, **info.to_dict(), "gold_file": str(kept)}
    emit(
        doc,
        as_json,
        lambda: console.print(
            f"task {task}: {fp.size} items (root {fp.root.hex()[:16]}…), {len(pairs)} gold, "
            f"pool {format_units(info.pool, decimals)}; commit by {info.commit_deadline}, reveal "
            f"by {info.reveal_deadline}, gold by {info.gold_deadline} (unix time)"
        ),
    )


LabelsOpt = Annotated[
    Path | None,
    typer.Option("--labels", help="JSON list of labels, one per item (null abstains)."),
]


def _commitment(s: _Session, task: int, path: Path) -> bytes:
    """Commit to the labels in ``path``: kept with a fresh salt in the workspace."""
    doc_in = _read_json(path, "labels")
    info = s.market.task(task)
    raw = labels_from_json(doc_in, info.item_count)
    salt = new_salt()
    who = checksum_address(s.signer.address)
    s.files(task).save_commit(who, raw, salt)
    return labels_commitment(s.chain.chain_id, s.market.address, task, who, raw, salt)


@label_app.command("join")
def join_cmd(
    task: TaskArg,
    key: KeyOpt,
    labels: LabelsOpt = None,
    market: MarketOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Join TASK: the task's minimum stake (staked first with `ailedger stake deposit`) is
    locked until it settles; with --labels, commit to them in the same transaction."""
    with _session(key, market, rpc, password_file) as s:
        c = bytes(32) if labels is None else _commitment(s, task, labels)
        receipt = s.market.join(task, c, signer=s.signer)
    doc = {"task": task, "labeler": s.signer.address, "tx_hash": receipt.tx_hash}
    if labels is not None:
        doc["commitment"] = "0x" + c.hex()
    emit(doc, as_json, lambda: console.print(f"joined task {task} as {s.signer.address}"))


@label_app.command("commit")
def commit_cmd(
    task: TaskArg,
    labels: Annotated[
        Path, typer.Option("--labels", help="JSON list of labels, one per item (null abstains).")
    ],
    key: KeyOpt,
    market: MarketOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Commit to labels for TASK (kept with a fresh salt in the workspace for `label reveal`)."""
    with _session(key, market, rpc, password_file) as s:
        c = _commitment(s, task, labels)
        receipt = s.market.commit(task, c, signer=s.signer)
    who = s.signer.address
    doc = {"task": task, "labeler": who, "commitment": "0x" + c.hex(), "tx_hash": receipt.tx_hash}
    emit(doc, as_json, lambda: console.print(f"committed to task {task}: 0x{c.hex()}"))


@label_app.command("reveal")
def reveal_cmd(
    task: TaskArg,
    key: KeyOpt,
    market: MarketOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reveal the labels and salt committed with `label commit`."""
    with _session(key, market, rpc, password_file) as s:
        who = checksum_address(s.signer.address)
        raw, salt = s.files(task).load_commit(who)
        receipt = s.market.reveal(task, raw, salt, signer=s.signer)
    doc = {"task": task, "labeler": who, "labels": len(raw), "tx_hash": receipt.tx_hash}
    emit(doc, as_json, lambda: console.print(f"revealed {len(raw)} labels for task {task}"))


@label_app.command("score")
def score_cmd(
    task: TaskArg,
    key: KeyOpt,
    market: MarketOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reveal the gold (the requester, from its workspace) if not yet revealed, then score
    every revealed, unscored labeler on-chain (anyone may)."""
    with _session(key, market, rpc, password_file) as s:
        records = gold_revealed(s.chain, s.market, task)
        if records is None:
            gold = s.files(task).load_gold()
            s.market.reveal_gold(task, gold.salts, gold.records(), gold.proofs(), signer=s.signer)
            records = gold.records()
        info = s.market.task(task)
        scores: dict[str, int] = {}
        todo: dict[str, bytes] = {}
        for who, labels in sorted(revealed_labels(s.chain, s.market, task).items()):
            work = s.market.work_of(task, who)
            if work.scored:
                scores[who] = work.correct
            else:
                todo[who] = labels
        batch = list(todo)
        for at in range(0, len(batch), _SCORE_BATCH):  # bounded calldata per transaction
            part = batch[at : at + _SCORE_BATCH]
            labels_of = [todo[w] for w in part]
            scores.update(s.market.score(task, part, labels_of, records, signer=s.signer))
    doc = {"task": task, "gold": info.gold_count, "scores": scores}

    def human() -> None:
        console.print(f"task {task}: {len(scores)} labelers scored on {info.gold_count} gold items")
        for who, correct in scores.items():
            console.print(f"  {who}: {correct}/{info.gold_count}")

    emit(doc, as_json, human)


@label_app.command("settle")
def settle_cmd(
    task: TaskArg,
    key: KeyOpt,
    market: MarketOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Settle TASK: slash the late and those below the threshold, unlock and pay the others."""
    with _session(key, market, rpc, password_file) as s:
        receipt = s.market.settle(task, signer=s.signer)
        rows = outcomes(s.chain, s.market, task)
        info = s.market.task(task)
        rest = next(int(e.args["toRequester"]) for e in receipt.events if e.event == "Settled")
    doc = {
        "task": task,
        "tx_hash": receipt.tx_hash,
        "gold_revealed": info.gold_revealed,
        "labelers": [r.to_dict() for r in rows],
        "to_requester": rest,
    }

    def human() -> None:
        console.print(f"task {task} settled (tx {receipt.tx_hash}):")
        for r in rows:
            if r.outcome == "paid":
                console.print(f"  paid    {r.labeler}: {r.amount}")
            else:
                console.print(
                    f"  slashed {r.labeler}: {r.amount} ({r.outcome}, fault {r.fault_id})"
                )
        console.print(f"  to the requester: {rest}")

    emit(doc, as_json, human)


@label_app.command("claim")
def claim_cmd(
    key: KeyOpt,
    token: Annotated[str, typer.Option("--token", help="The ERC-20 owed.")],
    market: MarketOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send what the market owes the key's account (rewards, a requester's remainder)."""
    with _session(key, market, rpc, password_file) as s:
        receipt = s.market.claim(token, signer=s.signer)
        amount = next(int(e.args["amount"]) for e in receipt.events if e.event == "Claimed")
    doc = {"account": s.signer.address, "token": token, "claimed": amount}
    emit(doc, as_json, lambda: console.print(f"claimed {amount} (base units) of {token}"))


@label_app.command("status")
def status_cmd(
    task: TaskArg,
    market: MarketOpt = None,
    rpc: RpcOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A task as the contract stores it, and each labeler's state."""
    ws = open_workspace()
    with open_chain(ws, rpc, read_only=True) as chain:
        m = _market(ws, chain, market)
        info = m.task(task)
        if int(info.requester, 16) == 0:
            raise NotFound(f"no task {task} in LabelingMarket {m.address}")
        work = {w: m.work_of(task, w) for w in m.labelers(task)}
    doc = {
        "task": task,
        **info.to_dict(),
        "labelers": {
            w: {
                "revealed": x.revealed,
                "scored": x.scored,
                "correct": x.correct,
            }
            for w, x in work.items()
        },
    }
    emit(doc, as_json)
