"""File, shard and tensor-range hashing jobs."""

from __future__ import annotations

import hashlib
import itertools
import os
import random
import tempfile
import threading
import time
from pathlib import Path

import blake3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _profiles import examples
from ailedger.errors import InvalidInput, NotFound
from ailedger.fingerprint import _hashing as hashing
from ailedger.fingerprint._hashing import (
    _SPLIT_FROM,
    CHUNK_SIZE,
    Cancelled,
    Job,
    hash_bytes,
    new_hasher,
    run_job,
    run_jobs,
)

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
    max_examples=examples(30),
    suppress_health_check=[*settings().suppress_health_check, HealthCheck.function_scoped_fixture],
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


@pytest.fixture(scope="module")
def larger(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, bytes]:
    """Large enough for the file and tensor digests to run on two threads."""
    data = os.urandom(_SPLIT_FROM + 12345)
    path = tmp_path_factory.mktemp("h") / "larger.bin"
    path.write_bytes(data)
    return str(path), data


@settings(
    max_examples=examples(30),
    suppress_health_check=[*settings().suppress_health_check, HealthCheck.function_scoped_fixture],
)
@given(
    algorithm=st.sampled_from(["sha256", "blake3"]),
    cuts=st.lists(st.integers(0, _SPLIT_FROM + 12345), min_size=1, max_size=8),
)
def test_whole_file_and_its_tensors_in_one_pass(
    larger: tuple[str, bytes], algorithm: str, cuts: list[int]
) -> None:
    # the path fingerprint_model takes for a safetensors file: the whole file and, in the same
    # pass, the tensors that tile its data (here from the first cut to the end)
    path, data = larger
    points = sorted({len(data), *cuts})
    ranges = tuple(itertools.pairwise([points[0], *points]))[1:] or ((points[0], points[0]),)
    progress: list[int] = []
    result = run_job(
        Job(path, "big.bin", 0, len(data), True, ranges),
        algorithm,  # type: ignore[arg-type]
        progress.append,
    )
    assert sum(progress) == len(data)
    assert result.digest == _REF[algorithm](data)
    assert result.tensor_digests == [_REF[algorithm](data[b:e]) for b, e in ranges]


@pytest.mark.parametrize("algorithm", ["sha256", "blake3"])
def test_cancel_stops_a_job_with_tensors(larger: tuple[str, bytes], algorithm: str) -> None:
    path, data = larger
    stop = threading.Event()
    stop.set()
    job = Job(path, "big", 0, len(data), True, ((0, 10), (10, len(data))))
    with pytest.raises(Cancelled):
        run_job(job, algorithm, None, stop)  # type: ignore[arg-type]
    names = [t.name for t in threading.enumerate()]
    assert not any(n.startswith("ailedger-tensors") for n in names)  # the helper is gone


@pytest.mark.parametrize("cores", ["alternate", 0, 1000])
def test_tensors_on_and_off_the_helper_thread(
    larger: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch, cores: str | int
) -> None:
    # the tensor hashing moves between the job's thread (every core busy) and a helper thread
    # (a core spare) from one chunk to the next; the digests must not depend on where it ran
    path, data = larger
    cuts = [0, 5, CHUNK_SIZE - 1, CHUNK_SIZE + 1, 3 * CHUNK_SIZE, len(data) - 1, len(data)]
    ranges = tuple(itertools.pairwise(cuts))
    flips: list[int] = []

    def flip(n: int) -> None:
        flips.append(n)
        if cores == "alternate":
            monkeypatch.setattr(hashing, "_CORES", 1000 if len(flips) % 2 else 0)

    monkeypatch.setattr(hashing, "_CORES", 1000 if cores == "alternate" else cores)
    update = hashing._TensorFeed.update

    def slow_helper(self: hashing._TensorFeed, chunk: memoryview, pos: int) -> None:
        if threading.current_thread().name.startswith("ailedger-tensors"):
            time.sleep(0.005)  # the helper lags: the job must wait for it before going on
        update(self, chunk, pos)

    monkeypatch.setattr(hashing._TensorFeed, "update", slow_helper)
    result = run_job(Job(path, "larger", 0, len(data), True, ranges), "sha256", flip)
    assert sum(flips) == len(data)
    assert result.digest == hashlib.sha256(data).digest()
    assert result.tensor_digests == [hashlib.sha256(data[b:e]).digest() for b, e in ranges]


layout_st = st.integers(0, 6000).flatmap(
    lambda size: st.tuples(
        st.just(size),
        st.lists(st.integers(0, size), max_size=10),  # tensor boundaries (the first: start)
        st.integers(0, 2**32 - 1),  # seed of the bytes
    )
)


@settings(max_examples=examples(60), deadline=None)
@given(
    layout=layout_st,
    chunk=st.integers(1, 64) | st.integers(1, 2000),
    wide=st.integers(1, 64) | st.integers(1, 3000),
    mode=st.sampled_from(["inline", "helper", "alternate", "wide"]),
    algorithms=st.sampled_from(
        [("sha256", "blake3"), ("sha256", None), ("blake3", None), ("blake3", "sha256")]
    ),
)
def test_one_pass_equals_the_reference_for_any_chunks_and_layout(
    layout: tuple[int, list[int], int],
    chunk: int,
    wide: int,
    mode: str,
    algorithms: tuple[str, str | None],
) -> None:
    # the file digest and the tensor digests of one read pass, whatever the read size (chunk
    # boundaries anywhere in the tensors), the tensor layout (empty tensors, one, many) and
    # where the tensor hashing runs (this thread, the helper, both in turn, wide reads)
    size, cuts, seed = layout
    data = random.Random(seed).randbytes(size)
    file_alg, tensor_alg = algorithms
    start = cuts[0] if cuts else 0
    points = sorted({start, size, *(c for c in cuts if c >= start)})
    ranges = tuple(itertools.pairwise(points)) or ((start, start),)
    seen: list[int] = []
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        path = Path(tmp) / "f"
        path.write_bytes(data)
        mp.setattr(hashing, "CHUNK_SIZE", chunk)
        mp.setattr(hashing, "_WIDE_CHUNK", wide)
        mp.setattr(hashing, "_SPLIT_FROM", 0)
        mp.setattr(hashing, "_FEW_JOBS", -1 if mode == "wide" else 1000)
        mp.setattr(hashing, "_CORES", 1000 if mode == "helper" else 0)

        def progress(n: int) -> None:
            seen.append(n)
            if mode == "alternate":
                mp.setattr(hashing, "_CORES", 1000 if len(seen) % 2 else 0)

        job = Job(str(path), "f", 0, len(data), True, ranges, None, tensor_alg)  # type: ignore[arg-type]
        result = run_job(job, file_alg, progress)  # type: ignore[arg-type]
    assert sum(seen) == len(data)
    assert max(seen, default=0) <= (wide if mode == "wide" else chunk)
    assert result.digest == _REF[file_alg](data)
    ref = _REF[tensor_alg or file_alg]
    assert result.tensor_digests == [ref(data[b:e]) for b, e in ranges]
    names = [t.name for t in threading.enumerate()]
    assert not any(n.startswith("ailedger-tensors") for n in names)  # every helper ended


def test_a_failing_tensor_hasher_on_the_helper_fails_the_job(
    larger: tuple[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    path, data = larger
    monkeypatch.setattr(hashing, "_CORES", 1000)  # a core is spare: the helper hashes tensors

    def broken(self: hashing._TensorFeed, chunk: memoryview, pos: int) -> None:
        raise RuntimeError("tensor hasher broke")

    monkeypatch.setattr(hashing._TensorFeed, "update", broken)
    with pytest.raises(RuntimeError, match="tensor hasher broke"):
        run_job(Job(path, "larger", 0, len(data), True, ((0, len(data)),)), "sha256")
    names = [t.name for t in threading.enumerate()]
    assert not any(n.startswith("ailedger-tensors") for n in names)
