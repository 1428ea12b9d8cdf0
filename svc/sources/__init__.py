"""Sources: the databases trace rows are read from.

`Source` is the interface; `SqliteSource` (the embedded demo default) and `OracleSource`
(production) implement it. A source runs the pure SQL of `svc.keyset` with its binds,
holds no cursor or connection between calls, and raises the service's own errors
(`SourceUnavailable`, `SnapshotTooOld`) instead of its driver's.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any

from svc.keyset import Dialect

Row = tuple[Any, ...]


class Source(abc.ABC):
    dialect: Dialect
    in_use = 0  # connections lent out right now (0 between pages: none is held)

    @abc.abstractmethod
    async def fetch(self, sql: str, binds: Mapping[str, object]) -> list[Row]:
        """Run one short query and return all its rows (at most a page)."""

    async def current_snapshot(self) -> int | None:
        """The snapshot a new job should read AS OF, or None when not in snapshot mode."""
        return None

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise `SourceUnavailable` if the database cannot be reached."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        pass


def open_source(db_url: str, **options: Any) -> Source:
    """A source for ``sqlite:///path`` or ``oracle://user:password@host:port/service``.

    As in SQLAlchemy, ``sqlite:///rel.db`` is relative and ``sqlite:////abs.db`` absolute.
    """
    if db_url.startswith("sqlite:///"):
        from svc.sources.sqlite import SqliteSource

        return SqliteSource(db_url.removeprefix("sqlite:///"), **options)
    if db_url.startswith("oracle://"):
        from svc.sources.oracle import OracleSource

        return OracleSource.from_url(db_url, **options)
    raise ValueError("TRACE_DB_URL must start with sqlite:// or oracle://")
