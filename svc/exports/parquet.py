"""The Parquet export: one domain as a typed columnar file, written by pyarrow.

Rows are staged and checkpointed as `svc.exports.typed` describes; `pack` converts the
staged rows a chunk at a time into Arrow record batches of the domain's declared types and
writes them as row groups of at most `ROW_GROUP_ROWS` rows (memory: one row group in
Arrow's columnar form, plus one chunk of rows as Python objects).

Column types (`Domain.types`): text -> string, number -> double, integer -> int64,
timestamp -> timestamp[us], timestamptz -> timestamp[us, tz=UTC]. Every column is
nullable, and NULL stays null. Snappy compression and Parquet format 2.6, pyarrow's
defaults, which pandas, Polars, DuckDB, Spark and Power BI read without settings.

pyarrow is the optional extra `parquet` (`pip install trace-stream[parquet]`): its wheel
is larger than the rest of the server's dependencies together, and only this format
needs it. It is imported when a file is packed, so a server without it runs every other
format and answers a Parquet request with a clear 400 (`svc.exports.formats.check_request`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from svc.core.domains import Domain
from svc.exports.typed import StagedWriter, typed_columns

ROW_GROUP_ROWS = 65_536  # why not smaller: docs/benchmarks.md#export-formats
_CHUNK = 8192  # staged rows converted at a time


def arrow_schema(domain: Domain) -> Any:
    """The Arrow schema of `domain`'s file, from its declared column types."""
    import pyarrow as pa

    types = {
        "text": pa.string(),
        "number": pa.float64(),
        "integer": pa.int64(),
        "timestamp": pa.timestamp("us"),
        "timestamptz": pa.timestamp("us", tz="UTC"),
    }
    pairs = zip(domain.columns, domain.types, strict=True)
    return pa.schema([pa.field(column, types[kind]) for column, kind in pairs])


class ParquetWriter(StagedWriter):
    @property
    def finished(self) -> Path:
        return self.work / f"{self.export_id}.parquet.part"

    def pack(self) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        (domain,) = self.domains  # one domain a file (checked when the export is made)
        self.staged(0).stat()  # FileNotFoundError: the runner starts over
        schema = arrow_schema(domain)
        self.finished.unlink(missing_ok=True)
        group: list[Any] = []
        grouped = 0
        with pq.ParquetWriter(str(self.finished), schema) as out:
            for rows in self.staged_rows(0, _CHUNK):
                columns = typed_columns(domain, rows)
                arrays = [pa.array(c, f.type) for c, f in zip(columns, schema, strict=True)]
                group.append(pa.RecordBatch.from_arrays(arrays, schema=schema))
                grouped += len(rows)
                del rows, columns, arrays
                if grouped >= ROW_GROUP_ROWS:
                    out.write_table(pa.Table.from_batches(group, schema), ROW_GROUP_ROWS)
                    group, grouped = [], 0
            if group:  # (an empty domain: a file with the schema and no row group)
                out.write_table(pa.Table.from_batches(group, schema), ROW_GROUP_ROWS)
        with self.finished.open("rb+") as fh:
            os.fsync(fh.fileno())
