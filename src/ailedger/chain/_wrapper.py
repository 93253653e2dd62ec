"""The base of the typed contract wrappers (membership, anchors, registry, ...)."""

from __future__ import annotations

from ailedger.chain._types import DeployedContract
from ailedger.chain.client import Chain

__all__ = ["ContractWrapper"]


class ContractWrapper:
    """One deployed contract on one chain; subclasses add typed calls and transactions."""

    def __init__(self, chain: Chain, contract: DeployedContract) -> None:
        self.chain = chain
        self.contract = contract

    @property
    def address(self) -> str:
        return self.contract.address
