"""Settings: environment variables, each with a `serve` flag of the same meaning.

Each setting is declared once, as a field of `Settings` (`setting()`: its variable, parser
and help beside its name, type and default); `SETTINGS`, the CLI's flags and the table of
docs/configuration.md are derived from those fields. Reading settings has no side
effect: the generated token secret is made at start-up (`svc.run.secret`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from svc.config import parsers as parse
from svc.config.declare import Setting, declared, reference_table, setting

__all__ = ["SETTINGS", "Setting", "Settings", "reference_table"]


@dataclass(frozen=True)
class Settings:
    """Every setting: `setting(variable, parser, default, help)`, its flag `--name-of-field`
    unless `flag=` names it. docs/configuration.md's table follows this order."""

    db_url: str | None = setting(
        "TRACE_DB_URL",
        str,
        None,
        (
            "sqlite:///path or oracle://user:password@host:port/service; unset: the demo database "
            "in the data directory, built if missing"
        ),
    )
    redis_url: str | None = setting(
        "TRACE_REDIS_URL",
        str,
        None,
        "redis://host:port/db: share jobs between replicas; unset: embedded job store",
    )
    secrets: list[str] = setting(
        "TRACE_SECRET",
        parse.csv_list,
        [],
        (
            "token signing secrets, comma-separated: sign with the first, accept any (rotation); "
            "unset: one is generated in the data directory"
        ),
        flag="secret",
    )
    domains_file: str | None = setting(
        "TRACE_DOMAINS",
        str,
        None,
        "TOML file mapping domains to tables and columns; unset: the demo schema",
        flag="domains",
    )
    batch_size: int = setting(
        "TRACE_STREAM_BATCH_SIZE",
        parse.positive,
        5000,
        "records per NDJSON records line",
    )
    job_ttl: int = setting(
        "TRACE_JOB_TTL_SECONDS",
        parse.positive,
        86400,
        "how long a job is kept",
    )
    job_ttl_refresh: bool = setting(
        "TRACE_JOB_TTL_REFRESH",
        parse.boolean,
        False,
        "extend a job's TTL whenever it is read",
    )
    max_cids: int = setting(
        "TRACE_MAX_CIDS",
        parse.positive,
        120_000,
        "most container ids a job may hold",
    )
    max_page_limit: int = setting(
        "TRACE_MAX_PAGE_LIMIT",
        parse.positive,
        50_000,
        "largest `limit` of a REST page",
    )
    api_keys: list[str] = setting(
        "TRACE_API_KEYS",
        parse.csv_list,
        [],
        (
            "comma-separated API keys; when set, /api needs `Authorization: Bearer KEY` and jobs "
            "are visible to their creator's key only"
        ),
    )
    data_dir: Path = setting(
        "TRACE_DATA_DIR",
        Path,
        Path(".trace-data"),
        "embedded job store, demo database and generated secret",
    )
    redis_prefix: str = setting(
        "TRACE_REDIS_PREFIX",
        str,
        "trace:",
        "key prefix of jobs in Redis",
    )
    demo_cids: int = setting(
        "TRACE_DEMO_CIDS",
        parse.positive,
        20_000,
        "CIDs of the demo database built when none exists",
    )
    oracle_pool_min: int = setting(
        "TRACE_ORACLE_POOL_MIN",
        parse.positive,
        4,
        "Oracle: connections the pool opens on first use and keeps",
    )
    oracle_pool_max: int = setting(
        "TRACE_ORACLE_POOL_MAX",
        parse.positive,
        4,
        (
            "Oracle: most pooled connections; equal to the minimum (a fixed-size pool) is "
            "recommended"
        ),
    )
    oracle_pool_increment: int = setting(
        "TRACE_ORACLE_POOL_INCREMENT",
        parse.positive,
        1,
        "Oracle: connections opened at a time when the pool grows",
    )
    oracle_pool_wait_ms: int = setting(
        "TRACE_ORACLE_POOL_WAIT_MS",
        parse.positive,
        5000,
        (
            "Oracle: how long a query waits for a free pooled connection before failing with "
            "source_unavailable"
        ),
    )
    oracle_call_timeout_ms: int = setting(
        "TRACE_ORACLE_CALL_TIMEOUT_MS",
        parse.positive,
        30_000,
        "Oracle: most time one database round trip may take",
    )
    oracle_snapshot: str | None = setting(
        "TRACE_ORACLE_SNAPSHOT",
        parse.snapshot_mode,
        None,
        (
            "Oracle: `scn` makes every job read AS OF the SCN of its creation, so resumed streams "
            "see the same data (needs grants and undo retention); unset or `off`: each page reads "
            "the latest committed data"
        ),
    )
    # --- load: admission, slow readers, liveness, browsers ---
    max_streams: int = setting(
        "TRACE_MAX_STREAMS",
        parse.positive,
        64,
        "most concurrent streams and page reads of this process; more get 503 overloaded",
    )
    max_streams_per_client: int = setting(
        "TRACE_MAX_STREAMS_PER_CLIENT",
        parse.positive,
        8,
        (
            "most concurrent streams and page reads of one API key (or one address when keys are "
            "off); more get 429 too_many_requests"
        ),
    )
    slow_reader_seconds: float = setting(
        "TRACE_SLOW_READER_SECONDS",
        parse.seconds,
        60.0,
        (
            "a stream whose last batch has not drained to its client within this time is ended "
            "(the client resumes); 0 waits forever"
        ),
    )
    heartbeat_seconds: float = setting(
        "TRACE_HEARTBEAT_SECONDS",
        parse.seconds,
        15.0,
        (
            "a stream silent this long writes a heartbeat line (keeps proxies from cutting a slow "
            "query); 0 turns heartbeats off"
        ),
    )
    cors_origins: list[str] = setting(
        "TRACE_CORS_ORIGINS",
        parse.csv_list,
        [],
        "comma-separated origins whose browser pages may call the API (CORS); unset: none",
    )
    metrics_public: bool = setting(
        "TRACE_METRICS_PUBLIC",
        parse.boolean,
        False,
        "serve /metrics without an API key even when keys are on",
    )
    # --- job store limits (docs/limits.md "Job store") ---
    job_purge_seconds: int = setting(
        "TRACE_JOB_PURGE_SECONDS",
        parse.positive,
        60,
        (
            "how often expired jobs are deleted from the embedded job store and its file space "
            "reclaimed (Redis expires them itself)"
        ),
    )
    max_jobs_per_key: int = setting(
        "TRACE_MAX_JOBS_PER_KEY",
        parse.non_negative,
        200,
        "most live jobs one API key (with keys off: one address) may hold; 0: no limit",
    )
    job_create_rate: int = setting(
        "TRACE_JOB_CREATE_RATE",
        parse.non_negative,
        60,
        (
            "jobs per minute one API key (with keys off: one client address) may create, counted "
            "in Redis for all replicas (with the embedded store: per process); 0: no limit"
        ),
    )
    job_create_burst: int = setting(
        "TRACE_JOB_CREATE_BURST",
        parse.positive,
        10,
        "jobs a key or address may create in a burst before TRACE_JOB_CREATE_RATE applies",
    )
    # --- the HTTP server: limits and timeouts (docs/limits.md "HTTP server") ---
    forwarded_allow_ips: str | None = setting(
        "TRACE_FORWARDED_ALLOW_IPS",
        str,
        None,
        "proxies (addresses, networks or `*`) trusted for X-Forwarded-For; unset: 127.0.0.1",
    )
    max_header_bytes: int = setting(
        "TRACE_MAX_HEADER_BYTES",
        parse.positive,
        16384,
        (
            "largest request head (request line and headers) in bytes; a larger one is answered "
            "431 headers_too_large and the connection closed"
        ),
    )
    header_timeout: int = setting(
        "TRACE_HEADER_TIMEOUT_SECONDS",
        parse.positive,
        10,
        (
            "seconds a connection has to deliver a complete request head, from connecting or from "
            "the end of its previous response; then 408 request_timeout and close"
        ),
    )
    body_timeout: int = setting(
        "TRACE_BODY_TIMEOUT_SECONDS",
        parse.positive,
        30,
        "seconds a request body has to arrive in full; then 408 request_timeout and close",
    )
    keepalive: int = setting(
        "TRACE_KEEPALIVE_SECONDS",
        parse.positive,
        5,
        "seconds an idle keep-alive connection stays open after a response",
    )
    max_connections: int = setting(
        "TRACE_MAX_CONNECTIONS",
        parse.positive,
        1000,
        (
            "most open HTTP connections; a request on a connection beyond them is answered 503 "
            "overloaded and the connection closed"
        ),
    )
    # --- exports (svc/exports, docs/usage.md "Exports") ---
    exports_dir: Path | None = setting(
        "TRACE_EXPORTS_DIR",
        Path,
        None,
        (
            "where export files are written (and, with local storage, kept); unset: `exports` in "
            "the data directory"
        ),
    )  # None: data_dir / "exports"
    export_storage: str = setting(
        "TRACE_EXPORT_STORAGE",
        parse.export_storage,
        "local",
        (
            "`local` (files in TRACE_EXPORTS_DIR) or `s3://bucket[/prefix]` (S3-compatible object "
            "storage, credentials and endpoint from the standard AWS_* variables; downloads "
            "redirect to a pre-signed URL)"
        ),
    )
    exports_per_key: int = setting(
        "TRACE_EXPORTS_PER_KEY",
        parse.positive,
        2,
        (
            "most exports one API key (with keys off: one client address) may have queued or "
            "running; more get 429 too_many_exports"
        ),
    )
    export_lease_seconds: int = setting(
        "TRACE_EXPORT_LEASE_SECONDS",
        parse.positive,
        10,
        "export writers' lease, renewed (and dead writers sought) every third of it",
    )
    export_disk_budget_mb: int = setting(
        "TRACE_EXPORT_DISK_BUDGET_MB",
        parse.positive,
        10240,
        (
            "most MiB the files in TRACE_EXPORTS_DIR (finished and being written) may take; "
            "beyond it new exports get 507 export_storage_full and running ones fail with it"
        ),
    )
    export_url_seconds: int = setting(
        "TRACE_EXPORT_URL_SECONDS",
        parse.positive,
        900,
        "S3 storage: how long a pre-signed download URL stays valid",
    )
    export_workers: int = setting(
        "TRACE_EXPORT_WORKERS",
        parse.positive,
        2,
        "exports this process writes at once; the rest wait queued",
    )
    # --- logs (svc/logs.py) ---
    log_format: str | None = setting(
        "TRACE_LOG_FORMAT",
        parse.log_format,
        None,
        (
            "`json` (one object a line) or `text` (for people); unset: text when stderr is a "
            "terminal, else json"
        ),
    )  # None: text on a terminal, else json
    # --- compression, worker processes and SQLite's threads ---
    gzip_level: int = setting(
        "TRACE_GZIP",
        parse.gzip_level,
        1,
        (
            "gzip level (1-9) of streams and result pages for clients that send `Accept-Encoding: "
            "gzip`, each stream line flushed as written; `off`: never compress"
        ),
        flag="gzip",
    )  # 0: off; why level 1: (docs/benchmarks.md#compression)
    workers: int = setting(
        "TRACE_WORKERS",
        parse.positive,
        1,
        (
            "worker processes serving the one port (to use several cores); TRACE_MAX_STREAMS, "
            "TRACE_MAX_STREAMS_PER_CLIENT, TRACE_JOB_CREATE_RATE, TRACE_EXPORT_WORKERS and the "
            "Oracle pool apply to each worker"
        ),
    )
    sqlite_read_threads: int = setting(
        "TRACE_SQLITE_READ_THREADS",
        parse.positive,
        1,
        (
            "SQLite: threads that read pages as rows (CSV, REST pages); one serves concurrent "
            "streams fastest (the driver takes the interpreter lock at every row, and several "
            "reading threads queue on it)"
        ),
    )
    sqlite_json_threads: int = setting(
        "TRACE_SQLITE_JSON_THREADS",
        parse.positive,
        2,
        (
            "SQLite: threads that build NDJSON streams' pages as JSON in the database; they hold "
            "the interpreter lock only to hand a page over, so two use two cores"
        ),
    )
    sqlite_mmap_mb: int = setting(
        "TRACE_SQLITE_MMAP_MB",
        parse.non_negative,
        1024,
        (
            "SQLite: MB of the database file that the connections building JSON pages read "
            "through memory maps (0: none, every page read is a system call and a copy); RSS "
            "counts the mapped pages once per such connection, as shared file cache "
            "(docs/benchmarks.md#memory-maps)"
        ),
    )
    max_aggregations: int = setting(
        "TRACE_MAX_AGGREGATIONS",
        parse.positive,
        2,
        (
            "aggregation computations running at once in this process (one domain of one job "
            "each); more wait in line, and one nobody waits for any more is cancelled"
        ),
    )
    database_json: bool = setting(
        "TRACE_DATABASE_JSON",
        parse.boolean,
        True,
        (
            "SQLite: the database builds the records of NDJSON streams as JSON, read ahead on "
            "TRACE_SQLITE_JSON_THREADS (off: rows encoded by the service, one page read ahead)"
        ),
    )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from the environment; `overrides` (from flags) win when not None."""
        env = os.environ if environ is None else environ
        values = {s.attr: s.read(raw, s.env) for s in SETTINGS if (raw := env.get(s.env))}
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"no such setting: {', '.join(sorted(unknown))}")
        return cls(**values)

    @property
    def exports_path(self) -> Path:
        return self.exports_dir or self.data_dir / "exports"

    @property
    def demo_db_path(self) -> Path:
        return self.data_dir / "demo.sqlite3"

    @property
    def secret_path(self) -> Path:
        """Where the token secret is generated when none is configured (at start-up)."""
        return self.data_dir / "secret"

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.demo_db_path.resolve()}"


SETTINGS: tuple[Setting, ...] = declared(Settings)
