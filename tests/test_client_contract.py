"""The client's contract against a scripted server (respx), run on both clients.

A fake stream of two domains (a late total, a heartbeat) is broken in every way a network
and a server can break it; the records, and the whole line sequence, must come out exactly
as from an unbroken stream, and every wait goes through the injected `sleep`.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import httpx
import pytest
import respx

from svc import protocol as p
from svc.client import (
    AsyncTraceClient,
    ProblemError,
    RetriesExhausted,
    Retry,
    StreamError,
    TraceClient,
)
from tests.support.scripted_stream import BASE, COLUMNS, JOB, PLAN, body, expected_records, script


class Cut(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that breaks with `exc` after `at` bytes (None: ends cleanly), 7 bytes a chunk."""

    def __init__(self, data: bytes, at: int | None, exc: type[Exception] = httpx.ReadError):
        self.data, self.at, self.exc = data, at, exc

    def _chunks(self) -> Iterator[bytes]:
        data = self.data if self.at is None else self.data[: self.at]
        for i in range(0, len(data), 7):
            yield data[i : i + 7]
        if self.at is not None:
            raise self.exc("connection broken")

    def __iter__(self) -> Iterator[bytes]:
        yield from self._chunks()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks():
            yield chunk


def ndjson(
    data: bytes, at: int | None = None, exc: type[Exception] = httpx.ReadError
) -> httpx.Response:
    headers = {"content-type": "application/x-ndjson"}
    return httpx.Response(200, headers=headers, stream=Cut(data, at, exc))


Handler = Callable[[httpx.Request], httpx.Response]


class Run:
    """One scenario on the sync or the async client; `sleeps` records every wait."""

    def __init__(self, kind: str, retries: Retry | None = None) -> None:
        self.kind = kind
        self.retries = retries or Retry(attempts=8, base=0.01)
        self.sleeps: list[float] = []
        self.requests: list[httpx.Request] = []

    def _client_kw(self) -> dict[str, Any]:
        return {"retries": self.retries, "api_key": "k"}

    def call(self, method: str, *args: Any, **kw: Any) -> list[Any]:
        """`list(client.method(*args))` (a generator) or `[client.method(*args)]`."""
        if self.kind == "sync":

            def sleep(s: float) -> None:
                self.sleeps.append(s)

            with TraceClient(BASE, sleep=sleep, **self._client_kw()) as client:
                out = getattr(client, method)(*args, **kw)
                return list(out) if isinstance(out, Iterator) else [out]

        async def asleep(s: float) -> None:
            self.sleeps.append(s)

        async def main() -> list[Any]:
            async with AsyncTraceClient(BASE, sleep=asleep, **self._client_kw()) as client:
                out = getattr(client, method)(*args, **kw)
                if isinstance(out, AsyncIterator):
                    return [x async for x in out]
                return [await out]

        return asyncio.run(main())

    def serve(self, router: respx.MockRouter, path: str, *answers: Handler) -> None:
        """The i-th request to `path` gets answers[i]; the last one answers the rest."""

        def handle(request: httpx.Request) -> httpx.Response:
            self.requests.append(request)
            return answers[min(len(self.requests) - 1, len(answers) - 1)](request)

        router.route(url__startswith=f"{BASE}{path}").mock(side_effect=handle)


def since_of(request: httpx.Request) -> str | None:
    since: str | None = request.url.params.get("since")
    return since


def clean(request: httpx.Request) -> httpx.Response:
    arrays = request.url.params.get("format") == "arrays"
    return ndjson(body(script(since_of(request), arrays)))


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def router() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=False) as r:
        yield r


def reference_lines(router: respx.MockRouter) -> list[p.Line]:
    run = Run("sync")
    run.serve(router, f"/api/trace/job/{JOB}/stream", clean)
    lines = run.call("iter_lines", JOB)
    router.clear()
    return lines


def test_an_unbroken_stream(kind: str, router: respx.MockRouter) -> None:
    run = Run(kind)
    run.serve(router, f"/api/trace/job/{JOB}/stream", clean)
    assert run.call("iter_records", JOB) == expected_records()
    assert run.sleeps == [] and len(run.requests) == 1
    assert run.requests[0].headers["authorization"] == "Bearer k"


@pytest.mark.parametrize("exc", [httpx.ReadError, httpx.RemoteProtocolError])
def test_breaks_at_every_offset(kind: str, router: respx.MockRouter, exc: type[Exception]) -> None:
    reference = reference_lines(router)
    full = body(script(None))
    offsets = range(1, len(full), len(full) // 60)
    assert len(offsets) >= 50
    for at in offsets:
        run = Run(kind)
        # the first connection breaks at `at`, the second 90 bytes into its body, then clean
        run.serve(
            router,
            f"/api/trace/job/{JOB}/stream",
            functools.partial(lambda at, r: ndjson(full, at, exc), at),
            lambda r: ndjson(body(script(since_of(r))), 90, exc),
            clean,
        )
        lines = run.call("iter_lines", JOB)
        assert lines == reference, at
        assert [type(x) for x in lines].count(p.Meta) == 1
        records = [(x.domain, r) for x in lines if isinstance(x, p.Records) for r in x.data]
        assert records == expected_records(), at
        assert len(run.sleeps) == 2 and all(0 < s <= 0.02 for s in run.sleeps)
        router.clear()


def test_reference_has_a_late_total_and_no_heartbeat(router: respx.MockRouter) -> None:
    lines = reference_lines(router)
    starts = [(x.domain, x.total) for x in lines if isinstance(x, p.DomainStart)]
    assert starts == [("history", None), ("history", 8), ("materials", 6)]
    assert isinstance(lines[-1], p.Complete)


def test_503_with_retry_after(kind: str, router: respx.MockRouter) -> None:
    run = Run(kind)
    problem = {"type": "/problems/source_unavailable", "status": 503, "code": "source_unavailable"}
    run.serve(
        router,
        f"/api/trace/job/{JOB}/stream",
        lambda r: httpx.Response(503, json=problem, headers={"Retry-After": "7"}),
        lambda r: httpx.Response(504),
        clean,
    )
    assert run.call("iter_records", JOB) == expected_records()
    assert run.sleeps[0] == 7.0 and 0 < run.sleeps[1] <= 0.02 and len(run.sleeps) == 2


def test_reconnect_and_retryable_error_lines(kind: str, router: respx.MockRouter) -> None:
    def cut_with(extra: dict[str, Any], after: int) -> Handler:
        def answer(r: httpx.Request) -> httpx.Response:
            lines = script(since_of(r))
            kept = []
            for line in lines:
                kept.append(line)
                if (
                    line["type"] == "records"
                    and len([x for x in kept if x["type"] == "records"]) == after
                ):
                    break
            return ndjson(body([*kept, {**extra, "since": kept[-1]["since"]}]))

        return answer

    run = Run(kind)
    drain = {"type": "reconnect", "reason": "draining"}
    err = {"type": "error", "code": "internal", "message": "x", "retryable": True}
    run.serve(router, f"/api/trace/job/{JOB}/stream", cut_with(drain, 2), cut_with(err, 3), clean)
    assert run.call("iter_records", JOB) == expected_records()
    assert [since_of(r) for r in run.requests] == [None, "history:2", "materials:1"]
    assert run.sleeps[0] == 0.0 and len(run.sleeps) == 2  # a reconnect goes at once


def test_non_retryable_error_line(kind: str, router: respx.MockRouter) -> None:
    lines = script(None)[:5]  # meta, start, history 1, late start, heartbeat
    err = {"type": "error", "code": "snapshot_too_old", "message": "gone", "retryable": False,
           "since": "history:1"}  # fmt: skip
    run = Run(kind)
    run.serve(router, f"/api/trace/job/{JOB}/stream", lambda r: ndjson(body([*lines, err])))
    got: list[tuple[str, Any]] = []
    with pytest.raises(StreamError) as info:
        if kind == "sync":
            with TraceClient(BASE) as client:
                got.extend(client.iter_records(JOB))
        else:

            async def main() -> None:
                async with AsyncTraceClient(BASE) as client:
                    async for pair in client.iter_records(JOB):
                        got.append(pair)

            asyncio.run(main())
    assert (info.value.code, info.value.since) == ("snapshot_too_old", "history:1")
    assert got == expected_records()[:2]


def test_a_bad_token_raises_at_once(kind: str, router: respx.MockRouter) -> None:
    problem = {"status": 400, "code": "invalid_token", "detail": "The since token is invalid"}
    run = Run(kind)
    run.serve(router, f"/api/trace/job/{JOB}/stream", lambda r: httpx.Response(400, json=problem))
    with pytest.raises(ProblemError) as info:
        run.call("iter_records", JOB, since="forged")
    assert (info.value.status, info.value.code) == (400, "invalid_token")
    assert run.sleeps == [] and len(run.requests) == 1


@pytest.mark.parametrize("status", [401, 404, 410])
def test_other_permanent_answers(kind: str, router: respx.MockRouter, status: int) -> None:
    run = Run(kind)
    run.serve(router, f"/api/trace/job/{JOB}", lambda r: httpx.Response(status, text="no"))
    with pytest.raises(ProblemError) as info:
        run.call("job", JOB)
    assert info.value.status == status and info.value.code == f"http_{status}"
    assert len(run.requests) == 1


def test_the_retry_budget_runs_out(kind: str, router: respx.MockRouter) -> None:
    full = body(script(None))
    cut_at = full.index(b'"history:2"') + 20  # after history's batch 2
    run = Run(kind, retries=Retry(attempts=3, base=0.01))
    connect_error = httpx.ConnectError("refused")
    run.serve(
        router,
        f"/api/trace/job/{JOB}/stream",
        lambda r: ndjson(full, cut_at),
        lambda r: (_ for _ in ()).throw(connect_error),
    )
    with pytest.raises(RetriesExhausted) as info:
        run.call("iter_records", JOB)
    assert info.value.since == "history:2" and info.value.attempts == 4
    assert len(run.requests) == 4 and len(run.sleeps) == 3
    assert run.sleeps == sorted(run.sleeps)  # exponential (jitter is at most halving)


def test_the_time_budget_counts_waits(kind: str, router: respx.MockRouter) -> None:
    run = Run(kind, retries=Retry(attempts=100, seconds=10))
    busy = {"Retry-After": "4"}
    run.serve(router, f"/api/trace/job/{JOB}/stream", lambda r: httpx.Response(503, headers=busy))
    with pytest.raises(RetriesExhausted):
        run.call("iter_records", JOB)
    assert run.sleeps == [4.0, 4.0]  # a third wait would pass 10 s


def test_progress_resets_the_budget(kind: str, router: respx.MockRouter) -> None:
    # Every connection breaks after one records line: 7 breaks, a budget of 2 attempts.
    def one_batch(r: httpx.Request) -> httpx.Response:
        data = body(script(since_of(r)))
        if b'"type": "records"' not in data:
            return ndjson(data)
        return ndjson(data, data.index(b"\n", data.index(b'"type": "records"')) + 1)

    run = Run(kind, retries=Retry(attempts=2, base=0.01))
    run.serve(router, f"/api/trace/job/{JOB}/stream", one_batch)
    assert run.call("iter_records", JOB) == expected_records()
    assert len(run.requests) == 8 and len(run.sleeps) == 7


def test_batches_and_idle_timeouts(kind: str, router: respx.MockRouter) -> None:
    full = body(script(None, arrays=True))
    run = Run(kind)
    run.serve(
        router,
        f"/api/trace/job/{JOB}/stream",
        lambda r: ndjson(full, full.index(b'"history:3"'), httpx.ReadTimeout),
        clean,
    )
    batches = run.call("iter_batches", JOB)
    assert [(b.domain, b.batch, b.since) for b in batches] == [
        (d, i, f"{d}:{i}") for d, n in PLAN.items() for i in range(1, n + 1)
    ]
    assert all(b.columns == COLUMNS for b in batches)
    rows = [(b.domain, dict(zip(b.columns, row, strict=True))) for b in batches for row in b.rows]
    assert rows == expected_records()
    assert all(r.url.params["format"] == "arrays" for r in run.requests)
    assert since_of(run.requests[1]) == "history:2"


def test_pages_follow_next_and_retry(kind: str, router: respx.MockRouter) -> None:
    def page(r: httpx.Request) -> httpx.Response:
        since = since_of(r)
        n = 0 if since is None else int(since)
        assert r.url.params["domain"] == "history" and r.url.params["limit"] == "2"
        data = [{"N": n}, {"N": n + 1}]
        nxt = str(n + 2) if n < 4 else None
        page = {"domain": "history", "limit": 2, "total": 6, "data": data, "next": nxt}
        return httpx.Response(200, json=page)

    run = Run(kind)
    run.serve(router, f"/api/trace/job/{JOB}/result", page, lambda r: httpx.Response(502), page)
    pages = run.call("iter_pages", JOB, "history", limit=2)
    assert [x["N"] for pg in pages for x in pg.data] == [0, 1, 2, 3, 4, 5]
    assert [since_of(r) for r in run.requests] == [None, "2", "2", "4"]
    assert len(run.sleeps) == 1


def test_create_job_and_job(kind: str, router: respx.MockRouter) -> None:
    created = {"job_id": JOB, "cid_count": 2, "domains": ["history"], "expires_at": "x",
               "links": {"self": "/api/trace/job/j1"}}  # fmt: skip
    described = {**created, "created_at": "y", "snapshot": None,
                 "totals": {"history": {"records": 8, "containers": 2}}}  # fmt: skip
    run = Run(kind)
    router.post(f"{BASE}/api/trace/job").mock(return_value=httpx.Response(201, json=created))
    run.serve(router, f"/api/trace/job/{JOB}", lambda r: httpx.Response(200, json=described))
    [job] = run.call("create_job", ["a", "b"], ["history"])
    assert job.job_id == JOB and job.totals == {}
    assert json.loads(router.calls[0].request.content) == {
        "container_ids": ["a", "b"],
        "domains": ["history"],
    }
    [job] = run.call("job", JOB)
    assert job.totals["history"].records == 8
