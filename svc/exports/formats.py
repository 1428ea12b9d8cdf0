"""The export file formats, written batch by batch and resumable at every checkpoint.

Every `append` makes what it wrote durable (fsync) and returns the new length of the
file it appends to; the runner stores that length with the batch's `since` as the
checkpoint. After a crash the file is cut back to the checkpointed length and writing
goes on from the checkpoint's `since`, so each record is in the file exactly once.
Output is deterministic (no timestamps but the export's creation time), so a resumed
export is byte for byte the export that was not interrupted.

- ``ndjson.gz``: one gzip member per batch, appended to one file. Concatenated members
  are one valid gzip stream (RFC 1952 §2.2) that gzip, zcat, Python's gzip, pandas and
  browsers read whole; a member per batch costs little in size against one member
  (docs/benchmarks.md#engine-figures-behind-the-code). A line is one record with its
  domain first, `{"_domain": "history", ...}`: the lines of `trace-svc fetch --records-only`.
- ``csv.zip``: one CSV file per domain (UTF-8 with a BOM, a header row, cells of
  `svc.core.csv_cells` with formula defusing: files people open in Excel; with
  `spreadsheet` false plain RFC 4180 for programs), each appended to as
  a plain file, then zipped in one pass (stdlib zipfile, deflate) once every domain is
  written. A zip's central directory is written last, so it cannot be checkpointed
  mid-entry; plain CSV can. The cost: the uncompressed CSV on disk until it is zipped
  (counted in the disk budget), and one more pass over it.
- ``xlsx`` (`svc/exports/xlsx.py`) and ``parquet`` (`svc/exports/parquet.py`): typed files,
  staged and packed the same way (`svc/exports/typed.py`); `svc/exports/registry.py` picks
  a format's writer.
"""

from __future__ import annotations

import abc
import os
import shutil
import time
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import msgspec

from svc import protocol as p
from svc.core.csv_cells import BOM, CsvWriter
from svc.core.domains import Domain
from svc.sources import Row

DOMAIN_KEY = "_domain"  # as in `trace-svc fetch --records-only`
_COPY_CHUNK = 1 << 20
_encoder = msgspec.json.Encoder(decimal_format="number")


def append_durably(path: Path, data: bytes) -> int:
    """Append `data` durably; the file's new length."""
    with path.open("ab") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
        return fh.tell()


def cut_back(path: Path, length: int) -> bool:
    """Cut `path` back to `length` bytes (create it empty for 0); False if it is shorter."""
    if length == 0:
        path.touch()
        os.truncate(path, 0)
        return True
    try:
        if path.stat().st_size < length:
            return False
    except FileNotFoundError:
        return False
    os.truncate(path, length)
    return True


class ExportWriter(abc.ABC):
    """Writes one export's file under `work` (a directory of temporary files)."""

    def __init__(self, work: Path, export_id: str, domains: Sequence[Domain], created_at: float):
        self.work = work
        self.export_id = export_id
        self.domains = list(domains)
        self.created_at = created_at  # dates the zip entries

    @abc.abstractmethod
    def resume(self, domain: int, length: int) -> bool:
        """Cut the file of `domain` back to `length`; False if a file the export needs is
        missing or short (then it starts over)."""

    def begin(self, domain: int) -> int:
        """At the start of a domain; the length of its file."""
        return 0

    @abc.abstractmethod
    def append(self, domain: int, rows: list[Row]) -> int:
        """Append a batch of `domain`'s rows durably; the new length of the file."""

    @abc.abstractmethod
    def pack(self) -> None:
        """Once every domain is written: make `finished` (raises FileNotFoundError when
        the files it is made of are gone)."""

    @property
    @abc.abstractmethod
    def finished(self) -> Path:
        """The finished file, under a temporary name until it is published."""

    def files(self) -> list[Path]:
        """Every temporary file this export may have."""
        return sorted(self.work.glob(f"{self.export_id}.*"))

    def remove(self) -> None:
        for path in self.files():
            path.unlink(missing_ok=True)


class NdjsonGzWriter(ExportWriter):
    @property
    def part(self) -> Path:
        return self.work / f"{self.export_id}.ndjson.gz.part"

    @property
    def finished(self) -> Path:
        return self.part

    def resume(self, domain: int, length: int) -> bool:
        return cut_back(self.part, length)

    def begin(self, domain: int) -> int:
        return self.part.stat().st_size  # one file for every domain

    def append(self, domain: int, rows: list[Row]) -> int:
        d = self.domains[domain]
        tagged = [(d.name, *row) for row in rows]
        records = p.shape_records(tagged, (DOMAIN_KEY, *d.columns), arrays=False)
        lines = p.escape_line_separators(_encoder.encode_lines(records))
        del tagged, records
        # wbits 31: a gzip member with mtime 0 and no name, so output is deterministic
        gz = zlib.compressobj(6, zlib.DEFLATED, 31)
        return append_durably(self.part, gz.compress(lines) + gz.flush())

    def pack(self) -> None:
        self.part.stat()  # the file is the finished file


class CsvZipWriter(ExportWriter):
    def __init__(
        self,
        work: Path,
        export_id: str,
        domains: Sequence[Domain],
        created_at: float,
        spreadsheet: bool = True,
    ):
        super().__init__(work, export_id, domains, created_at)
        self.spreadsheet = spreadsheet  # False: plain RFC 4180, no BOM, no defusing

    def _csv(self, domain: int) -> Path:
        return self.work / f"{self.export_id}.{domain}.csv.part"

    @property
    def finished(self) -> Path:
        return self.work / f"{self.export_id}.zip.part"

    def resume(self, domain: int, length: int) -> bool:
        earlier = all(self._csv(d).exists() for d in range(domain))
        return earlier and cut_back(self._csv(domain), length)

    def begin(self, domain: int) -> int:
        writer = CsvWriter(spreadsheet_safe=self.spreadsheet)
        writer.header(self.domains[domain].columns)
        head = BOM if self.spreadsheet else ""
        return append_durably(self._csv(domain), (head + writer.take()).encode())

    def append(self, domain: int, rows: list[Row]) -> int:
        width = len(self.domains[domain].columns)
        writer = CsvWriter(spreadsheet_safe=self.spreadsheet)
        writer.rows(row[:width] for row in rows)
        return append_durably(self._csv(domain), writer.take().encode())

    def pack(self) -> None:
        stamp = time.gmtime(max(self.created_at, 315532800))[:6]  # zip dates start in 1980
        with zipfile.ZipFile(self.finished, "w") as zf:
            for index, domain in enumerate(self.domains):
                source = self._csv(index)
                info = zipfile.ZipInfo(f"{domain.name}.csv", date_time=stamp)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.file_size = source.stat().st_size  # lets zipfile choose Zip64 itself
                with source.open("rb") as src, zf.open(info, "w") as dst:
                    shutil.copyfileobj(src, dst, _COPY_CHUNK)
        with self.finished.open("rb+") as fh:
            os.fsync(fh.fileno())
        # the CSV files are removed with the other temporary files, once published
