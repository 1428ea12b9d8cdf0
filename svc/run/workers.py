"""Several worker processes on one port: `trace-svc serve --workers N` (TRACE_WORKERS).

The parent binds the listening socket once and starts N workers; each runs the same server
as a single process (`svc.run.server.run_server`: `_DrainingServer`, `TraceH11Protocol`, the
drain) on its share of that socket, and the kernel hands each new connection to one of them.

Why not uvicorn's own `workers=`: its supervisor builds a plain `uvicorn.Server` in each
worker (not our draining subclass) and pickles the app, which must then be an import
string; ours hands each worker the settings and lets it build everything itself.

- Signals: the first SIGTERM or SIGINT to the parent is sent on to every worker as SIGTERM,
  so each drains exactly as one process does (readiness 503, `reconnect` lines, then
  close); a second one is sent on too (stop waiting for readiness). Workers ignore a SIGINT
  while not draining: a terminal's Ctrl-C reaches them too, and the parent's SIGTERM is the
  one that counts.
- A worker that dies unexpectedly is replaced; one that fails to start stops the service.
  A worker whose parent is gone (SIGKILL) drains and exits by itself.
- What the workers share is prepared once, before any starts: the demo database, the
  generated token secret, the embedded job store's schema, and the Prometheus multiprocess
  directory (PROMETHEUS_MULTIPROC_DIR: given, it is emptied; else a temporary one is made
  and removed at exit). /metrics of any worker then reports the sum of all.
- Limits are per worker: TRACE_MAX_STREAMS, TRACE_MAX_STREAMS_PER_CLIENT, the job
  creation rate and the database pool (each worker holds its own) apply to each process.
- Each worker has a slot (0 to N-1, taken over by its replacement): export writers of
  sibling workers never take each other's export for their own (`svc.exports.runner`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from multiprocessing.context import SpawnContext
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType

from svc import process
from svc.config import Settings
from svc.run.secret import token_secrets

log = logging.getLogger(__name__)

_STARTUP_FAILURE = 3  # uvicorn's exit code for a server that could not start
_RESTART_PAUSE_SECONDS = 1.0
_PARENT_CHECK_SECONDS = 1.0
_MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def serve_workers(
    settings: Settings, host: str, port: int, graceful_seconds: float, unready_seconds: float
) -> int:
    """Run `settings.workers` workers on host:port until a signal drains them all; 0, or 1
    if a worker could not start. Call it before anything imports `svc.metrics`: the
    metrics directory must exist (and be emptied) before prometheus-client opens it."""
    metrics_dir, made_metrics_dir = _metrics_dir()
    from svc.run.server import ensure_demo_database

    ensure_demo_database(settings)
    settings = _prepare_shared_state(settings)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=2048)
    log.info("listening on %s:%d", host, port)
    supervisor = _Supervisor(settings, sock, graceful_seconds, unready_seconds)
    try:
        return supervisor.run()
    finally:
        sock.close()
        if made_metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _prepare_shared_state(settings: Settings) -> Settings:
    """What workers starting at once would otherwise race for: the generated secret (one
    for all, or their tokens would not verify on each other) and the store's schema."""
    settings = dataclasses.replace(settings, secrets=token_secrets(settings))
    if not settings.redis_url:
        from svc.store.embedded import EmbeddedJobStore

        store = EmbeddedJobStore(settings.data_dir / "jobs.sqlite3", ttl=settings.job_ttl)
        asyncio.run(store.close())  # made the file, its schema and its WAL mode
    return settings


def _metrics_dir() -> tuple[Path, bool]:
    given = os.environ.get(_MULTIPROC_ENV)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for old in path.glob("*.db"):  # samples of an earlier run would be added in
            old.unlink()
        return path, False
    path = Path(tempfile.mkdtemp(prefix="trace-metrics-"))
    os.environ[_MULTIPROC_ENV] = str(path)  # inherited by the workers, read at their import
    return path, True


@dataclasses.dataclass
class _Supervisor:
    """Starts the workers on the shared socket, forwards signals, replaces the ones that die."""

    settings: Settings
    sock: socket.socket
    graceful_seconds: float
    unready_seconds: float
    context: SpawnContext = dataclasses.field(
        default_factory=lambda: multiprocessing.get_context("spawn")
    )
    workers: list[BaseProcess] = dataclasses.field(default_factory=list)
    signals: list[int] = dataclasses.field(default_factory=list)
    stopping: bool = False
    failed: bool = False

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        log.info("starting %d workers (parent %d)", self.settings.workers, os.getpid())
        self.workers = [self._start(i) for i in range(self.settings.workers)]
        while any(w.is_alive() for w in self.workers):
            multiprocessing.connection.wait([w.sentinel for w in self.workers], timeout=0.2)
            while self.signals:
                self._forward(self.signals.pop(0))
            for index, worker in enumerate(self.workers):
                if worker.exitcode is not None and not self.stopping:
                    self._replace(index, worker)
        for worker in self.workers:
            worker.join()
        log.info("all workers stopped")
        return 1 if self.failed else 0

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self.signals.append(sig)  # handled in the loop, not in the signal handler

    def _forward(self, sig: int) -> None:
        first = not self.stopping
        self.stopping = True
        log.info(
            "%s: %s %d workers",
            signal.Signals(sig).name,
            "draining" if first else "stopping",
            len(self.workers),
        )
        for worker in self.workers:
            if worker.is_alive() and worker.pid is not None:
                os.kill(worker.pid, signal.SIGTERM)

    def _replace(self, index: int, worker: BaseProcess) -> None:
        assert worker.pid is not None
        _mark_dead(worker.pid)
        if worker.exitcode == _STARTUP_FAILURE:
            log.error("worker %d could not start; stopping", worker.pid)
            self.failed = True
            self._forward(signal.SIGTERM)
            return
        log.warning("worker %d exited (%s); starting another", worker.pid, worker.exitcode)
        time.sleep(_RESTART_PAUSE_SECONDS)
        self.workers[index] = self._start(index)

    def _start(self, index: int) -> BaseProcess:
        worker = self.context.Process(
            target=_worker_main,
            args=(self.settings, self.sock, self.graceful_seconds, self.unready_seconds),
            kwargs={"parent": os.getpid(), "slot": index},
            name=f"trace-worker-{index}",
        )
        worker.start()
        return worker


def _mark_dead(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def _worker_main(
    settings: Settings,
    sock: socket.socket,
    graceful_seconds: float,
    unready_seconds: float,
    *,
    parent: int,
    slot: int,
) -> None:
    """A worker process: the single-process server on the shared socket."""
    from svc.logs import configure
    from svc.run.server import run_server

    process.worker_slot = slot
    configure(settings.log_format)
    threading.Thread(target=_drain_when_orphaned, args=(parent,), daemon=True).start()
    host, port = sock.getsockname()[:2]
    run_server(settings, host, port, graceful_seconds, unready_seconds, sockets=[sock])


def _drain_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_PARENT_CHECK_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
