"""A loopback TCP proxy that cuts or stalls stream connections part-way, for end-to-end tests.

Every connection is forwarded byte for byte. A connection whose client sends a request for a
`/stream` URL becomes a stream connection: the first few of those are cut (both sockets closed,
mid-line) once a given number of response bytes has passed, and all of them can be throttled so
that a test has time to act while the stream runs. Stalled connections are half-open: after a
given number of response bytes nothing more is forwarded in either direction, yet both sockets
stay open until the proxy closes (a NAT or proxy that lost the connection without a FIN or RST:
only an idle timeout on the client notices). Threads, not asyncio: it runs beside Playwright's
synchronous API.

Cuts and stalls count response bytes as they travel (compressed, when the response is gzip). To
spot `since` tokens in a gzip stream the proxy reads its copy of the response as a client would:
de-chunked and gunzipped line by line, and it records each stream response's
`Content-Encoding`.
"""

from __future__ import annotations

import socket
import threading
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field

_SINCE_KEY = b'"since":"'


@dataclass
class ProxyStats:
    connections: int = 0
    stream_connections: int = 0
    cuts: int = 0
    cut_at: list[int] = field(default_factory=list)
    stalls: int = 0
    stall_at: list[int] = field(default_factory=list)
    stream_requests: list[str] = field(default_factory=list)  # request lines, in order
    # Per stream connection, in the same order: did its response pass on a `since` token?
    delivered_since: list[bool] = field(default_factory=list)
    # Per stream connection: the response's Content-Encoding ("identity" when none).
    encodings: list[str] = field(default_factory=list)


class CutProxy:
    """`CutProxy(upstream_port, cut_after=[60_000, 200_000])` → `proxy.url`; `close()` ends it.

    `stall_after=[...]`: the n-th stream connection goes half-open after that many response
    bytes (stream connections take the cut and stall lists in order, one entry each).
    """

    def __init__(
        self,
        upstream_port: int,
        cut_after: Iterable[int] = (),
        *,
        stall_after: Iterable[int] = (),
        stream_bytes_per_s: float | None = None,
        marker: bytes = b"/stream?",  # the job stream's query, not /stream-worker.js
    ) -> None:
        self.upstream = ("127.0.0.1", upstream_port)
        self.cuts = list(cut_after)
        self.stalls = list(stall_after)
        self.rate = stream_bytes_per_s
        self.marker = marker
        self.stats = ProxyStats()
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._socks: set[socket.socket] = set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self._accept, name="cutproxy-accept", daemon=True).start()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            socks = list(self._socks)
        for s in socks:
            _close(s)

    def __enter__(self) -> CutProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.upstream, timeout=10)
            except OSError:
                _close(client)
                continue
            upstream.settimeout(None)
            with self._lock:
                self.stats.connections += 1
                self._socks.update((client, upstream))
            conn = _Conn(self, client, upstream)
            threading.Thread(target=conn.upward, daemon=True).start()
            threading.Thread(target=conn.downward, daemon=True).start()


class _Conn:
    def __init__(self, proxy: CutProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.is_stream = False
        self.cut_after: int | None = None
        self.stall_after: int | None = None
        self.stalled = False
        self.sent = 0  # response bytes since the stream request
        self.started = 0.0
        self.index = -1  # this connection's place in stats.stream_requests
        self.partial = b""  # the end of the response's unfinished line (see _spot_since)
        self.response = _Response()  # the stream's response as its client decodes it

    def upward(self) -> None:
        """Client → server; spots the stream request and picks this connection's cut."""
        try:
            while data := self.client.recv(65536):
                if self.stalled:
                    continue  # half-open: what the client sends goes nowhere
                request_line = data.split(b"\r\n", 1)[0]
                if (
                    not self.is_stream
                    and b"/api/" in request_line
                    and self.proxy.marker in request_line
                ):
                    with self.proxy._lock:
                        self.proxy.stats.stream_connections += 1
                        line = data.split(b"\r\n", 1)[0].decode("latin-1")
                        self.index = len(self.proxy.stats.stream_requests)
                        self.proxy.stats.stream_requests.append(line)
                        self.proxy.stats.delivered_since.append(False)
                        self.proxy.stats.encodings.append("")
                        self.cut_after = self.proxy.cuts.pop(0) if self.proxy.cuts else None
                        self.stall_after = self.proxy.stalls.pop(0) if self.proxy.stalls else None
                    self.started = time.monotonic()
                    self.is_stream = True
                self.upstream.sendall(data)
        except OSError:
            pass
        if self.stalled:  # the client's close does not reach the server either
            self.proxy._closed.wait()
        self.shut()

    def downward(self) -> None:
        """Server → client; throttles, cuts and stalls stream connections."""
        try:
            while data := self.upstream.recv(16384):
                if self.is_stream and self.stall_after is not None:
                    room = self.stall_after - self.sent
                    if room <= len(data):
                        self.client.sendall(data[:room])
                        self._spot_since(data[:room])
                        self.stalled = True
                        with self.proxy._lock:
                            self.proxy.stats.stalls += 1
                            self.proxy.stats.stall_at.append(self.stall_after)
                        self.proxy._closed.wait()  # read no more; both sockets stay open
                        break
                if self.is_stream and self.cut_after is not None:
                    room = self.cut_after - self.sent
                    if room <= len(data):
                        self.client.sendall(data[:room])
                        self._spot_since(data[:room])
                        with self.proxy._lock:
                            self.proxy.stats.cuts += 1
                            self.proxy.stats.cut_at.append(self.cut_after)
                        break
                self.client.sendall(data)
                if self.is_stream:
                    self._spot_since(data)
                    self.sent += len(data)
                    if self.proxy.rate:
                        ahead = self.started + self.sent / self.proxy.rate - time.monotonic()
                        if ahead > 0:
                            time.sleep(ahead)
        except OSError:
            pass
        self.shut()

    def _spot_since(self, forwarded: bytes) -> None:
        """Mark the connection once a whole line holding a `since` token has passed."""
        decoded = self.response.feed(forwarded)
        if self.index >= 0 and self.response.encoding is not None:
            with self.proxy._lock:
                self.proxy.stats.encodings[self.index] = self.response.encoding
        *ended, self.partial = (self.partial + decoded).split(b"\n")
        if self.index >= 0 and any(_SINCE_KEY in line for line in ended):
            with self.proxy._lock:
                self.proxy.stats.delivered_since[self.index] = True
        if _SINCE_KEY in self.partial:  # keep the key, not the whole unfinished line
            self.partial = _SINCE_KEY
        else:
            self.partial = self.partial[-len(_SINCE_KEY) :]

    def shut(self) -> None:
        for s in (self.client, self.upstream):
            _close(s)
            with self.proxy._lock:
                self.proxy._socks.discard(s)


class _Response:
    """One HTTP/1.1 response fed as it arrives: its head, then its body de-chunked and,
    when it is gzip, decompressed (each line of a gzip stream is flushed, so it decodes
    as soon as its bytes have passed)."""

    def __init__(self) -> None:
        self.encoding: str | None = None
        self._buf = b""
        self._head_done = False
        self._chunked = False
        self._left = 0  # bytes left in the current chunk
        self._ended = False
        self._gunzip: zlib._Decompress | None = None

    def feed(self, data: bytes) -> bytes:
        if self._ended:
            return b""
        self._buf += data
        if not self._head_done:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return b""
            head = self._buf[:end].decode("latin-1").lower().split("\r\n")
            fields = dict(h.split(":", 1) for h in head[1:] if ":" in h)
            self.encoding = fields.get("content-encoding", "identity").strip()
            self._chunked = "chunked" in fields.get("transfer-encoding", "")
            if self.encoding == "gzip":
                self._gunzip = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._buf = self._buf[end + 4 :]
            self._head_done = True
        body = self._dechunk() if self._chunked else self._take(len(self._buf))
        return self._gunzip.decompress(body) if self._gunzip is not None else body

    def _take(self, n: int) -> bytes:
        out, self._buf = self._buf[:n], self._buf[n:]
        return out

    def _dechunk(self) -> bytes:
        body = b""
        while not self._ended:
            if self._left == 0:
                nl = self._buf.find(b"\r\n")
                if nl < 0:
                    break
                size = self._take(nl + 2)[:-2]
                if not size:  # the CRLF that ends a chunk's data
                    continue
                self._left = int(size.split(b";")[0], 16)
                self._ended = self._left == 0
                continue
            piece = self._take(self._left)
            if not piece:
                break
            body += piece
            self._left -= len(piece)
        return body


def _close(s: socket.socket) -> None:
    try:
        s.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    s.close()
