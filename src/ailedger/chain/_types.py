"""Values the chain client takes and returns: signers, deployed contracts, receipts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, cast

from ailedger.chain._artifacts import Artifact
from ailedger.chain._events import EventRecord
from ailedger.errors import InvalidInput

if TYPE_CHECKING:
    from web3.contract import Contract

__all__ = ["AccountSource", "DeployedContract", "Receipt", "Signer", "tx_signer"]


class Signer(Protocol):
    """A local key that signs transactions, such as eth-account's ``LocalAccount``."""

    @property
    def address(self) -> Any: ...

    def sign_transaction(self, transaction_dict: Any) -> Any: ...


class AccountSource(Protocol):
    """A key that can hand out a ``LocalAccount``, such as ``ailedger.identity.keys``' secp256k1
    signer."""

    @property
    def address(self) -> Any: ...

    def to_local_account(self) -> Any: ...


def tx_signer(signer: Signer | AccountSource) -> Signer:
    if hasattr(signer, "sign_transaction"):
        return cast(Signer, signer)
    if hasattr(signer, "to_local_account"):
        account: Signer = signer.to_local_account()
        return account
    raise InvalidInput(f"{type(signer).__name__} cannot sign Ethereum transactions")


@dataclass(frozen=True)
class DeployedContract:
    """A contract at an address, with the artifact that describes it."""

    name: str
    address: str
    artifact: Artifact
    block_number: int
    contract: Contract
    #: The transaction that created it (set by ``Chain.deploy``; unknown for ``Chain.at``).
    tx_hash: str | None = None

    @property
    def abi(self) -> list[dict[str, Any]]:
        return self.artifact.abi


@dataclass(frozen=True)
class Receipt:
    """A mined, successful transaction and the events (of tracked contracts) it emitted."""

    tx_hash: str
    block_number: int
    block_hash: str
    sender: str
    to: str | None
    contract_address: str | None
    gas_used: int
    effective_gas_price: int
    events: tuple[EventRecord, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "tx_hash": self.tx_hash,
            "block_number": self.block_number,
            "block_hash": self.block_hash,
            "from": self.sender,
            "to": self.to,
            "contract_address": self.contract_address,
            "gas_used": self.gas_used,
            "effective_gas_price": self.effective_gas_price,
            "events": [e.to_dict() for e in self.events],
        }
