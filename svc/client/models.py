"""Typed answers of the client (msgspec Structs); pages are `svc.protocol.Page`."""

from __future__ import annotations

from typing import Any

import msgspec


class DomainCount(msgspec.Struct, frozen=True):
    records: int
    containers: int


class Job(msgspec.Struct, frozen=True):
    """A job as the service describes it; `totals` fill in once the domains are counted."""

    job_id: str
    cid_count: int
    domains: list[str]
    expires_at: str
    created_at: str | None = None
    snapshot: Any = None
    totals: dict[str, DomainCount] = {}
    links: dict[str, str] = {}
    where: dict[str, dict[str, Any]] | None = None  # the job's filters, as the service keeps them
    select: dict[str, list[str]] | None = None  # the job's columns per domain; None: all


class Batch(msgspec.Struct, frozen=True):
    """One `format=arrays` records line: rows in `columns` order. `since` resumes after it."""

    domain: str
    batch: int
    columns: list[str]
    rows: list[list[Any]]
    since: str


job_decoder = msgspec.json.Decoder(Job)
