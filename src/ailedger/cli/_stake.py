"""``ailedger stake deposit|request-withdraw|withdraw|claim|status``: stakes in the
StakeManager that ``ailedger chain deploy`` recorded for the chain (or ``--contract``).

Amounts are decimal units of the asset: ether by default, or the ERC-20 at ``--token`` (its
``decimals()``). Withdrawal takes two steps: ``request-withdraw`` starts the unbonding delay,
``withdraw`` sends the stake once it is over. A revert is one decoded line and a hint.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import typer

from ailedger.chain.client import Chain
from ailedger.chain.deployments import DEPLOYMENTS_FILE, DeploymentBook
from ailedger.chain.stake import ETHER, StakeManager, format_units, parse_units
from ailedger.cli._app import app
from ailedger.cli._chain_common import RpcOpt, ensure_dev_funds, open_chain
from ailedger.cli._common import JsonOpt, console, emit
from ailedger.cli._keys import PasswordFileOpt, log_signer, open_keystore, open_workspace
from ailedger.errors import InvalidInput
from ailedger.identity.keys import Secp256k1PublicKey, Secp256k1Signer
from ailedger.workspace import Workspace

__all__ = ["stake_app"]

stake_app = typer.Typer(
    help="Stake ether or an ERC-20 in the StakeManager; withdraw after the unbonding delay.",
    no_args_is_help=True,
)
app.add_typer(stake_app, name="stake")

KeyOpt = Annotated[str, typer.Option("--key", help="Name of a secp256k1 key in the workspace.")]
AmountArg = Annotated[str, typer.Argument(help="Amount in units of the asset, e.g. 1.5.")]
TokenOpt = Annotated[
    str | None, typer.Option("--token", help="ERC-20 token address (default: ether).")
]
ContractOpt = Annotated[
    str | None,
    typer.Option("--contract", help="StakeManager address (default: the workspace's deployment)."),
]
ToOpt = Annotated[str | None, typer.Option("--to", help="Recipient (default: the key's account).")]


def _manager(ws: Workspace, chain: Chain, contract: str | None) -> StakeManager:
    if contract is not None:
        return StakeManager(chain, chain.at("StakeManager", contract, track=False))
    dep = DeploymentBook(ws.path / DEPLOYMENTS_FILE).require(chain.chain_id)
    return StakeManager(chain, chain.at("StakeManager", dep.address("StakeManager"), track=False))


def _asset(token: str | None) -> str:
    return ETHER if token is None else token


def _unit(manager: StakeManager, asset: str) -> tuple[int, str]:
    if asset == ETHER:
        return 18, "ETH"
    from ailedger.chain.stake import Token

    token = Token.at(manager.chain, asset)
    return token.decimals(), token.symbol()


@dataclass(frozen=True)
class _Session:
    """What a transaction command works with: the key's signer (funded on a development
    chain), the asset, the StakeManager, the asset's decimals and symbol, and the amount in
    base units (0 for commands that take none)."""

    signer: Secp256k1Signer
    asset: str
    manager: StakeManager
    decimals: int
    symbol: str
    units: int


@contextmanager
def _session(
    key: str,
    token: str | None,
    contract: str | None,
    rpc: str | None,
    password_file: Any,
    amount: str | None = None,
) -> Iterator[_Session]:
    """The chain opened for one transaction command; the amount is parsed before anything is
    sent (a bad amount funds nobody)."""
    signer = log_signer(key, password_file)
    asset = _asset(token)
    ws = open_workspace()
    with open_chain(ws, rpc) as chain:
        manager = _manager(ws, chain, contract)
        decimals, symbol = _unit(manager, asset)
        units = 0 if amount is None else parse_units(amount, decimals)
        ensure_dev_funds(chain, signer.address)
        yield _Session(signer, asset, manager, decimals, symbol, units)


@stake_app.command("deposit")
def deposit_cmd(
    amount: AmountArg,
    key: KeyOpt,
    token: TokenOpt = None,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stake AMOUNT (ether, or the --token ERC-20, approved first)."""
    with _session(key, token, contract, rpc, password_file, amount) as s:
        signer, asset, decimals, symbol = s.signer, s.asset, s.decimals, s.symbol
        credited = s.manager.deposit(s.units, asset, signer=signer)
        stake = s.manager.stake_of(signer.address, asset)
    doc = {
        "participant": signer.address,
        "asset": asset,
        "credited": credited,
        "stake": stake.to_dict(),
    }
    emit(
        doc,
        as_json,
        lambda: console.print(
            f"staked {format_units(credited, decimals)} {symbol} for {signer.address}; "
            f"free {format_units(stake.free, decimals)}"
        ),
    )


@stake_app.command("request-withdraw")
def request_withdraw_cmd(
    amount: AmountArg,
    key: KeyOpt,
    token: TokenOpt = None,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Start unbonding AMOUNT of free stake; withdraw it after the unbonding delay."""
    with _session(key, token, contract, rpc, password_file, amount) as s:
        signer, asset, decimals, symbol, units = s.signer, s.asset, s.decimals, s.symbol, s.units
        release_at = s.manager.request_withdrawal(units, asset, signer=signer)
        stake = s.manager.stake_of(signer.address, asset)
    doc = {"participant": signer.address, "asset": asset, "requested": units}
    doc["release_at"] = release_at
    doc["stake"] = stake.to_dict()
    emit(
        doc,
        as_json,
        lambda: console.print(
            f"unbonding {format_units(stake.unbonding, decimals)} {symbol}: withdrawable from "
            f"{release_at} (unix time)"
        ),
    )


@stake_app.command("withdraw")
def withdraw_cmd(
    key: KeyOpt,
    token: TokenOpt = None,
    to: ToOpt = None,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send the stake whose unbonding delay is over to the key's account (or --to)."""
    with _session(key, token, contract, rpc, password_file) as s:
        signer, asset, decimals, symbol = s.signer, s.asset, s.decimals, s.symbol
        receipt = s.manager.withdraw(asset, to, signer=signer)
        amount = next(int(e.args["amount"]) for e in receipt.events if e.event == "Withdrawn")
    doc = {"participant": signer.address, "asset": asset, "withdrawn": amount}
    doc["to"] = to or signer.address
    doc["tx_hash"] = receipt.tx_hash
    emit(
        doc,
        as_json,
        lambda: console.print(f"withdrew {format_units(amount, decimals)} {symbol} to {doc['to']}"),
    )


@stake_app.command("claim")
def claim_cmd(
    key: KeyOpt,
    token: TokenOpt = None,
    to: ToOpt = None,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    password_file: PasswordFileOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send what slashes owe the key's account (prover or treasury shares)."""
    with _session(key, token, contract, rpc, password_file) as s:
        signer, asset, decimals, symbol = s.signer, s.asset, s.decimals, s.symbol
        receipt = s.manager.claim(asset, to, signer=signer)
        amount = next(int(e.args["amount"]) for e in receipt.events if e.event == "Claimed")
    doc = {"account": signer.address, "asset": asset, "claimed": amount}
    doc["tx_hash"] = receipt.tx_hash
    emit(doc, as_json, lambda: console.print(f"claimed {format_units(amount, decimals)} {symbol}"))


@stake_app.command("status")
def status_cmd(
    key: Annotated[
        str | None, typer.Option("--key", help="A workspace key whose account to show.")
    ] = None,
    address: Annotated[
        str | None, typer.Option("--address", help="The account to show (instead of --key).")
    ] = None,
    token: TokenOpt = None,
    contract: ContractOpt = None,
    rpc: RpcOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An account's stake (free, locked, unbonding, slashed, withdrawn), what is owed to it,
    and the asset's books."""
    if (key is None) == (address is None):
        raise InvalidInput("give exactly one of --key NAME and --address ADDRESS")
    if key is not None:
        public = open_keystore().info(key).public_key
        if not isinstance(public, Secp256k1PublicKey):
            raise InvalidInput(f"key {key!r} is not a secp256k1 key (an Ethereum account)")
        address = public.address
    account = str(address)
    asset = _asset(token)
    ws = open_workspace()
    with open_chain(ws, rpc, read_only=True) as chain:
        manager = _manager(ws, chain, contract)
        decimals, symbol = _unit(manager, asset)
        stake = manager.stake_of(account, asset)
        doc: dict[str, Any] = {
            "stake_manager": manager.address,
            "account": account,
            "asset": asset,
            "symbol": symbol,
            "decimals": decimals,
            "stake": stake.to_dict(),
            "owed": manager.owed(account, asset),
            "unbonding_delay": manager.unbonding_delay(),
            "totals": manager.totals(asset).to_dict(),
        }

    def human() -> None:
        def f(v: int) -> str:
            return f"{format_units(v, decimals)} {symbol}"

        console.print(f"{account} in {symbol} (StakeManager {manager.address}):")
        console.print(
            f"  free {f(stake.free)}, locked {f(stake.locked)}, unbonding {f(stake.unbonding)}"
            + (f" (withdrawable from {stake.release_at})" if stake.unbonding else "")
        )
        console.print(
            f"  deposited {f(stake.deposited)}, slashed {f(stake.slashed)}, "
            f"withdrawn {f(stake.withdrawn)}; owed to it {f(doc['owed'])}"
        )

    emit(doc, as_json, human)
