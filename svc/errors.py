"""The service's one exception tree; `svc.app` maps it to responses in one place.

    TraceError                       500 internal
    ├── BadRequest                   400 invalid_request
    │   ├── InvalidToken             400 invalid_token
    │   ├── TokenJobMismatch         400 token_job_mismatch
    │   ├── UnknownDomain            400 unknown_domain
    │   └── TooManyCids              400 too_many_cids
    ├── PayloadTooLarge              413 payload_too_large
    ├── Unauthorized                 401 unauthorized
    ├── JobNotFound                  404 job_not_found
    ├── SnapshotTooOld               410 snapshot_too_old
    └── Unavailable                  503 (retryable, sent with Retry-After)
        ├── StoreUnavailable         503 store_unavailable
        └── SourceUnavailable        503 source_unavailable

Driver errors (sqlite3, oracledb, redis) are translated into these at the boundary of
each source and job store and re-raised ``from exc``; their text never reaches a client.
A message given to a TraceError is written for the client and must hold no secret.
"""

from __future__ import annotations


class TraceError(Exception):
    status = 500
    code = "internal"
    title = "Internal error"
    retryable = False

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


class PayloadTooLarge(TraceError):
    status = 413
    code = "payload_too_large"
    title = "The request body is too large"


class Unauthorized(TraceError):
    status = 401
    code = "unauthorized"
    title = "A valid API key is required"


class JobNotFound(TraceError):
    status = 404
    code = "job_not_found"
    title = "No such job (it may have expired)"


class SnapshotTooOld(TraceError):
    status = 410
    code = "snapshot_too_old"
    title = "The job's snapshot is no longer available in the database's undo; create a new job"


class Unavailable(TraceError):
    status = 503
    retryable = True
    retry_after = 1


class StoreUnavailable(Unavailable):
    code = "store_unavailable"
    title = "The job store is unavailable; retry shortly"


class SourceUnavailable(Unavailable):
    code = "source_unavailable"
    title = "The trace database is unavailable; retry shortly"
