"""The export record, kept in the job store so that every replica sees it (pure).

A record is written with optimistic concurrency: each write names the `version` it read
and stores `version + 1`; a write that finds another version changes nothing. The
runner that holds an export's lease (`worker`, `lease_until`) is the only writer while
the lease lasts, and it renews the lease with every checkpoint.
"""

from __future__ import annotations

import secrets
from typing import Literal

import msgspec

from svc.protocol import ExportFormat, ExportState

EXTENSIONS: dict[str, str] = {
    "ndjson.gz": "ndjson.gz",
    "csv.zip": "zip",
    "xlsx": "xlsx",
    "parquet": "parquet",
}
ACTIVE: tuple[ExportState, ...] = ("queued", "running")

# write: records are being appended; pack: every domain is written, the file is being
# finished (csv.zip: zipped); publish: the finished file is being moved into storage.
Stage = Literal["write", "pack", "publish"]


class Checkpoint(msgspec.Struct):
    """Where a writer goes on after a restart: everything before it is durable on disk."""

    stage: Stage = "write"
    domain: int = 0  # index in the job's domains
    since: str | None = None  # the position after the last batch written in `domain`
    bytes: int = 0  # length of the file being appended to at this checkpoint
    records: list[int] = msgspec.field(default_factory=list)  # per domain, written so far
    # the job's records digest (svc.core.digest) over what is written, in hex: its chain
    # goes on from here (a since token carries it too); None: not known (an older record)
    digest: str | None = None


class ExportRecord(msgspec.Struct):
    export_id: str
    job_id: str
    owner: str | None
    format: ExportFormat
    state: ExportState
    created_at: float
    updated_at: float
    expires_at: float  # the job's expiry when the export was made
    checkpoint: Checkpoint = msgspec.field(default_factory=Checkpoint)
    total: int | None = None
    size: int | None = None
    sha256: str | None = None
    digest: str | None = None  # the job's records digest (objects), once written whole
    error_code: str | None = None
    error: str | None = None
    worker: str | None = None  # who holds the lease
    lease_until: float = 0.0
    version: int = 0
    attempts: int = 0  # times a writer started on it
    domain: str | None = None  # the one domain exported; None: every domain of the job
    spreadsheet: bool = True  # CSV formats: a BOM and formula defusing (false: plain)

    @property
    def records(self) -> int:
        return sum(self.checkpoint.records)

    def domains_of(self, job_domains: list[str]) -> list[str]:
        """The domains this export writes, in the job's order."""
        return [self.domain] if self.domain is not None else list(job_domains)

    @property
    def file_name(self) -> str:
        """The finished file's name in storage."""
        return f"{self.job_id}/{self.export_id}.{EXTENSIONS[self.format]}"

    @property
    def download_name(self) -> str:
        """The name a browser saves the file under."""
        return f"trace-{self.job_id[:8]}-{self.export_id[:8]}.{EXTENSIONS[self.format]}"


def new_export_id() -> str:
    return secrets.token_urlsafe(12)


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(ExportRecord)


def dumps(record: ExportRecord) -> bytes:
    return _enc.encode(record)


def loads(blob: bytes) -> ExportRecord:
    return _dec.decode(blob)
