"""``ailedger oracle``: run an oracle node, or lead one round of a feed.

``oracle run`` checks the model's fingerprint (refusing to start on a mismatch), then serves
the node on 127.0.0.1 until interrupted, printing one ``ready`` line (JSON with ``--json``).
``oracle round`` collects observations and signatures from the nodes at ``--peers``,
transmits the report to the OracleFeeds contract at ``--contract`` on the workspace chain
(or ``--rpc``) and appends the statements to the workspace log. ``oracle challenge``
challenges an oracle's observation in a logged round before the OracleJudge at ``--judge``:
the oracle is slashed if its own signed value lies outside the feed's tolerance of the stored
median, within the feed's challenge window; otherwise one line says why not (exit 9).

Until the root app imports this module, ``python -m ailedger.cli._oracle ARGS`` runs it.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Annotated
from urllib.parse import unquote, urlparse

import typer
from rich.markup import escape

from ailedger.cli._app import app
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._keys import PasswordFileOpt, open_workspace, unlock_secp256k1
from ailedger.errors import InvalidInput
from ailedger.identity.keys import Keystore
from ailedger.log import open_workspace_log
from ailedger.oracle.node import OracleNode, serve

__all__ = ["oracle_app"]

oracle_app = typer.Typer(help="Oracle nodes and rounds (AI scores for contracts).")
app.add_typer(oracle_app, name="oracle")

FeedOpt = Annotated[str, typer.Option("--feed", help="Feed name, e.g. drought/farm-3.")]
CreatorOpt = Annotated[
    str, typer.Option("--feed-creator", help="Address of the feed's creator (its namespace).")
]
KeyOpt = Annotated[str, typer.Option("--key", help="Name of a secp256k1 key in the workspace.")]
#: The same option as ``ailedger chain --rpc``; ``_chain`` (web3) is imported only by ``round``,
#: so a node process starts without it.
RpcOpt = Annotated[
    str | None,
    typer.Option(
        "--rpc",
        envvar="AILEDGER_RPC_URL",
        help="JSON-RPC URL of the node (default: the workspace's [chain] config).",
    ),
]
DigestOpt = Annotated[
    str | None,
    typer.Option("--digest", help="The model's expected subject digest (hex or sha256:HEX)."),
]


def _model(ref: str | None, model_dir: Path | None, digest: str | None) -> tuple[Path, str]:
    if (ref is None) == (model_dir is None):
        raise InvalidInput("give exactly one of --model N@V and --model-dir DIR")
    if model_dir is not None:
        if digest is None:
            raise InvalidInput("--model-dir needs --digest (the registered subject digest)")
        return model_dir, digest
    from ailedger.cli._workflow import open_registry
    from ailedger.registry._refs import VersionRef

    with open_registry() as registry:
        row = registry.model(VersionRef.parse(str(ref)))
    location = urlparse(row.location or "")
    if location.scheme != "file":
        raise InvalidInput(f"model {ref} has no local location to load it from")
    registered = row.digest.removeprefix("sha256:")
    if digest is not None and digest.removeprefix("sha256:").lower() != registered:
        raise InvalidInput(f"--digest does not match the registered digest of {ref}")
    return Path(unquote(location.path)), registered


@oracle_app.command("run")
def run_cmd(
    feed: FeedOpt,
    creator: CreatorOpt,
    key: KeyOpt,
    model: Annotated[
        str | None, typer.Option("--model", help="Registered model N@V (its digest and files).")
    ] = None,
    model_dir: Annotated[
        Path | None, typer.Option("--model-dir", help="Model directory (with --digest).")
    ] = None,
    digest: DigestOpt = None,
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0: any free).")] = 0,
    lie_by: Annotated[
        int, typer.Option("--lie-by", help="Add N to every score (a lying oracle, for demos).")
    ] = 0,
    faulty: Annotated[
        bool, typer.Option("--faulty", help="Drop every request unanswered (a faulty oracle).")
    ] = False,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve an oracle node until interrupted (the model is fingerprint-checked first)."""
    directory, expected = _model(model, model_dir, digest)
    store = Keystore(open_workspace().keys_dir)
    signer = unlock_secp256k1(store, key, password_file, purpose="oracle")
    node = OracleNode(feed, signer, directory, expected, creator=creator, lie_by=lie_by)
    node.check_model()
    server = serve(node, port=port, faulty=faulty)
    ready = {"ready": True, "url": server.url, "oracle": node.address, "feed": feed}
    if as_json:  # one line, so a supervisor can read it before the node is stopped
        typer.echo(json.dumps(ready))
    else:
        console.print(f"oracle {node.address} ready at {server.url}")
    sys.stdout.flush()
    try:
        threading.Event().wait()
    finally:
        server.stop()


@oracle_app.command("round")
def round_cmd(
    feed: FeedOpt,
    creator: CreatorOpt,
    key: Annotated[str, typer.Option("--key", help="Key that transmits and signs the report.")],
    epoch: Annotated[int, typer.Option("--epoch", help="The round's epoch (strictly growing).")],
    batch: Annotated[Path, typer.Option("--batch", help="The sensor batch (JSONL).")],
    peers: Annotated[str, typer.Option("--peers", help="Oracle node URLs, comma-separated.")],
    contract: Annotated[str, typer.Option("--contract", help="OracleFeeds address.")],
    digest: Annotated[str, typer.Option("--digest", help="The model's subject digest.")],
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Lead one round: observations, co-signatures, on-chain report, log entries."""
    from ailedger.cli._chain_common import open_chain
    from ailedger.oracle.round import run_round

    urls = [u.strip().rstrip("/") for u in peers.split(",") if u.strip()]
    if not urls:
        raise InvalidInput("--peers names no oracle")
    workspace = open_workspace()
    signer = unlock_secp256k1(
        Keystore(workspace.keys_dir), key, password_file, purpose="transmitter"
    )
    with open_chain(workspace, rpc) as chain, open_workspace_log(workspace) as log:
        feeds = chain.at("OracleFeeds", contract, track=False)
        result = run_round(
            chain,
            feeds,
            feed,
            epoch,
            batch,
            urls,
            model_digest=digest,
            creator=creator,
            transmitter=signer,
            log=log,
        )

    def human() -> None:
        console.print(
            f"round {epoch} of {escape(feed)}: answer {result.answer}, "
            f"{len(result.observations)} observations, {len(result.signers)} signatures, "
            f"tx {result.tx_hash} (block {result.block_number})"
        )
        for url, why in result.failures.items():
            console.print(f"  left out {escape(url)}: {escape(why)}")

    emit(result.to_dict(), as_json, human)


@oracle_app.command("challenge")
def challenge_cmd(
    judge: Annotated[str, typer.Option("--judge", help="OracleJudge address.")],
    contract: Annotated[str, typer.Option("--contract", help="OracleFeeds address.")],
    log_index: Annotated[
        int,
        typer.Option("--log-index", min=0, help="The round's oracle-report entry in the log."),
    ],
    oracle: Annotated[str, typer.Option("--oracle", help="The oracle whose observation.")],
    key: Annotated[str, typer.Option("--key", help="Key that challenges (the prover).")],
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Challenge an oracle's signed observation in a logged round (slashes it if it lies
    outside the feed's tolerance of the stored median, within the window)."""
    from ailedger.chain.oracle_judge import OracleJudge
    from ailedger.chain.oracles import OracleFeeds
    from ailedger.cli._chain_common import open_chain
    from ailedger.oracle.challenge import logged_challenge

    workspace = open_workspace()
    signer = unlock_secp256k1(
        Keystore(workspace.keys_dir), key, password_file, purpose="challenger"
    )
    with open_chain(workspace, rpc) as chain, open_workspace_log(workspace) as log:
        feeds = OracleFeeds(chain, chain.at("OracleFeeds", contract, track=False))
        found = logged_challenge(log, log_index, feeds, oracle)
        # tracked: the receipt's StakeManager Slashed event is read back
        stake = chain.call(chain.at("OracleJudge", judge, track=False), "stakes")
        chain.at("StakeManager", str(stake))
        judged = OracleJudge(chain, chain.at("OracleJudge", judge))
        result = judged.challenge(
            found.report, found.position, found.signature, signer=signer.to_local_account()
        )
    doc = {**result.to_dict(), "log_index": log_index, "stake_manager": str(stake)}

    def human() -> None:
        console.print(
            f"slashed {result.oracle}: {result.slashed} wei (reason {result.reason_code}; its "
            f"{result.value} is {result.deviation} from the median {result.answer}), "
            f"{result.prover_share} to {result.challenger}, {result.treasury_share} to the "
            f"treasury; tx {result.tx_hash}"
        )

    emit(doc, as_json, human)


if __name__ == "__main__":
    from ailedger.cli._app import main

    main(["oracle", *sys.argv[1:]])
