"""problem+json (RFC 9457) bodies, built in one place for the app and for the h11 protocol,
so every one sent is counted in `trace_problem_responses`."""

from __future__ import annotations

from starlette.responses import Response

from svc import metrics
from svc import protocol as p
from svc.errors import TraceError

PROBLEM = "application/problem+json"


def problem_body(status: int, code: str, detail: str) -> bytes:
    """The body of one problem response, counted as sent."""
    metrics.PROBLEMS.labels(code).inc()
    return p.encode(
        p.Problem(type=f"/problems/{code}", title=detail, status=status, code=code, detail=detail)
    )


def problem(status: int, code: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    return Response(problem_body(status, code, detail), status, headers, media_type=PROBLEM)


def retry_headers(error: TraceError) -> dict[str, str]:
    """`Retry-After` for an error that says when to come back."""
    return {} if error.retry_after is None else {"Retry-After": str(error.retry_after)}


def problem_of(error: TraceError, headers: dict[str, str] | None = None) -> Response:
    """The response to `error`, with `headers` and its `Retry-After`."""
    merged = {**(headers or {}), **retry_headers(error)}
    return problem(error.status, error.code, error.detail, merged or None)


def closing_problem(error: TraceError) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The headers and body of `error` for a sender below ASGI (`svc.http.h11`), which
    closes the connection after it."""
    body = problem_body(error.status, error.code, error.detail)
    headers = [
        (b"content-type", PROBLEM.encode()),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *((k.lower().encode(), v.encode()) for k, v in retry_headers(error).items()),
    ]
    return headers, body
