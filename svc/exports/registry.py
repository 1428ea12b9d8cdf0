"""Which writer writes each export format, and which requests a server can take."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from svc import protocol as p
from svc.core.domains import Domain
from svc.errors import BadRequest, UnknownDomain
from svc.exports.formats import CsvZipWriter, ExportWriter, NdjsonGzWriter
from svc.exports.parquet import ParquetWriter
from svc.exports.xlsx import XlsxWriter

WRITERS: dict[str, type[ExportWriter]] = {
    "ndjson.gz": NdjsonGzWriter,
    "csv.zip": CsvZipWriter,
    "xlsx": XlsxWriter,
    "parquet": ParquetWriter,
}


def check_request(fmt: p.ExportFormat, domain: str | None, job_domains: list[str]) -> None:
    """Refuse, before anything is stored, an export this server cannot write."""
    if domain is not None and domain not in job_domains:
        raise UnknownDomain(f"domain {domain!r} is not one of the job's {job_domains}")
    if fmt == "parquet":
        if domain is None:
            raise BadRequest('a parquet export is one domain: name it, e.g. "domain": "history"')
        if importlib.util.find_spec("pyarrow") is None:  # the optional extra, not loaded here
            raise BadRequest(
                "this server cannot write parquet: install trace-stream[parquet] (pyarrow)"
            )


def writer_for(
    fmt: p.ExportFormat,
    work: Path,
    export_id: str,
    domains: Sequence[Domain],
    created_at: float,
    spreadsheet: bool = True,
) -> ExportWriter:
    """`spreadsheet` (csv.zip): False writes plain RFC 4180, without the BOM and defusing."""
    if fmt == "csv.zip":
        return CsvZipWriter(work, export_id, domains, created_at, spreadsheet)
    return WRITERS[fmt](work, export_id, domains, created_at)
