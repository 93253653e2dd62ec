"""An oracle node: observe a sensor batch with a fingerprint-checked model, sign, co-sign.

Every node is its own process serving JSON over HTTP on 127.0.0.1 (:func:`serve`)::

    GET  /health   -> {"oracle", "feed", "model_digest"}
    POST /observe  {"epoch", "batch", "input_root", "input_size", "round"?}
                   -> {"oracle", "envelope", "observation_signature"?}
                   (a signed observation statement; with "round" = {"chain_id", "contract",
                   "config_version", "signers", "observations_timestamp"}, also the
                   oracle's EIP-712 signature of its value for that round, which
                   OracleFeeds.transmit checks and OracleJudge slashes on)
    POST /sign     {"chain_id", "contract", "config_version", "signers", "report",
                    "envelopes"} -> {"oracle", "signature"}   (EIP-712 report signature)

:meth:`OracleNode.observe` re-hashes the batch and refuses it unless its RFC 9162 root is the
one the round names, checks the model's fingerprint BEFORE loading it
(:func:`ailedger.oracle.scoring.load_verified`), scores the batch and signs an
:class:`~ailedger.oracle.observation.Observation` statement (input root and model digest
inside) as a DSSE envelope for the log. :meth:`OracleNode.sign` co-signs a report only if it
is for this node's feed (named by its creator and name), model and oracle set (the config
digest is recomputed), the node
observed the same input root for that epoch, its timestamp is recent, and every observation
in it is backed by a validly signed statement of a configured oracle with that exact value
(so a leader cannot invent or alter values); its own value must be its own.
:meth:`OracleNode.sign_observation` signs the node's own value for a round (EIP-712,
``Observation``: chain, contract, feed, config digest, epoch, value, time, input root, model)
after the same checks on the round. Signing again for the same epoch (a retried round, with
another time) is safe: OracleJudge slashes only an observation of the report OracleFeeds
stored for the epoch, judged against that report's own median.

``lie_by`` adds a constant to the node's score (a lying oracle, for demos and tests);
``faulty`` (in :func:`serve`) makes the node drop every request without an answer.
The leader side (collect, build the report, transmit, log) is :mod:`ailedger.oracle.round`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from ailedger.attest import dsse
from ailedger.attest.statements import Statement, sign_statement
from ailedger.chain.eip712 import sign_digest
from ailedger.chain.oracle_report import (
    OracleReport,
    config_digest,
    feed_id,
    observation_digest,
    oracle_domain,
    report_digest,
)
from ailedger.errors import InvalidInput, VerificationFailed
from ailedger.fingerprint.dataset import fingerprint_dataset
from ailedger.identity.keys import Secp256k1Signer, checksum_address
from ailedger.log._envelope import check_ethereum_signature
from ailedger.oracle._http import JsonServer
from ailedger.oracle.observation import Observation
from ailedger.oracle.scoring import load_verified

__all__ = [
    "MAX_CLOCK_SKEW",
    "InputMismatch",
    "OracleNode",
    "ReportRefused",
    "report_from_dict",
    "serve",
    "verify_observation",
]

#: How far (seconds) a report's timestamp may lie from the node's clock.
MAX_CLOCK_SKEW = 300


class InputMismatch(VerificationFailed):
    """The batch a round names does not hash to the round's input root."""

    exit_code: ClassVar[int] = 1
    default_code = "oracle-input-mismatch"


class ReportRefused(VerificationFailed):
    """A node will not co-sign a report (it does not match what the oracles observed)."""

    exit_code: ClassVar[int] = 1
    default_code = "oracle-report-refused"


def _hex32(value: object, what: str) -> bytes:
    text = str(value).removeprefix("0x").removeprefix("sha256:")
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raise InvalidInput(f"{what} is not hex") from None
    if len(raw) != 32:
        raise InvalidInput(f"{what} must be 32 bytes")
    return raw


def report_from_dict(doc: dict[str, Any]) -> OracleReport:
    """The inverse of :meth:`OracleReport.to_dict`."""
    try:
        return OracleReport(
            _hex32(doc["feed_id"], "feed_id"),
            _hex32(doc["config_digest"], "config_digest"),
            int(doc["epoch"]),
            tuple(int(v) for v in doc["observations"]),
            bytes(int(i) for i in doc["observers"]),
            _hex32(doc["input_root"], "input_root"),
            _hex32(doc["model_digest"], "model_digest"),
            int(doc["observations_timestamp"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, InvalidInput):
            raise
        raise InvalidInput(f"malformed report: {exc}") from None


def verify_observation(envelope: dsse.Envelope) -> Observation:
    """The observation in ``envelope`` if it is signed by the oracle it names."""
    if len(envelope.signatures) != 1:
        raise VerificationFailed(
            "an observation carries exactly one signature", code="observation-signature-invalid"
        )
    observation = Observation.from_statement(Statement.from_json(envelope.payload))
    sig = envelope.signatures[0]
    if sig.keyid.lower() != observation.oracle.lower():
        raise VerificationFailed(
            f"observation of {observation.oracle} signed by {sig.keyid}",
            code="observation-signature-invalid",
        )
    check_ethereum_signature(sig.keyid, envelope.pae(), sig.sig)
    return observation


class OracleNode:
    """One oracle: its key, its feed (``feed`` created by ``creator``), the model directory
    and the model digest it expects."""

    def __init__(
        self,
        feed: str,
        signer: Secp256k1Signer,
        model_dir: Path,
        model_digest: str,
        *,
        creator: str,
        lie_by: int = 0,
    ) -> None:
        self.feed = feed
        self.creator = checksum_address(creator)
        self.feed_id = feed_id(self.creator, feed)
        self.signer = signer
        self.address = checksum_address(signer.address)
        self.model_dir = Path(model_dir)
        self.model_digest = _hex32(model_digest, "model digest").hex()
        self.lie_by = lie_by
        self._observed: dict[int, Observation] = {}
        self._lock = threading.Lock()

    def check_model(self) -> None:
        """Fingerprint the model directory; :class:`ModelMismatch` unless it is the one."""
        load_verified(self.model_dir, self.model_digest)

    def score(self, batch: Path) -> int:
        """This oracle's honest value for ``batch``: the model, fingerprinted before it is
        loaded, scores it. Subclasses with another kind of model override this."""
        return load_verified(self.model_dir, self.model_digest).score(batch)

    def observe(self, epoch: int, batch: Path, input_root: bytes) -> dsse.Envelope:
        """Score ``batch`` for ``epoch`` and return the signed observation statement."""
        batch = Path(batch)
        fp = fingerprint_dataset(batch, secret=None)
        if fp.root != input_root:
            raise InputMismatch(
                f"{batch}: Merkle root {fp.root.hex()} is not the round's {input_root.hex()}"
            )
        observation = Observation.create(
            feed=self.feed,
            epoch=epoch,
            value=self.score(batch) + self.lie_by,
            input_root=fp.root.hex(),
            input_size=fp.size,
            input_sha256=fp.data_sha256,
            input_name=batch.name,
            model_digest=self.model_digest,
            oracle=self.address,
            time=datetime.now(UTC).replace(microsecond=0),
        )
        with self._lock:
            self._observed[epoch] = observation
        return sign_statement(observation.statement(), [self.signer])

    def sign_observation(
        self,
        round_: OracleReport,
        *,
        chain_id: int,
        contract: str,
        config_version: int,
        signers: Sequence[str],
    ) -> bytes:
        """Sign this node's observation for the round ``round_`` (a report without
        observations: feed, config digest, epoch, input root, model and time)."""
        mine = self._observed.get(round_.epoch)
        if mine is None:
            raise ReportRefused(f"{self.address} made no observation for epoch {round_.epoch}")
        roster = [checksum_address(s) for s in signers]
        expected = config_digest(chain_id, contract, self.feed_id, config_version, roster)
        if round_.feed_id != self.feed_id or round_.config_digest != expected:
            raise ReportRefused("the round is for another feed, contract or oracle set")
        if round_.model_digest.hex() != self.model_digest:
            raise ReportRefused(f"the round names model {round_.model_digest.hex()}")
        if round_.input_root.hex() != mine.input_root:
            raise ReportRefused(f"the round names input root {round_.input_root.hex()}")
        if abs(round_.observations_timestamp - time.time()) > MAX_CLOCK_SKEW:
            raise ReportRefused("the round's timestamp is not recent")
        digest = observation_digest(oracle_domain(chain_id, contract), round_, mine.value)
        return sign_digest(digest, self.signer)

    def sign(
        self,
        report: OracleReport,
        *,
        chain_id: int,
        contract: str,
        config_version: int,
        signers: Sequence[str],
        envelopes: Sequence[dsse.Envelope],
    ) -> bytes:
        """Co-sign ``report`` after the checks in the module docstring."""
        mine = self._observed.get(report.epoch)
        if mine is None:
            raise ReportRefused(f"{self.address} made no observation for epoch {report.epoch}")
        roster = [checksum_address(s) for s in signers]
        expected = config_digest(chain_id, contract, self.feed_id, config_version, roster)
        if report.feed_id != self.feed_id or report.config_digest != expected:
            raise ReportRefused("the report is for another feed, contract or oracle set")
        if report.model_digest.hex() != self.model_digest:
            raise ReportRefused(f"the report names model {report.model_digest.hex()}")
        if report.input_root.hex() != mine.input_root:
            raise ReportRefused(f"the report names input root {report.input_root.hex()}")
        if abs(report.observations_timestamp - time.time()) > MAX_CLOCK_SKEW:
            raise ReportRefused("the report's timestamp is not recent")
        backed: dict[int, int] = {}
        for envelope in envelopes:
            obs = verify_observation(envelope)
            who = checksum_address(obs.oracle)
            if who not in roster:
                raise ReportRefused(f"{who} is not in the oracle set")
            same = (obs.feed, obs.epoch, obs.input_root, obs.model_digest)
            if same != (self.feed, report.epoch, mine.input_root, self.model_digest):
                raise ReportRefused(f"the observation of {who} is for another round or model")
            backed[roster.index(who)] = obs.value
        claimed = dict(zip(report.observers, report.observations, strict=True))
        if len(claimed) != len(report.observers) or claimed != backed:
            raise ReportRefused("the report's observations are not the signed ones")
        me = roster.index(self.address) if self.address in roster else None
        if me is not None and me in claimed and claimed[me] != mine.value:
            raise ReportRefused("the report misstates this oracle's observation")
        return sign_digest(report_digest(oracle_domain(chain_id, contract), report), self.signer)

    # -- the HTTP routes ---------------------------------------------------------------

    def _health(self, _body: dict[str, Any]) -> dict[str, Any]:
        return {"oracle": self.address, "feed": self.feed, "model_digest": self.model_digest}

    def _observe(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            epoch, batch = int(body["epoch"]), Path(str(body["batch"]))
        except (KeyError, TypeError, ValueError):
            raise InvalidInput("observe needs 'epoch', 'batch' and 'input_root'") from None
        envelope = self.observe(epoch, batch, _hex32(body.get("input_root"), "input_root"))
        answer: dict[str, Any] = {"oracle": self.address, "envelope": envelope.to_dict()}
        round_ = body.get("round")
        if round_ is not None:
            try:
                template = OracleReport(
                    self.feed_id,
                    config_digest(
                        int(round_["chain_id"]),
                        str(round_["contract"]),
                        self.feed_id,
                        int(round_["config_version"]),
                        [str(s) for s in round_["signers"]],
                    ),
                    epoch,
                    (),
                    b"",
                    _hex32(body.get("input_root"), "input_root"),
                    bytes.fromhex(self.model_digest),
                    int(round_["observations_timestamp"]),
                )
                signature = self.sign_observation(
                    template,
                    chain_id=int(round_["chain_id"]),
                    contract=str(round_["contract"]),
                    config_version=int(round_["config_version"]),
                    signers=[str(s) for s in round_["signers"]],
                )
            except (KeyError, TypeError, ValueError) as exc:
                if isinstance(exc, InvalidInput):
                    raise
                raise InvalidInput(f"malformed observe request: {exc}") from None
            answer["observation_signature"] = "0x" + signature.hex()
        return answer

    def _sign(self, body: dict[str, Any]) -> dict[str, Any]:
        try:
            report = report_from_dict(body["report"])
            envelopes = [dsse.Envelope.from_dict(e) for e in body["envelopes"]]
            signature = self.sign(
                report,
                chain_id=int(body["chain_id"]),
                contract=str(body["contract"]),
                config_version=int(body["config_version"]),
                signers=[str(s) for s in body["signers"]],
                envelopes=envelopes,
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInput(f"malformed sign request: {exc}") from None
        return {"oracle": self.address, "signature": "0x" + signature.hex()}


def serve(
    node: OracleNode, host: str = "127.0.0.1", port: int = 0, *, faulty: bool = False
) -> JsonServer:
    """Start serving ``node`` (see the module docstring); stop it with ``.stop()``."""
    routes = {
        "GET /health": node._health,
        "POST /observe": node._observe,
        "POST /sign": node._sign,
    }
    return JsonServer(routes, host, port, silent=faulty).start()
