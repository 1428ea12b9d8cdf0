"""Streaming responses: a job's NDJSON stream, or a domain's CSV file, sent over ASGI with
flow control and liveness. `StreamResponse` does the sending; `NdjsonResponse` and
`CsvResponse` only say what a format can write when nothing else can be said.

- Lines are handed to the server one at a time. The server writes a line into its socket
  buffer and, when that buffer is full, makes the next send wait until it has drained;
  so a slow reader holds its stream at one line in flight (see `svc.engine.ndjson`).
- A line that has not drained within `SHED_SECONDS` tells the body to drop what it read
  ahead (`shed`): a client that stops reading holds its stream's lines, not its pages.
- One watchdog task per stream, not per batch: it writes a heartbeat line when nothing
  was written for `heartbeat` seconds (also while a page query runs, which is when a
  proxy would otherwise cut a silent connection), and ends a stream whose line has not
  drained for `slow_reader` seconds (noticed within 1.25 times that): a `reconnect`
  line if the client takes it within a second, else the connection is closed. Either
  way the client resumes from its last complete line, so nothing is lost or repeated.
- A client that goes away cancels the stream at once: the query in flight is interrupted.
- HEAD gets the headers only: the job is never run.
- A format with no line for "this went wrong" (CSV) has no heartbeat either, and ends a
  failed, drained or slow body by closing the connection without the last chunk of the
  chunked encoding: the client sees an incomplete body, never a short file that looks
  complete. A body's generator asks for that by raising `Abort`.
- With `gzip_level`, the body is one gzip member and every line (heartbeats and the last
  words included) is sync-flushed as it is written (`svc.core.gzip_lines`); at levels above 3,
  large lines are compressed in a thread, off the event loop. An aborted body ends without
  the gzip trailer as well as without the last chunk.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from svc import metrics
from svc.core.gzip_lines import GzipLines, off_loop
from svc.engine.body import Abort, Body
from svc.engine.ndjson import HEARTBEAT_LINE, JobStream, reconnect_line

log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"
CSV = "text/csv; charset=utf-8; header=present"  # RFC 4180's two optional parameters
_LAST_WORDS_SECONDS = 1.0  # how long a slow reader gets to take its reconnect line
SHED_SECONDS = 1.0  # a line's send this long: the body drops what it read ahead


@dataclass
class _Wire:
    """What the sender and the watchdog share about one connection."""

    last_write: float
    sending_since: float | None = None  # when the send in progress started
    shed: bool = False  # the body was told to drop its read-ahead during this send
    slow: bool = False
    gone: bool = False


class StreamResponse(Response):
    """A streamed body; subclasses name the media type and the format's last words."""

    heartbeat_line: bytes | None = None  # written after `heartbeat` seconds of silence

    def __init__(
        self,
        stream: Body,
        *,
        headers: dict[str, str],
        heartbeat: float,
        slow_reader: float,
        on_close: Callable[[str], None] = lambda outcome: None,
        gzip_level: int = 0,
    ) -> None:
        self.stream = stream
        self.status_code = 200
        self.background = None
        if gzip_level:
            headers = {**headers, "Content-Encoding": "gzip"}
        self.init_headers(headers)  # no body: no Content-Length, so chunked
        self.gzip_level = gzip_level
        self.heartbeat = heartbeat
        self.slow_reader = slow_reader
        self.on_close = on_close

    def last_words(self, since: str | None) -> bytes | None:
        """What a slow reader is sent before the connection closes (None: nothing)."""
        return None

    def beat(self) -> bytes:
        """The heartbeat line to write now."""
        return self.heartbeat_line or b""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        outcome = "client_gone"
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
            if scope["method"] == "HEAD":
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                outcome = "head"
                return
            outcome = await self._stream(receive, send)
        finally:
            self.on_close(outcome)

    async def _stream(self, receive: Receive, send: Send) -> str:
        loop = asyncio.get_running_loop()
        main = asyncio.current_task()
        assert main is not None
        wire = _Wire(last_write=loop.time())
        lock = asyncio.Lock()
        lines = self.stream.lines()
        gz = GzipLines(self.gzip_level) if self.gzip_level else None

        async def write(body: bytes) -> None:
            async with lock:
                if gz is not None:
                    if off_loop(self.gzip_level, len(body)):
                        body = await asyncio.to_thread(gz.line, body)
                    else:
                        body = gz.line(body)
                wire.sending_since = loop.time()
                await send({"type": "http.response.body", "body": body, "more_body": True})
                wire.sending_since = None
                wire.shed = False
                wire.last_write = loop.time()

        async def until_gone() -> None:
            message: Message = {"type": ""}
            while message["type"] != "http.disconnect":
                message = await receive()
            wire.gone = True
            main.cancel()

        beat = self.heartbeat_line or b""
        hb = self.heartbeat if beat else 0  # no heartbeat line: no heartbeats

        async def watchdog() -> None:
            slow = self.slow_reader
            while True:
                now = loop.time()
                started = wire.sending_since
                if started is not None:
                    if slow and now - started >= slow:
                        wire.slow = True
                        main.cancel()
                        return
                    if not wire.shed and now - started >= SHED_SECONDS:
                        wire.shed = True
                        self.stream.shed()
                        metrics.READ_AHEAD_SHED.inc()
                    wake = started + slow if slow else now + hb
                    if not wire.shed:
                        wake = min(wake, started + SHED_SECONDS)
                elif hb and now - wire.last_write >= hb and not lock.locked():
                    try:  # a heartbeat that cannot drain is a slow reader too
                        await asyncio.wait_for(write(self.beat()), slow or None)
                    except TimeoutError:
                        wire.slow = True
                        main.cancel()
                        return
                    continue
                else:  # a send may start any time: look again within a quarter of `slow`
                    wake = min(wire.last_write + hb if hb else math.inf, now + slow / 4 or math.inf)
                await asyncio.sleep(max(0.005, wake - loop.time()))

        watchers = [asyncio.ensure_future(until_gone())]
        if hb or self.slow_reader:
            watchers.append(asyncio.ensure_future(watchdog()))
        sent = self.stream.since  # the token of the last records line written
        try:
            async for line in lines:
                await write(line)
                sent = self.stream.since
            end = b"" if gz is None else gz.finish()
            await send({"type": "http.response.body", "body": end, "more_body": False})
            return self.stream.outcome
        except Abort:  # no last chunk: the server closes the connection mid-body
            return self.stream.outcome
        except asyncio.CancelledError:
            if not (wire.gone or wire.slow):
                raise  # the server is stopping: not ours to swallow
            main.uncancel()
            if wire.gone:
                return "client_gone"
            log.info("job %s: a slow reader's stream was ended", self.stream.spec.job_id)
            self.stream.outcome = "slow_reader"
            last = self.last_words(sent)
            if last is None:  # the server closes the connection mid-body
                return "slow_reader"
            if gz is not None:
                last = gz.finish(last)
            try:  # only if the client takes it now; the server then closes the connection
                await asyncio.wait_for(
                    send({"type": "http.response.body", "body": last, "more_body": False}),
                    _LAST_WORDS_SECONDS,
                )
            except TimeoutError:
                pass
            return "slow_reader"
        finally:
            for task in watchers:
                task.cancel()
            await lines.aclose()  # cancels a page query in flight
            if gz is not None:
                metrics.GZIP_BYTES.inc(gz.gzip_bytes)


class NdjsonResponse(StreamResponse):
    """A job's NDJSON stream: heartbeat lines, and a `reconnect` line for a slow reader."""

    media_type = NDJSON
    heartbeat_line = HEARTBEAT_LINE

    def last_words(self, since: str | None) -> bytes | None:
        return reconnect_line("slow_reader", since)

    def beat(self) -> bytes:
        """A heartbeat; a stream's carries a bookmark when it has one (`JobStream`)."""
        if isinstance(self.stream, JobStream):
            return self.stream.heartbeat_line()
        return HEARTBEAT_LINE


class CsvResponse(StreamResponse):
    """A CSV file: nothing can be added to it that is not a row, so no heartbeat and no
    last words; it ends incomplete (see the module's docstring)."""

    media_type = CSV
