"""`TraceClient`: the synchronous client on httpx."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
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


class TraceClient:
    """A trace-stream client that owns its httpx.Client; use it as a context manager.

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
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout,
            transport=transport,
        )
        self._stream_timeout = httpx.Timeout(timeout, read=idle_timeout)
        self._retry = as_retry(retries)
        self._sleep = sleep

    def __enter__(self) -> TraceClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _request(self, method: str, url: str, job: str | None = None, **kw: Any) -> httpx.Response:
        budget = Budget(self._retry)
        while True:
            retry_after = None
            try:
                response = self._http.request(method, url, **kw)
            except RETRYABLE_ERRORS as exc:
                reason = type(exc).__name__
            else:
                if response.is_success:
                    return response
                retry_after = check_status(response, job, (kw.get("params") or {}).get("since"))
                reason = f"HTTP {response.status_code}"
            self._sleep(budget.fail(reason, retry_after, None))

    def create_job(
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
        return job_decoder.decode(self._request("POST", "/api/trace/job", json=body).content)

    def job(self, job_id: str) -> Job:
        return job_decoder.decode(self._request("GET", f"/api/trace/job/{job_id}").content)

    def iter_lines(self, job_id: str, since: str | None = None) -> Iterator[p.Line]:
        """Every line of the stream once, resuming as needed (objects format). An
        `Aggregating` line says the stream waits while its aggregations are computed."""
        return self._lines(job_id, since, arrays=False)

    def iter_records(self, job_id: str, since: str | None = None) -> Iterator[tuple[str, Any]]:
        """(domain, record) pairs, each record a dict, each exactly once."""
        for line in self._lines(job_id, since, arrays=False):
            if isinstance(line, p.Records):
                for record in line.data:
                    yield line.domain, record

    def iter_batches(self, job_id: str, since: str | None = None) -> Iterator[Batch]:
        """`format=arrays` batches; a batch's `since` resumes right after it."""
        columns: dict[str, list[str]] = {}
        for line in self._lines(job_id, since, arrays=True):
            if isinstance(line, p.DomainStart):
                columns[line.domain] = line.columns
            elif isinstance(line, p.Records):
                yield Batch(line.domain, line.batch, columns[line.domain], line.data, line.since)

    def iter_pages(
        self,
        job_id: str,
        domain: str,
        limit: int | None = None,
        since: str | None = None,
        offset: int | None = None,
    ) -> Iterator[p.Page]:
        """REST pages of one domain from `since` or `offset` on, following `next`; each
        page's digest is checked against the chain over the pages received (DigestMismatch)."""
        params = page_params(domain, limit, since, offset)
        chain = page_chain(since, offset)
        while True:
            response = self._request(
                "GET", f"/api/trace/job/{job_id}/result", job_id, params=params
            )
            page = _page_decoder.decode(response.content)
            chain = check_page(response.content, page, chain, params.get("since"))
            yield page
            if page.next is None:
                return
            params = page_params(domain, limit, page.next, None)

    def _lines(self, job_id: str, since: str | None, arrays: bool) -> Iterator[p.Line]:
        state = StreamState(since)
        budget = Budget(self._retry)
        url = f"/api/trace/job/{job_id}/stream"
        while True:
            delay: float | None = None
            try:
                with self._http.stream(
                    "GET", url, params=state.params(arrays), timeout=self._stream_timeout
                ) as response:
                    if response.status_code != 200:
                        response.read()
                        delay = check_status(response, job_id, state.since)
                        reason = f"HTTP {response.status_code}"
                    else:
                        lines = LineBuffer()
                        for chunk in response.iter_bytes():
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
            self._sleep(budget.fail(reason, delay, state.since))
