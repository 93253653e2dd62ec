"""Helpers for the LogAnchors tests: move block time on py-evm and anvil alike, and a
registered log that signs, cosigns and anchors its checkpoints."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from contract_helpers import Chain, Deployment, key, register_log, sign_checkpoint
from web3.contract import Contract
from web3.providers.eth_tester import EthereumTesterProvider

from ailedger.chain.eip712 import log_id
from ailedger.identity.keys import Secp256k1Signer

#: LogAnchors.CONFIG_DELAY: a proposed witness set waits this long.
CONFIG_DELAY = 2 * 24 * 3600


def now(chain: Chain) -> int:
    return int(chain.w3.eth.get_block("latest")["timestamp"])


def warp(chain: Chain, seconds: int) -> int:
    """Mine a block ``seconds`` after the latest one; return its timestamp."""
    target = now(chain) + seconds
    provider = chain.w3.provider
    if isinstance(provider, EthereumTesterProvider):
        provider.make_request("testing_timeTravel", [target])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [1])  # type: ignore[arg-type]
    else:
        provider.make_request("evm_setNextBlockTimestamp", [target])  # type: ignore[arg-type]
        provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    return now(chain)


def sorted_keys(keys: Sequence[Secp256k1Signer]) -> list[Secp256k1Signer]:
    return sorted(keys, key=lambda k: int(k.address, 16))


@dataclass
class Log:
    """A log registered on ``anchors``: its id, key, witnesses and admin."""

    chain: Chain
    anchors: Contract
    id: bytes
    signer: Secp256k1Signer
    witnesses: list[Secp256k1Signer]
    admin: str

    def sign(
        self, size: int, root: bytes, witnesses: Sequence[Secp256k1Signer] | None = None
    ) -> tuple[bytes, list[bytes]]:
        ws = list(self.witnesses if witnesses is None else witnesses)
        return sign_checkpoint(
            self.anchors, self.chain.chain_id, self.id, size, root, self.signer, ws
        )

    def anchor(
        self, size: int, root: bytes, witnesses: Sequence[Secp256k1Signer] | None = None
    ) -> Any:
        sig, cosigs = self.sign(size, root, witnesses)
        return self.anchors.functions.anchor(self.id, size, root, sig, cosigs)

    def anchor_with_proof(
        self,
        size: int,
        root: bytes,
        proof: list[bytes],
        witnesses: Sequence[Secp256k1Signer] | None = None,
    ) -> Any:
        sig, cosigs = self.sign(size, root, witnesses)
        return self.anchors.functions.anchorWithProof(self.id, size, root, sig, cosigs, proof)

    def stored(self, index: int) -> Any:
        """anchorAt(index) as a named tuple-like dict."""
        size, block, ts, cosigs, proven, epoch, root = self.anchors.functions.anchorAt(
            self.id, index
        ).call()
        return {
            "size": size,
            "block": block,
            "timestamp": ts,
            "cosignatures": cosigs,
            "consistency_proven": proven,
            "witness_epoch": epoch,
            "root": bytes(root),
        }

    def info(self) -> dict[str, Any]:
        names = [
            "admin",
            "threshold",
            "witness_count",
            "epoch",
            "signer",
            "pending_threshold",
            "pending_count",
            "pending_epoch",
            "pending_admin",
            "pending_at",
            "epochs",
        ]
        return dict(zip(names, self.anchors.functions.getLog(self.id).call(), strict=True))


def register(
    dep: Deployment,
    witnesses: int = 3,
    threshold: int = 2,
    origin: str = "log.example.org/ailedger",
    signer: Secp256k1Signer | None = None,
    admin: str | None = None,
) -> Log:
    c = dep.chain
    signer = signer or key(100)
    ws = [key(101 + i) for i in range(witnesses)]
    admin = admin or c.accounts[1]
    addresses = [w.address for w in ws]
    call = register_log(dep.anchors, c.chain_id, origin, signer, addresses, threshold, admin)
    c.send(call, admin)
    return Log(c, dep.anchors, log_id(origin, signer.address), signer, ws, admin)
