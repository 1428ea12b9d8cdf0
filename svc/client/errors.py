"""The client's exceptions: one base and its cases."""

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


class JobExpired(ProblemError):
    """410 `job_expired`: the job is gone (its TTL passed, or it was purged). Final: create
    the job again and continue with `offset` (the detail says where). `since` is the last
    position the caller has."""

    def __init__(self, status: int, code: str, detail: str, job_id: str, since: str | None):
        super().__init__(status, code, detail)
        self.job_id = job_id
        self.since = since
        self.args = (f"job {job_id} expired (last since: {since}): HTTP {status} {code}: {detail}",)


class StreamError(TraceClientError):
    """A non-retryable `error` line; `since` is the last token the caller has seen."""

    def __init__(self, code: str, message: str, since: str | None) -> None:
        super().__init__(f"stream error {code}: {message}")
        self.code = code
        self.message = message
        self.since = since


class DigestMismatch(StreamError):
    """The `complete` line's digest is not the chain over the records this client received:
    something was lost, repeated, reordered or changed in transit."""

    def __init__(self, expected: str, computed: str, since: str | None) -> None:
        super().__init__(
            "digest_mismatch", f"the server's digest {expected} != received {computed}", since
        )
        self.expected = expected
        self.computed = computed


class RetriesExhausted(TraceClientError):
    """The retry budget ran out; resume later with `since` (None: nothing received yet)."""

    def __init__(self, attempts: int, since: str | None, last: str) -> None:
        super().__init__(f"gave up after {attempts} attempts without progress ({last})")
        self.attempts = attempts
        self.since = since
        self.last = last
