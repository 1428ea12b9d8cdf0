"""The xlsx export: a workbook with a sheet per domain, built by XlsxWriter.

Rows are staged and checkpointed as `svc.exports.typed` describes; `pack` writes the
workbook in XlsxWriter's constant-memory mode (each row goes to a temporary file under the
work directory as it is written, so memory is one row plus XlsxWriter's buffers, whatever
the size of the job) from the staged rows, a chunk at a time. Those temporary files go to a
directory of the export's own under the work directory (counted in the disk budget).

- A sheet per domain, named after it; past Excel's 1,048,576 rows a domain goes on in
  sheets ``history (2)``, ``history (3)``, ..., each with the header again.
- Cells by the column's declared type: text as strings (a CID such as ``0312615379927753``
  or ``088393111216e243``, or ``=1+1``, stays the text it is: no number, no formula),
  numbers as numbers, timestamps as Excel dates (`yyyy-mm-dd hh:mm:ss`; timestamptz
  columns in UTC, as the stream sends them); NULL is an empty cell.
- A bold, frozen header row.
- Deterministic: XlsxWriter dates every zip entry 1980-01-01 and the document's created
  time is the job's creation, so a packed-again file is byte for byte the same.

Excel limits XlsxWriter enforces and this writer accepts: a cell holds at most 32,767
characters (longer text is cut there); a string cannot carry characters XML 1.0 forbids
(XlsxWriter escapes control characters as ``_xHHHH_``, as Excel does).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path
from typing import Any

import xlsxwriter

from svc.exports.typed import StagedWriter, typed_columns

EXCEL_ROWS = 1_048_576  # rows of a sheet, the header included
# Its cost (CPU per record against csv.zip, memory): docs/benchmarks.md#export-formats
_CHUNK = 2000  # staged rows converted at a time
# Staged bytes from which a sheet's XML (several times the staged JSON: every cell is an
# element with its reference) may pass zip's 4 GiB; smaller workbooks keep plain zip, which
# every reader takes. Deterministic: the staged size is the same on every pack.
_ZIP64_FROM = 2**30


def sheet_name(domain: str, part: int) -> str:
    """The name of a domain's `part`-th sheet (1-based); Excel allows 31 characters."""
    if part == 1:
        return domain[:31]
    suffix = f" ({part})"
    return domain[: 31 - len(suffix)] + suffix


class XlsxWriter(StagedWriter):
    sheet_rows = EXCEL_ROWS  # a class attribute, so a test can make sheets small

    @property
    def finished(self) -> Path:
        return self.work / f"{self.export_id}.xlsx.part"

    @property
    def scratch(self) -> Path:
        """XlsxWriter's temporary files (one per sheet, and the packager's): a directory
        of this export's own, so those a crash while packing leaves are removed with it."""
        return self.work / f"{self.export_id}.xlsx-tmp"

    def remove(self) -> None:
        shutil.rmtree(self.scratch, ignore_errors=True)
        super().remove()

    def pack(self) -> None:
        for d in range(len(self.domains)):
            self.staged(d).stat()  # FileNotFoundError: the runner starts over
        shutil.rmtree(self.scratch, ignore_errors=True)
        self.scratch.mkdir()
        options: dict[str, Any] = {
            "constant_memory": True,
            "tmpdir": str(self.scratch),
            "strings_to_numbers": False,
            "strings_to_formulas": False,
            "strings_to_urls": False,
            "use_zip64": self.staged_bytes() >= _ZIP64_FROM,
        }
        self.finished.unlink(missing_ok=True)
        book = xlsxwriter.Workbook(str(self.finished), options)
        created = dt.datetime.fromtimestamp(self.created_at, dt.UTC).replace(tzinfo=None)
        book.set_properties({"created": created})
        bold = book.add_format({"bold": True})
        when = book.add_format({"num_format": "yyyy-mm-dd hh:mm:ss"})
        for index, domain in enumerate(self.domains):
            header = list(domain.columns)
            kinds = domain.types
            part, row_at = 0, self.sheet_rows  # a new sheet at the first row
            sheet: Any = None
            for rows in self.staged_rows(index, _CHUNK):
                columns = typed_columns(domain, rows)
                for n in range(len(rows)):
                    if row_at == self.sheet_rows:
                        part += 1
                        sheet = book.add_worksheet(sheet_name(domain.name, part))
                        sheet.write_row(0, 0, header, bold)
                        sheet.freeze_panes(1, 0)
                        row_at = 1
                    for at, kind in enumerate(kinds):
                        value = columns[at][n]
                        if value is None:
                            continue
                        if kind == "text":
                            sheet.write_string(row_at, at, value)
                        elif kind in ("number", "integer"):
                            sheet.write_number(row_at, at, value)
                        else:  # timestamps, naive (timestamptz in UTC)
                            sheet.write_datetime(row_at, at, value.replace(tzinfo=None), when)
                    row_at += 1
            if part == 0:  # no rows: the sheet still shows the domain's columns
                sheet = book.add_worksheet(sheet_name(domain.name, 1))
                sheet.write_row(0, 0, header, bold)
                sheet.freeze_panes(1, 0)
        book.close()
        shutil.rmtree(self.scratch, ignore_errors=True)
        with self.finished.open("rb+") as fh:
            os.fsync(fh.fileno())
