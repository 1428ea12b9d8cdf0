"""The Oracle source's error mapping, verified without an Oracle server.

- Driver errors built the way python-oracledb builds them map to the service's errors.
- Real driver failures (refused, reset and silent TCP peers) are SourceUnavailable.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import time
from collections.abc import AsyncIterator

import oracledb
import pytest

from svc.errors import SnapshotTooOld, SourceError, SourceMisconfigured, SourceUnavailable
from svc.sources import oracle_errors
from tests.support.oracle_fakes import _Conn, _dpy, _ora, _Pool, _source_with, oe, oracle_source

# --- (c) the error mapping ---------------------------------------------------------------


LOST, TIMEOUT, BUSY, UNREACHABLE = (
    oracle_errors._LOST,
    oracle_errors._TIMEOUT,
    oracle_errors._BUSY,
    oracle_errors._UNREACHABLE,
)
TOO_OLD = "snapshot too old"
CONFIG = "misconfigured"
PERMANENT = "permanent"

ERROR_TABLE: list[tuple[str, Exception, str]] = [
    ("DPY-4011 closed", _dpy(oe.ERR_CONNECTION_CLOSED), LOST),
    ("ORA-00028 killed", _ora(28, "your session has been killed"), LOST),
    ("ORA-03113 eof", _ora(3113, "end-of-file on communication channel"), LOST),
    ("ORA-03135 lost", _ora(3135, "connection lost contact"), LOST),
    ("DPY-4024 call timeout", _dpy(oe.ERR_CALL_TIMEOUT_EXCEEDED, timeout=30000), TIMEOUT),
    ("ORA-01013 cancel", _ora(1013, "user requested cancel of current operation"), TIMEOUT),
    ("DPY-4005 pool", _dpy(oe.ERR_POOL_NO_CONNECTION_AVAILABLE), BUSY),
    ("ORA-24459 pool", _ora(24459, "OCISessionGet() timed out waiting for pool"), BUSY),
    ("ORA-00018 sessions", _ora(18, "maximum number of sessions exceeded"), BUSY),
    ("DPY-1002 pool closed", _dpy(oe.ERR_POOL_NOT_OPEN), UNREACHABLE),
    ("DPY-6005 refused", _dpy(oe.ERR_CONNECTION_FAILED, "[Errno 111] refused"), UNREACHABLE),
    ("DPY-6000 listener", _dpy(oe.ERR_LISTENER_REFUSED_CONNECTION, error_code="x"), UNREACHABLE),
    ("ORA-01034 down", _ora(1034, "ORACLE not available"), UNREACHABLE),
    ("socket refused", ConnectionRefusedError(111, "Connection refused"), UNREACHABLE),
    ("socket timeout", TimeoutError(), UNREACHABLE),
    ("ORA-01555", _ora(1555, 'snapshot too old: rollback segment "_SYSSMU10$" too small'), TOO_OLD),
    ("ORA-08180", _ora(8180, "no snapshot found based on specified time"), TOO_OLD),
    ("ORA-08181", _ora(8181, "specified number is not a valid system change number"), TOO_OLD),
    ("ORA-01466", _ora(1466, "unable to read data - table definition has changed"), TOO_OLD),
    ("ORA-12801 wraps it", _ora(12801, "parallel query P001\nORA-01555: snapshot"), TOO_OLD),
    ("ORA-00060 deadlock", _ora(60, "deadlock detected while waiting for resource"), BUSY),
    ("ORA-00942", _ora(942, 'table or view "TRACE"."MES_CONTAINER_HISTORY" not found'), CONFIG),
    ("ORA-00904", _ora(904, '"ORDER": invalid identifier'), CONFIG),
    ("ORA-01031", _ora(1031, "insufficient privileges"), CONFIG),
    ("ORA-01410", _ora(1410, "invalid ROWID"), CONFIG),
    ("ORA-01445", _ora(1445, "cannot select ROWID from a join view"), CONFIG),
    ("ORA-01446", _ora(1446, "cannot select ROWID from view with DISTINCT, GROUP BY"), CONFIG),
    ("ORA-00932", _ora(932, "inconsistent datatypes: expected NUMBER got CHAR"), CONFIG),
    ("ORA-00997 LONG", _ora(997, "illegal use of LONG datatype"), CONFIG),
    ("DPY-3022", _dpy(oe.ERR_NAMED_TIMEZONE_NOT_SUPPORTED), CONFIG),
    ("ORA-00936 other", _ora(936, "missing expression"), PERMANENT),
    ("anything else", ValueError("secret-ish driver text"), PERMANENT),
]


@pytest.mark.parametrize(
    ("exc", "detail"), [r[1:] for r in ERROR_TABLE], ids=[r[0] for r in ERROR_TABLE]
)
def test_driver_errors_map_to_the_service_errors(exc: Exception, detail: str) -> None:
    got = oracle_errors.map_error(exc, snapshot=detail == TOO_OLD)
    if detail == TOO_OLD:
        assert type(got) is SnapshotTooOld
        assert (got.status, got.code, got.retryable) == (410, "snapshot_too_old", False)
    elif detail == CONFIG:
        assert type(got) is SourceMisconfigured
        assert (got.status, got.code, got.retryable) == (500, "source_misconfigured", False)
    elif detail == PERMANENT:
        assert type(got) is SourceError
        assert (got.status, got.code, got.retryable) == (500, "source_error", False)
    else:
        assert type(got) is SourceUnavailable
        assert (got.status, got.code, got.retryable) == (503, "source_unavailable", True)
        assert got.detail == detail
    # The driver's text never reaches the client.
    assert not re.search(r"ORA-|DPY-|MES_CONTAINER|Errno|secret|Help:", got.detail)


@pytest.mark.parametrize("code", [1555, 1466, 8180, 8181])
def test_a_lost_snapshot_is_final_only_for_a_query_that_reads_as_of_scn(code: int) -> None:
    exc = _ora(code, "snapshot too old")
    assert type(oracle_errors.map_error(exc, snapshot=True)) is SnapshotTooOld
    plain = oracle_errors.map_error(exc, snapshot=False)
    assert not isinstance(plain, SnapshotTooOld)
    if code in (1555, 1466):  # a fresh read (a retry) succeeds
        assert type(plain) is SourceUnavailable and plain.retryable
        assert plain.detail == oracle_errors._INCONSISTENT
    else:  # cannot happen without AS OF: a permanent error, not a 410
        assert not plain.retryable


def test_the_snapshot_flag_comes_from_the_query_binds() -> None:
    """fetch() maps with snapshot=True only when the query binds :scn (reads AS OF SCN)."""

    async def too_old(cursor: object) -> None:
        raise _ora(1555, "snapshot too old")

    for binds, want in (
        ({"limit": 3}, SourceUnavailable),
        ({"limit": 3, "scn": 7}, SnapshotTooOld),
    ):
        source = _source_with(_Pool(_Conn(too_old)))
        with pytest.raises(want):
            asyncio.run(source.fetch("SELECT ...", binds))


def test_connections_that_failed_are_dropped_not_reused() -> None:
    assert oracle_errors.reusable(None)
    assert oracle_errors.reusable(_ora(942, "table or view does not exist"))
    assert oracle_errors.reusable(_ora(1013, "user requested cancel of current operation"))
    assert oracle_errors.reusable(_ora(1555, "snapshot too old"))
    assert not oracle_errors.reusable(_dpy(oe.ERR_CONNECTION_CLOSED))
    assert not oracle_errors.reusable(_ora(28, "your session has been killed"))
    assert not oracle_errors.reusable(_dpy(oe.ERR_CALL_TIMEOUT_EXCEEDED, timeout=1))
    assert not oracle_errors.reusable(asyncio.CancelledError())


# Real driver, real sockets, no database: the pool is created with the service's own
# parameters and its failures come out as SourceUnavailable within the configured waits.


@contextlib.asynccontextmanager
async def _peer(behaviour: str) -> AsyncIterator[int]:
    if behaviour == "refused":
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        yield port  # nothing listens there any more
        return
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        if behaviour == "reset":
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for w in writers:
            w.close()
        server.close()
        await server.wait_closed()


@pytest.mark.slow
@pytest.mark.parametrize("behaviour", ["refused", "reset", "silent"])
def test_unreachable_database_is_source_unavailable(behaviour: str) -> None:
    async def run() -> tuple[BaseException, float, int]:
        async with _peer(behaviour) as port:
            source = oracle_source(
                f"oracle://trace:pw@127.0.0.1:{port}/FREEPDB1",
                pool_min=1,
                pool_max=1,
                pool_wait_ms=1500,
                call_timeout_ms=1500,
            )
            started = time.monotonic()
            try:
                await source.ping()
            except Exception as exc:
                return exc, time.monotonic() - started, source.in_use
            finally:
                await source.close()
        raise AssertionError("ping succeeded without a database")

    exc, elapsed, in_use = asyncio.run(asyncio.wait_for(run(), 30))
    assert isinstance(exc, SourceUnavailable), repr(exc)
    assert exc.detail in {UNREACHABLE, BUSY, LOST, TIMEOUT}
    assert isinstance(exc.__cause__, oracledb.Error)  # re-raised `from` the driver's error
    assert elapsed < 15
    assert in_use == 0
