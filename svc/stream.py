"""A job's output as NDJSON lines, resumable at any `since` token.

`stream_job` is an async generator that awaits at every batch, so memory is bounded by
one batch, and the database work happens in the source, off the event loop. When the
client goes away the ASGI server cancels it: the query in flight is interrupted and no
cursor or connection is left behind. Lines after the first byte carry failures as an
`error` line; a draining server ends with a `reconnect` line.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

from svc import protocol as p
from svc.errors import TraceError
from svc.jobs import DomainStats, JobSpec
from svc.keyset import Key
from svc.reader import Batch
from svc.service import Service
from svc.tokens import Cursor

log = logging.getLogger(__name__)


# How long a stream waits for a domain's total before it starts without it (the total
# then follows in a second domain_start): counting 115k CIDs takes most of a second.
TOTAL_WAIT_SECONDS = 0.2


def _domain_start(
    name: str, columns: tuple[str, ...], stats: DomainStats | None, batch_size: int
) -> bytes:
    total = None if stats is None else stats.records
    batches = None if total is None else -(-total // batch_size)
    return p.encode_line(p.DomainStart(name, list(columns), total, batches))


def start_key(cursor: Cursor) -> Key | None:
    return None if cursor.cid is None or cursor.rid is None else Key(cursor.cid, cursor.rid)


async def stream_job(
    svc: Service,
    spec: JobSpec,
    cursor: Cursor | None,
    since: str | None,
    arrays: bool,
    waited: bool = False,
) -> AsyncIterator[bytes]:
    """Every line of the job from `cursor` on; `since` is the token it came from.

    `waited`: the caller already gave the first domain's count its TOTAL_WAIT_SECONDS.
    """
    started = time.monotonic()
    last_token = since
    svc.active_streams += 1
    ahead: asyncio.Future[Batch] | None = None
    try:
        yield p.encode_line(
            p.Meta(spec.job_id, spec.domains, len(spec.cids), resumed=cursor is not None)
        )
        first = spec.domains.index(cursor.domain) if cursor else 0
        total_records = 0
        for index, name in enumerate(spec.domains):
            if index < first:
                total_records += (await svc.stats(spec, name)).records
                continue
            domain = svc.domains[name]
            size = svc.settings.batch_size
            wait = 0.0 if waited and index == first else TOTAL_WAIT_SECONDS
            stats = await svc.stats_within(spec, name, wait)
            counting = svc.stats_future(spec, name) if stats is None else None
            yield _domain_start(name, domain.columns, stats, size)
            resume = cursor if cursor is not None and cursor.domain == name else None
            batch = resume.batch if resume else 0
            seen = resume.seen if resume else 0
            after = start_key(resume) if resume else None
            reader = svc.reader(spec, name)
            ahead = asyncio.ensure_future(reader.read(after, size))
            while True:
                page = await ahead
                if page.more:
                    # Read the next page while this one is shaped, encoded and sent:
                    # the database and the event loop work at once, two batches at most.
                    ahead = asyncio.ensure_future(reader.read(page.last, size))
                if page.rows:
                    batch += 1
                    seen += len(page.rows)
                    after = page.last
                    assert after is not None
                    last_token = svc.tokens.sign(
                        Cursor(spec.job_id, name, batch, after.cid, after.rid, seen, spec.snapshot)
                    )
                    data = p.shape_records(page.rows, domain.columns, arrays)
                    yield p.encode_line(p.Records(name, batch, data, last_token))
                if counting is not None and (counting.done() or not page.more):
                    yield _domain_start(name, domain.columns, await counting, size)
                    counting = None
                if not page.more:
                    break
                if svc.draining.is_set():  # the batch in flight is sent; hand over the rest
                    yield p.encode_line(p.Reconnect("draining", last_token))
                    return
            yield p.encode_line(p.DomainEnd(name, seen))
            total_records += seen
        aggregate = {}
        for name in spec.domains:
            stats = await svc.stats(spec, name)
            aggregate[name] = {"records": stats.records, "containers": stats.containers}
        yield p.encode_line(p.Aggregation({"domains": aggregate}))
        yield p.encode_line(p.Complete(round(time.monotonic() - started, 3), total_records))
    except TraceError as exc:
        log.warning("stream of job %s failed: %s", spec.job_id, exc.code)
        yield p.encode_line(p.Error(exc.code, exc.detail, exc.retryable, last_token))
    except Exception:
        log.exception("stream of job %s failed", spec.job_id)
        yield p.encode_line(
            p.Error("internal", "Internal error; resume with since", True, last_token)
        )
    finally:
        if ahead is not None:
            ahead.cancel()  # a read ahead of a closed or failed stream: stop it
        svc.active_streams -= 1
