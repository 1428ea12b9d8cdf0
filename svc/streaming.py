"""The NDJSON response: one `JobStream` sent over ASGI, with flow control and liveness.

- Lines are handed to the server one at a time. The server writes a line into its socket
  buffer and, when that buffer is full, makes the next send wait until it has drained;
  so a slow reader holds its stream at one line in flight (see `svc.stream`).
- One watchdog task per stream, not per batch: it writes a heartbeat line when nothing
  was written for `heartbeat` seconds (also while a page query runs, which is when a
  proxy would otherwise cut a silent connection), and ends a stream whose line has not
  drained for `slow_reader` seconds (noticed within 1.25 times that): a `reconnect`
  line if the client takes it within a second, else the connection is closed. Either
  way the client resumes from its last complete line, so nothing is lost or repeated.
- A client that goes away cancels the stream at once: the query in flight is interrupted.
- HEAD gets the headers only: the job is never run.
- With `gzip_level`, the body is one gzip member and every line (heartbeats and the last
  words included) is sync-flushed as it is written (`svc.compression`); at levels above 3,
  large lines are compressed in a thread, off the event loop.
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
from svc.compression import GzipLines, off_loop
from svc.stream import HEARTBEAT_LINE, JobStream, reconnect_line

log = logging.getLogger(__name__)

NDJSON = "application/x-ndjson"
_LAST_WORDS_SECONDS = 1.0  # how long a slow reader gets to take its reconnect line


@dataclass
class _Wire:
    """What the sender and the watchdog share about one connection."""

    last_write: float
    sending_since: float | None = None  # when the send in progress started
    slow: bool = False
    gone: bool = False


class NdjsonResponse(Response):
    media_type = NDJSON

    def __init__(
        self,
        stream: JobStream,
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
                wire.last_write = loop.time()

        async def until_gone() -> None:
            message: Message = {"type": ""}
            while message["type"] != "http.disconnect":
                message = await receive()
            wire.gone = True
            main.cancel()

        async def watchdog() -> None:
            hb, slow = self.heartbeat, self.slow_reader
            while True:
                now = loop.time()
                started = wire.sending_since
                if started is not None:
                    if slow and now - started >= slow:
                        wire.slow = True
                        main.cancel()
                        return
                    wake = started + slow if slow else now + hb
                elif hb and now - wire.last_write >= hb and not lock.locked():
                    try:  # a heartbeat that cannot drain is a slow reader too
                        await asyncio.wait_for(write(HEARTBEAT_LINE), slow or None)
                    except TimeoutError:
                        wire.slow = True
                        main.cancel()
                        return
                    continue
                else:  # a send may start any time: look again within a quarter of `slow`
                    wake = min(wire.last_write + hb if hb else math.inf, now + slow / 4 or math.inf)
                await asyncio.sleep(max(0.005, wake - loop.time()))

        watchers = [asyncio.ensure_future(until_gone())]
        if self.heartbeat or self.slow_reader:
            watchers.append(asyncio.ensure_future(watchdog()))
        sent = self.stream.since  # the token of the last records line written
        try:
            async for line in lines:
                await write(line)
                sent = self.stream.since
            end = b"" if gz is None else gz.finish()
            await send({"type": "http.response.body", "body": end, "more_body": False})
            return self.stream.outcome
        except asyncio.CancelledError:
            if not (wire.gone or wire.slow):
                raise  # the server is stopping: not ours to swallow
            main.uncancel()
            if wire.gone:
                return "client_gone"
            log.info("job %s: a slow reader's stream was ended", self.stream.spec.job_id)
            self.stream.outcome = "slow_reader"
            last = reconnect_line("slow_reader", sent)
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
