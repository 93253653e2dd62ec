"""File, shard and tensor-range hashing jobs."""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ailedger._hashing import CHUNK_SIZE, Cancelled, Job, hash_bytes, new_hasher, run_job, run_jobs
from ailedger.errors import InvalidInput, NotFound

_REF = {
    "sha256": lambda b: hashlib.sha256(b).digest(),
    "blake3": lambda b: blake3.blake3(b).digest(),
}


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    data = os.urandom(2 * CHUNK_SIZE + 12345)
    path = tmp_path_factory.mktemp("h") / "big.bin"
    path.write_bytes(data)
    return str(path), data


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_whole_file(big: tuple[str, bytes], algorithm: str) -> None:
    path, data = big
    result = run_job(Job(path, "big.bin", 0, len(data)), algorithm)  # type: ignore[arg-type]
    assert result.digest == _REF[algorithm](data)
    assert hash_bytes(algorithm, data) == _REF[algorithm](data)  # type: ignore[arg-type]


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_empty_file(tmp_path: Path, algorithm: str) -> None:
    p = tmp_path / "e"
    p.write_bytes(b"")
    assert run_job(Job(str(p), "e", 0, 0), algorithm).digest == _REF[algorithm](b"")  # type: ignore[arg-type]


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    algorithm=st.sampled_from(["sha256", "blake3"]),
    cuts=st.lists(st.integers(0, 2 * CHUNK_SIZE + 12345), max_size=6),
    whole=st.booleans(),
)
def test_ranges_and_tensors(
    big: tuple[str, bytes], algorithm: str, cuts: list[int], whole: bool
) -> None:
    path, data = big
    points = sorted({0, len(data), *cuts})
    # the job reads [start, end); the tensors tile [start, end) exactly, as in a safetensors file
    start, end = (points[1] if len(points) > 2 else 0), points[-1]
    ranges = tuple(itertools.pairwise(points[1:])) if len(points) > 2 else ()
    progress: list[int] = []
    result = run_job(
        Job(path, "big.bin", start, end, whole, ranges),
        algorithm,  # type: ignore[arg-type]
        progress.append,
    )
    assert sum(progress) == end - start
    if whole:
        assert result.digest == _REF[algorithm](data[start:end])
    else:
        assert result.digest is None
    assert result.tensor_digests == [_REF[algorithm](data[b:e]) for b, e in ranges]


def test_zero_length_tensor_ranges(tmp_path: Path) -> None:
    p = tmp_path / "z"
    p.write_bytes(b"abcdef")
    ranges = ((0, 0), (0, 3), (3, 3), (3, 6), (6, 6))
    result = run_job(Job(str(p), "z", 0, 6, True, ranges), "sha256")
    assert result.tensor_digests == [hashlib.sha256(b"abcdef"[b:e]).digest() for b, e in ranges]


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_shards_keep_order_and_run_in_parallel(big: tuple[str, bytes], algorithm: str) -> None:
    path, data = big
    jobs = [Job(path, "big", s, min(s + 500_000, len(data))) for s in range(0, len(data), 500_000)]
    results = run_jobs(jobs, algorithm, max_workers=4)  # type: ignore[arg-type]
    assert [r.digest for r in results] == [_REF[algorithm](data[j.start : j.end]) for j in jobs]


def test_run_jobs_raises_the_first_error(big: tuple[str, bytes], tmp_path: Path) -> None:
    path, data = big
    jobs = [Job(path, "big", 0, len(data)), Job(str(tmp_path / "gone"), "gone", 0, 1)]
    with pytest.raises(NotFound, match="gone disappeared"):
        run_jobs(jobs, "sha256", max_workers=2)


def test_change_between_planning_and_reading_is_detected(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    st = os.stat(p)
    p.write_bytes(b"abcd")
    with pytest.raises(InvalidInput, match="changed while it was being read"):
        run_job(
            Job(str(p), "f", 0, 3, expect=(st.st_size, st.st_mtime_ns, st.st_ctime_ns)), "sha256"
        )


def test_truncated_under_us_is_detected(tmp_path: Path) -> None:
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    with pytest.raises(InvalidInput, match="changed"):
        run_job(Job(str(p), "f", 0, 10), "sha256")


def test_unknown_algorithm() -> None:
    with pytest.raises(InvalidInput, match="unknown hash algorithm"):
        new_hasher("md5")  # type: ignore[arg-type]


def test_os_errors_become_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="cannot read d: Is a directory"):
        run_job(Job(str(tmp_path), "d", 0, 1), "sha256")


def test_cancel_stops_a_job(big: tuple[str, bytes]) -> None:
    path, data = big
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        run_job(Job(path, "big", 0, len(data)), "sha256", None, stop)
