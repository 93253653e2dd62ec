"""Which jobs a provider serves, and whose signature each call needs.

A :data:`JobDirectory` maps a job id to its :class:`JobEntry` (the consumer who must sign
every call; for an on-chain job also its maximum calls and deadline) or refuses the job.
Two ship: :func:`job_table`, a fixed table the provider is given (``market serve --jobs
FILE``, read by :func:`load_job_table`), and the InferenceMarket's
(:func:`ailedger.markets.inference.onchain.onchain_jobs`). Either fails closed: a job it does
not name is not served, and an empty or malformed table is refused before anything is served.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

import orjson

from ailedger.errors import FormatError, InvalidInput, NotFound
from ailedger.identity.keys import checksum_address

__all__ = ["JobDirectory", "JobEntry", "job_table", "load_job_table"]

_HEX32 = re.compile(r"0x[0-9a-fA-F]{64}")


@dataclass(frozen=True)
class JobEntry:
    """What the provider knows of a job it serves: its consumer (who must sign every call),
    and, when the job is on-chain, its maximum calls and deadline (unix seconds; no call is
    served beyond either: it could not be committed, so it would never be paid)."""

    consumer: str
    max_calls: int | None = None
    deadline: int | None = None


#: The job's entry, or NotFound (404) / ConflictError (409) for a job not served here.
JobDirectory: TypeAlias = Callable[[bytes], JobEntry]


def job_table(consumers: Mapping[bytes, str]) -> JobDirectory:
    """A directory of the jobs in ``consumers`` (job id -> consumer address); any other job
    is refused (NotFound). An empty table would serve nothing: refused."""
    if not consumers:
        raise InvalidInput("the job table names no job: the provider would serve nothing")
    entries = {job: JobEntry(checksum_address(who)) for job, who in consumers.items()}

    def lookup(job: bytes) -> JobEntry:
        entry = entries.get(job)
        if entry is None:
            raise NotFound(f"job 0x{job.hex()} is not served here (not in the job table)")
        return entry

    return lookup


def load_job_table(path: Path) -> dict[bytes, str]:
    """The job table in ``path``: a JSON object ``{"0x<job id>": "0x<consumer>", ...}`` with
    at least one job. Anything else (missing, empty, truncated, another shape, a malformed id
    or address) is refused with one line naming the file."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise NotFound(f"{path}: no such job table") from None
    except OSError as exc:
        raise InvalidInput(f"{path}: cannot read the job table ({exc.strerror or exc})") from None
    try:
        doc = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise FormatError(f"{path}: the job table is not JSON ({exc})") from None
    if not isinstance(doc, dict) or not doc:
        raise FormatError(
            f'{path}: the job table must be a non-empty JSON object {{"0xJOB": "0xCONSUMER"}}'
        )
    table: dict[bytes, str] = {}
    for job, consumer in doc.items():
        if not _HEX32.fullmatch(job):
            raise FormatError(f"{path}: job id {job!r} is not 0x and 64 hex digits")
        if not isinstance(consumer, str):
            raise FormatError(f"{path}: the consumer of job {job} is not an address")
        try:
            table[bytes.fromhex(job[2:])] = checksum_address(consumer)
        except InvalidInput as exc:
            raise FormatError(f"{path}: job {job}: {exc.message}") from None
    return table
