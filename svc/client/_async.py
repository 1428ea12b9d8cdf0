"""`AsyncTraceClient`: the asyncio client on httpx."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any

import httpx
import msgspec

from svc import protocol as p
from svc.client._resume import (
    DEFAULT_RETRY,
    RETRYABLE_ERRORS,
    Budget,
    LineBuffer,
    Resume,
    Retry,
    StreamState,
    as_retry,
    check_page,
    check_status,
    page_chain,
    page_params,
)
from svc.client.models import Batch, Job, job_decoder

_page_decoder = msgspec.json.Decoder(p.Page)


class AsyncTraceClient:
    """The asyncio twin of TraceClient; owns its httpx.AsyncClient; use it as a context manager.

    `timeout`: connect and request timeout of every call (seconds). `idle_timeout`: a stream
    that sends nothing (not even a heartbeat) for this long is dropped and resumed.
    `retries`: a Retry budget, or just its number of attempts.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        idle_timeout: float = 45.0,
        retries: Retry | int = DEFAULT_RETRY,
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=transport,
        )
        self._stream_timeout = httpx.Timeout(timeout, read=idle_timeout)
        self._retry = as_retry(retries)
        self._sleep = sleep

    async def __aenter__(self) -> AsyncTraceClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self, method: str, url: str, job: str | None = None, **kw: Any
    ) -> httpx.Response:
        budget = Budget(self._retry)
        while True:
            retry_after = None
            try:
                response = await self._http.request(method, url, **kw)
            except RETRYABLE_ERRORS as exc:
                reason = type(exc).__name__
            else:
                if response.is_success:
                    return response
                retry_after = check_status(response, job, (kw.get("params") or {}).get("since"))
                reason = f"HTTP {response.status_code}"
            await self._sleep(budget.fail(reason, retry_after, None))

    async def create_job(
        self,
        container_ids: list[str],
        domains: list[str] | None = None,
        where: Mapping[str, Mapping[str, Any]] | None = None,
        select: Mapping[str, list[str]] | None = None,
    ) -> Job:
        """`where`: per domain, per filterable column, a list of values or a
        ``{"from": ..., "to": ...}`` range (see `GET /api/domains`). `select`: per domain,
        the columns its records carry (the key column always)."""
        body: dict[str, Any] = {"container_ids": container_ids}
        if domains is not None:
            body["domains"] = domains
        if where is not None:
            body["where"] = where
        if select is not None:
            body["select"] = select
        return job_decoder.decode(
            (await self._request("POST", "/api/trace/job", json=body)).content
        )

    async def job(self, job_id: str) -> Job:
        return job_decoder.decode((await self._request("GET", f"/api/trace/job/{job_id}")).content)

    def iter_lines(self, job_id: str, since: str | None = None) -> AsyncIterator[p.Line]:
        """Every line of the stream once, resuming as needed (objects format). An
        `Aggregating` line says the stream waits while its aggregations are computed."""
        return self._lines(job_id, since, arrays=False)

    async def iter_records(
        self, job_id: str, since: str | None = None
    ) -> AsyncIterator[tuple[str, Any]]:
        """(domain, record) pairs, each record a dict, each exactly once."""
        async for line in self._lines(job_id, since, arrays=False):
            if isinstance(line, p.Records):
                for record in line.data:
                    yield line.domain, record

    async def iter_batches(self, job_id: str, since: str | None = None) -> AsyncIterator[Batch]:
        """`format=arrays` batches; a batch's `since` resumes right after it."""
        columns: dict[str, list[str]] = {}
        async for line in self._lines(job_id, since, arrays=True):
            if isinstance(line, p.DomainStart):
                columns[line.domain] = line.columns
            elif isinstance(line, p.Records):
                yield Batch(line.domain, line.batch, columns[line.domain], line.data, line.since)

    async def iter_pages(
        self,
        job_id: str,
        domain: str,
        limit: int | None = None,
        since: str | None = None,
        offset: int | None = None,
    ) -> AsyncIterator[p.Page]:
        """REST pages of one domain from `since` or `offset` on, following `next`; each
        page's digest is checked against the chain over the pages received (DigestMismatch)."""
        params = page_params(domain, limit, since, offset)
        chain = page_chain(since, offset)
        while True:
            response = await self._request(
                "GET", f"/api/trace/job/{job_id}/result", job_id, params=params
            )
            page = _page_decoder.decode(response.content)
            chain = check_page(response.content, page, chain, params.get("since"))
            yield page
            if page.next is None:
                return
            params = page_params(domain, limit, page.next, None)

    async def _lines(self, job_id: str, since: str | None, arrays: bool) -> AsyncIterator[p.Line]:
        state = StreamState(since)
        budget = Budget(self._retry)
        url = f"/api/trace/job/{job_id}/stream"
        while True:
            delay: float | None = None
            try:
                async with self._http.stream(
                    "GET", url, params=state.params(arrays), timeout=self._stream_timeout
                ) as response:
                    if response.status_code != 200:
                        await response.aread()
                        delay = check_status(response, job_id, state.since)
                        reason = f"HTTP {response.status_code}"
                    else:
                        lines = LineBuffer()
                        async for chunk in response.aiter_bytes():
                            for raw in lines.feed(chunk):
                                line = state.feed(raw)
                                if line is None:
                                    continue
                                if isinstance(line, p.Records):
                                    budget.progress()
                                yield line
                                if state.complete:
                                    return
                        reason = "the stream ended early"
            except Resume as exc:
                reason, delay = exc.reason, exc.delay
            except RETRYABLE_ERRORS as exc:
                reason = type(exc).__name__
            await self._sleep(budget.fail(reason, delay, state.since))
