"""Settings: environment variables, each with a `serve` flag of the same meaning.

Each setting is declared once, as a field of `Settings` (`setting()`: its variable, parser
and help beside its name, type and default); `SETTINGS`, the CLI's flags and the README's
configuration reference are derived from those fields. Reading settings has no side
effect: the generated token secret is made at start-up (`svc.run.secret`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from svc.config.declare import Setting, declared, reference_table, setting
from svc.config.parsers import (
    boolean,
    csv_list,
    export_storage,
    gzip_level,
    log_format,
    non_negative,
    positive,
    seconds,
    snapshot_mode,
)

__all__ = ["SETTINGS", "Setting", "Settings", "reference_table"]


@dataclass(frozen=True)
class Settings:
    db_url: str | None = setting(
        None,
        env="TRACE_DB_URL",
        parse=str,
        help=(
            "sqlite:///path or oracle://user:password@host:port/service; unset: the demo "
            "database in the data directory, built if missing"
        ),
    )
    redis_url: str | None = setting(
        None,
        env="TRACE_REDIS_URL",
        parse=str,
        help="redis://host:port/db: share jobs between replicas; unset: embedded job store",
    )
    secrets: list[str] = setting(
        factory=list,
        env="TRACE_SECRET",
        parse=csv_list,
        help=(
            "token signing secrets, comma-separated: sign with the first, accept any "
            "(rotation); unset: one is generated in the data directory"
        ),
        flag="secret",
    )
    domains_file: str | None = setting(
        None,
        env="TRACE_DOMAINS",
        parse=str,
        help="TOML file mapping domains to tables and columns; unset: the demo schema",
        flag="domains",
    )
    batch_size: int = setting(
        5000, env="TRACE_STREAM_BATCH_SIZE", parse=positive, help="records per NDJSON records line"
    )
    job_ttl: int = setting(
        86400, env="TRACE_JOB_TTL_SECONDS", parse=positive, help="how long a job is kept"
    )
    job_ttl_refresh: bool = setting(
        False,
        env="TRACE_JOB_TTL_REFRESH",
        parse=boolean,
        help="extend a job's TTL whenever it is read",
    )
    max_cids: int = setting(
        120_000, env="TRACE_MAX_CIDS", parse=positive, help="most container ids a job may hold"
    )
    max_page_limit: int = setting(
        50_000, env="TRACE_MAX_PAGE_LIMIT", parse=positive, help="largest `limit` of a REST page"
    )
    api_keys: list[str] = setting(
        factory=list,
        env="TRACE_API_KEYS",
        parse=csv_list,
        help=(
            "comma-separated API keys; when set, /api needs `Authorization: Bearer KEY` and "
            "jobs are visible to their creator's key only"
        ),
    )
    data_dir: Path = setting(
        Path(".trace-data"),
        env="TRACE_DATA_DIR",
        parse=Path,
        help="embedded job store, demo database and generated secret",
    )
    redis_prefix: str = setting(
        "trace:", env="TRACE_REDIS_PREFIX", parse=str, help="key prefix of jobs in Redis"
    )
    demo_cids: int = setting(
        20_000,
        env="TRACE_DEMO_CIDS",
        parse=positive,
        help="CIDs of the demo database built when none exists",
    )
    oracle_pool_min: int = setting(
        4,
        env="TRACE_ORACLE_POOL_MIN",
        parse=positive,
        help="Oracle: connections the pool opens on first use and keeps",
    )
    oracle_pool_max: int = setting(
        4,
        env="TRACE_ORACLE_POOL_MAX",
        parse=positive,
        help=(
            "Oracle: most pooled connections; equal to the minimum (a fixed-size pool) is "
            "recommended"
        ),
    )
    oracle_pool_increment: int = setting(
        1,
        env="TRACE_ORACLE_POOL_INCREMENT",
        parse=positive,
        help="Oracle: connections opened at a time when the pool grows",
    )
    oracle_pool_wait_ms: int = setting(
        5000,
        env="TRACE_ORACLE_POOL_WAIT_MS",
        parse=positive,
        help=(
            "Oracle: how long a query waits for a free pooled connection before failing "
            "with source_unavailable"
        ),
    )
    oracle_call_timeout_ms: int = setting(
        30_000,
        env="TRACE_ORACLE_CALL_TIMEOUT_MS",
        parse=positive,
        help="Oracle: most time one database round trip may take",
    )
    oracle_snapshot: str | None = setting(
        None,
        env="TRACE_ORACLE_SNAPSHOT",
        parse=snapshot_mode,
        help=(
            "Oracle: `scn` makes every job read AS OF the SCN of its creation, so resumed "
            "streams see the same data (needs grants and undo retention); unset or `off`: "
            "each page reads the latest committed data"
        ),
    )
    # --- load: admission, slow readers, liveness, browsers ---
    max_streams: int = setting(
        64,
        env="TRACE_MAX_STREAMS",
        parse=positive,
        help=("most concurrent streams and page reads of this process; more get 503 overloaded"),
    )
    max_streams_per_client: int = setting(
        8,
        env="TRACE_MAX_STREAMS_PER_CLIENT",
        parse=positive,
        help=(
            "most concurrent streams and page reads of one API key (or one address when "
            "keys are off); more get 429 too_many_requests"
        ),
    )
    slow_reader_seconds: float = setting(
        60.0,
        env="TRACE_SLOW_READER_SECONDS",
        parse=seconds,
        help=(
            "a stream whose last batch has not drained to its client within this time is "
            "ended (the client resumes); 0 waits forever"
        ),
    )
    heartbeat_seconds: float = setting(
        15.0,
        env="TRACE_HEARTBEAT_SECONDS",
        parse=seconds,
        help=(
            "a stream silent this long writes a heartbeat line (keeps proxies from cutting "
            "a slow query); 0 turns heartbeats off"
        ),
    )
    cors_origins: list[str] = setting(
        factory=list,
        env="TRACE_CORS_ORIGINS",
        parse=csv_list,
        help=("comma-separated origins whose browser pages may call the API (CORS); unset: none"),
    )
    metrics_public: bool = setting(
        False,
        env="TRACE_METRICS_PUBLIC",
        parse=boolean,
        help="serve /metrics without an API key even when keys are on",
    )
    # --- job store limits (docs/limits.md "Job store") ---
    job_purge_seconds: int = setting(
        60,
        env="TRACE_JOB_PURGE_SECONDS",
        parse=positive,
        help=(
            "how often expired jobs are deleted from the embedded job store and its file "
            "space reclaimed (Redis expires them itself)"
        ),
    )
    max_jobs_per_key: int = setting(
        200,
        env="TRACE_MAX_JOBS_PER_KEY",
        parse=non_negative,
        help=(
            "most live jobs one API key may hold (with keys off: all jobs together); 0: no limit"
        ),
    )
    job_create_rate: int = setting(
        60,
        env="TRACE_JOB_CREATE_RATE",
        parse=non_negative,
        help=(
            "jobs per minute one API key (with keys off: one client address) may create, "
            "counted per replica; 0: no limit"
        ),
    )
    job_create_burst: int = setting(
        10,
        env="TRACE_JOB_CREATE_BURST",
        parse=positive,
        help=("jobs a key or address may create in a burst before TRACE_JOB_CREATE_RATE applies"),
    )
    # --- the HTTP server: limits and timeouts (docs/limits.md "HTTP server") ---
    max_header_bytes: int = setting(
        16384,
        env="TRACE_MAX_HEADER_BYTES",
        parse=positive,
        help=(
            "largest request head (request line and headers) in bytes; a larger one is "
            "answered 431 headers_too_large and the connection closed"
        ),
    )
    header_timeout: int = setting(
        10,
        env="TRACE_HEADER_TIMEOUT_SECONDS",
        parse=positive,
        help=(
            "seconds a connection has to deliver a complete request head, from connecting "
            "or from the end of its previous response; then 408 request_timeout and close"
        ),
    )
    body_timeout: int = setting(
        30,
        env="TRACE_BODY_TIMEOUT_SECONDS",
        parse=positive,
        help=("seconds a request body has to arrive in full; then 408 request_timeout and close"),
    )
    keepalive: int = setting(
        5,
        env="TRACE_KEEPALIVE_SECONDS",
        parse=positive,
        help="seconds an idle keep-alive connection stays open after a response",
    )
    max_connections: int = setting(
        1000,
        env="TRACE_MAX_CONNECTIONS",
        parse=positive,
        help=(
            "most open HTTP connections; a request on a connection beyond them is answered "
            "503 overloaded and the connection closed"
        ),
    )
    # --- exports (svc/exports, README "Exports") ---
    exports_dir: Path | None = setting(
        None,
        env="TRACE_EXPORTS_DIR",
        parse=Path,
        help=(
            "where export files are written (and, with local storage, kept); unset: "
            "`exports` in the data directory"
        ),
    )  # None: data_dir / "exports"
    export_storage: str = setting(
        "local",
        env="TRACE_EXPORT_STORAGE",
        parse=export_storage,
        help=(
            "`local` (files in TRACE_EXPORTS_DIR) or `s3://bucket[/prefix]` (S3-compatible "
            "object storage, credentials and endpoint from the standard AWS_* variables; "
            "downloads redirect to a pre-signed URL)"
        ),
    )
    exports_per_key: int = setting(
        2,
        env="TRACE_EXPORTS_PER_KEY",
        parse=positive,
        help=(
            "most exports one API key (with keys off: all clients together) may have queued "
            "or running; more get 429 too_many_exports"
        ),
    )
    export_disk_budget_mb: int = setting(
        10240,
        env="TRACE_EXPORT_DISK_BUDGET_MB",
        parse=positive,
        help=(
            "most MiB the files in TRACE_EXPORTS_DIR (finished and being written) may take; "
            "beyond it new exports get 507 export_storage_full and running ones fail with "
            "it"
        ),
    )
    export_url_seconds: int = setting(
        900,
        env="TRACE_EXPORT_URL_SECONDS",
        parse=positive,
        help="S3 storage: how long a pre-signed download URL stays valid",
    )
    export_workers: int = setting(
        2,
        env="TRACE_EXPORT_WORKERS",
        parse=positive,
        help="exports this process writes at once; the rest wait queued",
    )
    # --- logs (svc/logs.py) ---
    log_format: str | None = setting(
        None,
        env="TRACE_LOG_FORMAT",
        parse=log_format,
        help=(
            "`json` (one object a line) or `text` (for people); unset: text when stderr is "
            "a terminal, else json"
        ),
    )  # None: text on a terminal, else json
    # --- compression, worker processes and SQLite's threads ---
    gzip_level: int = setting(
        1,
        env="TRACE_GZIP",
        parse=gzip_level,
        help=(
            "gzip level (1-9) of streams and result pages for clients that send "
            "`Accept-Encoding: gzip`, each stream line flushed as written; `off`: never "
            "compress"
        ),
        flag="gzip",
    )  # 0: off; why level 1: (docs/benchmarks.md#compression)
    workers: int = setting(
        1,
        env="TRACE_WORKERS",
        parse=positive,
        help=(
            "worker processes serving the one port (to use several cores); "
            "TRACE_MAX_STREAMS, TRACE_MAX_STREAMS_PER_CLIENT, TRACE_JOB_CREATE_RATE, "
            "TRACE_EXPORT_WORKERS and the Oracle pool apply to each worker"
        ),
    )
    sqlite_read_threads: int = setting(
        1,
        env="TRACE_SQLITE_READ_THREADS",
        parse=positive,
        help=(
            "SQLite: threads that read pages as rows (CSV, REST pages); one serves "
            "concurrent streams fastest (the driver takes the interpreter lock at every "
            "row, and several reading threads queue on it)"
        ),
    )
    sqlite_json_threads: int = setting(
        2,
        env="TRACE_SQLITE_JSON_THREADS",
        parse=positive,
        help=(
            "SQLite: threads that build NDJSON streams' pages as JSON in the database; they "
            "hold the interpreter lock only to hand a page over, so two use two cores"
        ),
    )
    sqlite_mmap_mb: int = setting(
        0,
        env="TRACE_SQLITE_MMAP_MB",
        parse=non_negative,
        help=(
            "SQLite: bytes of the database file each connection reads through memory maps, "
            "in MB (0: none, every page read is a system call); faster, but RSS then counts "
            "the mapped file once per connection (docs/benchmarks.md)"
        ),
    )
    database_json: bool = setting(
        True,
        env="TRACE_DATABASE_JSON",
        parse=boolean,
        help=(
            "SQLite: the database builds the records of NDJSON streams as JSON, read ahead "
            "on TRACE_SQLITE_JSON_THREADS (off: rows encoded by the service, one page at a "
            "time)"
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
