"""The provider's job table (``market serve --jobs FILE``): any file parses into a table of
checksummed consumers or is refused in one error naming the file; an empty table serves
nothing, so it is refused; a job it does not name is NotFound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.errors import FormatError, InvalidInput, NotFound
from ailedger.markets.inference import job_table, load_job_table
from markets._helpers import CONSUMER, OTHER_CONSUMER

jobs = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
addresses = st.sampled_from([CONSUMER, OTHER_CONSUMER, CONSUMER.lower()])
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=70), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=examples(60))
@given(table=st.dictionaries(jobs, addresses, min_size=1, max_size=5))
def test_a_well_formed_table_round_trips(
    tmp_path_factory: pytest.TempPathFactory, table: dict[str, str]
) -> None:
    path = tmp_path_factory.mktemp("jobs") / "jobs.json"
    path.write_text(json.dumps(table))
    loaded = load_job_table(path)
    assert {"0x" + job.hex(): who for job, who in loaded.items()} == {
        job: CONSUMER if who.lower() == CONSUMER.lower() else who for job, who in table.items()
    }
    directory = job_table(loaded)
    for job in loaded:
        assert directory(job).consumer in (CONSUMER, OTHER_CONSUMER)
    missing = next(bytes([i]) * 32 for i in range(256) if bytes([i]) * 32 not in loaded)
    with pytest.raises(NotFound):
        directory(missing)


@settings(max_examples=examples(100))
@given(raw=json_values.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=80))
def test_anything_else_is_refused_in_one_error(
    tmp_path_factory: pytest.TempPathFactory, raw: bytes
) -> None:
    path = tmp_path_factory.mktemp("jobs") / "jobs.json"
    path.write_bytes(raw)
    refused: InvalidInput | None = None
    table: dict[bytes, str] = {}
    try:
        table = load_job_table(path)
    except InvalidInput as exc:  # FormatError included
        refused = exc
    if refused is not None:
        assert str(path) in refused.message
    else:
        assert table  # only a non-empty, well-formed table gets through
        job_table(table)


def test_an_empty_or_missing_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="names no job"):
        job_table({})
    with pytest.raises(NotFound, match="no such job table"):
        load_job_table(tmp_path / "missing.json")
    (tmp_path / "empty.json").write_text("")
    with pytest.raises(FormatError, match="not JSON"):
        load_job_table(tmp_path / "empty.json")
