"""A job: created from a list of CIDs, described, and its aggregations."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from svc import metrics
from svc import protocol as p
from svc.engine.service import Service
from svc.http.app_state import run_in_background, service_of
from svc.http.auth import authorize
from svc.http.params import read_job_request
from svc.http.routes.shared import (
    client_key,
    conditional_json,
    job_of,
    json_response,
    unless_gone,
)
from svc.http.wire import iso, job_links
from svc.store import JobSpec


async def create_job(request: Request) -> Response:
    owner = authorize(request)
    service = service_of(request)
    client = client_key(request, owner)  # with keys off: the address, also for the quota
    await service.admit_job(client)
    req = await read_job_request(request, service.settings.max_cids)
    spec = await service.create_job(
        req.container_ids, req.domains, owner, req.where, req.select, quota_key=client
    )
    metrics.JOBS_CREATED.inc()
    run_in_background(request, _warm_totals(service, spec))
    links = job_links(spec.job_id)
    created = p.JobCreated(
        spec.job_id,
        len(spec.cids),
        spec.domains,
        iso(spec.expires_at),
        links,
        spec.where,
        spec.select,
    )
    return json_response(created, 201, {"Location": links.self_})


async def _warm_totals(service: Service, spec: JobSpec) -> None:
    """Compute the totals while the client gets ready to stream, in stream order, one
    domain at a time, so the first domain's (which the stream's first line waits for) is
    ready soonest."""
    for name in spec.domains:
        await service.totals(spec, name)


async def describe_job(request: Request) -> Response:
    service, _, spec = await job_of(request)
    totals = await service.store.get_totals(spec.job_id)
    return conditional_json(
        request,
        p.JobDescription(
            job_id=spec.job_id,
            cid_count=len(spec.cids),
            domains=spec.domains,
            created_at=iso(spec.created_at),
            expires_at=iso(spec.expires_at),
            snapshot=spec.snapshot,
            totals={
                d: p.DomainCount(s.records, s.containers)
                for d, s in totals.items()
                if d in spec.domains
            },
            links=job_links(spec.job_id),
            where=spec.where,
            select=spec.select,
        ),
    )


async def job_aggregation(request: Request) -> Response:
    service, owner, spec = await job_of(request)
    with service.admission.slot(client_key(request, owner)):
        result = await unless_gone(request, service.aggregation(spec))
    return json_response(result)
