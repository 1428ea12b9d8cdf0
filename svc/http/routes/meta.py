"""The service about itself: health, readiness, metrics, its domains, demo CIDs and its
OpenAPI document and reference page."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from svc import metrics
from svc import protocol as p
from svc.errors import NotFound
from svc.http import limits, openapi
from svc.http.app_state import service_of
from svc.http.auth import authorize
from svc.http.params import int_param
from svc.http.routes.shared import json_response, refuse_when_draining
from svc.sources.demo import random_cids


async def healthz(request: Request) -> Response:
    return json_response(p.Health("ok"))


async def readyz(request: Request) -> Response:
    """Ready when jobs can be created: the store's ping writes a key (`JobStore.ping`)."""
    service = service_of(request)
    refuse_when_draining(service)
    await service.store.ping()
    await service.source.ping()
    return json_response(p.Health("ready"))


async def metrics_text(request: Request) -> Response:
    """Every metric of `svc.metrics`, in Prometheus text format."""
    service = service_of(request)
    if not service.settings.metrics_public:
        authorize(request)
    body = metrics.exposition(service.source.in_use, service.draining.is_set())
    return Response(body, media_type=metrics.CONTENT_TYPE)


async def list_domains(request: Request) -> Response:
    authorize(request)
    service = service_of(request)
    return json_response(
        p.DomainList(
            [
                p.DomainInfo(
                    d.name,
                    list(d.columns),
                    {f.name: p.FilterInfo(sorted(f.ops), f.type) for f in d.filters},
                    d.columns[d.key_index],
                )
                for d in service.domains.values()
            ]
        )
    )


async def demo_cids(request: Request) -> Response:
    authorize(request)
    service = service_of(request)
    n = int_param(request, "n", limits.DEMO_CIDS_DEFAULT, 1, service.settings.max_cids)
    if service.settings.db_url is not None:
        raise NotFound("demo CIDs exist only on the embedded demo database")
    return json_response(p.DemoCids(await random_cids(service.source, n)))


def _document(request: Request) -> dict[str, Any]:
    """The OpenAPI document, built on first request and kept: settings do not change."""
    doc: dict[str, Any] | None = getattr(request.app.state, "openapi", None)
    if doc is None:
        service = service_of(request)
        doc = openapi.document(service.settings, list(service.domains))
        request.app.state.openapi = doc
    return doc


async def openapi_json(request: Request) -> Response:
    return json_response(_document(request))


async def docs(request: Request) -> Response:
    return HTMLResponse(openapi.render_docs(_document(request)))
