"""EIP-712 anchor cosignatures over HTTP: ailedger's extension beside C2SP tlog-witness.

LogAnchors stores an anchor of a log's checkpoint only with k EIP-712 ``Cosignature``
signatures by the log's registered witnesses, bound to the chain id and the contract; the
C2SP cosignature that ``add-checkpoint`` returns is not one. A witness with a secp256k1 key
therefore also serves ``POST /v1/anchor-cosign`` (not part of c2sp.org/tlog-witness)::

    {"checkpoint": "<the signed checkpoint note>", "chain_id": 31337, "contract": "0x..."}

and answers 200 with the document ``ailedger chain cosign`` writes
(:class:`~ailedger.chain.anchoring.Eip712Cosignature`, media type
:data:`~ailedger.chain.anchoring.COSIGNATURE_MEDIA_TYPE`), only for the checkpoint it has
verified and stored last for that log: same origin, size and root, signed by a trusted
secp256k1 log key (whose address makes the on-chain log id). It never signs an arbitrary root:
the EIP-712 cosignature says no more than the C2SP one it already gave. Refusals are
problem+json: 400 malformed, 404 unknown log, 403 no trusted secp256k1 log signature, 409 not
the checkpoint the witness cosigned last (the log should send it with ``add-checkpoint``
first). A witness without a secp256k1 key does not serve the endpoint (404).

:func:`request_anchor_cosignature` is the log service's side: it posts the request and
accepts the answer only if it is a valid cosignature by the expected witness address of
exactly that checkpoint, chain and contract.
"""

from __future__ import annotations

import http.client
import json
import re
from urllib.parse import urlsplit

from ailedger.chain.anchoring import Eip712Cosignature
from ailedger.chain.eip712 import Domain, cosignature_digest, log_id, sign_digest
from ailedger.errors import AiledgerError
from ailedger.log import Checkpoint, SignedNote
from ailedger.log.checkpoint import Secp256k1Cosigner, Secp256k1NoteKey
from ailedger.service.witness import MAX_REQUEST_BYTES, Refusal, Witness

__all__ = [
    "ANCHOR_COSIGN_PATH",
    "AnchorCosignFailed",
    "anchor_cosignature",
    "anchor_cosigner",
    "request_anchor_cosignature",
]

#: The endpoint's path on a witness.
ANCHOR_COSIGN_PATH = "/v1/anchor-cosign"
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")


class AnchorCosignFailed(Exception):
    """A witness gave no valid EIP-712 anchor cosignature (refusal, bad answer, network)."""


def anchor_cosigner(witness: Witness) -> Secp256k1Cosigner | None:
    """The witness's secp256k1 cosigner that can sign EIP-712 messages, if it has one."""
    for c in witness.cosigners:
        if isinstance(c, Secp256k1Cosigner) and c.signer is not None:
            return c
    return None


def _request(body: bytes) -> tuple[SignedNote, Checkpoint, int, str]:
    if len(body) > MAX_REQUEST_BYTES:
        raise Refusal(413, f"request body over {MAX_REQUEST_BYTES} bytes")
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise Refusal(400, "request body is not JSON") from None
    if not isinstance(doc, dict) or set(doc) != {"checkpoint", "chain_id", "contract"}:
        raise Refusal(400, "expected a JSON object with checkpoint, chain_id and contract")
    text, chain_id, contract = doc["checkpoint"], doc["chain_id"], doc["contract"]
    if type(chain_id) is not int or not 1 <= chain_id < 2**256:
        raise Refusal(400, "chain_id must be a positive integer")
    if not isinstance(contract, str) or not _ADDRESS.fullmatch(contract):
        raise Refusal(400, "contract must be an address (0x + 40 hex digits)")
    if not isinstance(text, str):
        raise Refusal(400, "checkpoint must be the signed checkpoint note as a string")
    try:
        note = SignedNote.parse(text)
        cp = Checkpoint.parse(note.text)
    except AiledgerError as exc:
        raise Refusal(400, f"malformed checkpoint: {exc.message}") from None
    return note, cp, chain_id, contract


def anchor_cosignature(witness: Witness, body: bytes) -> Eip712Cosignature:
    """Answer one ``POST /v1/anchor-cosign`` (see the module docstring); raises
    :class:`~ailedger.service.witness.Refusal`."""
    cosigner = anchor_cosigner(witness)
    if cosigner is None or cosigner.signer is None:
        raise Refusal(404, "this witness has no secp256k1 key: it cannot cosign anchors")
    note, cp, chain_id, contract = _request(body)
    trusted = witness.logs.get(cp.origin)
    if trusted is None:
        raise Refusal(404, f"unknown log {cp.origin[:100]!r}")
    signer: str | None = None
    for key in trusted:
        if not isinstance(key, Secp256k1NoteKey):
            continue
        try:
            note.verify_one(key)
        except AiledgerError:
            continue
        signer = key.address
        break
    if signer is None:
        raise Refusal(403, f"no signature by a trusted secp256k1 key of log {cp.origin!r}")
    latest = witness.latest(cp.origin)
    if latest is None or (latest.size, latest.root) != (cp.size, cp.root):
        have = "nothing" if latest is None else f"size {latest.size}"
        raise Refusal(
            409,
            f"size {cp.size} is not the checkpoint this witness cosigned last ({have}): "
            "send it with add-checkpoint first",
        )
    domain = Domain.log_anchors(chain_id, contract)
    lid = log_id(cp.origin, signer)
    signature = sign_digest(cosignature_digest(domain, lid, cp.size, cp.root), cosigner.signer)
    return Eip712Cosignature(
        chain_id, contract, cp.origin, signer, cp.size, cp.root, cosigner.address, signature
    )


def request_anchor_cosignature(
    url: str,
    witness: str,
    note: SignedNote,
    log_signer: str,
    chain_id: int,
    contract: str,
    timeout: float,
) -> Eip712Cosignature:
    """Ask the witness at ``url`` (address ``witness``) for its EIP-712 cosignature of
    ``note`` for LogAnchors ``contract`` on ``chain_id``; raises :class:`AnchorCosignFailed`."""
    parts = urlsplit(url)
    cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
    body = json.dumps(
        {"checkpoint": note.format(), "chain_id": chain_id, "contract": contract}
    ).encode()
    conn = cls(parts.hostname or "", parts.port, timeout=timeout)
    try:
        conn.request(
            "POST",
            parts.path + ANCHOR_COSIGN_PATH,
            body=body,
            headers={"Content-Type": "application/json"},
        )
        response = conn.getresponse()
        data = response.read(MAX_REQUEST_BYTES + 1)
    except (OSError, http.client.HTTPException) as exc:
        raise AnchorCosignFailed(f"{url}: {exc}") from None
    finally:
        conn.close()
    if response.status != 200:
        detail = data[:300].decode("utf-8", "replace")
        raise AnchorCosignFailed(f"{url} answered {response.status}: {detail}")
    cp = Checkpoint.parse(note.text)
    try:
        got = Eip712Cosignature.from_dict(json.loads(data))
    except (ValueError, AiledgerError) as exc:
        raise AnchorCosignFailed(f"{url}: no valid anchor cosignature: {exc}") from None
    wanted = (chain_id, contract.lower(), cp.origin, log_signer.lower(), cp.size, cp.root)
    mine = (got.chain_id, got.contract.lower(), got.origin, got.log_signer.lower())
    if (*mine, got.size, got.root) != wanted or got.signer.lower() != witness.lower():
        raise AnchorCosignFailed(
            f"{url}: the anchor cosignature is by {got.signer} for {got.origin} size "
            f"{got.size}, not by {witness} for this checkpoint (size {cp.size})"
        )
    return got
