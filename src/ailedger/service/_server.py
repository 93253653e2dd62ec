"""Run the service under uvicorn on a socket bound here (port 0: any free port)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import TYPE_CHECKING

import uvicorn

from ailedger.log import AnyNoteKey, open_workspace_log
from ailedger.service._cosigning import Cosigning
from ailedger.service._sequencer import Sequencer, SequencerSettings
from ailedger.service.app import ServiceSettings, create_app
from ailedger.workspace import Workspace

if TYPE_CHECKING:
    from ailedger.service._anchoring import AnchorSchedule

__all__ = ["serve"]


def serve(
    workspace: Workspace,
    signer: AnyNoteKey,
    verifier: AnyNoteKey,
    settings: ServiceSettings,
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    sequencing: SequencerSettings = SequencerSettings(),
    on_ready: Callable[[str], None] | None = None,
    cosigning: Cosigning | None = None,
    anchoring: Callable[[Sequencer], AnchorSchedule] | None = None,
) -> None:
    """Serve the workspace's log until SIGINT/SIGTERM; ``on_ready(url)`` once it accepts.
    With ``cosigning``, checkpoints are published only with enough witness cosignatures;
    ``anchoring`` makes the schedule that anchors the published checkpoints on-chain."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say TCP; without it,
    # Nagle holds a response's body behind its headers until the delayed ACK (~40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    bound = sock.getsockname()[1]
    url = f"http://[{host}]:{bound}" if family == socket.AF_INET6 else f"http://{host}:{bound}"
    reader = open_workspace_log(workspace, read_only=False)
    sequencer = Sequencer(lambda: open_workspace_log(workspace), signer, sequencing, cosigning)
    app = create_app(
        reader,
        sequencer,
        verifier,
        settings,
        on_started=None if on_ready is None else (lambda: on_ready(url)),
        anchoring=None if anchoring is None else anchoring(sequencer),
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        reader.close()
        sock.close()
