"""Python client of the trace-stream service (httpx): streams that resume by themselves,
`format=arrays` batches with checkpoints, REST paging. Needs only httpx and msgspec.
Every stream's and page walk's records digest is checked (`DigestMismatch`); a job that
has expired under a token is final (`JobExpired`, with the job id and the last `since`).

    with TraceClient("http://127.0.0.1:8000") as client:
        job = client.create_job(cids)
        for domain, record in client.iter_records(job.job_id):
            ...
"""

from svc.client._async import AsyncTraceClient
from svc.client._resume import Retry
from svc.client._sync import TraceClient
from svc.client.errors import (
    DigestMismatch,
    JobExpired,
    ProblemError,
    RetriesExhausted,
    StreamError,
    TraceClientError,
)
from svc.client.models import Batch, DomainCount, Job
from svc.protocol import Line, Page

__all__ = [
    "AsyncTraceClient",
    "Batch",
    "DigestMismatch",
    "DomainCount",
    "Job",
    "JobExpired",
    "Line",
    "Page",
    "ProblemError",
    "Retry",
    "RetriesExhausted",
    "StreamError",
    "TraceClient",
    "TraceClientError",
]
