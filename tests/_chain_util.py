"""The chain backends the tests run on: :class:`Backend` opens (and reopens) a ``Chain`` on the
embedded chain or on anvil. The ``backend`` fixture (tests/conftest.py) parametrises over
both; ``restartable``, ``chain`` and ``account`` build on it in tests/chain/conftest.py."""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

from _anvil import Anvil
from ailedger.chain import ANVIL_CHAIN_ID, Chain, connect_rpc, open_embedded

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

    def open(self) -> Chain:
        if self.kind == "embedded":
            chain = open_embedded(self.tmp_path / "chain", artifacts_dir=self.artifacts_dir)
        else:
            assert self.anvil is not None
            chain = connect_rpc(
                self.anvil.url,
                chain_id=ANVIL_CHAIN_ID,
                index_path=self.tmp_path / "events.sqlite",
                artifacts_dir=self.artifacts_dir,
                retries=1,
                backoff=0.05,
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
