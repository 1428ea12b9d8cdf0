"""Wiring and running: build the Service from Settings, serve it with uvicorn, drain on SIGTERM.

On SIGTERM/SIGINT the server first marks itself draining (readiness turns 503, every
stream finishes its batch in flight and ends with a `reconnect` line carrying its last
token), then lets uvicorn close the connections and stop. With `workers` above 1,
`svc.run.workers` runs this same server, protocol and drain in each worker process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from svc.config import Settings
from svc.core.domains import load_domains
from svc.core.tokens import TokenCodec
from svc.engine.service import Service
from svc.http.app import create_app
from svc.http.h11 import protocol_class
from svc.run.secret import token_secrets
from svc.sources import open_source
from svc.store import open_store
from svc.store.timed import TimedStore

log = logging.getLogger(__name__)


def ensure_demo_database(settings: Settings) -> None:
    """With no TRACE_DB_URL, build the demo database once, so one command starts a service;
    a TRACE_DEMO_CIDS set to another size than the database's rebuilds it."""
    if settings.db_url is not None:
        return
    path, wanted = settings.demo_db_path, settings.demo_cids
    if path.exists():
        held = _demo_cids_in(path)
        explicit = "TRACE_DEMO_CIDS" in os.environ or wanted != Settings().demo_cids
        if held is None or held == wanted or not explicit:
            return
        log.warning("the demo database holds %d CIDs, TRACE_DEMO_CIDS asks for %d", held, wanted)
    from svc.sources.demo import build_demo_database

    log.warning("building the demo database (%d CIDs) at %s", wanted, path)
    build_demo_database(path, cids=wanted)


def _demo_cids_in(path: Path) -> int | None:
    """The CIDs of a demo database; None for another SQLite file (then it is left alone)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM TRACE_DEMO_CONTAINERS").fetchone()[0])
    except sqlite3.Error:
        return None


async def build_service(settings: Settings) -> Service:
    tokens = TokenCodec(token_secrets(settings))  # the generated secret is made here
    domains = load_domains(settings.domains_file)
    return Service(
        settings, domains, open_source(settings, domains), TimedStore(open_store(settings)), tokens
    )


class _QuietSlowReaderCuts(logging.Filter):
    """A stream ended for a slow reader returns with its response unfinished on purpose
    (its socket buffer is full, so no last chunk fits), and so does a CSV download that
    failed or was drained (so that it reads as incomplete); uvicorn logs that as an ERROR."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "ASGI callable returned without completing response."


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, but streams hear about a shutdown before connections close.

    The first signal marks the service draining and keeps the listener open for
    `unready_seconds`, so load balancers polling /readyz see the 503 and stop sending new
    requests before connections are refused; a second signal stops at once.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        app: Starlette,
        unready_seconds: float,
        *,
        worker: bool = False,
    ) -> None:
        super().__init__(config)
        self._app = app
        self._unready_seconds = unready_seconds
        self._timer: threading.Timer | None = None
        self._worker = worker

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._worker and sig == signal.SIGINT and not self.should_exit:
            # Ctrl-C reaches the whole process group; the supervisor forwards it as
            # SIGTERM, which drains. Only once draining does a SIGINT stop at once.
            return
        service = getattr(self._app.state, "service", None)
        if service is not None:
            service.draining.set()
        if self._timer is not None or service is None or self._unready_seconds <= 0:
            super().handle_exit(sig, frame)
            return
        self._timer = threading.Timer(self._unready_seconds, super().handle_exit, (sig, frame))
        self._timer.daemon = True
        self._timer.start()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """uvicorn raises the stopping signal again once it has shut down: a KeyboardInterrupt
        traceback for Ctrl-C, exit 143 for SIGTERM. The drain was the answer to that signal,
        so the process ends normally (exit 0) with one line saying why."""
        with super().capture_signals():
            yield
            if self._captured_signals:
                name = signal.Signals(self._captured_signals[0]).name
                log.info("stopped on %s: streams drained, exit 0", name)
            self._captured_signals.clear()


def serve(
    settings: Settings,
    host: str,
    port: int,
    graceful_seconds: float = 30,
    unready_seconds: float = 1.0,
    *,
    http: type[asyncio.Protocol] | str | None = None,
) -> int:
    """Serve on host:port in this process until stopped; `http` replaces the HTTP protocol
    (benchmarks compare them). Several workers: `svc.run.workers.serve_workers`."""
    ensure_demo_database(settings)
    run_server(settings, host, port, graceful_seconds, unready_seconds, http=http)
    return 0


def run_server(
    settings: Settings,
    host: str,
    port: int,
    graceful_seconds: float,
    unready_seconds: float,
    *,
    http: type[asyncio.Protocol] | str | None = None,
    sockets: list[socket.socket] | None = None,
) -> None:
    """One server process: on `sockets` (a worker's share of the listener) or host:port."""

    async def factory() -> Service:
        return await build_service(settings)

    app = create_app(factory, cors_origins=settings.cors_origins)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        forwarded_allow_ips=settings.forwarded_allow_ips,  # None: uvicorn's default
        http=protocol_class(settings) if http is None else http,
        ws="none",  # no route upgrades; an Upgrade header is served as plain HTTP
        h11_max_incomplete_event_size=settings.max_header_bytes,
        timeout_keep_alive=settings.keepalive,
        timeout_graceful_shutdown=int(graceful_seconds),
        log_level="info",
        log_config=None,  # svc.logs formats every line (JSON or text)
        access_log=False,  # svc.logs writes one line per request or stream
    )
    logging.getLogger("uvicorn.error").addFilter(_QuietSlowReaderCuts())
    worker = sockets is not None
    _DrainingServer(config, app, unready_seconds, worker=worker).run(sockets=sockets)
