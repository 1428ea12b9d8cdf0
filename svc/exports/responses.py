"""The response that serves a finished export file: whole (200) or one range (206).

Headers: `Content-Length`, `ETag` (the file's SHA-256 in quotes), `Accept-Ranges: bytes`,
`Content-Disposition`, and on a 206 `Content-Range`. HEAD sends the same headers and no
body. The file is read 256 KiB at a time in a worker thread; a client that goes away
stops the reading at once (uvicorn's send does not fail after a disconnect, it returns).
Which range is served: `svc.exports.ranges`.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import anyio.to_thread
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

CHUNK = 256 * 1024


class FileRangeResponse(Response):
    def __init__(
        self,
        path: Path,
        size: int,
        span: tuple[int, int] | None,
        headers: dict[str, str],
        media_type: str,
    ) -> None:
        self.path = path
        self.first, self.last = span if span is not None else (0, size - 1)
        self.status_code = 206 if span is not None else 200
        self.media_type = media_type
        self.background = None
        length = self.last - self.first + 1
        all_headers = {**headers, "Accept-Ranges": "bytes", "Content-Length": str(length)}
        if span is not None:
            all_headers["Content-Range"] = f"bytes {self.first}-{self.last}/{size}"
        self.init_headers(all_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        if scope["method"] == "HEAD" or self.last < self.first:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        try:
            with self.path.open("rb") as fh:
                await anyio.to_thread.run_sync(fh.seek, self.first)
                left = self.last - self.first + 1
                while left > 0 and not gone.is_set():
                    chunk = await anyio.to_thread.run_sync(fh.read, min(CHUNK, left))
                    if not chunk:  # the file shrank: end the response short, not padded
                        raise RuntimeError(f"{self.path} is shorter than its Content-Length")
                    left -= len(chunk)
                    await send({"type": "http.response.body", "body": chunk, "more_body": left > 0})
        finally:
            watcher.cancel()
