"""Who may submit, read on-chain: every signer must be a current member of an organisation.

``ailedger serve --membership chain`` (the default when the workspace has Membership deployed
and no allow-list is given) checks each verified signer of a submission against the
Membership contract: ``orgOf(signer) != 0`` and, with ``--require-role ROLE``, ``hasRole(signer,
role)`` (the role in the signer's own organisation). A refused signer is a 403 problem
``signer-not-member`` naming it; a chain that cannot answer is a 503 ``chain-unavailable``
(with ``Retry-After``): a submission is never accepted unchecked.

The chain is read through a :class:`ChainReader`: :class:`InProcessReader` asks the embedded
chain the service itself serves at ``/rpc`` (the same in-process node, on its worker thread:
the embedded chain has a single-process lock), :class:`HttpReader` asks an external node
(anvil, geth, an L2). Each call is one JSON-RPC batch (``orgOf`` and ``hasRole`` together).

Answers are cached per address for ``ttl`` seconds (least recently used dropped beyond
``max_entries``; concurrent misses for one address share one chain read), so the submission
rate does not depend on the chain's: a member removed on-chain is refused at most ``ttl``
seconds after the removal's block (``ttl=0``: every submission reads the chain). Where the
Membership contract is comes from the workspace's deployment book, looked up by the chain's id
until it is found (a service may start before the operator deploys through its ``/rpc``).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import urllib.error
import urllib.request
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from ailedger.chain.eip712 import role_id
from ailedger.errors import AiledgerError
from ailedger.service.problems import Problem

if TYPE_CHECKING:
    from ailedger.service.rpc import EmbeddedRpc

__all__ = [
    "DEFAULT_MAX_ENTRIES",
    "DEFAULT_TTL",
    "HAS_ROLE_SELECTOR",
    "ORG_OF_SELECTOR",
    "ChainMembership",
    "ChainReader",
    "ChainUnavailable",
    "HttpReader",
    "InProcessReader",
    "MemberAnswer",
]

#: Seconds a membership answer is reused (a removal takes effect within this).
DEFAULT_TTL = 2.0
#: Addresses whose answers are kept.
DEFAULT_MAX_ENTRIES = 10_000
#: ``keccak256("orgOf(address)")[:4]`` (tests check it against the contract's ABI).
ORG_OF_SELECTOR = bytes.fromhex("987eb002")
#: ``keccak256("hasRole(address,bytes32)")[:4]``.
HAS_ROLE_SELECTOR = bytes.fromhex("ac4ab3fb")
_ZERO = b"\0" * 32
_ADDRESS = re.compile(r"0x[0-9a-f]{40}")


class ChainUnavailable(Exception):
    """The chain did not answer a membership read (down, timed out, or a malformed answer)."""


class ChainReader(Protocol):
    """Answers a batch of JSON-RPC calls ``(method, params)`` in order, or raises
    :class:`ChainUnavailable`."""

    async def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]: ...


def _results(answers: list[Any], n: int, where: str) -> list[Any]:
    if not isinstance(answers, list) or len(answers) != n:
        raise ChainUnavailable(f"{where} answered a batch of {n} calls with something else")
    by_id = {a.get("id"): a for a in answers if isinstance(a, dict)}
    out = []
    for i in range(n):
        answer = by_id.get(i)
        if answer is None:
            raise ChainUnavailable(f"{where} did not answer call {i} of a batch")
        if "error" in answer:
            error = answer["error"]
            message = error.get("message") if isinstance(error, dict) else error
            raise ChainUnavailable(f"{where} failed a membership read: {str(message)[:200]}")
        out.append(answer.get("result"))
    return out


class InProcessReader:
    """The embedded chain this service serves at ``/rpc``, asked on its own worker thread."""

    def __init__(self, rpc: EmbeddedRpc) -> None:
        self.rpc = rpc

    async def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        requests = [
            {"id": i, "method": m, "params": p, "notify": False} for i, (m, p) in enumerate(calls)
        ]
        try:
            answers = await self.rpc.answer(requests)
        except RuntimeError as exc:  # the worker pool is shut down: the service is stopping
            raise ChainUnavailable(f"the embedded chain is closed ({exc})") from None
        return _results(answers, len(calls), "the embedded chain")


class HttpReader:
    """A JSON-RPC node at ``url`` (standard library, on a worker thread; ``timeout`` s)."""

    def __init__(self, url: str, *, timeout: float = 5.0, shown: str | None = None) -> None:
        self.url = url
        self.timeout = timeout
        self.shown = shown if shown is not None else url

    def _post(self, body: bytes) -> Any:
        request = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read(1 << 20))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            raise ChainUnavailable(
                f"the chain node {self.shown} is unreachable: {reason}"
            ) from None

    def chain_id(self) -> int:
        """The node's chain id, asked now (blocking), or :class:`ChainUnavailable`."""
        body = json.dumps([{"jsonrpc": "2.0", "id": 0, "method": "eth_chainId", "params": []}])
        (result,) = _results(self._post(body.encode()), 1, f"the chain node {self.shown}")
        try:
            return int(result, 16)
        except (TypeError, ValueError):
            raise ChainUnavailable(f"the chain node {self.shown} answered no chain id") from None

    async def batch(self, calls: Sequence[tuple[str, list[Any]]]) -> list[Any]:
        body = json.dumps(
            [
                {"jsonrpc": "2.0", "id": i, "method": m, "params": p}
                for i, (m, p) in enumerate(calls)
            ]
        ).encode()
        answers = await asyncio.to_thread(self._post, body)
        return _results(answers, len(calls), f"the chain node {self.shown}")


@dataclass(frozen=True)
class MemberAnswer:
    """What the chain said about one address: its organisation id (None: no member) and
    whether it holds the required role (True when none is required)."""

    org: bytes | None
    has_role: bool

    @property
    def admitted(self) -> bool:
        return self.org is not None and self.has_role


def _word(result: object, what: str) -> bytes:
    """One 32-byte ABI word from an ``eth_call`` result, else :class:`ChainUnavailable`
    (``0x``: no contract at the address, a reset chain: never read as "not a member")."""
    if not isinstance(result, str) or not result.startswith("0x") or len(result) != 66:
        raise ChainUnavailable(f"{what} answered {str(result)[:80]!r}, not one ABI word")
    try:
        return bytes.fromhex(result[2:])
    except ValueError:
        raise ChainUnavailable(f"{what} answered {result[:80]!r}, not hex") from None


class ChainMembership:
    """The on-chain membership check of a service (module docstring).

    ``resolve(chain_id)`` names the Membership contract on that chain (None: not deployed
    yet); ``require_role`` is a role name (``qa``, ``oracle``, ...) each signer must hold in
    its own organisation."""

    def __init__(
        self,
        reader: ChainReader,
        resolve: Callable[[int], str | None],
        *,
        require_role: str | None = None,
        ttl: float = DEFAULT_TTL,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl < 0 or max_entries < 1:
            raise ValueError("ttl must be >= 0 and max_entries >= 1")
        self.reader = reader
        self.resolve = resolve
        self.require_role = require_role
        self._role = None if require_role is None else role_id(require_role)
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self.contract: str | None = None
        self.chain_id: int | None = None
        self._cache: OrderedDict[str, tuple[float, MemberAnswer]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[MemberAnswer]] = {}
        #: Chain reads made (a batch each): how well the cache works.
        self.reads = 0

    def describe(self) -> str:
        role = "" if self.require_role is None else f" holding role {self.require_role}"
        return f"members of an organisation on-chain{role} (answers cached {self.ttl:g} s)"

    async def check(self, signers: Sequence[str]) -> None:
        """Return if every signer (a verified address) is admitted; else raise the 403
        problem naming the first refused one, or the 503 problem if the chain cannot say."""
        for signer in signers:
            if not _ADDRESS.fullmatch(signer.lower()):
                raise Problem(
                    403,
                    "signer-not-member",
                    "Signer not a member",
                    f"signer {signer[:80]} is not an Ethereum account: only members of an "
                    "organisation on-chain may submit",
                )
            answer = await self.answer(signer)
            if not answer.admitted:
                raise self._refusal(signer, answer)

    async def answer(self, signer: str) -> MemberAnswer:
        """The (cached) answer for ``signer``; a 503 problem if the chain cannot answer."""
        key = signer.lower()
        if not _ADDRESS.fullmatch(key):
            raise ValueError(f"{signer!r} is not an Ethereum address")
        now = self.clock()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(key)
            return hit[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[MemberAnswer] = asyncio.get_running_loop().create_future()
        self._pending[key] = future
        try:
            answer = await self._read(key)
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody logs it as lost
            raise
        else:
            future.set_result(answer)
            if self.ttl > 0:
                self._cache[key] = (now + self.ttl, answer)
                self._cache.move_to_end(key)
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
            return answer
        finally:
            del self._pending[key]

    async def _contract(self) -> str:
        if self.contract is not None:
            return self.contract
        try:
            if self.chain_id is None:
                (chain_id,) = await self.reader.batch([("eth_chainId", [])])
                if not isinstance(chain_id, str):
                    raise ChainUnavailable(f"eth_chainId answered {chain_id!r}")
                self.chain_id = int(chain_id, 16)
        except ChainUnavailable as exc:
            raise _unavailable(str(exc)) from None
        except ValueError:
            raise _unavailable("eth_chainId answered a malformed chain id") from None
        try:
            address = self.resolve(self.chain_id)
        except AiledgerError as exc:  # a broken deployment book: ours to fix, never a 400
            raise _unavailable(f"where Membership is cannot be read: {exc}") from None
        if address is None:
            raise Problem(
                503,
                "membership-not-deployed",
                "Membership not deployed",
                f"no Membership contract is deployed on chain {self.chain_id} yet: the service "
                "cannot check who may submit (`ailedger chain deploy`)",
                headers={"Retry-After": "5"},
            )
        self.contract = address
        return address

    async def _read(self, address: str) -> MemberAnswer:
        contract = await self._contract()
        account = bytes(12) + bytes.fromhex(address[2:])
        calls: list[tuple[str, list[Any]]] = [
            ("eth_call", [{"to": contract, "data": "0x" + (ORG_OF_SELECTOR + account).hex()},
                          "latest"]),
        ]  # fmt: skip
        if self._role is not None:
            data = HAS_ROLE_SELECTOR + account + self._role
            calls.append(("eth_call", [{"to": contract, "data": "0x" + data.hex()}, "latest"]))
        self.reads += 1
        try:
            results = await self.reader.batch(calls)
            org = _word(results[0], f"Membership {contract}")
            has_role = True
            if self._role is not None:
                has_role = _word(results[1], f"Membership {contract}") != _ZERO
        except ChainUnavailable as exc:
            raise _unavailable(str(exc)) from None
        return MemberAnswer(None if org == _ZERO else org, has_role)

    def _refusal(self, signer: str, answer: MemberAnswer) -> Problem:
        where = f"on chain {self.chain_id} (Membership {self.contract})"
        if answer.org is None:
            detail = f"signer {signer} is not a member of any organisation {where}"
        else:
            detail = (
                f"signer {signer} (organisation 0x{answer.org.hex()}) does not hold role "
                f"{self.require_role} {where}"
            )
        return Problem(403, "signer-not-member", "Signer not a member", detail)


def _unavailable(detail: str) -> Problem:
    return Problem(
        503,
        "chain-unavailable",
        "Chain unavailable",
        f"membership cannot be checked: {detail}; nothing was appended",
        headers={"Retry-After": "1"},
    )
