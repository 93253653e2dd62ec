"""schemathesis against the OpenAPI documents of a real ``ailedger serve`` (the embedded
chain's ``/rpc`` included) and a real ``ailedger witness serve`` (GET /openapi.json of each):
every operation, with valid and malformed requests (schemathesis's positive and negative
modes). Every answer must be no 5xx, with a status, content type, headers and body that the
document declares, a malformed request must be refused (``negative_data_rejection``), and a
refused request must change nothing: the log's size is read from its database around each
call (only a 201 from ``POST /v1/entries`` may add one entry), the witness's state file is
compared byte for byte.

schemathesis's bodies are never signed; :func:`test_signed_submissions_against_the_schema`
sends signed and near-valid envelopes through it too, so the answers to those (201, 200, 403,
422) are checked against the document as well.

Left off: ``positive_data_acceptance``: a request the schema allows may still be refused by
design (a well-formed envelope whose signature does not verify is a 422, a well-formed
checkpoint no trusted key signed a 403), and a schema cannot say "signed by an allowed key".
schemathesis runs ``unsupported_method`` only in its coverage phase, which its Python API here
does not run: :func:`test_405_names_the_allowed_methods` checks that instead.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.specs.openapi import checks

from _log_util import ALICE, BOB, LOG_SIGNER, envelope
from _profiles import examples
from _service import Service, post, server_workspace, wait_for_checkpoint
from _witness import WitnessProcess, add_checkpoint, sign, witness_workspace
from ailedger.log import Secp256k1NoteKey, TransparencyLog
from ailedger.service._witness_server import witness_openapi

#: No deadline, no database: what a CI run must not depend on (tests/_profiles.py has the rest).
CONFIG = schemathesis.Config.from_dict(
    {"generation": {"mode": "all", "database": "none"}, "checks": {"enabled": True}}
)
#: The key of the log the witness trusts.
LOG_KEY = Secp256k1NoteKey.from_signer("example.com/openapi", LOG_SIGNER)
EXCLUDED = [checks.positive_data_acceptance]
FUZZ = settings(
    max_examples=examples(25),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.function_scoped_fixture,
    ],
)


@pytest.fixture(scope="module")
def served_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Path]]:
    """``ailedger serve`` (with its chain's /rpc) over a log of a few entries."""
    root = tmp_path_factory.mktemp("openapi") / "server"
    server_workspace(root)
    with Service(root, "--allow", ALICE.address, "--checkpoint-interval-ms", "20") as service:
        for i in range(3):
            assert post(service, envelope(i))[0] == 201
        wait_for_checkpoint(service, 3)
        yield service, root / ".ailedger" / "log.sqlite"


@pytest.fixture(scope="module")
def log_api(served_log: tuple[Service, Path]) -> Any:
    service, _ = served_log
    return schemathesis.openapi.from_url(f"{service.url}/openapi.json", config=CONFIG)


#: Every operation of the document (a test below checks the list is complete). Each is fuzzed
#: by its own test, through schemathesis's Python API: its pytest plugin fails under pytest 9
#: (it reads ``Function._nodeid``, which pytest 9 no longer has).
OPERATIONS = [
    "GET /checkpoint",
    "GET /healthz",
    "GET /tile/{path}",
    "GET /v1/anchors",
    "GET /v1/chain",
    "GET /v1/entries",
    "GET /v1/entries/{index}",
    "GET /v1/oracle/feeds",
    "GET /v1/oracle/feeds/{feed_id}",
    "GET /v1/organisations/{name}",
    "GET /v1/proof/consistency",
    "GET /v1/receipts/{index}",
    "GET /v1/registry/datasets",
    "GET /v1/registry/datasets/{name}",
    "GET /v1/registry/environments",
    "GET /v1/registry/environments/{env}",
    "GET /v1/registry/environments/{env}/at",
    "GET /v1/registry/lookup",
    "GET /v1/registry/models",
    "GET /v1/registry/models/{name}",
    "GET /v1/registry/status",
    "GET /v1/transactions/{tx_hash}",
    "POST /rpc",
    "POST /v1/entries",
]
#: The operations schemathesis can make malformed requests for (negative mode): those with
#: typed parameters or a body. Not ``POST /rpc``: schemathesis cannot negate its ``oneOf``
#: body (every case it draws fails its own filter); tests/service/test_rpc_fuzz.py sends it
#: malformed JSON-RPC instead.
NEGATABLE = [
    "GET /v1/entries",
    "GET /v1/entries/{index}",
    "GET /v1/organisations/{name}",
    "GET /v1/proof/consistency",
    "GET /v1/receipts/{index}",
    "GET /v1/registry/environments/{env}/at",
    "GET /v1/registry/lookup",
    "POST /v1/entries",
]
CASES = [(label, GenerationMode.POSITIVE) for label in OPERATIONS] + [
    (label, GenerationMode.NEGATIVE) for label in NEGATABLE
]


def _size(db: Path) -> int:
    with TransparencyLog.open(db, read_only=True) as log:
        return log.size()


def test_the_document_lists_every_operation(log_api: Any) -> None:
    labels = sorted(result.ok().label for result in log_api.get_all_operations())
    assert labels == OPERATIONS


@pytest.mark.parametrize(("label", "mode"), CASES)
def test_every_operation_against_the_schema(
    label: str, mode: GenerationMode, log_api: Any, served_log: tuple[Service, Path]
) -> None:
    _, db = served_log
    method, path = label.split(" ", 1)
    operation = log_api[path][method]

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        before = _size(db)
        response = case.call_and_validate(excluded_checks=EXCLUDED, timeout=60)
        accepted = (method, path, response.status_code) == ("POST", "/v1/entries", 201)
        assert _size(db) == before + accepted, response.status_code

    run()


#: Near-valid submissions: schemathesis's own bodies are never signed, so they never reach the
#: answers of a signed envelope (201, 200 duplicate, 403, 422); these do, each checked against
#: the document like any case.
SUBMISSIONS = ["valid", "duplicate", "not-allowed", "bad-signature", "no-signatures", "bad-payload"]


def _submission(kind: str, n: int) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(envelope(n, (BOB,) if kind == "not-allowed" else (ALICE,)))
    if kind == "duplicate":
        doc = json.loads(envelope(0))  # in the log since the fixture
    elif kind == "bad-signature":
        doc["signatures"] = json.loads(envelope(n + 1))["signatures"]
    elif kind == "no-signatures":
        doc["signatures"] = []
    elif kind == "bad-payload":
        doc["payload"] = doc["payload"][:-2] + "!!"
    return doc


@FUZZ
@given(kind=st.sampled_from(SUBMISSIONS), n=st.integers(10, 2**40))
def test_signed_submissions_against_the_schema(
    kind: str, n: int, log_api: Any, served_log: tuple[Service, Path]
) -> None:
    _, db = served_log
    case = log_api["/v1/entries"]["POST"].Case(
        body=_submission(kind, n), media_type="application/json"
    )
    before = _size(db)
    response = case.call_and_validate(excluded_checks=EXCLUDED, timeout=60)
    expected = {
        "valid": (200, 201),  # 200: hypothesis drew this n before
        "duplicate": (200,),
        "not-allowed": (403,),
        "bad-signature": (422,),
        "no-signatures": (400,),
        "bad-payload": (400, 422),
    }[kind]
    assert response.status_code in expected, response.text
    assert _size(db) == before + (response.status_code == 201)


# --- the witness ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def witness(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WitnessProcess]:
    """A secp256k1 witness (so it serves /v1/anchor-cosign too) that cosigned size 3 of a log."""
    tmp = tmp_path_factory.mktemp("openapi-witness")
    witness_workspace(tmp / "witness", "secp256k1")
    with TransparencyLog.open(tmp / "log.sqlite", LOG_KEY.name) as log:
        log.append_many([envelope(i) for i in range(3)])
        first = sign(log, LOG_KEY)
    with WitnessProcess(tmp / "witness", [LOG_KEY]) as proc:
        status, _, body = add_checkpoint(proc, 0, (), first)
        assert status == 200, body
        yield proc


@pytest.fixture(scope="module")
def witness_api(witness: WitnessProcess) -> Any:
    return schemathesis.openapi.from_url(f"{witness.url}/openapi.json", config=CONFIG)


def _state(proc: WitnessProcess) -> list[bytes]:
    return [p.read_bytes() for p in sorted((proc.root / "state").glob("*.checkpoint"))]


def test_the_witness_document_lists_every_operation(witness_api: Any) -> None:
    labels = sorted(result.ok().label for result in witness_api.get_all_operations())
    assert labels == ["POST /add-checkpoint", "POST /v1/anchor-cosign"]


@pytest.mark.parametrize(
    ("label", "mode"),
    [
        ("POST /add-checkpoint", GenerationMode.POSITIVE),  # any text: a malformed body
        ("POST /v1/anchor-cosign", GenerationMode.POSITIVE),
        ("POST /v1/anchor-cosign", GenerationMode.NEGATIVE),
    ],
)
def test_every_witness_operation_against_the_schema(
    label: str, mode: GenerationMode, witness_api: Any, witness: WitnessProcess
) -> None:
    method, path = label.split(" ", 1)
    operation = witness_api[path][method]
    state = _state(witness)
    assert state  # it cosigned size 3

    @FUZZ
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call_and_validate(excluded_checks=EXCLUDED, timeout=60)
        if response.status_code != 200:
            assert _state(witness) == state, response.status_code

    run()


def test_405_names_the_allowed_methods(
    served_log: tuple[Service, Path], witness: WitnessProcess
) -> None:
    service, _ = served_log
    for proc, path, allowed in (
        (service, "/checkpoint", {"GET"}),
        (service, "/v1/entries", {"GET", "POST"}),
        (witness, "/add-checkpoint", {"POST"}),
        (witness, "/openapi.json", {"GET", "HEAD"}),
    ):
        status, headers, body = proc.request("DELETE", path)
        assert status == 405, body
        assert headers["content-type"] == "application/problem+json"
        assert set(headers["allow"].split(", ")) == allowed, path


def test_an_ed25519_witness_documents_no_anchor_cosign() -> None:
    """Only a secp256k1 witness serves /v1/anchor-cosign, and only it documents it."""
    assert list(witness_openapi(anchor_cosign=False)["paths"]) == ["/add-checkpoint"]
    assert list(witness_openapi(anchor_cosign=True)["paths"]) == [
        "/add-checkpoint",
        "/v1/anchor-cosign",
    ]
