"""The consumer's side: call a provider, check every receipt, keep it, prove its inclusion.

:class:`ProviderClient` signs every call with the consumer's key (:mod:`.request`: the job,
the provider, the model paid for, the request digest, a fresh random nonce and an expiry) and
pins what the consumer expects (the provider's address, the model
digest it pays for, the market's EIP-712 domain) and checks each answer against it before
returning: the receipt's signature and domain, its model digest and job, its consumer, the
request digest of what was sent and the response digest of what came back. A receipt that
passes is written to the consumer's :class:`ReceiptWallet` (SQLite) before the call returns;
the wallet refuses a counter it already holds for the job (a provider charging twice for one
counter) and lists the counters it lacks (:meth:`ReceiptWallet.gaps`). :meth:`ProviderClient.prove`
fetches a receipt's inclusion proof once its epoch is closed and checks it against the
provider's signed epoch root.

The HTTP client is the standard library's ``http.client`` with one kept-alive connection
(httpx is not a dependency of the package).
"""

from __future__ import annotations

import http.client
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson

from ailedger import _json
from ailedger.chain.eip712 import Domain
from ailedger.errors import (
    AiledgerError,
    ConflictError,
    FormatError,
    IntegrityError,
    InvalidInput,
    NotFound,
    ServiceError,
    SignatureInvalid,
    StorageError,
)
from ailedger.identity.keys import Secp256k1Signer, checksum_address
from ailedger.markets.inference.receipt import (
    SignedEpochRoot,
    SignedReceipt,
    request_digest,
    response_digest,
    verify_epoch_root,
    verify_inclusion_in_epoch,
    verify_receipt,
)
from ailedger.markets.inference.request import (
    InferenceRequest,
    new_nonce,
    request_domain,
    sign_request,
)
from ailedger.merkle import InclusionProof

__all__ = [
    "MAX_ANSWER",
    "REQUEST_TTL",
    "CallResult",
    "ProviderClient",
    "ReceiptWallet",
    "WalletRow",
    "verify_kept",
]

#: The largest answer read from a provider (an output and its receipt are far smaller).
MAX_ANSWER = 64 << 20
_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")
#: How long a signed request stays usable by default (seconds).
REQUEST_TTL = 300

_SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
    provider TEXT NOT NULL,
    chain_id INTEGER NOT NULL,
    contract TEXT NOT NULL,
    job BLOB NOT NULL,
    counter INTEGER NOT NULL,
    digest BLOB NOT NULL,
    receipt BLOB NOT NULL,
    request BLOB NOT NULL,
    response BLOB NOT NULL,
    epoch_root BLOB,
    proof BLOB,
    PRIMARY KEY (provider, chain_id, contract, job, counter)
) WITHOUT ROWID;
"""


@dataclass(frozen=True)
class CallResult:
    """What a call returned: the output and its verified receipt."""

    output: Any
    receipt: SignedReceipt

    def to_dict(self) -> dict[str, Any]:
        return {"output": self.output, "receipt": self.receipt.to_dict()}


@dataclass(frozen=True)
class WalletRow:
    """A kept receipt, with the request and response it covers and (once fetched) its
    inclusion proof under the signed epoch root."""

    provider: str
    receipt: SignedReceipt
    request: dict[str, Any]
    response: Any
    epoch_root: SignedEpochRoot | None
    proof: InclusionProof | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "receipt": self.receipt.to_dict(),
            "request": self.request,
            "response": self.response,
            "epoch_root": None if self.epoch_root is None else self.epoch_root.to_dict(),
            "proof": None if self.proof is None else self.proof.to_dict(),
        }


class ReceiptWallet:
    """The consumer's SQLite store of verified receipts (WAL; one row per receipt)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()  # one wallet may serve several client threads
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file in the way, /proc, ...: the path, not the data
            raise StorageError.from_exception(exc, path) or InvalidInput(
                f"{path}: cannot make its directory ({exc.strerror or exc})",
                hint="give --store a path in a writable directory",
            ) from None
        try:
            self._db = sqlite3.connect(
                path, isolation_level=None, timeout=30, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise StorageError.from_exception(exc, path) or IntegrityError(
                f"{path}: not a receipt wallet ({exc})"
            ) from None

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> ReceiptWallet:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(
        self, provider: str, signed: SignedReceipt, request: dict[str, Any], output: Any
    ) -> None:
        """Keep a verified receipt; refuse a counter of the job already held
        (``receipt-counter-mismatch``: the provider charged twice for one counter). Receipts
        of concurrent calls may arrive out of order, so a lower counter is not refused;
        :meth:`gaps` lists counters not (yet) held."""
        r, d = signed.receipt, signed.domain
        row = (
            provider,
            d.chain_id,
            d.verifying_contract,
            r.job,
            r.counter,
            signed.digest(),
            orjson.dumps(signed.to_dict()),
            orjson.dumps(request),
            orjson.dumps(output),
        )
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO receipts VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL)", row
                )
        except sqlite3.IntegrityError:
            raise SignatureInvalid(
                f"the provider sent counter {r.counter} of job 0x{r.job.hex()} again: this "
                "wallet already holds a receipt with that counter (a double charge)",
                code="receipt-counter-mismatch",
            ) from None
        except OverflowError:  # a uint64 counter beyond SQLite's integers: never a real one
            raise InvalidInput(
                f"the receipt's counter {r.counter} is beyond what a wallet keeps (2^63 - 1)"
            ) from None
        except sqlite3.Error as exc:
            raise StorageError.from_exception(exc, self.path) or IntegrityError(
                f"{self.path}: cannot keep the receipt: {exc}"
            ) from None

    def gaps(self, job: bytes) -> list[int]:
        """Counters of ``job`` below the highest held that this wallet does not hold."""
        with self._lock:
            held = [
                int(c)
                for (c,) in self._db.execute(
                    "SELECT counter FROM receipts WHERE job = ? ORDER BY counter", (job,)
                )
            ]
        have = set(held)
        return [c for c in range(1, held[-1]) if c not in have] if held else []

    def set_proof(
        self, provider: str, signed: SignedReceipt, root: SignedEpochRoot, proof: InclusionProof
    ) -> None:
        r, d = signed.receipt, signed.domain
        with self._lock:
            self._db.execute(
                "UPDATE receipts SET epoch_root = ?, proof = ? WHERE provider = ? AND chain_id = ? "
                "AND contract = ? AND job = ? AND counter = ?",
                (
                    orjson.dumps(root.to_dict()),
                    orjson.dumps(proof.to_dict()),
                    provider,
                    d.chain_id,
                    d.verifying_contract,
                    r.job,
                    r.counter,
                ),
            )

    def rows(self, job: bytes | None = None) -> list[WalletRow]:
        """The kept receipts (of ``job``); IntegrityError for a row that does not parse or
        whose columns (provider, chain, contract, job, counter: what :meth:`gaps` and the
        look-ups read) are not the receipt's own."""
        query = (
            "SELECT provider, chain_id, contract, job, counter, receipt, request, response, "
            "epoch_root, proof FROM receipts"
        )
        args: tuple[Any, ...] = ()
        if job is not None:
            query += " WHERE job = ?"
            args = (job,)
        with self._lock:
            found = self._db.execute(
                query + " ORDER BY provider, chain_id, contract, job, counter", args
            ).fetchall()
        out = []
        for provider, chain_id, contract, job_id, counter, *docs in found:
            receipt, request, response, root, proof = docs
            try:
                signed = SignedReceipt.from_dict(orjson.loads(receipt))
                kept_request = orjson.loads(request)
                if not isinstance(kept_request, dict) or "input" not in kept_request:
                    raise FormatError("the kept request is not an object with an input")
                salt = kept_request.get("salt")
                if salt is not None and not (isinstance(salt, str) and _HEX32.fullmatch(salt)):
                    raise FormatError("the kept request's salt is not 0x and 64 hex digits")
                r, d = signed.receipt, signed.domain
                if (chain_id, contract, job_id, counter) != (
                    d.chain_id,
                    d.verifying_contract,
                    r.job,
                    r.counter,
                ):
                    raise FormatError(
                        f"its row says counter {counter} of job 0x{bytes(job_id).hex()} on "
                        f"chain {chain_id}, contract {contract}; the receipt says counter "
                        f"{r.counter} of job 0x{r.job.hex()} on chain {d.chain_id}, contract "
                        f"{d.verifying_contract}"
                    )
                out.append(
                    WalletRow(
                        str(provider),
                        signed,
                        kept_request,
                        orjson.loads(response),
                        None if root is None else SignedEpochRoot.from_dict(orjson.loads(root)),
                        None if proof is None else InclusionProof.from_dict(orjson.loads(proof)),
                    )
                )
            except (orjson.JSONDecodeError, FormatError) as exc:
                raise IntegrityError(
                    f"{self.path}: a stored receipt does not parse: {exc}"
                ) from None
        return out


def _raise_for(status: int, body: bytes, url: str) -> None:
    detail = body[:300].decode("utf-8", "replace")
    code: Any = None
    try:
        doc = orjson.loads(body)
        if isinstance(doc, dict) and isinstance(doc.get("detail"), str):
            detail = doc["detail"]
            code = doc.get("code")
    except orjson.JSONDecodeError:
        pass
    if status in (401, 403):  # the provider did not accept the consumer's signature
        hint = "sign with the key of the job's consumer (--key)"
        message = f"the provider refused the request: {detail}"
        if code == "request-expired":
            raise SignatureInvalid(message, code="request-expired", hint="sign it again")
        if code == "request-unsigned":
            raise SignatureInvalid(message, code="request-unsigned", hint=hint)
        raise SignatureInvalid(message, code="request-signature-invalid", hint=hint)
    if status == 400:
        raise FormatError(f"the provider refused the request: {detail}")
    if status in (413, 422):
        raise InvalidInput(f"the provider refused the request: {detail}")
    if status == 404:
        raise NotFound(f"{url}: {detail}")
    if status == 409:
        raise ConflictError(f"the provider refused the request: {detail}")
    raise ServiceError(f"{url}: the provider answered {status}: {detail}")


class ProviderClient:
    """A consumer's connection to one provider, pinned to its address, model and domain
    (and, with ``price``, to the price per call agreed: a receipt charging another is refused)."""

    def __init__(
        self,
        url: str,
        *,
        provider: str,
        model_digest: bytes,
        domain: Domain,
        wallet: ReceiptWallet | None = None,
        price: int | None = None,
        timeout: float = 30.0,
    ) -> None:
        try:
            parts = urlsplit(url)
            host, port = parts.hostname, parts.port or 80
        except ValueError as exc:  # "http://[::1", "http://host:99999"
            raise InvalidInput(f"{url!r} is not an http:// URL: {exc}") from None
        if parts.scheme != "http" or not host:
            raise InvalidInput(f"{url!r} is not an http:// URL")
        if price is not None and (isinstance(price, bool) or not 0 <= price < 1 << 256):
            raise InvalidInput(f"price {price!r} is not a uint256")
        self.url = url.rstrip("/")
        self.provider = checksum_address(provider)
        self.model_digest = model_digest
        self.domain = domain
        self._request_domain = request_domain(domain.chain_id, domain.verifying_contract)
        self.price = price
        self.wallet = wallet
        self._host, self._port, self._timeout = host, port, timeout
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ProviderClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _request(self, method: str, path: str, body: bytes | None = None) -> Any:
        headers = {"Content-Type": "application/json"} if body is not None else {}
        for attempt in (0, 1):
            if self._conn is None:
                self._conn = http.client.HTTPConnection(
                    self._host, self._port, timeout=self._timeout
                )
            try:
                self._conn.request(method, path, body=body, headers=headers)
                response = self._conn.getresponse()
                data = response.read(MAX_ANSWER + 1)
                if len(data) > MAX_ANSWER:
                    self.close()
                    raise ServiceError(
                        f"{self.url}{path}: the provider's answer is over {MAX_ANSWER} bytes"
                    )
                break
            except (OSError, http.client.HTTPException) as exc:
                self.close()
                # a kept-alive connection the server closed: retry once, only for reads
                if attempt or method != "GET":
                    raise ServiceError(f"{self.url}: {exc or type(exc).__name__}") from None
        if response.status >= 400:
            _raise_for(response.status, data, self.url + path)
        try:
            return _json.loads(data, what=f"the answer of {self.url}{path}")
        except InvalidInput as exc:  # the provider's fault, not the caller's input
            raise ServiceError(f"{self.url}{path}: a malformed answer: {exc}") from None

    def info(self) -> dict[str, Any]:
        doc = self._request("GET", "/v1/info")
        if not isinstance(doc, dict):
            raise ServiceError(f"{self.url}/v1/info is not a JSON object")
        return doc

    def call(
        self,
        value: Any,
        *,
        job: bytes,
        signer: Secp256k1Signer,
        salt: bytes | None = None,
        ttl: int = REQUEST_TTL,
        now: float | None = None,
    ) -> CallResult:
        """Call the model on ``value`` for ``job``, signed by the job's consumer ``signer``
        (a fresh nonce, valid ``ttl`` seconds); the output and its checked receipt."""
        consumer = signer.address
        try:
            digest = request_digest(value, salt or b"")
        except InvalidInput as exc:
            raise InvalidInput(f"the input is not JSON: {exc.message}") from None
        expires = int(time.time() if now is None else now) + ttl
        asked = InferenceRequest(
            job, self.provider, self.model_digest, digest, new_nonce(), expires
        )
        signed_request = sign_request(asked, self._request_domain, signer)
        request: dict[str, Any] = {"job": "0x" + job.hex(), "consumer": consumer, "input": value}
        if salt is not None:
            request["salt"] = "0x" + salt.hex()
        request.update(signed_request.to_dict())
        try:
            body = orjson.dumps(request)
        except TypeError as exc:
            raise InvalidInput(f"the input is not JSON: {exc}") from None
        answer = self._request("POST", "/v1/infer", body)
        if not isinstance(answer, dict) or "output" not in answer or "receipt" not in answer:
            raise ServiceError(f"{self.url}/v1/infer answered without output and receipt")
        try:
            signed = SignedReceipt.from_dict(answer["receipt"])
        except FormatError as exc:  # the provider's fault, not the caller's input
            raise ServiceError(f"{self.url}/v1/infer: a malformed receipt: {exc}") from None
        output = answer["output"]
        self.check(signed, value, output, job=job, consumer=consumer, salt=salt or b"")
        if self.wallet is not None:
            self.wallet.add(self.provider, signed, request, output)
        return CallResult(output, signed)

    def check(
        self,
        signed: SignedReceipt,
        value: Any,
        output: Any,
        *,
        job: bytes,
        consumer: str,
        salt: bytes = b"",
    ) -> None:
        """Everything a receipt must say about this call; VerificationFailed otherwise."""
        verify_receipt(
            signed,
            domain=self.domain,
            provider=self.provider,
            model_digest=self.model_digest,
            job=job,
        )
        r = signed.receipt
        if self.price is not None and r.price != self.price:
            raise SignatureInvalid(
                f"the receipt charges {r.price} for the call, not the agreed {self.price}",
                code="receipt-price-mismatch",
            )
        if r.consumer != checksum_address(consumer):
            raise SignatureInvalid(
                f"the receipt names consumer {r.consumer}, not {consumer}",
                code="receipt-job-mismatch",
            )
        if r.request_digest != request_digest(value, salt):
            raise SignatureInvalid(
                "the receipt's request digest is not the digest of the input sent",
                code="receipt-job-mismatch",
            )
        if r.response_digest != response_digest(output):
            raise SignatureInvalid(
                "the receipt's response digest is not the digest of the output received",
                code="receipt-job-mismatch",
            )

    def prove(self, signed: SignedReceipt) -> tuple[SignedEpochRoot, InclusionProof]:
        """Fetch and check the receipt's inclusion in its epoch's signed root (NotFound
        while the epoch is open); kept in the wallet when there is one."""
        r = signed.receipt
        doc = self._request("GET", f"/v1/receipts/0x{r.job.hex()}/{r.counter}/proof")
        if not isinstance(doc, dict):
            raise ServiceError(f"{self.url}: a proof answer is not a JSON object")
        try:
            served = SignedReceipt.from_dict(doc.get("receipt"))
            root = SignedEpochRoot.from_dict(doc.get("epoch_root"))
            proof_doc = doc.get("proof")
            if not isinstance(proof_doc, dict):
                raise FormatError("the answer has no proof")
            proof = InclusionProof.from_dict(proof_doc)
        except AiledgerError as exc:
            raise ServiceError(f"{self.url}: a malformed proof answer: {exc}") from None
        if served.digest() != signed.digest():
            raise SignatureInvalid(
                f"the provider serves another receipt for counter {r.counter} of job "
                f"0x{r.job.hex()} than the one it signed for this consumer",
                code="receipt-counter-mismatch",
            )
        epoch_root = verify_epoch_root(root, domain=self.domain, provider=self.provider)
        verify_inclusion_in_epoch(signed, epoch_root, proof)
        if self.wallet is not None:
            self.wallet.set_proof(self.provider, signed, root, proof)
        return root, proof


def verify_kept(row: WalletRow, *, model_digest: bytes | None = None) -> bool:
    """Re-check a kept receipt offline: its signature by the provider it was kept for, the
    request and response it covers, and its inclusion proof when one is kept (True: proven
    in its epoch's signed root; False: no proof yet). VerificationFailed otherwise."""
    signed = row.receipt
    r = signed.receipt
    verify_receipt(signed, domain=signed.domain, provider=row.provider, model_digest=model_digest)
    salt_text = row.request.get("salt")
    salt = bytes.fromhex(salt_text[2:]) if isinstance(salt_text, str) else b""
    if r.request_digest != request_digest(row.request.get("input"), salt):
        raise SignatureInvalid(
            "the kept request does not hash to the receipt's request digest",
            code="receipt-job-mismatch",
        )
    if r.response_digest != response_digest(row.response):
        raise SignatureInvalid(
            "the kept response does not hash to the receipt's response digest",
            code="receipt-job-mismatch",
        )
    if row.epoch_root is None or row.proof is None:
        return False
    epoch_root = verify_epoch_root(row.epoch_root, domain=signed.domain, provider=row.provider)
    verify_inclusion_in_epoch(signed, epoch_root, row.proof)
    return True
