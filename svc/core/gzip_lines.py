"""gzip for streams and result pages: negotiation and a line-by-line compressor. No I/O.

A stream is one gzip member whose every line ends in a sync flush (`Z_SYNC_FLUSH`): the
bytes sent so far always decode to every whole line written so far, so a gzip client sees
each line, heartbeats included, as soon as it is written, and a connection cut anywhere
leaves it the lines before the cut. A sync flush costs ~5 bytes and, at level 1, a 5000-record
line compresses several times over for a few ms of CPU a megabyte
(docs/benchmarks.md#compression).

Why not starlette's GZipMiddleware: it does flush each message (it does not buffer), but it
compresses every response of the app at one level, takes `gzip;q=0` as a yes, and sends a
HEAD's headers without the `Content-Encoding` its GET gets. Here the stream's own response
owns its compressor, so the heartbeat and the slow reader's last line go through it too.
"""

from __future__ import annotations

import threading
import zlib

# A body smaller than this is sent as is: gzip's 18 bytes of framing and a round of CPU
# buy nothing for an answer that fits one TCP segment anyway.
MIN_BYTES = 1024
# Levels 1-3: a 5000-record line takes about as long to compress as to encode, and both
# run on the event loop. Higher levels cost several times that
# (docs/benchmarks.md#compression), so their large bodies go to a thread (zlib lets go of
# the GIL). A thread hop per line is not free: on a busy 2-core machine each one waits for
# a core, and the stream's steps run one after another.
_INLINE_LEVELS = 3
_THREAD_BYTES = 128 * 1024
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer around the deflate stream


def _quality(params: list[str]) -> float:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0  # an unreadable weight: not a yes
    return 1.0


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an `Accept-Encoding` value takes gzip (RFC 9110 §12.5.3): `gzip` or
    `x-gzip` with a weight above 0, or else `*` with a weight above 0."""
    named: float | None = None
    star: float | None = None
    for item in accept_encoding.split(","):
        coding, *params = item.split(";")
        coding = coding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            named = max(named or 0.0, _quality(params))
        elif coding == "*":
            star = _quality(params)
    if named is not None:
        return named > 0
    return star is not None and star > 0


def negotiate(accept_encoding: str | None, level: int) -> int:
    """The gzip level to answer with: `level` if it is on and the client takes gzip, else 0."""
    return level if level and accept_encoding and accepts_gzip(accept_encoding) else 0


class GzipLines:
    """One gzip member, written a line at a time; each line's bytes are complete on return.

    Thread-safe, so a large line can be compressed off the event loop while another task
    (the heartbeat, a slow reader's last line) waits for the compressor.
    """

    def __init__(self, level: int) -> None:
        self._z = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
        self._lock = threading.Lock()
        self.raw_bytes = 0
        self.gzip_bytes = 0

    def line(self, data: bytes) -> bytes:
        """`data` compressed and sync-flushed: decodable by the client at once."""
        return self._out(data, zlib.Z_SYNC_FLUSH)

    def finish(self, data: bytes = b"") -> bytes:
        """`data`, then the end of the member (the gzip trailer). Nothing may follow."""
        return self._out(data, zlib.Z_FINISH)

    def _out(self, data: bytes, mode: int) -> bytes:
        with self._lock:
            out = self._z.compress(data) + self._z.flush(mode)
            self.raw_bytes += len(data)
            self.gzip_bytes += len(out)
            return out


def off_loop(level: int, size: int) -> bool:
    """Whether compressing `size` bytes at `level` should leave the event loop."""
    return level > _INLINE_LEVELS and size >= _THREAD_BYTES


def gzip_body(body: bytes, level: int) -> bytes:
    """A whole body as one gzip member."""
    z = zlib.compressobj(level, zlib.DEFLATED, _GZIP_WBITS)
    return z.compress(body) + z.flush()
