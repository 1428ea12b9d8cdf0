"""Wire types of exports: the request, the status and its parts (pure)."""

from __future__ import annotations

from typing import Literal

import msgspec

ExportFormat = Literal["ndjson.gz", "csv.zip", "xlsx", "parquet"]
# `recovering`: running, but its writer's lease ran out (the writer died); another replica
# takes it over (status only: never stored).
ExportState = Literal["queued", "running", "recovering", "done", "failed"]


class ExportRequest(msgspec.Struct, forbid_unknown_fields=True):
    """`ndjson.gz`: one record a line, `{"_domain": ..., <columns>}`, gzip; `csv.zip`: one
    CSV file per domain (`history.csv`, ...), UTF-8 with a BOM, spreadsheet-safe cells;
    `xlsx`: a workbook, a sheet per domain, typed cells; `parquet`: one domain (`domain` is
    required), typed columns. `domain` narrows any format to that one of the job's domains.
    Column types come from the domain file (docs/exports.md#typed-formats-xlsx-and-parquet).
    `spreadsheet` (CSV formats): false writes plain RFC 4180 for programs, without the BOM
    and the `'` before text that would start a formula (as `export.csv?spreadsheet=0`)."""

    format: ExportFormat
    domain: str | None = None
    spreadsheet: bool = True


class ExportLinks(msgspec.Struct):
    self_: str = msgspec.field(name="self")
    file: str  # answers 409 export_not_ready until `state` is done
    job: str


class ExportFailure(msgspec.Struct):
    code: str
    message: str


class ExportStatus(msgspec.Struct):
    """An export's state; the body of 202 Accepted and of its status URL."""

    export_id: str
    job_id: str
    format: ExportFormat
    state: ExportState
    records: int  # written so far
    total: int | None  # records of the whole job, once counted
    created_at: str  # RFC 3339, UTC
    updated_at: str
    expires_at: str  # with its job
    size: int | None  # bytes of the finished file
    sha256: str | None  # hex digest of the finished file; its ETag is this in quotes
    error: ExportFailure | None
    links: ExportLinks
    domain: str | None = None  # the one domain exported, if the request named one
    spreadsheet: bool = True  # as requested (CSV formats: BOM and formula defusing)
    # the job's records digest, as the complete line of its objects stream carries it
    # (docs/protocol.md#digest), once every record is written; None before
    digest: str | None = None
