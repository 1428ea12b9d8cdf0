"""Driver errors built the way python-oracledb builds them, and a stand-in for its pool."""

from __future__ import annotations

import importlib
from typing import Any

from svc.config import Settings
from svc.sources import Row
from svc.sources import oracle as ora

oe: Any = importlib.import_module("oracledb.errors")  # how the driver builds its errors


def _dpy(number: int, context: str | None = None, **args: Any) -> Exception:
    exc: Exception = oe._create_exception(number, context, **args)
    return exc


def _ora(code: int, text: str) -> Exception:
    err = oe._Error(f"ORA-{code:05d}: {text}", code=code)
    exc: Exception = err.exc_type(err)
    return exc


# --- a stand-in for the driver's pool, connections and cursors --------------------------


class _Cursor:
    def __init__(self, conn: _Conn) -> None:
        self.conn, self.arraysize, self.prefetchrows, self.closed = conn, 100, 2, False
        self.input_sizes: dict[str, Any] = {}

    def setinputsizes(self, **sizes: Any) -> None:
        self.input_sizes.update(sizes)

    def __enter__(self) -> _Cursor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.closed = True

    async def execute(self, sql: str, binds: dict[str, object] | None = None, **kw: Any) -> None:
        self.conn.log.append(("execute", sql, self.arraysize, self.prefetchrows))
        self.conn.executed.append((sql, kw, getattr(self, "outputtypehandler", None)))
        await self.conn.behaviour(self)

    async def fetchall(self) -> list[Row]:
        return self.conn.rows


class _Conn:
    def __init__(self, behaviour: Any) -> None:
        self.behaviour = behaviour
        self.log: list[tuple[Any, ...]] = []
        self.cursors: list[_Cursor] = []
        self.call_timeout, self.cancelled, self.closed = 0, False, False
        self.executed: list[tuple[str, dict[str, Any], Any]] = []
        self.module = ""
        self.rows: list[Row] = [("row",)]

    async def close(self) -> None:
        self.closed = True

    def cursor(self) -> _Cursor:
        self.cursors.append(_Cursor(self))
        return self.cursors[-1]

    def cancel(self) -> None:
        self.cancelled = True


class _Pool:
    def __init__(self, conn: _Conn) -> None:
        self.conn, self.released, self.dropped = conn, 0, 0

    async def acquire(self) -> _Conn:
        return self.conn

    async def release(self, conn: _Conn) -> None:
        self.released += 1

    async def drop(self, conn: _Conn) -> None:
        self.dropped += 1


def _source_with(pool: _Pool) -> ora.OracleSource:
    source = oracle_source("oracle://a:b@h/s", call_timeout_ms=1234)
    source._pool = pool  # type: ignore[assignment]
    return source


def oracle_source(url: str, **options: Any) -> ora.OracleSource:
    """An Oracle source of `url`; TRACE_ORACLE_* settings by their short names, and
    `domains`."""
    domains = options.pop("domains", None)
    settings = Settings(db_url=url, **{f"oracle_{k}": v for k, v in options.items()})
    return ora.OracleSource.from_settings(settings, domains)
