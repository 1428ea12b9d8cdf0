"""Settings: environment variables, each with a `serve` flag of the same meaning.

`SETTINGS` is the one table of them; the CLI and the README's configuration reference
are built from it, so a setting cannot be documented in one place and missing in another.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise ValueError("must be a positive integer")
    return n


def _seconds(value: str) -> float:
    n = float(value)
    if not n >= 0:
        raise ValueError("must be a number of seconds, 0 or more")
    return n


def _non_negative(value: str) -> int:
    n = int(value)
    if n < 0:
        raise ValueError("must be 0 or a positive integer")
    return n


def _snapshot_mode(value: str) -> str | None:
    if value.lower() == "scn":
        return "scn"
    if value.lower() in {"off", "none", ""}:
        return None
    raise ValueError("must be scn or off")


def _flag(value: str) -> bool:
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError("must be true or false")


def _gzip_level(value: str) -> int:
    if value.lower() in {"off", "0", "false", "no"}:
        return 0
    if value in {"1", "2", "3", "4", "5", "6", "7", "8", "9"}:
        return int(value)
    raise ValueError("must be off or a level from 1 to 9")


def _export_storage(value: str) -> str:
    if value == "local" or (value.startswith("s3://") and len(value.split("/")[2]) > 0):
        return value.rstrip("/") if value != "local" else value
    raise ValueError("must be local or s3://bucket[/prefix]")


def _log_format(value: str) -> str:
    if value.lower() in {"json", "text"}:
        return value.lower()
    raise ValueError("must be json or text")


@dataclass(frozen=True)
class Setting:
    attr: str
    env: str
    parse: Callable[[str], Any]
    help: str
    flag_name: str | None = None  # when the flag is not the attribute's name

    @property
    def flag(self) -> str:
        return "--" + (self.flag_name or self.attr.replace("_", "-"))

    @property
    def default(self) -> Any:
        """The default, read from `Settings`: the one place defaults are written."""
        f = next(f for f in fields(Settings) if f.name == self.attr)
        return f.default_factory() if f.default_factory is not MISSING else f.default

    @property
    def doc(self) -> str:
        """The help text with its default, as the CLI and the README show it."""
        default = self.default
        if default is None or default == []:
            return self.help
        if isinstance(default, bool):
            default = str(default).lower()
        return f"{self.help} (default {default})"


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "db_url",
        "TRACE_DB_URL",
        str,
        "sqlite:///path or oracle://user:password@host:port/service; "
        "unset: the demo database in the data directory, built if missing",
    ),
    Setting(
        "redis_url",
        "TRACE_REDIS_URL",
        str,
        "redis://host:port/db: share jobs between replicas; unset: embedded job store",
    ),
    Setting(
        "secrets",
        "TRACE_SECRET",
        _csv,
        "token signing secrets, comma-separated: sign with the first, accept any "
        "(rotation); unset: one is generated in the data directory",
        flag_name="secret",
    ),
    Setting(
        "domains_file",
        "TRACE_DOMAINS",
        str,
        "TOML file mapping domains to tables and columns; unset: the demo schema",
        flag_name="domains",
    ),
    Setting(
        "batch_size",
        "TRACE_STREAM_BATCH_SIZE",
        _positive,
        "records per NDJSON records line",
    ),
    Setting("job_ttl", "TRACE_JOB_TTL_SECONDS", _positive, "how long a job is kept"),
    Setting(
        "job_ttl_refresh",
        "TRACE_JOB_TTL_REFRESH",
        _flag,
        "extend a job's TTL whenever it is read",
    ),
    Setting(
        "max_cids",
        "TRACE_MAX_CIDS",
        _positive,
        "most container ids a job may hold",
    ),
    Setting(
        "max_page_limit",
        "TRACE_MAX_PAGE_LIMIT",
        _positive,
        "largest `limit` of a REST page",
    ),
    Setting(
        "api_keys",
        "TRACE_API_KEYS",
        _csv,
        "comma-separated API keys; when set, /api needs `Authorization: Bearer KEY` "
        "and jobs are visible to their creator's key only",
    ),
    Setting(
        "data_dir",
        "TRACE_DATA_DIR",
        Path,
        "embedded job store, demo database and generated secret",
    ),
    Setting("redis_prefix", "TRACE_REDIS_PREFIX", str, "key prefix of jobs in Redis"),
    Setting(
        "demo_cids",
        "TRACE_DEMO_CIDS",
        _positive,
        "CIDs of the demo database built when none exists",
    ),
    Setting(
        "oracle_pool_min",
        "TRACE_ORACLE_POOL_MIN",
        _positive,
        "Oracle: connections the pool opens on first use and keeps",
    ),
    Setting(
        "oracle_pool_max",
        "TRACE_ORACLE_POOL_MAX",
        _positive,
        "Oracle: most pooled connections; equal to the minimum (a fixed-size pool) is recommended",
    ),
    Setting(
        "oracle_pool_increment",
        "TRACE_ORACLE_POOL_INCREMENT",
        _positive,
        "Oracle: connections opened at a time when the pool grows",
    ),
    Setting(
        "oracle_pool_wait_ms",
        "TRACE_ORACLE_POOL_WAIT_MS",
        _positive,
        "Oracle: how long a query waits for a free pooled connection before failing "
        "with source_unavailable",
    ),
    Setting(
        "oracle_call_timeout_ms",
        "TRACE_ORACLE_CALL_TIMEOUT_MS",
        _positive,
        "Oracle: most time one database round trip may take",
    ),
    Setting(
        "oracle_snapshot",
        "TRACE_ORACLE_SNAPSHOT",
        _snapshot_mode,
        "Oracle: `scn` makes every job read AS OF the SCN of its creation, so resumed "
        "streams see the same data (needs grants and undo retention); unset or `off`: "
        "each page reads the latest committed data",
    ),
    # --- load: admission, slow readers, liveness, browsers ---------------------------
    Setting(
        "max_streams",
        "TRACE_MAX_STREAMS",
        _positive,
        "most concurrent streams and page reads of this process; more get 503 overloaded",
    ),
    Setting(
        "max_streams_per_client",
        "TRACE_MAX_STREAMS_PER_CLIENT",
        _positive,
        "most concurrent streams and page reads of one API key (or one address when keys "
        "are off); more get 429 too_many_requests",
    ),
    Setting(
        "slow_reader_seconds",
        "TRACE_SLOW_READER_SECONDS",
        _seconds,
        "a stream whose last batch has not drained to its client within this time is "
        "ended (the client resumes); 0 waits forever",
    ),
    Setting(
        "heartbeat_seconds",
        "TRACE_HEARTBEAT_SECONDS",
        _seconds,
        "a stream silent this long writes a heartbeat line (keeps proxies from cutting a "
        "slow query); 0 turns heartbeats off",
    ),
    Setting(
        "cors_origins",
        "TRACE_CORS_ORIGINS",
        _csv,
        "comma-separated origins whose browser pages may call the API (CORS); unset: none",
    ),
    Setting(
        "metrics_public",
        "TRACE_METRICS_PUBLIC",
        _flag,
        "serve /metrics without an API key even when keys are on",
    ),
    # -- job store limits (docs/limits.md "Job store") --
    Setting(
        "job_purge_seconds",
        "TRACE_JOB_PURGE_SECONDS",
        _positive,
        "how often expired jobs are deleted from the embedded job store and its file "
        "space reclaimed (Redis expires them itself)",
    ),
    Setting(
        "max_jobs_per_key",
        "TRACE_MAX_JOBS_PER_KEY",
        _non_negative,
        "most live jobs one API key may hold (with keys off: all jobs together); 0: no limit",
    ),
    Setting(
        "job_create_rate",
        "TRACE_JOB_CREATE_RATE",
        _non_negative,
        "jobs per minute one API key (with keys off: one client address) may create, "
        "counted per replica; 0: no limit",
    ),
    Setting(
        "job_create_burst",
        "TRACE_JOB_CREATE_BURST",
        _positive,
        "jobs a key or address may create in a burst before TRACE_JOB_CREATE_RATE applies",
    ),
    # --- the HTTP server: limits and timeouts (docs/limits.md "HTTP server") -----
    Setting(
        "max_header_bytes",
        "TRACE_MAX_HEADER_BYTES",
        _positive,
        "largest request head (request line and headers) in bytes; a larger one is "
        "answered 431 headers_too_large and the connection closed",
    ),
    Setting(
        "header_timeout",
        "TRACE_HEADER_TIMEOUT_SECONDS",
        _positive,
        "seconds a connection has to deliver a complete request head, from connecting or "
        "from the end of its previous response; then 408 request_timeout and close",
    ),
    Setting(
        "body_timeout",
        "TRACE_BODY_TIMEOUT_SECONDS",
        _positive,
        "seconds a request body has to arrive in full; then 408 request_timeout and close",
    ),
    Setting(
        "keepalive",
        "TRACE_KEEPALIVE_SECONDS",
        _positive,
        "seconds an idle keep-alive connection stays open after a response",
    ),
    Setting(
        "max_connections",
        "TRACE_MAX_CONNECTIONS",
        _positive,
        "most open HTTP connections; a request on a connection beyond them is answered "
        "503 overloaded and the connection closed",
    ),
    # --- exports (svc/exports, README "Exports") ---
    Setting(
        "exports_dir",
        "TRACE_EXPORTS_DIR",
        Path,
        "where export files are written (and, with local storage, kept); unset: "
        "`exports` in the data directory",
    ),
    Setting(
        "export_storage",
        "TRACE_EXPORT_STORAGE",
        _export_storage,
        "`local` (files in TRACE_EXPORTS_DIR) or `s3://bucket[/prefix]` (S3-compatible "
        "object storage, credentials and endpoint from the standard AWS_* variables; "
        "downloads redirect to a pre-signed URL)",
    ),
    Setting(
        "exports_per_key",
        "TRACE_EXPORTS_PER_KEY",
        _positive,
        "most exports one API key (with keys off: all clients together) may have queued "
        "or running; more get 429 too_many_exports",
    ),
    Setting(
        "export_disk_budget_mb",
        "TRACE_EXPORT_DISK_BUDGET_MB",
        _positive,
        "most MiB the files in TRACE_EXPORTS_DIR (finished and being written) may take; "
        "beyond it new exports get 507 export_storage_full and running ones fail with it",
    ),
    Setting(
        "export_url_seconds",
        "TRACE_EXPORT_URL_SECONDS",
        _positive,
        "S3 storage: how long a pre-signed download URL stays valid",
    ),
    Setting(
        "export_workers",
        "TRACE_EXPORT_WORKERS",
        _positive,
        "exports this process writes at once; the rest wait queued",
    ),
    # --- logs (svc/logs.py) ---
    Setting(
        "log_format",
        "TRACE_LOG_FORMAT",
        _log_format,
        "`json` (one object a line) or `text` (for people); unset: text when stderr is a "
        "terminal, else json",
    ),
    # --- compression and worker processes (issue #11) ---
    Setting(
        "gzip_level",
        "TRACE_GZIP",
        _gzip_level,
        "gzip level (1-9) of streams and result pages for clients that send "
        "`Accept-Encoding: gzip`, each stream line flushed as written; `off`: never compress",
        flag_name="gzip",
    ),
    Setting(
        "workers",
        "TRACE_WORKERS",
        _positive,
        "worker processes serving the one port (to use several cores); TRACE_MAX_STREAMS, "
        "TRACE_MAX_STREAMS_PER_CLIENT, TRACE_JOB_CREATE_RATE, TRACE_EXPORT_WORKERS and the "
        "Oracle pool apply to each worker",
    ),
    Setting(
        "sqlite_read_threads",
        "TRACE_SQLITE_READ_THREADS",
        _positive,
        "SQLite: threads that read pages as rows (CSV, REST pages); one serves concurrent "
        "streams fastest (the driver takes the interpreter lock at every row, and several "
        "reading threads queue on it)",
    ),
    Setting(
        "sqlite_json_threads",
        "TRACE_SQLITE_JSON_THREADS",
        _positive,
        "SQLite: threads that build NDJSON streams' pages as JSON in the database; they hold "
        "the interpreter lock only to hand a page over, so two use two cores",
    ),
    Setting(
        "sqlite_mmap_mb",
        "TRACE_SQLITE_MMAP_MB",
        _non_negative,
        "SQLite: bytes of the database file each connection reads through memory maps, in "
        "MB (0: none, every page read is a system call); faster, but RSS then counts the "
        "mapped file once per connection (docs/benchmarks.md)",
    ),
    Setting(
        "database_json",
        "TRACE_DATABASE_JSON",
        _flag,
        "SQLite: the database builds the records of NDJSON streams as JSON, read ahead on "
        "TRACE_SQLITE_JSON_THREADS (off: rows encoded by the service, one page at a time)",
    ),
)


@dataclass(frozen=True)
class Settings:
    db_url: str | None = None
    redis_url: str | None = None
    secrets: list[str] = field(default_factory=list)
    domains_file: str | None = None
    batch_size: int = 5000
    job_ttl: int = 86400
    job_ttl_refresh: bool = False
    max_cids: int = 120_000
    max_page_limit: int = 50_000
    api_keys: list[str] = field(default_factory=list)
    data_dir: Path = Path(".trace-data")
    redis_prefix: str = "trace:"
    demo_cids: int = 20_000
    sqlite_read_threads: int = 1
    sqlite_json_threads: int = 2
    sqlite_mmap_mb: int = 0
    database_json: bool = True
    oracle_pool_min: int = 4
    oracle_pool_max: int = 4
    oracle_pool_increment: int = 1
    oracle_pool_wait_ms: int = 5000
    oracle_call_timeout_ms: int = 30_000
    oracle_snapshot: str | None = None
    # load: admission, slow readers, liveness, browsers
    max_streams: int = 64
    max_streams_per_client: int = 8
    slow_reader_seconds: float = 60.0
    heartbeat_seconds: float = 15.0
    cors_origins: list[str] = field(default_factory=list)
    metrics_public: bool = False
    # -- job store limits --
    job_purge_seconds: int = 60
    max_jobs_per_key: int = 200
    job_create_rate: int = 60
    job_create_burst: int = 10
    # the HTTP server
    max_header_bytes: int = 16384
    header_timeout: int = 10
    body_timeout: int = 30
    keepalive: int = 5
    max_connections: int = 1000
    # --- exports ---
    exports_dir: Path | None = None  # None: data_dir / "exports"
    export_storage: str = "local"
    exports_per_key: int = 2
    export_disk_budget_mb: int = 10240
    export_url_seconds: int = 900
    export_workers: int = 2
    # --- logs (svc/logs.py) ---
    log_format: str | None = None  # None: text on a terminal, else json
    # --- compression and worker processes ---
    gzip_level: int = 1  # 0: off; level 1 saves ~90% of JSON at ~2.5 ms CPU a MB
    workers: int = 1

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Settings from the environment; `overrides` (from flags) win when not None."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for s in SETTINGS:
            raw = env.get(s.env)
            if raw is not None and raw != "":
                try:
                    values[s.attr] = s.parse(raw)
                except ValueError as exc:
                    raise ValueError(f"{s.env}: {exc}") from exc
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

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{self.demo_db_path.resolve()}"

    def token_secrets(self) -> list[str]:
        """The configured secrets, or the data directory's generated one.

        A generated secret is only safe on a single node: replicas that share jobs
        through Redis must share a configured TRACE_SECRET.
        """
        if self.secrets:
            return self.secrets
        if self.redis_url:
            raise ValueError("TRACE_SECRET is required when TRACE_REDIS_URL is set")
        path = self.data_dir / "secret"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first
            else:
                with os.fdopen(fd, "w") as fh:
                    fh.write(secrets.token_urlsafe(32))
        return [path.read_text().strip()]
