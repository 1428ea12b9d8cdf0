"""What a streamed response sends: a body of chunks (the NDJSON stream, the CSV download).

`svc.http.responses` sends any `Body` with flow control, heartbeats and slow-reader
handling; the engine's bodies know nothing of HTTP besides this interface.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import Protocol

from svc.store import JobSpec


class Body(Protocol):
    """What a StreamResponse sends: `lines()` (chunks of bytes), `since` (the position
    of the last whole record sent) and `outcome` (how it ended; set by the body, and to
    `slow_reader` by the response)."""

    spec: JobSpec
    since: str | None
    outcome: str

    def lines(self) -> AsyncGenerator[bytes, None]: ...

    def shed(self) -> None:
        """The client has not taken a line for a while (`svc.http.responses.SHED_SECONDS`):
        drop what was read ahead."""


class Abort(Exception):
    """Raised by a body's `lines()`: end the response without its last chunk (the body
    has set its outcome). The connection is closed; the client sees an incomplete body."""
