"""Wiring and running: build the Service from Settings, serve it with uvicorn, drain on SIGTERM.

On SIGTERM/SIGINT the server first marks itself draining (readiness turns 503, every
stream finishes its batch in flight and ends with a `reconnect` line carrying its last
token), then lets uvicorn close the connections and stop.
"""

from __future__ import annotations

import logging
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from svc.app import create_app
from svc.config import Settings
from svc.domains import load_domains
from svc.jobs import JobStore
from svc.jobs.embedded import EmbeddedJobStore
from svc.service import Service
from svc.sources import open_source
from svc.tokens import TokenCodec

log = logging.getLogger(__name__)


def open_store(settings: Settings) -> JobStore:
    if settings.redis_url:
        from svc.jobs.redis import RedisJobStore

        return RedisJobStore(
            settings.redis_url,
            prefix=settings.redis_prefix,
            ttl=settings.job_ttl,
            refresh_on_access=settings.job_ttl_refresh,
        )
    return EmbeddedJobStore(
        settings.data_dir / "jobs.sqlite3",
        ttl=settings.job_ttl,
        refresh_on_access=settings.job_ttl_refresh,
    )


def ensure_demo_database(settings: Settings) -> None:
    """With no TRACE_DB_URL, build the demo database once, so one command starts a service."""
    if settings.db_url is None and not settings.demo_db_path.exists():
        from svc.demo import build_demo_database

        log.warning(
            "building the demo database (%d CIDs) at %s", settings.demo_cids, settings.demo_db_path
        )
        build_demo_database(settings.demo_db_path, cids=settings.demo_cids)


async def build_service(settings: Settings) -> Service:
    tokens = TokenCodec(settings.token_secrets())
    domains = load_domains(settings.domains_file)
    source = open_source(
        settings.resolved_db_url(),
        pool_min=settings.oracle_pool_min,
        pool_max=settings.oracle_pool_max,
        pool_increment=settings.oracle_pool_increment,
        pool_wait_ms=settings.oracle_pool_wait_ms,
        call_timeout_ms=settings.oracle_call_timeout_ms,
        snapshot=settings.oracle_snapshot,
    )
    return Service(settings, domains, source, open_store(settings), tokens)


class _DrainingServer(uvicorn.Server):
    """uvicorn's server, but streams hear about a shutdown before connections close."""

    def __init__(self, config: uvicorn.Config, app: Starlette) -> None:
        super().__init__(config)
        self._app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        service = getattr(self._app.state, "service", None)
        if service is not None:
            service.draining.set()
        super().handle_exit(sig, frame)


def serve(settings: Settings, host: str, port: int, graceful_seconds: float = 30) -> None:
    ensure_demo_database(settings)

    async def factory() -> Service:
        return await build_service(settings)

    app = create_app(factory)
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        proxy_headers=True,
        timeout_graceful_shutdown=int(graceful_seconds),
        log_level="info",
    )
    _DrainingServer(config, app).run()
