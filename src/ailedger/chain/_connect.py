"""Factories the CLI edge calls: the embedded chain in a directory, or a node at a URL."""

from __future__ import annotations

from pathlib import Path

from ailedger.chain._artifacts import ArtifactStore
from ailedger.chain._events import EventIndex
from ailedger.chain._rpc import Retry, http_web3
from ailedger.chain.client import Chain
from ailedger.errors import ChainError

__all__ = ["connect_rpc", "open_embedded"]

_INDEX_FILE = "events.sqlite"


def open_embedded(
    directory: Path,
    *,
    artifacts_dir: Path | None = None,
    lock_timeout: float = 10.0,
    durable: bool = False,
    read_only: bool = False,
) -> Chain:
    """Open (creating if needed) the embedded chain stored in ``directory``.

    The directory holds ``chain.sqlite`` (the chain), ``events.sqlite`` (the event index)
    and ``lock``; one process uses it at a time (others wait up to ``lock_timeout`` s).
    Close the returned chain (or use ``with``) to release it. ``read_only`` writes nothing
    (a shared lock, the databases opened read-only, the event index copied into memory):
    reads work, a transaction fails with :class:`~ailedger.errors.StorageError`; a chain
    that does not exist yet is still created.
    """
    from ailedger.chain._embedded import EmbeddedNode  # py-evm: paid only when opened

    directory = Path(directory)
    if read_only and not (directory / "chain.sqlite").exists():
        read_only = False  # a chain never opened is created (a new, empty chain)
    node = EmbeddedNode(directory, lock_timeout=lock_timeout, durable=durable, read_only=read_only)
    try:
        index = EventIndex(directory / _INDEX_FILE, read_logs=node.read_logs, read_only=read_only)
    except BaseException:
        node.close()
        raise
    return Chain(
        node.w3,
        index=index,
        backend="embedded",
        endpoint=str(directory),
        artifacts=ArtifactStore(artifacts_dir),
        retries=0,
        one_tx_per_block=True,
        exclusive=True,
        on_close=node.close,
    )


def connect_rpc(
    url: str,
    chain_id: int | None = None,
    *,
    index_path: Path | None = None,
    artifacts_dir: Path | None = None,
    confirmations: int = 0,
    timeout: float = 10.0,
    retries: int = 4,
    backoff: float = 0.25,
    receipt_timeout: float = 120.0,
    poll_interval: float = 0.1,
    read_only: bool = False,
) -> Chain:
    """Connect to the JSON-RPC node at ``url`` (anvil, geth, an L2, Besu ...).

    Fails with :class:`NodeUnavailable` if it does not answer after ``retries`` retries
    (backoff ``backoff * 2**i`` s), and with :class:`ChainError` if ``chain_id`` is given
    and the node reports another. ``index_path`` keeps the event index on disk (the
    workspace's); without it the index lives in memory and is rebuilt by scanning.
    ``read_only`` leaves the file untouched (its index is copied into memory).
    """
    w3 = http_web3(url, timeout)
    actual = int(Retry(url, retries, backoff)(lambda: w3.eth.chain_id))
    if chain_id is not None and actual != chain_id:
        raise ChainError(
            f"the node at {url} is on chain id {actual}, but chain id {chain_id} is configured",
            hint="point --rpc at the right network or change the configured chain id",
        )
    return Chain(
        w3,
        index=EventIndex(index_path, read_only=read_only),
        backend="rpc",
        endpoint=url,
        artifacts=ArtifactStore(artifacts_dir),
        confirmations=confirmations,
        receipt_timeout=receipt_timeout,
        poll_interval=poll_interval,
        retries=retries,
        backoff=backoff,
    )
