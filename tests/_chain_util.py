"""The chain backends the tests run on: :class:`Backend` opens (and reopens) a ``Chain`` on the
embedded chain or on anvil. The ``backend`` fixture (tests/conftest.py) parametrises over
both; ``restartable``, ``chain`` and ``account`` build on it in tests/chain/conftest.py."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path
from typing import Any

from _anvil import Anvil
from ailedger.chain import ANVIL_CHAIN_ID, Chain
from ailedger.chain.backends import backend_named

FIXTURES = Path(__file__).resolve().parent / "chain" / "fixtures"
ARTIFACTS = FIXTURES / "artifacts"
ETHER = 10**18


class Backend:
    """Opens (and reopens) a :class:`Chain` on one backend, for restart tests."""

    def __init__(self, kind: str, tmp_path: Path, anvil: Anvil | None) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.anvil = anvil
        self.opened: list[Chain] = []
        #: Where contract artifacts come from: the test fixtures (Probe), or None for the
        #: ones shipped in the package (Membership, LogAnchors, ModelRegistry).
        self.artifacts_dir: Path | None = ARTIFACTS

    def settings(self) -> dict[str, Any]:
        """The ``[chain]`` settings a workspace on this backend would have."""
        if self.kind == "embedded":
            return {"backend": "embedded"}
        assert self.anvil is not None
        url = self.anvil.url
        return {
            "backend": "rpc",
            "url": url,
            "chain_id": ANVIL_CHAIN_ID,
            "retries": 1,
            "backoff": 0.05,
        }

    def open(self) -> Chain:
        """Open the chain through the same backend map the CLI and the demos use."""
        settings = self.settings()
        chain = backend_named(settings["backend"]).open(
            settings, state_dir=self.tmp_path, artifacts_dir=self.artifacts_dir
        )
        self.opened.append(chain)
        return chain

    def restart(self, chain: Chain, *, kill: bool = False) -> Chain:
        """Close ``chain``, restart the node (SIGKILL if ``kill``), and open it again."""
        head = chain.block_number()
        chain.close()
        if self.anvil is not None:
            if self.anvil.state is not None:
                self.anvil.wait_state_saved(head)
            self.anvil.stop(signal.SIGKILL if kill else signal.SIGTERM)
            self.anvil.start()
        return self.open()

    def close_all(self) -> None:
        for chain in self.opened:
            with contextlib.suppress(Exception):  # already closed, or its node is gone
                chain.close()
