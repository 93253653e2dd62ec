"""Parquet rows through pyarrow (an optional dependency: ``pip install 'ailedger[parquet]'``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ailedger.errors import FormatError, InvalidInput

__all__ = ["iter_parquet", "parquet_row", "read_parquet"]


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


def _pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise InvalidInput(
            "reading Parquet needs pyarrow", hint="pip install 'ailedger[parquet]'"
        ) from None
    return pa, pq


def iter_parquet(
    path: Path, encode_row: Callable[[dict[str, Any]], bytes], batch_size: int
) -> tuple[list[list[str]], Iterator[list[bytes]]]:
    """The schema, and the rows encoded by ``encode_row`` in batches of up to ``batch_size``,
    read one record batch at a time (never the whole table)."""
    pa, pq = _pyarrow()
    try:
        pf = pq.ParquetFile(path)
    except (pa.ArrowException, OSError) as exc:
        raise FormatError(f"{path}: not a readable Parquet file: {exc}") from None
    schema = [[f.name, str(f.type)] for f in pf.schema_arrow]

    def batches() -> Iterator[list[bytes]]:
        row_number = 0
        try:
            for batch in pf.iter_batches(batch_size=batch_size):
                out: list[bytes] = []
                for row in batch.to_pylist():
                    try:
                        out.append(encode_row(row))
                    except ValueError as exc:
                        raise FormatError(f"{path}: row {row_number}: {exc}") from None
                    row_number += 1
                yield out
        except (pa.ArrowException, OSError) as exc:
            raise FormatError(f"{path}: not a readable Parquet file: {exc}") from None
        finally:
            pf.close()

    return schema, batches()


def parquet_row(path: Path, row: int, encode_row: Callable[[dict[str, Any]], bytes]) -> bytes:
    """Row ``row`` (0-based) encoded, reading only the row group that holds it."""
    pa, pq = _pyarrow()
    try:
        with pq.ParquetFile(path) as pf:
            first = 0
            for group in range(pf.metadata.num_row_groups):
                count = pf.metadata.row_group(group).num_rows
                if row < first + count:
                    table = pf.read_row_group(group)
                    return encode_row(table.slice(row - first, 1).to_pylist()[0])
                first += count
    except (pa.ArrowException, OSError) as exc:
        raise FormatError(f"{path}: not a readable Parquet file: {exc}") from None
    except ValueError as exc:
        raise FormatError(f"{path}: row {row}: {exc}") from None
    raise FormatError(f"{path}: no row {row}")
