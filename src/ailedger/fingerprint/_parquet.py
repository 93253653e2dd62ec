"""Parquet rows through pyarrow (an optional dependency: ``pip install 'ailedger[parquet]'``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ailedger.errors import FormatError, InvalidInput

__all__ = ["read_parquet"]


def read_parquet(
    path: Path, encode_row: Callable[[dict[str, Any]], bytes]
) -> tuple[list[bytes], list[list[str]]]:
    """Every row of the Parquet file encoded by ``encode_row``, and the schema as
    ``[[column, arrow type], ...]``."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput(
            "reading Parquet needs pyarrow", hint="pip install 'ailedger[parquet]'"
        ) from None
    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise FormatError(f"{path}: not a readable Parquet file: {exc}") from None
    schema = [[f.name, str(f.type)] for f in table.schema]
    records: list[bytes] = []
    row_number = 0
    for batch in table.to_batches():
        for row in batch.to_pylist():
            try:
                records.append(encode_row(row))
            except ValueError as exc:
                raise FormatError(f"{path}: row {row_number}: {exc}") from None
            row_number += 1
    return records, schema
