"""The service's one exception tree; `svc.http.app` maps it to responses in one place.

    TraceError                       500 internal
    ├── BadRequest                   400 invalid_request
    │   ├── InvalidToken             400 invalid_token
    │   ├── TokenJobMismatch         400 token_job_mismatch
    │   ├── UnknownDomain            400 unknown_domain
    │   ├── TooManyCids              400 too_many_cids
    │   ├── InvalidFilter            400 invalid_filter
    │   └── InvalidSelect            400 invalid_select
    ├── PayloadTooLarge              413 payload_too_large
    ├── UnsupportedMediaType         415 unsupported_media_type
    ├── TooManyRequests              429 too_many_requests (sent with Retry-After)
    │   ├── TooManyJobs              429 too_many_jobs
    │   ├── RateLimited              429 rate_limited
    │   └── TooManyExports           429 too_many_exports
    ├── Unauthorized                 401 unauthorized
    ├── NotFound                     404 not_found
    │   ├── JobNotFound              404 job_not_found
    │   └── ExportNotFound           404 export_not_found
    ├── MethodNotAllowed             405 method_not_allowed
    ├── RequestTimeout               408 request_timeout
    ├── SnapshotTooOld               410 snapshot_too_old
    ├── JobExpired                   410 job_expired (a since token proves the job existed)
    ├── HeadersTooLarge              431 headers_too_large
    ├── SourceError                  500 source_error (the database refused a query; not retryable)
    │   └── SourceMisconfigured      500 source_misconfigured (a table, column, grant or
    │                                    tie-break of the domain file does not fit the database)
    ├── ExportNotReady               409 export_not_ready (the file of an unfinished export)
    ├── RangeNotSatisfiable          416 range_not_satisfiable
    ├── ExportStorageFull            507 export_storage_full (TRACE_EXPORT_DISK_BUDGET_MB)
    └── Unavailable                  503 (retryable, sent with Retry-After)
        ├── Draining                 503 draining
        ├── Overloaded               503 overloaded
        ├── StoreUnavailable         503 store_unavailable
        └── SourceUnavailable        503 source_unavailable

RequestTimeout, HeadersTooLarge, Overloaded and a BadRequest for a malformed request are
also sent by the HTTP protocol itself (`svc.http.h11`), before or instead of the app.

Driver errors (sqlite3, oracledb, redis) are translated into these at the boundary of
each source and job store and re-raised ``from exc``; their text never reaches a client.
A message given to a TraceError is written for the client and must hold no secret.
An error with a `retry_after` (seconds) is sent with a ``Retry-After`` header.
"""

from __future__ import annotations

import math


class TraceError(Exception):
    status = 500
    code = "internal"
    title = "Internal error"
    retryable = False
    retry_after: int | None = None  # seconds, sent as Retry-After when set

    def __init__(self, detail: str | None = None) -> None:
        self.detail = detail or self.title
        super().__init__(self.detail)


class BadRequest(TraceError):
    status = 400
    code = "invalid_request"
    title = "The request is not valid"


class InvalidToken(BadRequest):
    code = "invalid_token"
    title = "The since token is malformed, expired or not signed by this service"


class TokenJobMismatch(BadRequest):
    code = "token_job_mismatch"
    title = "The since token belongs to another job"


class UnknownDomain(BadRequest):
    code = "unknown_domain"
    title = "Unknown domain"


class TooManyCids(BadRequest):
    code = "too_many_cids"
    title = "Too many container ids"


class InvalidFilter(BadRequest):
    """A job's `where` names a column its domain does not declare filterable, a kind the
    column does not take, or a value of the wrong type; the detail names the column."""

    code = "invalid_filter"
    title = "The job's filter is not valid"


class InvalidSelect(BadRequest):
    """A job's `select` names a column its domain does not declare, or is not a list of
    column names; the detail names the column."""

    code = "invalid_select"
    title = "The job's column selection is not valid"


class PayloadTooLarge(TraceError):
    status = 413
    code = "payload_too_large"
    title = "The request body is too large"


class UnsupportedMediaType(TraceError):
    status = 415
    code = "unsupported_media_type"
    title = "The body must be application/json"


class Unauthorized(TraceError):
    status = 401
    code = "unauthorized"
    title = "A valid API key is required"


class NotFound(TraceError):
    status = 404
    code = "not_found"
    title = "Not found"


class JobNotFound(NotFound):
    code = "job_not_found"
    title = "No such job (it may have expired)"


class MethodNotAllowed(TraceError):
    status = 405
    code = "method_not_allowed"
    title = "Method not allowed"


class RequestTimeout(TraceError):
    status = 408
    code = "request_timeout"
    title = "The request did not arrive in time"


class SnapshotTooOld(TraceError):
    status = 410
    code = "snapshot_too_old"
    title = "The job's snapshot is no longer available in the database's undo; create a new job"


class JobExpired(TraceError):
    """A correctly signed `since` token names a job that has expired or was purged: the job
    did exist, unlike a `job_not_found`. The detail says where the token was and how to
    go on: create the job again, then continue from that position with `offset`. Final:
    resuming again cannot help."""

    status = 410
    code = "job_expired"
    title = "The job has expired; create it again and continue with offset"


class SourceError(TraceError):
    """The trace database refused a query for a reason a retry does not fix.

    Retrying the same request cannot help; the cause is in the service log (the driver's
    text never reaches a client)."""

    code = "source_error"
    title = "The trace database refused the query; see the service log"


class SourceMisconfigured(SourceError):
    """The domain file does not fit the database: a missing table or column, a missing
    grant, a type mismatch or a tie-break the table cannot give (an operator must act)."""

    code = "source_misconfigured"
    title = "The trace database does not match the service's domain configuration"


class TooManyRequests(TraceError):
    """Refused for now: the client may try again after `retry_after` seconds. As itself:
    the client already holds its share of concurrent streams and page reads."""

    status = 429
    code = "too_many_requests"
    title = "Too many concurrent streams or page reads for this client; retry shortly"
    retryable = True
    retry_after: int | None = 1

    def __init__(self, detail: str | None = None, retry_after: float = 1) -> None:
        super().__init__(detail)
        self.retry_after = max(1, math.ceil(retry_after))


class TooManyJobs(TooManyRequests):
    code = "too_many_jobs"
    title = "Too many live jobs for this API key; wait for one to expire"


class RateLimited(TooManyRequests):
    code = "rate_limited"
    title = "Jobs are being created too fast; retry after the Retry-After delay"


class HeadersTooLarge(TraceError):
    status = 431
    code = "headers_too_large"
    title = "The request head is too large"


class Unavailable(TraceError):
    status = 503
    retryable = True
    retry_after: int | None = 1


class Draining(Unavailable):
    code = "draining"
    title = "The server is draining; retry on another replica"


class Overloaded(Unavailable):
    code = "overloaded"
    title = "The server is at its limit of connections, streams or page reads; retry shortly"


class StoreUnavailable(Unavailable):
    code = "store_unavailable"
    title = "The job store is unavailable; retry shortly"


class SourceUnavailable(Unavailable):
    code = "source_unavailable"
    title = "The trace database is unavailable; retry shortly"


# --- exports (svc/exports) -------------------------------------------------------------


class ExportNotFound(NotFound):
    code = "export_not_found"
    title = "No such export (it may have expired with its job)"


class ExportNotReady(TraceError):
    status = 409
    code = "export_not_ready"
    title = "The export is not finished; its status says when it is"


class RangeNotSatisfiable(TraceError):
    """Sent with ``Content-Range: bytes */SIZE``."""

    status = 416
    code = "range_not_satisfiable"
    title = "The requested range starts beyond the end of the file"

    def __init__(self, size: int) -> None:
        super().__init__(f"the file has {size} bytes")
        self.size = size


class TooManyExports(TooManyRequests):
    code = "too_many_exports"
    title = "This API key already has its share of exports queued or running; retry later"


class ExportStorageFull(TraceError):
    status = 507
    code = "export_storage_full"
    title = "The export disk budget is used up; wait for older exports to expire"
