"""Sources: the databases trace rows are read from.

`Source` is the interface; `SqliteSource` (the embedded demo default) and `OracleSource`
(production) implement it. A source runs the pure SQL of `svc.core.sql` with its binds,
holds no cursor or connection between calls, and raises the service's own errors
(`SourceUnavailable`, `SnapshotTooOld`) instead of its driver's.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, Literal

from svc.config import Settings
from svc.core.domains import Domain
from svc.core.sql.dialects import Dialect

Row = tuple[Any, ...]

# Which work a query is for. Each lane has its own bounded workers, so counting a flood of
# new jobs cannot starve the streams, and neither can starve a readiness probe. "json" is
# a page the database builds as JSON (`svc.engine.json_batches`; only where `builds_json`).
Lane = Literal["read", "json", "count", "control"]


class JsonUnsupported(Exception):
    """The database cannot build this page as JSON (a BLOB value, a -0.0): read it as rows."""


class Source(abc.ABC):
    dialect: Dialect
    in_use = 0  # connections lent out right now (0 between pages: none is held)
    builds_json = False  # runs `pages.json_page_sql` exactly as rows would encode
    # its queries run in another server (Oracle): the service's cores wait while they run
    remote = False

    @abc.abstractmethod
    async def fetch(
        self, sql: str, binds: Mapping[str, object], *, lane: Lane = "read"
    ) -> list[Row]:
        """Run one short query and return all its rows (at most a page).

        Cancelling the call stops the query, or drops it if it has not started."""

    async def current_snapshot(self) -> int | None:
        """The snapshot a new job should read AS OF, or None when not in snapshot mode."""
        return None

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise `SourceUnavailable` if the database cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass


def open_source(settings: Settings, domains: Mapping[str, Domain] | None = None) -> Source:
    """The source of ``TRACE_DB_URL``: ``sqlite:///path`` or ``oracle://user:pw@host:port/svc``.

    `domains` lets a source check at start-up that it can read them as configured.

    As in SQLAlchemy, ``sqlite:///rel.db`` is relative and ``sqlite:////abs.db`` absolute.
    """
    db_url = settings.resolved_db_url()
    if db_url.startswith("sqlite:///"):
        from svc.sources.sqlite import SqliteSource

        return SqliteSource(
            db_url.removeprefix("sqlite:///"),
            settings.sqlite_read_threads,
            settings.sqlite_json_threads,
            settings.sqlite_mmap_mb,
        )
    if db_url.startswith("oracle://"):
        from svc.sources.oracle import OracleSource

        return OracleSource.from_settings(settings, domains)
    raise ValueError("TRACE_DB_URL must start with sqlite:// or oracle://")
