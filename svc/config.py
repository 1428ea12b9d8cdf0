"""Settings: environment variables, each with a `serve` flag of the same meaning.

`SETTINGS` is the one table of them; the CLI and the README's configuration reference
are built from it, so a setting cannot be documented in one place and missing in another.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


def _csv(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _positive(value: str) -> int:
    n = int(value)
    if n < 1:
        raise ValueError("must be a positive integer")
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
        "records per NDJSON records line (default 5000)",
    ),
    Setting(
        "job_ttl", "TRACE_JOB_TTL_SECONDS", _positive, "how long a job is kept (default 86400)"
    ),
    Setting(
        "job_ttl_refresh",
        "TRACE_JOB_TTL_REFRESH",
        _flag,
        "extend a job's TTL whenever it is read (default false)",
    ),
    Setting(
        "max_cids",
        "TRACE_MAX_CIDS",
        _positive,
        "most container ids a job may hold (default 120000)",
    ),
    Setting(
        "max_page_limit",
        "TRACE_MAX_PAGE_LIMIT",
        _positive,
        "largest `limit` of a REST page (default 50000)",
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
        "embedded job store, demo database and generated secret (default ./.trace-data)",
    ),
    Setting(
        "redis_prefix", "TRACE_REDIS_PREFIX", str, "key prefix of jobs in Redis (default trace:)"
    ),
    Setting(
        "demo_cids",
        "TRACE_DEMO_CIDS",
        _positive,
        "CIDs of the demo database built when none exists (default 20000)",
    ),
    Setting(
        "oracle_pool_min",
        "TRACE_ORACLE_POOL_MIN",
        _positive,
        "Oracle: connections the pool opens on first use and keeps (default 4)",
    ),
    Setting(
        "oracle_pool_max",
        "TRACE_ORACLE_POOL_MAX",
        _positive,
        "Oracle: most pooled connections (default 4; equal to the minimum, a fixed-size "
        "pool, is recommended)",
    ),
    Setting(
        "oracle_pool_increment",
        "TRACE_ORACLE_POOL_INCREMENT",
        _positive,
        "Oracle: connections opened at a time when the pool grows (default 1)",
    ),
    Setting(
        "oracle_pool_wait_ms",
        "TRACE_ORACLE_POOL_WAIT_MS",
        _positive,
        "Oracle: how long a query waits for a free pooled connection before failing "
        "with source_unavailable (default 5000)",
    ),
    Setting(
        "oracle_call_timeout_ms",
        "TRACE_ORACLE_CALL_TIMEOUT_MS",
        _positive,
        "Oracle: most time one database round trip may take (default 30000)",
    ),
    Setting(
        "oracle_snapshot",
        "TRACE_ORACLE_SNAPSHOT",
        _snapshot_mode,
        "Oracle: `scn` makes every job read AS OF the SCN of its creation, so resumed "
        "streams see the same data (needs grants and undo retention); unset or `off`: "
        "each page reads the latest committed data",
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
    oracle_pool_min: int = 4
    oracle_pool_max: int = 4
    oracle_pool_increment: int = 1
    oracle_pool_wait_ms: int = 5000
    oracle_call_timeout_ms: int = 30_000
    oracle_snapshot: str | None = None

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
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})

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
