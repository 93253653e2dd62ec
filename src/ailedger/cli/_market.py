"""``ailedger market``: pay per inference (usage receipts; the jobs are ``market job``).

``market serve`` (provider) serves one registered model version over HTTP on loopback by
default, its files checked against the registered fingerprint before the model is loaded,
and answers every call signed by the job's consumer with the output and an EIP-712 receipt
signed by ``--key``, stored in ``--store`` (default ``.ailedger/market/provider.sqlite``)
with the consumer's signed request before it is returned. Whose signature a job needs comes
from the InferenceMarket (``--commit-epochs``: jobs active there for this key, model and
price; each closed epoch's root is committed there) or from a job table (``--jobs FILE``,
``{"0xJOB": "0xCONSUMER"}``); one of the two is required (a provider with neither would
serve anyone). Once the service accepts connections one ready line goes to standard output
(``--json``: ``{"url", "provider", "model", "model_digest", "chain_id", "market_contract",
"price", "jobs"}``).

``market call`` (consumer) signs the call with ``--key`` (the job's consumer), calls a
provider pinned to its receipt signer (``--provider``), the model digest paid for
(``--model-digest``) and the market's domain (``--chain-id``, ``--market-contract``), checks
the receipt and keeps it in ``--store`` (default ``.ailedger/market/consumer.sqlite``);
``market receipts`` lists the kept receipts; ``market verify`` fetches the inclusion proofs of
kept receipts whose epoch is closed (``--url``) and re-checks every kept receipt offline (exit
1 if one fails). ``--market-contract`` defaults to the InferenceMarket that ``ailedger chain
deploy`` recorded for the chain.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

import typer

from ailedger.cli._app import app
from ailedger.cli._chain_common import RpcOpt
from ailedger.cli._common import JsonOpt, console, emit, state
from ailedger.cli._keys import PasswordFileOpt, open_keystore, open_workspace, unlock_secp256k1
from ailedger.errors import InvalidInput, NotFound, WorkspaceError

__all__ = ["market_app"]

market_app = typer.Typer(
    help="Pay per inference: serve a model with usage receipts, call it, verify receipts.",
    no_args_is_help=True,
)
app.add_typer(market_app, name="market")

ChainIdOpt = Annotated[
    int | None,
    typer.Option("--chain-id", help="Chain id of the receipts' domain (default: the workspace's)."),
]
ContractOpt = Annotated[
    str | None,
    typer.Option(
        "--market-contract",
        help="Address of the InferenceMarket the receipts are for (their EIP-712 domain; "
        "default: the one `ailedger chain deploy` recorded for the chain).",
    ),
]
StoreOpt = Annotated[
    Path | None,
    typer.Option("--store", help="The receipt store (SQLite; default: in the workspace)."),
]


def _hex32(text: str, what: str) -> bytes:
    body = text.removeprefix("0x").removeprefix("sha256:")
    if len(body) != 64:
        raise InvalidInput(f"{what} must be 64 hex digits (0x... or sha256:...)")
    try:
        return bytes.fromhex(body)
    except ValueError:
        raise InvalidInput(f"{what} must be 64 hex digits (0x... or sha256:...)") from None


def _chain_id(option: int | None) -> int:
    if option is not None:
        return option
    from ailedger.chain.backends import workspace_chain_id

    found = workspace_chain_id(open_workspace())
    if found is None:
        raise InvalidInput("the workspace names no chain id", hint="give --chain-id N")
    return int(found)


def _market_contract(option: str | None, chain_id: int) -> str:
    """``--market-contract``, else the InferenceMarket of the workspace's deployment on
    ``chain_id``."""
    if option is not None:
        return option
    from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook

    try:
        ws = open_workspace()
    except WorkspaceError:
        raise WorkspaceError(
            "no workspace to find the InferenceMarket in",
            hint="give --market-contract ADDRESS, or run `ailedger init`",
        ) from None
    return DeploymentBook(ws.path / DEPLOYMENTS_FILE).require(chain_id).address("InferenceMarket")


def _default_store(option: Path | None, name: str) -> Path:
    if option is not None:
        return option
    try:
        ws = open_workspace()
    except WorkspaceError:
        raise WorkspaceError(
            "no workspace to keep receipts in", hint="give --store PATH, or run `ailedger init`"
        ) from None
    return ws.path / "market" / name


def _location(uri: str | None) -> Path | None:
    if uri is None:
        return None
    parts = urlsplit(uri)
    return Path(unquote(parts.path)) if parts.scheme == "file" else None


@market_app.command("serve")
def serve_cmd(
    model: Annotated[str, typer.Option("--model", help="The registered version NAME@VERSION.")],
    key: Annotated[str, typer.Option("--key", help="The provider's secp256k1 key (signs).")],
    market_contract: ContractOpt = None,
    price: Annotated[int, typer.Option("--price", min=0, help="Price per call (wei).")] = 0,
    plugin: Annotated[
        str, typer.Option("--plugin", help="How to load the model: sklearn, onnx or callable.")
    ] = "sklearn",
    callable_: Annotated[
        str | None,
        typer.Option("--callable", help="module:function for the callable plug-in."),
    ] = None,
    path: Annotated[
        Path | None,
        typer.Option("--path", help="The model files (default: where it was registered from)."),
    ] = None,
    chain_id: ChainIdOpt = None,
    store: StoreOpt = None,
    epoch_size: Annotated[
        int, typer.Option("--epoch-size", min=1, help="Close an epoch after this many receipts.")
    ] = 1024,
    epoch_seconds: Annotated[
        float,
        typer.Option(
            "--epoch-seconds", min=0.001, help="...or when its first receipt is this old."
        ),
    ] = 60.0,
    fsync: Annotated[
        bool,
        typer.Option("--fsync", help="Flush each receipt to disk (power loss, not only kill)."),
    ] = False,
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free port).")] = 8090,
    commit_epochs: Annotated[
        bool,
        typer.Option(
            "--commit-epochs",
            help="Serve only jobs active on the InferenceMarket at --market-contract on the "
            "workspace's chain (or --rpc) for this key, model and price, each call signed by "
            "the job's consumer, and commit each closed epoch's root there for them (KEY pays "
            "the gas).",
        ),
    ] = False,
    jobs: Annotated[
        Path | None,
        typer.Option(
            "--jobs",
            help='Serve the jobs of this JSON table {"0xJOB": "0xCONSUMER"}, each call signed '
            "by its consumer (instead of --commit-epochs).",
        ),
    ] = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Serve a registered model version; every call, signed by the job's consumer, returns its
    output and a signed receipt."""
    from ailedger.cli._workflow import open_registry
    from ailedger.markets.inference import (
        ReceiptBook,
        job_table,
        load_job_table,
        load_predictor,
        market_domain,
        verified_model,
    )

    try:
        from ailedger.markets.inference.provider import run_provider
    except ImportError as exc:
        raise InvalidInput(
            f"the provider needs the server extra ({exc.name} is missing)",
            hint="pip install 'ailedger[server]'",
        ) from None
    from ailedger.registry import VersionRef

    if commit_epochs == (jobs is not None):
        raise InvalidInput(
            "name whose signature each job needs: --commit-epochs (the jobs on the market) or "
            "--jobs FILE (a job table), not both, not neither",
            hint='a job table is a JSON object {"0xJOB": "0xCONSUMER"}',
        )
    if rpc is not None and not commit_epochs:
        raise InvalidInput("--rpc names the market's chain: it goes with --commit-epochs")
    table = None if jobs is None else job_table(load_job_table(jobs))
    ref = VersionRef.parse(model)
    with open_registry(read_only=True) as registry:
        row = registry.model(ref)
    digest = _hex32(row.digest, f"the digest of {ref}")
    files = path or _location(row.location)
    if files is None:
        raise NotFound(f"{ref} was registered from no local path", hint="give --path DIR")
    verified = verified_model(files, digest)  # before anything is unpickled
    predictor = load_predictor(verified, plugin, callable_)
    access = None
    if commit_epochs:
        # the chain is checked before the book is opened (a refusal leaves no store behind)
        access, found_chain = _market_access(rpc, market_contract, chain_id)
        domain = market_domain(found_chain, _market_contract(market_contract, found_chain))
    else:
        ids = _chain_id(chain_id)
        domain = market_domain(ids, _market_contract(market_contract, ids))
    signer = unlock_secp256k1(open_keystore(), key, password_file, purpose="provider")
    with contextlib.ExitStack() as stack:
        book = stack.enter_context(
            ReceiptBook(
                _default_store(store, "provider.sqlite"),
                signer=signer,
                domain=domain,
                model_digest=digest,
                price=price,
                epoch_size=epoch_size,
                epoch_seconds=epoch_seconds,
                fsync=fsync,
            )
        )
        directory = table
        if access is not None:
            book.on_epoch_closed, directory = _committer(access, book, signer)
        assert directory is not None

        def ready(url: str) -> None:
            doc = {
                "url": url,
                "provider": signer.address,
                "model": str(ref),
                "model_digest": row.digest,
                "chain_id": domain.chain_id,
                "market_contract": domain.verifying_contract,
                "price": str(price),
                "jobs": "market" if commit_epochs else str(jobs),
            }
            if as_json:
                sys.stdout.write(json.dumps(doc, sort_keys=True) + "\n")
            else:
                console.print(f"serving {ref} ({row.digest}) at {url} as {signer.address}")
            sys.stdout.flush()

        run_provider(
            book, predictor, model=str(ref), host=host, port=port, on_ready=ready, jobs=directory
        )


def _market_access(rpc: str | None, contract: str | None, chain_id: int | None) -> Any:
    """How ``market serve --commit-epochs`` reaches the InferenceMarket, and its chain id: the
    chain (``--rpc``, else the workspace's) must be the receipts' chain (``--chain-id`` when
    given) and hold a contract at the market's address. The chain is opened for each look-up
    or commitment and closed after it, so the embedded chain (one process at a time) stays
    usable by the consumer's and the verifiers' commands while the provider serves."""
    from ailedger.chain.inference_market import InferenceMarket
    from ailedger.cli._chain_common import open_chain

    ws = open_workspace()
    with open_chain(ws, rpc, read_only=True) as chain:
        found = chain.chain_id
        if chain_id is not None and found != chain_id:
            where = "the node at --rpc" if rpc is not None else "the workspace's chain"
            raise InvalidInput(
                f"{where} is on chain {found}, the receipts are for chain {chain_id}",
                hint="serve with --chain-id of the market's chain, or without --commit-epochs",
            )
        address = _market_contract(contract, found)
        if not chain.code(address):
            raise InvalidInput(
                f"no contract at {address} on chain {found}",
                hint="deploy it (`ailedger chain deploy`) and pass its InferenceMarket address",
            )

    @contextlib.contextmanager
    def access() -> Iterator[Any]:
        with open_chain(ws, rpc) as chain:
            yield InferenceMarket(chain, chain.at("InferenceMarket", address, track=False))

    return access, found


def _committer(access: Any, book: Any, signer: Any) -> Any:
    """The ``on_epoch_closed`` hook and the job directory of ``market serve --commit-epochs``."""
    from ailedger.markets.inference.onchain import epoch_committer, onchain_jobs

    def report(line: str) -> None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()

    return epoch_committer(access, book, signer=signer, report=report), onchain_jobs(access, book)


def _input(text: str) -> Any:
    from ailedger import _json

    if text.startswith("@"):
        file = Path(text[1:])
        try:
            text = file.read_text()
        except FileNotFoundError:
            raise NotFound(f"{file} does not exist") from None
    return _json.loads(text, what="--input")


@market_app.command("call")
def call_cmd(
    url: Annotated[str, typer.Argument(help="The provider's URL.", show_default=False)],
    input: Annotated[str, typer.Option("--input", help="The input as JSON, or @FILE.")],
    provider: Annotated[
        str, typer.Option("--provider", help="The provider's receipt signer (an address).")
    ],
    model_digest: Annotated[
        str, typer.Option("--model-digest", help="The model digest paid for (sha256:HEX).")
    ],
    key: Annotated[
        str, typer.Option("--key", help="Your secp256k1 key (the job's consumer): signs the call.")
    ],
    job: Annotated[str, typer.Option("--job", help="The job id (0x + 64 hex).")],
    market_contract: ContractOpt = None,
    salt: Annotated[
        str | None, typer.Option("--salt", help="32-byte salt of the request digest (0x...).")
    ] = None,
    price: Annotated[
        int | None,
        typer.Option(
            "--price",
            min=0,
            help="The agreed price per call (wei): refuse a receipt charging more or less.",
        ),
    ] = None,
    ttl: Annotated[
        int, typer.Option("--ttl", min=1, help="Seconds the signed request stays usable.")
    ] = 300,
    chain_id: ChainIdOpt = None,
    store: StoreOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Call a provider, the request signed with --key; check the receipt (signer, domain,
    model, job, digests, price) and keep it."""
    from ailedger.markets.inference import ProviderClient, ReceiptWallet, market_domain

    job_id = _hex32(job, "--job")
    salt_bytes = None if salt is None else _hex32(salt, "--salt")
    value = _input(input)
    ids = _chain_id(chain_id)
    domain = market_domain(ids, _market_contract(market_contract, ids))
    client = ProviderClient(  # checks the URL and the pins before a password is asked for
        url,
        provider=provider,
        model_digest=_hex32(model_digest, "--model-digest"),
        domain=domain,
        price=price,
    )
    signer = unlock_secp256k1(open_keystore(), key, password_file, purpose="consumer")
    with ReceiptWallet(_default_store(store, "consumer.sqlite")) as wallet, client:
        client.wallet = wallet
        result = client.call(value, job=job_id, signer=signer, salt=salt_bytes, ttl=ttl)
    r = result.receipt.receipt
    emit(
        result.to_dict(),
        as_json,
        lambda: console.print(
            f"output {json.dumps(result.output)}\nreceipt: job 0x{r.job.hex()} call {r.counter}, "
            f"epoch {r.epoch} position {r.position}, price {r.price}, verified and kept"
        ),
    )


@market_app.command("receipts")
def receipts_cmd(
    job: Annotated[str | None, typer.Option("--job", help="Only this job's receipts.")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """List the kept receipts (the consumer's wallet)."""
    from ailedger.markets.inference import ReceiptWallet

    path = _default_store(store, "consumer.sqlite")
    if not path.exists():
        raise NotFound(f"no receipt store at {path}")
    with ReceiptWallet(path) as wallet:
        rows = wallet.rows(None if job is None else _hex32(job, "--job"))

    def human() -> None:
        for row in rows:
            r = row.receipt.receipt
            proven = "proof kept" if row.proof is not None else "no proof yet"
            console.print(
                f"job 0x{r.job.hex()} call {r.counter}: {row.provider} epoch {r.epoch} "
                f"position {r.position}, price {r.price}, {proven}"
            )
        console.print(f"{len(rows)} receipts")

    emit({"receipts": [row.to_dict() for row in rows]}, as_json, human)


@market_app.command("verify")
def verify_cmd(
    url: Annotated[
        str | None, typer.Option("--url", help="Fetch missing inclusion proofs from this provider.")
    ] = None,
    job: Annotated[str | None, typer.Option("--job", help="Only this job's receipts.")] = None,
    store: StoreOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Re-check every kept receipt (signature, digests, inclusion in its epoch's signed root);
    with --url, fetch the proofs of receipts whose epoch has closed since."""
    from ailedger.markets.inference import ProviderClient, ReceiptWallet, verify_kept

    path = _default_store(store, "consumer.sqlite")
    if not path.exists():
        raise NotFound(f"no receipt store at {path}")
    proven = pending = fetched = 0
    with ReceiptWallet(path) as wallet:
        rows = wallet.rows(None if job is None else _hex32(job, "--job"))
        for row in rows:
            if url is not None and row.proof is None:
                r = row.receipt
                with ProviderClient(
                    url,
                    provider=row.provider,
                    model_digest=r.receipt.model_digest,
                    domain=r.domain,
                    wallet=wallet,
                ) as client:
                    try:
                        client.prove(r)
                        fetched += 1
                    except NotFound:
                        pass  # its epoch is still open
        for row in wallet.rows(None if job is None else _hex32(job, "--job")):
            if verify_kept(row):
                proven += 1
            else:
                pending += 1
    doc = {"receipts": proven + pending, "proven": proven, "pending": pending, "fetched": fetched}
    if state.verbose and not as_json:
        console.print(f"store {path}")
    emit(
        doc,
        as_json,
        lambda: console.print(
            f"{proven + pending} receipts verified: {proven} proven in their epoch's signed root, "
            f"{pending} awaiting their epoch's close ({fetched} proofs fetched now)"
        ),
    )
    if not rows:
        raise NotFound(f"no kept receipts in {path}" + ("" if job is None else f" for job {job}"))
