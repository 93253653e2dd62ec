"""Malformed and hostile add-checkpoint bodies against a real ``ailedger witness serve``:
always a 4xx (problem+json, or the spec's text/x.tlog.size 409), never a 5xx, and never a
state change from a refused request."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _log_util import envelope
from _witness import WitnessProcess, sign, witness_workspace
from ailedger.log import Ed25519NoteKey, SignedNote, TransparencyLog
from ailedger.service.witness import format_add_checkpoint

FUZZ = settings(
    deadline=None,  # a shared machine: never depend on its speed
    max_examples=150,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ORIGIN = "example.com/fuzzed"
LOG_KEY = Ed25519NoteKey.generate(ORIGIN)


@pytest.fixture(scope="module")
def fuzzed(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[WitnessProcess, SignedNote, SignedNote]]:
    """A witness that cosigned size 3 of a log; a checkpoint of size 6 of the same log."""
    tmp = tmp_path_factory.mktemp("wfuzz")
    witness_workspace(tmp / "witness")
    with TransparencyLog.open(tmp / "log.sqlite", ORIGIN) as log:
        log.append_many([envelope(i) for i in range(3)])
        first = sign(log, LOG_KEY)
        log.append_many([envelope(i) for i in range(3, 6)])
        second = sign(log, LOG_KEY)
    with WitnessProcess(tmp / "witness", [LOG_KEY]) as proc:
        status, _, body = proc.request(
            "POST", "/add-checkpoint", format_add_checkpoint(0, (), first)
        )
        assert status == 200, body
        yield proc, first, second


def _refused(proc: WitnessProcess, body: bytes) -> int:
    status, headers, data = proc.request("POST", "/add-checkpoint", body)
    assert status < 500, (body, data)
    if status == 409 and headers["content-type"] == "text/x.tlog.size":
        assert data == b"3\n"  # the state never moved
    elif status >= 400:
        assert headers["content-type"] == "application/problem+json"
        assert json.loads(data)["status"] == status
    return status


@FUZZ
@given(body=st.binary(max_size=2048))
def test_random_bytes(fuzzed: tuple[WitnessProcess, SignedNote, SignedNote], body: bytes) -> None:
    assert _refused(fuzzed[0], body) in (400, 403, 404, 409, 413, 422)


_LINE = st.one_of(
    st.text(max_size=60).map(lambda t: t.replace("\n", "")),
    st.binary(min_size=0, max_size=40).map(lambda b: base64.b64encode(b).decode()),
    st.integers(-5, 2**70).map(lambda n: f"old {n}"),
)


@FUZZ
@given(
    head=st.lists(_LINE, max_size=70),
    mutate=st.sampled_from(["none", "size", "root", "origin", "sig", "drop-sig", "truncate"]),
    use_second=st.booleans(),
    cut=st.integers(0, 400),
)
def test_structured_bodies(
    fuzzed: tuple[WitnessProcess, SignedNote, SignedNote],
    head: list[str],
    mutate: str,
    use_second: bool,
    cut: int,
) -> None:
    proc, first, second = fuzzed
    text = (second if use_second else first).format()
    if mutate == "size":
        text = text.replace("\n6\n" if use_second else "\n3\n", "\n7\n", 1)
    elif mutate == "root":
        text = text.replace("=\n", "A=\n", 1)
    elif mutate == "origin":
        text = text.replace(ORIGIN, ORIGIN + "x", 1)
    elif mutate == "sig":
        text = text[:-6] + "AAAA=\n"
    elif mutate == "drop-sig":
        text = text[: text.index("\n\n") + 2]
    elif mutate == "truncate":
        text = text[:cut]
    body = ("".join(line + "\n" for line in head) + "\n" + text).encode()
    status = _refused(proc, body)
    if status == 200:  # only an honest request can pass: the same size 3, or 3 -> 6 by proof
        assert mutate in ("none", "truncate")
