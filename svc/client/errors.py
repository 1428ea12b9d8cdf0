"""The client's exceptions: one base, three cases."""

from __future__ import annotations


class TraceClientError(Exception):
    """Base of every error the client raises (httpx errors are retried or wrapped)."""


class ProblemError(TraceClientError):
    """A non-retryable HTTP answer (problem+json): 400, 401, 404, 410, ..."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"HTTP {status} {code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail


class StreamError(TraceClientError):
    """A non-retryable `error` line; `since` is the last token the caller has seen."""

    def __init__(self, code: str, message: str, since: str | None) -> None:
        super().__init__(f"stream error {code}: {message}")
        self.code = code
        self.message = message
        self.since = since


class RetriesExhausted(TraceClientError):
    """The retry budget ran out; resume later with `since` (None: nothing received yet)."""

    def __init__(self, attempts: int, since: str | None, last: str) -> None:
        super().__init__(f"gave up after {attempts} attempts without progress ({last})")
        self.attempts = attempts
        self.since = since
        self.last = last
