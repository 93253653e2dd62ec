"""What the demo reports (:class:`Step`, :class:`DemoResult`) and the identities it uses.

Each step says what it did and whether the outcome was the expected one; some steps expect
a rejection (a tampered proof, a changed model file), and are ``ok`` when it comes.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ailedger.errors import AiledgerError
from ailedger.identity.keys import Keystore, Secp256k1Signer

__all__ = [
    "DEMO_PASSWORD",
    "IDENTITIES",
    "DemoResult",
    "Step",
    "create_identities",
    "expect_rejection",
]

#: The demo's keys are throwaway keys in a temporary workspace; a fixed password keeps the
#: run non-interactive. Real keys take a password from a prompt, a file or the environment.
DEMO_PASSWORD = "ailedger-demo-only"

#: Key name -> (organisation, on-chain role or None). The log and witness keys sign
#: checkpoints; "admin" deploys and administers the contracts, and signs the deployments.
IDENTITIES: dict[str, tuple[str, str | None]] = {
    "trainer": ("acme-ml", "trainer"),
    "qa": ("acme-ml", "qa"),
    "auditor": ("audit-co", "auditor"),
    "log": ("acme-ml", None),
    "witness": ("audit-co", None),
    "admin": ("acme-ml", "deployer"),
}


@dataclass(frozen=True)
class Step:
    title: str
    detail: str
    ok: bool
    expected_failure: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "detail": self.detail,
            "ok": self.ok,
            "expected_failure": self.expected_failure,
            "data": self.data,
        }


@dataclass
class DemoResult:
    workdir: Path
    steps: list[Step] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "workdir": str(self.workdir),
            "steps": [s.to_dict() for s in self.steps],
            "summary": self.summary,
        }


def expect_rejection(action: Callable[[], object]) -> tuple[bool, str]:
    """Run ``action``; (True, its error) when it raised an ailedger error, else (False, ...)."""
    try:
        action()
    except AiledgerError as exc:
        return True, f"rejected: {exc.message}"
    return False, "was accepted, but should have been rejected"


def create_identities(keystore: Keystore) -> dict[str, Secp256k1Signer]:
    """Generate every key of :data:`IDENTITIES` and store it encrypted (standard scrypt).

    The keystore writes run two at a time: each is a deliberately slow scrypt."""
    signers = {name: Secp256k1Signer.generate() for name in IDENTITIES}

    def store(name: str) -> None:
        keystore.add(name, signers[name], DEMO_PASSWORD, org=IDENTITIES[name][0])

    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(store, signers))
    return signers
