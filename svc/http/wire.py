"""Jobs and exports as the wire shows them: RFC 3339 times and links read from the route
table (`svc.http.paths`)."""

from __future__ import annotations

import datetime as dt
import time

from svc import protocol as p
from svc.core.export_record import ExportRecord
from svc.http import paths


def iso(ts: float) -> str:
    """A UNIX time as RFC 3339 in UTC, to the second: `2026-12-06T22:25:00Z`."""
    return (
        dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    )


def job_links(job_id: str) -> p.Links:
    return p.Links(
        paths.JOB.url(job_id=job_id),
        paths.STREAM.url(job_id=job_id),
        paths.RESULT.url(job_id=job_id),
    )


def status_of(record: ExportRecord) -> p.ExportStatus:
    """An export's state, the body of its status URL."""
    ids = {"job_id": record.job_id, "export_id": record.export_id}
    links = p.ExportLinks(
        paths.EXPORT.url(**ids), paths.EXPORT_FILE.url(**ids), paths.JOB.url(job_id=record.job_id)
    )
    error = None
    if record.error_code is not None:
        error = p.ExportFailure(record.error_code, record.error or "")
    return p.ExportStatus(
        export_id=record.export_id,
        job_id=record.job_id,
        format=record.format,
        state=(
            "recovering"
            if record.state == "running" and record.lease_until < time.time()
            else record.state
        ),
        records=record.records,
        total=record.total,
        created_at=iso(record.created_at),
        updated_at=iso(record.updated_at),
        expires_at=iso(record.expires_at),
        size=record.size,
        sha256=record.sha256,
        error=error,
        links=links,
        domain=record.domain,
        spreadsheet=record.spreadsheet,
        digest=record.digest,
    )
