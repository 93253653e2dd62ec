"""Malformed requests against a real ``ailedger serve``: always a 4xx problem, never a 500,
and never an entry appended from a rejected request."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _log_util import ALICE, BOB, envelope
from _service import Service, server_workspace
from ailedger.log import TransparencyLog

FUZZ = settings(
    deadline=None,  # a shared machine: never depend on its speed
    max_examples=120,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Service, Path]]:
    root = tmp_path_factory.mktemp("fuzz") / "server"
    server_workspace(root)
    with Service(root, "--allow", ALICE.address, "--max-body-bytes", "65536") as service:
        yield service, root / ".ailedger" / "log.sqlite"


def _size(db: Path) -> int:
    with TransparencyLog.open(db, read_only=True) as log:
        return log.size()


def _refused(service: Service, method: str, path: str, body: bytes | None = None) -> int:
    status, headers, data = service.request(method, path, body)
    assert status < 500, (path, body, data)
    if status >= 400:
        assert headers["content-type"] == "application/problem+json"
        problem = json.loads(data)
        assert problem["status"] == status
        assert {"type", "title", "status", "detail"} <= set(problem)
    return status


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
good = json.loads(envelope(1))
envelope_like = st.fixed_dictionaries(
    {},
    optional={
        "payload": st.one_of(json_values, st.just(good["payload"]), st.text(max_size=30)),
        "payloadType": st.one_of(json_values, st.just(good["payloadType"])),
        "signatures": st.one_of(
            json_values,
            st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "keyid": st.one_of(json_values, st.just(ALICE.address)),
                        "sig": st.one_of(
                            json_values,
                            st.binary(max_size=70).map(lambda b: base64.b64encode(b).decode()),
                        ),
                    },
                ),
                max_size=3,
            ),
        ),
    },
)


def _deep(depth: int, kind: str) -> bytes:
    return (kind[0] * depth + kind[1] * depth).encode()


bodies = st.one_of(
    st.binary(max_size=2000),
    json_values.map(lambda v: json.dumps(v).encode()),
    envelope_like.map(lambda d: json.dumps(d).encode()),
    st.builds(_deep, st.integers(9, 100_000), st.sampled_from(["[]", "{}"])).map(
        lambda b: b.replace(b"{}", b'{"a":{}}') if b.startswith(b"{") else b
    ),
    st.integers(0, 2**20).map(lambda n: b"x" * n),
)


@FUZZ
@given(body=bodies)
def test_malformed_submissions_are_4xx_and_append_nothing(
    fuzzed: tuple[Service, Path], body: bytes
) -> None:
    service, db = fuzzed
    before = _size(db)
    status = _refused(service, "POST", "/v1/entries", body)
    assert 400 <= status < 500
    assert _size(db) == before


@FUZZ
@given(n=st.integers(0, 1000), signer=st.sampled_from([BOB]))
def test_unknown_signers_never_append(fuzzed: tuple[Service, Path], n: int, signer: Any) -> None:
    service, db = fuzzed
    before = _size(db)
    assert _refused(service, "POST", "/v1/entries", envelope(n, (signer,))) == 403
    assert _size(db) == before


_segment = st.text(alphabet=st.sampled_from("0123456789xp.entries/%-_aZ"), min_size=0, max_size=30)


@FUZZ
@given(path=st.one_of(_segment.map(lambda s: "/tile/" + s), _segment.map(lambda s: "/v1/" + s)))
def test_reads_of_any_path_are_never_500(fuzzed: tuple[Service, Path], path: str) -> None:
    _refused(fuzzed[0], "GET", path)


@FUZZ
@given(
    old=st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=5)),
    new=st.one_of(st.integers(-(2**70), 2**70), st.text(max_size=5)),
)
def test_proof_parameters_are_never_500(
    fuzzed: tuple[Service, Path], old: object, new: object
) -> None:
    from urllib.parse import urlencode

    _refused(fuzzed[0], "GET", "/v1/proof/consistency?" + urlencode({"old": old, "new": new}))


@pytest.mark.parametrize(
    "query",
    [
        "/v1/entries?start=0&limit=1&limit=2",  # FastAPI took the last value
        "/v1/entries?start=0&limit=%C2%A09",  # a no-break space, then a digit: was 9
        "/v1/entries?start=0&limit=+9",
        "/v1/entries?start=0&limit=9_0",
        "/v1/entries?start=%D9%A9",  # an Arabic-Indic nine
        "/v1/proof/consistency?old=0&old=1",
        "/v1/proof/consistency?old=1_0",
        "/v1/entries?subject=a&subject=b",
    ],
)
def test_query_parameters_are_parsed_strictly(fuzzed: tuple[Service, Path], query: str) -> None:
    """Found by schemathesis (a repeated ``limit`` whose last value was ``" \\xa09"`` was served
    as limit 9): a parameter given twice, or an integer that is not ASCII digits, is a 422."""
    service, _ = fuzzed
    status, headers, body = service.request("GET", query)
    assert status == 422, (status, body)
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["type"].endswith("/invalid-parameter")


def test_plain_integer_parameters_still_work(fuzzed: tuple[Service, Path]) -> None:
    service, _ = fuzzed
    status, _, body = service.request("GET", "/v1/entries?start=0&limit=1")
    assert status == 200, body
