"""A typed client for ``contracts/StakeManager.sol``: stakes in ether or any ERC-20, withdrawn
in two steps (request, then withdraw after the unbonding delay), locked by registered markets,
slashed by registered judges; slashed funds are owed to the prover and the treasury and claimed
by them (pull payments).

Amounts are in the asset's base units (wei for ether); :func:`parse_units` and
:func:`format_units` convert from and to decimal token units. ``ETHER`` (the zero address)
names ether as an asset. Deposits of an ERC-20 approve the StakeManager for the amount first.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ailedger.chain._hex import to_checksum_address
from ailedger.chain._types import AccountSource, DeployedContract, Receipt, Signer, tx_signer
from ailedger.chain._wrapper import ContractWrapper
from ailedger.chain.client import Chain
from ailedger.errors import ChainError, InvalidInput

__all__ = [
    "DEFAULT_UNBONDING_DELAY",
    "ETHER",
    "StakeInfo",
    "StakeManager",
    "StakeTotals",
    "Token",
    "deploy_stake_manager",
    "format_units",
    "parse_units",
]

#: The zero address: ether as an asset.
ETHER = "0x" + "00" * 20
#: The unbonding delay ``ailedger chain deploy`` gives the StakeManager: seven days.
DEFAULT_UNBONDING_DELAY = 7 * 24 * 3600
#: The artifact whose ABI serves any ERC-20 (OpenZeppelin's ERC20, fixed supply).
_ERC20 = "ConsortiumToken"


#: A plain decimal amount: digits, an optional point and fraction (bounded: uint256 has 78).
_AMOUNT = re.compile(r"([0-9]{1,78})(?:\.([0-9]{1,78}))?")


def parse_units(text: str, decimals: int) -> int:
    """``"1.5"`` with 18 decimals -> 1500000000000000000, exactly (no floating point, no
    rounding); refuses anything but plain decimal digits with an optional point (no sign, no
    exponent), zero, more fractional digits than the asset has, and amounts over uint256."""
    match = _AMOUNT.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(f"{text!r} is not an amount (a decimal number such as 1.5)")
    whole, fraction = match.group(1), match.group(2) or ""
    if len(fraction.rstrip("0")) > decimals:
        raise InvalidInput(f"{text!r} has more than {decimals} decimals")
    units = int(whole + fraction.ljust(decimals, "0")[:decimals])
    if units == 0:
        raise InvalidInput(f"the amount must be positive, not {text!r}")
    if units >= 2**256:
        raise InvalidInput(f"{text!r} is more than a uint256 holds")
    return units


def format_units(amount: int, decimals: int) -> str:
    """1500000000000000000 with 18 decimals -> ``"1.5"``, exactly (integer arithmetic: a
    Decimal's 28-digit context would round a large stake)."""
    sign, amount = ("-", -amount) if amount < 0 else ("", amount)
    whole, fraction = divmod(amount, 10**decimals)
    digits = f"{fraction:0{decimals}d}".rstrip("0") if decimals else ""
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


@dataclass(frozen=True)
class StakeInfo:
    """One participant's stake in one asset (base units); ``release_at`` is when the
    unbonding amount becomes withdrawable (unix time, 0 if never requested)."""

    free: int
    locked: int
    unbonding: int
    release_at: int
    deposited: int
    slashed: int
    withdrawn: int

    @property
    def staked(self) -> int:
        return self.free + self.locked + self.unbonding

    @property
    def balanced(self) -> bool:
        return self.deposited == self.staked + self.slashed + self.withdrawn

    def to_dict(self) -> dict[str, int]:
        return {
            "free": self.free,
            "locked": self.locked,
            "unbonding": self.unbonding,
            "release_at": self.release_at,
            "deposited": self.deposited,
            "slashed": self.slashed,
            "withdrawn": self.withdrawn,
        }


@dataclass(frozen=True)
class StakeTotals:
    """One asset's books over all participants (base units)."""

    deposited: int
    staked: int
    slashed: int
    withdrawn: int
    owed: int
    claimed: int

    @property
    def balanced(self) -> bool:
        return (
            self.deposited == self.staked + self.slashed + self.withdrawn
            and self.slashed == self.owed + self.claimed
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "deposited": self.deposited,
            "staked": self.staked,
            "slashed": self.slashed,
            "withdrawn": self.withdrawn,
            "owed": self.owed,
            "claimed": self.claimed,
        }


class Token(ContractWrapper):
    """Any ERC-20 at an address (through OpenZeppelin's ERC20 ABI)."""

    @classmethod
    def at(cls, chain: Chain, address: str) -> Token:
        return cls(chain, chain.at(_ERC20, address, track=False))

    def decimals(self) -> int:
        if not self.chain.code(self.address):
            raise InvalidInput(f"no contract at {self.address}: not an ERC-20 token")
        return int(self.chain.call(self.contract, "decimals"))

    def symbol(self) -> str:
        return str(self.chain.call(self.contract, "symbol"))

    def balance_of(self, account: str) -> int:
        return int(self.chain.call(self.contract, "balanceOf", account))

    def allowance(self, owner: str, spender: str) -> int:
        return int(self.chain.call(self.contract, "allowance", owner, spender))

    def approve(self, spender: str, amount: int, *, signer: Signer | AccountSource) -> Receipt:
        return self.chain.transact(self.contract, "approve", spender, amount, signer=signer)

    def transfer(self, to: str, amount: int, *, signer: Signer | AccountSource) -> Receipt:
        return self.chain.transact(self.contract, "transfer", to, amount, signer=signer)


class StakeManager(ContractWrapper):
    """The StakeManager contract at ``contract`` on ``chain``."""

    def _send(
        self, fn: str, *args: object, signer: Signer | AccountSource, value: int = 0
    ) -> Receipt:
        return self.chain.transact(self.contract, fn, *args, signer=signer, value=value)

    def deposit(self, amount: int, asset: str = ETHER, *, signer: Signer | AccountSource) -> int:
        """Stake ``amount`` of ``asset`` (approving a token first); returns what was credited
        (less than ``amount`` for a fee-on-transfer token)."""
        if amount <= 0:
            raise InvalidInput("the amount must be positive")
        asset = to_checksum_address(asset)
        if asset == ETHER:
            receipt = self._send("deposit", asset, amount, signer=signer, value=amount)
        else:
            token = Token.at(self.chain, asset)
            sender = to_checksum_address(tx_signer(signer).address)
            if token.allowance(sender, self.address) < amount:
                token.approve(self.address, amount, signer=signer)
            receipt = self._send("deposit", asset, amount, signer=signer)
        for record in receipt.events:
            if record.event == "Deposited":
                return int(record.args["amount"])
        raise ChainError(f"transaction {receipt.tx_hash} emitted no Deposited event")

    def request_withdrawal(
        self, amount: int, asset: str = ETHER, *, signer: Signer | AccountSource
    ) -> int:
        """Start unbonding ``amount``; returns when it becomes withdrawable (unix time)."""
        receipt = self._send("requestWithdrawal", to_checksum_address(asset), amount, signer=signer)
        for record in receipt.events:
            if record.event == "UnbondingRequested":
                return int(record.args["releaseAt"])
        raise ChainError(f"transaction {receipt.tx_hash} emitted no UnbondingRequested event")

    def withdraw(
        self, asset: str = ETHER, to: str | None = None, *, signer: Signer | AccountSource
    ) -> Receipt:
        """Send the sender's due unbonding amount to ``to`` (default: the sender)."""
        recipient = to or tx_signer(signer).address
        return self._send(
            "withdraw", to_checksum_address(asset), to_checksum_address(recipient), signer=signer
        )

    def claim(
        self, asset: str = ETHER, to: str | None = None, *, signer: Signer | AccountSource
    ) -> Receipt:
        """Send everything owed to the sender (prover or treasury shares) to ``to``."""
        recipient = to or tx_signer(signer).address
        return self._send(
            "claim", to_checksum_address(asset), to_checksum_address(recipient), signer=signer
        )

    def stake_of(self, participant: str, asset: str = ETHER) -> StakeInfo:
        raw = self.chain.call(
            self.contract, "stakeOf", to_checksum_address(participant), to_checksum_address(asset)
        )
        return StakeInfo(*(int(v) for v in raw))

    def totals(self, asset: str = ETHER) -> StakeTotals:
        raw = self.chain.call(self.contract, "totalsOf", to_checksum_address(asset))
        return StakeTotals(*(int(v) for v in raw))

    def owed(self, account: str, asset: str = ETHER) -> int:
        return int(
            self.chain.call(
                self.contract, "owed", to_checksum_address(account), to_checksum_address(asset)
            )
        )

    def unbonding_delay(self) -> int:
        return int(self.chain.call(self.contract, "unbondingDelay"))

    def governance_delay(self) -> int:
        return int(self.chain.call(self.contract, "governanceDelay"))

    def is_judge(self, account: str) -> bool:
        return bool(self.chain.call(self.contract, "isJudge", to_checksum_address(account)))

    def is_market(self, account: str) -> bool:
        return bool(self.chain.call(self.contract, "isMarket", to_checksum_address(account)))

    def treasury(self) -> str:
        return str(self.chain.call(self.contract, "treasury"))

    def decimals(self, asset: str = ETHER) -> int:
        """18 for ether, else the token's ``decimals()``."""
        if to_checksum_address(asset) == ETHER:
            return 18
        return Token.at(self.chain, asset).decimals()


def deploy_stake_manager(
    chain: Chain,
    signer: Signer | AccountSource,
    *,
    treasury: str | None = None,
    unbonding_delay: int = DEFAULT_UNBONDING_DELAY,
    governance_delay: int | None = None,
) -> DeployedContract:
    """Deploy a StakeManager governed by ``signer`` (treasury: ``signer`` unless given); the
    governance delay defaults to twice the unbonding delay (it may not be shorter)."""
    governor = to_checksum_address(tx_signer(signer).address)
    delay = 2 * unbonding_delay if governance_delay is None else governance_delay
    return chain.deploy(
        "StakeManager", governor, treasury or governor, unbonding_delay, delay, signer=signer
    )
