"""One domain of a job as one CSV file, read and sent a batch at a time.

The body of `GET /api/trace/job/{id}/export.csv`. Its memory is one batch, as in
`svc.engine.ndjson`: a page of rows is encoded (`svc.core.csv_cells`) and dropped
before its chunk is handed on, and the next page is read only once the server took that
chunk, which it does once the chunk before has drained to the socket.

It starts at the domain's first record, right after a `since` token of the domain (from
a stream or a page), or at the `offset`-th record. A CSV file has no place for a token,
so a cut download is continued by offset: the records the file holds.

A CSV file cannot carry an error after its first byte. A failure, or a draining server,
ends the body without the last chunk of the chunked encoding (`Abort`): the client sees an
incomplete download, never a short file that looks complete.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass

from svc import metrics
from svc.core.csv_cells import BOM, CsvWriter
from svc.core.tokens import Cursor
from svc.engine.batches import Batch, FileRowBatches
from svc.engine.body import Abort
from svc.engine.positions import start_at
from svc.engine.service import Service
from svc.engine.walk import DomainWalk, Drained
from svc.errors import TraceError
from svc.sources import Row
from svc.store import JobSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CsvOptions:
    """`header`: begin with the header row (and the BOM); off, the bytes continue a file.
    `spreadsheet`: for Excel and LibreOffice: a UTF-8 BOM before the header row, and text
    cells that would start a formula defused (see `svc.core.csv_cells`)."""

    header: bool = True
    spreadsheet: bool = True


def _encode(writer: CsvWriter, head: str, rows: Sequence[Row], width: int) -> bytes:
    """`head` and the rows without their tie-break column, as CSV bytes. Encoding a
    batch takes many times the CPU of its JSON
    (docs/benchmarks.md#engine-figures-behind-the-code): callers run it in a thread, so the
    event loop and the other streams go on meanwhile."""
    writer.rows(row[:width] for row in rows)
    return (head + writer.take()).encode()


def filename(job_id: str, domain: str) -> str:
    """The download's file name (job ids are URL-safe base64, domains `[a-z0-9_]`)."""
    return f"{job_id}-{domain}.csv"


class DomainCsv:
    """The CSV bytes of `domain` from `cursor` (or `offset`) on, as a `StreamResponse` body."""

    def __init__(
        self,
        service: Service,
        spec: JobSpec,
        domain: str,
        cursor: Cursor | None,
        offset: int | None,
        options: CsvOptions,
    ) -> None:
        self.service, self.spec, self.domain = service, spec, domain
        self.cursor, self.offset, self.options = cursor, offset, options
        self.since: str | None = None  # a CSV file carries no token
        self.outcome = "client_gone"  # complete, error or drained; else set by the response
        self._start = start_at(domain, cursor, offset, service.settings.batch_size)
        self._batches: FileRowBatches | None = None
        self._first: Batch | None = None

    async def open(self) -> None:
        """Read the first batch now: a source that cannot answer is then a problem+json
        answer, before the first byte."""
        self._batches = await self.service.file_rows(self.spec, self._start)
        self._first = await self._batches.next()

    def shed(self) -> None:
        pass  # rows are read a page at a time, when asked for: nothing is read ahead

    async def lines(self) -> AsyncGenerator[bytes, None]:
        service, spec, name, options = self.service, self.spec, self.domain, self.options
        columns = service.domain(spec, name).columns  # the job's selection
        width = len(columns)
        resumed = self.cursor is not None or bool(self.offset)
        stats = metrics.StreamStats(spec.job_id, resumed, arrays=True, fmt="csv")
        writer = CsvWriter(spreadsheet_safe=options.spreadsheet)
        head = ""
        if options.header:
            head = BOM if options.spreadsheet else ""
            writer.header(columns)
        try:
            if self._batches is None:
                await self.open()
            assert self._batches is not None
            walk = DomainWalk(service, spec, self._start, self._batches, first=self._first)
            self._first = None
            async for batch in walk:
                chunk = await asyncio.to_thread(_encode, writer, head, batch.data, width)
                head = ""
                stats.sent(name, len(batch.data), len(chunk))
                del batch  # a slow reader holds this chunk's bytes, never its rows
                if chunk:
                    yield chunk
                del chunk
            self.outcome = "complete"
        except Drained:  # hand over: the client continues elsewhere
            self.outcome = "drained"
            raise Abort() from None
        except TraceError as exc:
            log.warning("CSV download of job %s/%s failed: %s", spec.job_id, name, exc.code)
            self.outcome = "error"
            raise Abort() from exc
        except Exception as exc:
            log.exception("CSV download of job %s/%s failed", spec.job_id, name)
            self.outcome = "error"
            raise Abort() from exc
        finally:
            stats.outcome = self.outcome
            stats.finish()
