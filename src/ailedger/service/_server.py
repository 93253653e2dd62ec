"""Run the service under uvicorn on a socket bound here (port 0: any free port).

Once a server has started (imports done, the log and the embedded chain open, the leaf-hash
map built), :func:`settle_heap` freezes what start-up left out of the cyclic garbage
collector's reach. Without it, every full (generation 2) collection walks all of those objects:
``bench_serve`` measured a 50-70 ms pause of the event loop every ~0.4 s under load, during
which all 64 clients waited (p99 66-84 ms; 23 ms with the freeze).
"""

from __future__ import annotations

import dataclasses
import gc
import socket
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import uvicorn

from ailedger.chain.backends import embedded_chain_dir, workspace_chain_id, workspace_rpc_url
from ailedger.identity.keys import Keystore
from ailedger.log import AnyNoteKey, Checkpoint, open_workspace_log
from ailedger.service._cosigning import Cosigning
from ailedger.service._sequencer import Sequencer, SequencerSettings
from ailedger.service.app import ServiceSettings, create_app
from ailedger.service.explorer import explorer_router
from ailedger.service.explorer_api import ExplorerSource, explorer_api_router
from ailedger.service.rpc import EmbeddedRpc, RpcSettings, rpc_router
from ailedger.workspace import Workspace

if TYPE_CHECKING:
    from ailedger.service._anchoring import AnchorSchedule
    from ailedger.service.membership import ChainMembership

__all__ = ["listen", "serve", "settle_heap", "when_started"]


def listen(host: str, port: int, backlog: int) -> tuple[socket.socket, str]:
    """A listening TCP socket on ``host:port`` (0: any free port) and its ``http://`` URL."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say TCP; without it,
    # Nagle holds a response's body behind its headers until the delayed ACK (~40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    bound = sock.getsockname()[1]
    url = f"http://[{host}]:{bound}" if family == socket.AF_INET6 else f"http://{host}:{bound}"
    return sock, url


def settle_heap() -> None:
    """Collect garbage once, then move every surviving object to the permanent generation
    (:func:`gc.freeze`): later collections skip what start-up built. Objects frozen here are
    still freed by reference counting; only a cycle among them that becomes garbage later is
    never reclaimed (start-up state lives as long as the process)."""
    gc.collect()
    gc.freeze()


def when_started(
    on_ready: Callable[[str], None] | None,
    url: str,
    background: Sequence[Callable[[], None]] = (),
) -> Callable[[], None]:
    """The start-up hook of a server listening at ``url``: :func:`settle_heap`, then
    ``on_ready(url)`` (the CLI's ready line), then the ``background`` starters (each only
    hands work to a thread of its own)."""

    def started() -> None:
        settle_heap()
        if on_ready is not None:
            on_ready(url)
        for start in background:
            start()

    return started


def serve(
    workspace: Workspace,
    signer: AnyNoteKey | None,
    verifier: AnyNoteKey,
    settings: ServiceSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    sequencing: SequencerSettings = SequencerSettings(),
    rpc: RpcSettings = RpcSettings(),
    serve_chain: bool = True,
    on_ready: Callable[[str], None] | None = None,
    cosigning: Cosigning | None = None,
    anchoring: Callable[[Sequencer, str | None], AnchorSchedule] | None = None,
    membership: Callable[[EmbeddedRpc | None], ChainMembership] | None = None,
    explorer_source: Callable[[str | None], ExplorerSource] | None = None,
) -> None:
    """Serve the workspace's log until SIGINT/SIGTERM; ``on_ready(url)`` once it accepts.
    With ``cosigning``, checkpoints are published only with enough witness cosignatures;
    ``anchoring`` makes the schedule that anchors the published checkpoints on-chain (given
    the URL of this service's own ``/rpc`` when it serves the embedded chain, which it then
    holds: the anchors go through it); ``membership`` makes the on-chain membership check
    (given the embedded chain this service holds, if it serves one: membership is read from
    that same in-process node); ``explorer_source`` (given that same URL) opens the
    registry that the explorer's JSON endpoints read (:mod:`.explorer_api`; none: not served).

    A workspace on the embedded chain has it served at ``/rpc`` (the service holds its lock
    until it stops; not with ``serve_chain=False``); with an external chain, ``/v1/chain``
    names the node instead. The explorer (:mod:`.explorer`) is served at ``/``. Without a
    ``signer`` the service is read-only: it serves the stored checkpoints and takes nothing."""
    sock, url = listen(host, port, 2048)
    chain_dir = embedded_chain_dir(workspace) if serve_chain else None
    node = None
    try:
        node = None if chain_dir is None else EmbeddedRpc(chain_dir, rpc)
        router = rpc_router(
            node,
            external_url=workspace_rpc_url(workspace),
            chain_id=workspace_chain_id(workspace),
            embedded=embedded_chain_dir(workspace) is not None,
        )
        read_only = signer is None
        reader = open_workspace_log(workspace, read_only=read_only)
        try:
            sequencer = Sequencer(
                lambda: open_workspace_log(workspace, read_only=read_only),
                signer,
                sequencing,
                cosigning,
            )
            own_rpc = None if node is None else f"{url}/rpc"
            explorer = explorer_router(
                verifier,
                [] if cosigning is None else cosigning.keys,
                0 if cosigning is None else cosigning.threshold,
                dsse_keys=[k.public_key for k in Keystore(workspace.keys_dir).list_keys()],
            )
            if membership is not None:
                settings = dataclasses.replace(settings, membership=membership(node))
            routers = [router, explorer]
            closers: list[Callable[[], None]] = []
            starters: list[Callable[[], None]] = []
            if explorer_source is not None:
                opener = explorer_source

                def published() -> int:
                    note = sequencer.note
                    return 0 if note is None else Checkpoint.parse(note.text).size

                api = explorer_api_router(lambda: opener(own_rpc), published)
                routers.append(api.router)
                # A writing service that does not serve its embedded chain opens it itself to
                # anchor; the explorer's source would hold a read-only open of it from start
                # and make those opens wait: there the source opens on the first page only.
                if read_only or node is not None or embedded_chain_dir(workspace) is None:
                    starters.append(api.start)
                closers.append(api.close)
            app = create_app(
                reader,
                sequencer,
                verifier,
                settings,
                on_started=when_started(on_ready, url, starters),
                anchoring=None if anchoring is None else anchoring(sequencer, own_rpc),
                routers=routers,
            )
            config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
            try:
                uvicorn.Server(config).run(sockets=[sock])
            finally:
                for close in closers:
                    close()
        finally:
            reader.close()
    finally:
        if node is not None:
            node.close()
        sock.close()
