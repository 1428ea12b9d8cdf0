"""The ASGI app: its routes (`svc.http.routes`), middleware, lifespan, and the mapping of
errors to problem+json, here and only here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles

from svc import logs, metrics, resource_dir
from svc.engine.service import Service
from svc.errors import MethodNotAllowed, NotFound, TraceError
from svc.exports.runner import ExportRunner
from svc.exports.storage import open_storage
from svc.http import paths
from svc.http.params import PAGE_FORMATS
from svc.http.problems import problem, problem_of
from svc.http.routes import api_routes
from svc.store.purge import purge_periodically

log = logging.getLogger(__name__)
_ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

FRONTEND_DIR = resource_dir("frontend")


async def _trace_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, TraceError)
    return problem_of(exc)


async def _client_gone(request: Request, exc: Exception) -> Response:
    """The client left mid-upload or mid-read: a normal end, and nobody reads this answer."""
    log.info("client left during %s %s", request.method, request.url.path)
    return Response(status_code=499)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's routing errors, as the service's own."""
    assert isinstance(exc, HTTPException)
    mapped = {404: NotFound, 405: MethodNotAllowed}.get(exc.status_code)
    if mapped is None:
        return problem(exc.status_code, "http_error", str(exc.detail))
    return problem_of(mapped())


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s", request.url.path, exc_info=exc)
    return problem(500, "internal", "Internal error")


def _api_fallback(api: list[Route]) -> Route:
    async def api_fallback(request: Request) -> Response:
        """An /api path no route takes: 405 if another method would do, else 404 (the
        front end's files, mounted at /, would otherwise answer for them)."""
        allowed = {
            m for r in api if r.matches(request.scope)[0] is Match.PARTIAL for m in r.methods or ()
        }
        if allowed:
            response = problem_of(MethodNotAllowed())
            response.headers["Allow"] = ", ".join(sorted(allowed))
            return response
        raise NotFound()

    return Route("/api/{rest:path}", api_fallback, methods=_ALL_METHODS)


def _cors(origins: Sequence[str]) -> Middleware:
    return Middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_methods=["GET", "HEAD", "POST"],
        allow_headers=["Authorization", "X-Api-Key", "Content-Type", "X-Request-ID"],
        expose_headers=[
            "Link",
            "Retry-After",
            "X-Request-ID",
            "Location",
            "ETag",
            "Content-Range",
            "Content-Disposition",
        ],
        max_age=600,
    )


def create_app(
    service_factory: Callable[[], Awaitable[Service]],
    frontend: Path | None = FRONTEND_DIR,
    cors_origins: Sequence[str] = (),
) -> Starlette:
    """The ASGI app; `service_factory` builds the Service at start-up (in the loop).

    `cors_origins`: the browser origins allowed to call the API (none by default)."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.service = await service_factory()
        metrics.known_domains(app.state.service.domains, PAGE_FORMATS)
        app.state.background = set()
        settings = app.state.service.settings  # expired jobs: purged now and periodically
        purge = purge_periodically(app.state.service.store, settings.job_purge_seconds)
        app.state.background.add(asyncio.ensure_future(purge))
        storage = open_storage(settings.export_storage, settings.exports_path)
        app.state.exports = ExportRunner(app.state.service, storage)
        app.state.background.add(asyncio.ensure_future(app.state.exports.run_forever()))
        try:
            yield
        finally:
            for task in list(app.state.background):
                task.cancel()
            await app.state.exports.stop()  # writers hand their exports back at a checkpoint
            await app.state.service.close()

    api = api_routes()
    routes: list[Route | Mount] = [*api, _api_fallback(api)]
    if frontend is not None and frontend.is_dir():
        routes.append(Mount("/", StaticFiles(directory=frontend, html=True)))
    routed = [(e.path, e.method) for e in paths.ROUTED]
    middleware = [
        Middleware(logs.RequestLogMiddleware),
        Middleware(metrics.HttpMetricsMiddleware, routes=routed),
    ]
    if cors_origins:
        middleware.append(_cors(cors_origins))
    return Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            TraceError: _trace_error,
            HTTPException: _http_error,
            ClientDisconnect: _client_gone,
            Exception: _internal_error,
        },
    )
