"""Driver (and socket) errors of the Oracle source, as the service's own errors (pure).

`map_error`: the session or network lost, a call timeout, an exhausted pool or an
unreachable database are `SourceUnavailable` (retryable); a snapshot the undo no longer
holds, for a query that reads AS OF SCN, is `SnapshotTooOld`; anything else is permanent
(`SourceMisconfigured` for a table, column, grant or tie-break that does not fit, else
`SourceError`): not retryable. The driver's text goes to the log only, never to a client.
`reusable` says whether a connection may go back to the pool after an error.
"""

from __future__ import annotations

import re

import oracledb

from svc.errors import (
    SnapshotTooOld,
    SourceError,
    SourceMisconfigured,
    SourceUnavailable,
    TraceError,
)

# ORA-01555 snapshot too old; ORA-08180 no snapshot found based on specified time;
# ORA-08181 not a valid system change number; ORA-01466 table definition has changed
# (DDL such as TRUNCATE after the SCN). For a query that reads AS OF SCN, retrying cannot
# help: the job must be recreated. Without AS OF, ORA-01555/01466 mean the read could not
# be made consistent (long query, heavy writes, DDL meanwhile): a retry reads afresh.
_SNAPSHOT_TOO_OLD = frozenset({1555, 8180, 8181, 1466})
_READ_INCONSISTENT = frozenset({1555, 1466})

_LOST = "The connection to the trace database was lost; retry shortly"
_TIMEOUT = "The trace database did not answer in time; retry shortly"
_BUSY = "Every connection to the trace database is busy; retry shortly"
_UNREACHABLE = "The trace database cannot be reached; retry shortly"
_INCONSISTENT = "The trace database could not give a consistent read; retry shortly"

_DRIVER_CODES = {
    "DPY-1001": _LOST,  # not connected
    "DPY-1002": _UNREACHABLE,  # the pool is not open (shutting down)
    "DPY-4011": _LOST,  # the database or network closed the connection (ORA-00028, -03113...)
    "DPY-4033": _LOST,  # the database closed an idle connection
    "DPY-4024": _TIMEOUT,  # call timeout exceeded
    "DPY-4005": _BUSY,  # timed out waiting for the pool (also ORA-24457, -24459, -24496)
}
# Transient Oracle errors: a retry may succeed. Everything else is permanent (below).
# (Thin mode reports a missing listener, ORA-12541, as DPY-6005: the DPY-6 rule covers it.)
_ORACLE_CODES = {
    1013: _TIMEOUT,  # user requested cancel (how thick mode reports a call timeout)
    18: _BUSY,  # maximum number of sessions exceeded
    20: _BUSY,  # maximum number of processes exceeded
    60: _BUSY,  # deadlock detected while waiting for resource
    24418: _BUSY,  # cannot open further sessions
    12516: _BUSY,  # listener could not find an available handler
    12519: _BUSY,
    12520: _BUSY,
    1033: _UNREACHABLE,  # initialization or shutdown in progress
    1034: _UNREACHABLE,  # ORACLE not available
    1089: _UNREACHABLE,  # immediate shutdown in progress
    1090: _UNREACHABLE,  # shutdown in progress
    12170: _UNREACHABLE,  # connect timeout
    12514: _UNREACHABLE,  # service not registered with the listener (yet)
    12528: _UNREACHABLE,  # all instances are blocking new connections
    12543: _UNREACHABLE,  # destination host unreachable
}
# Permanent errors that say the domain file does not fit the database: an operator must
# act, so they are not retryable (a client retrying them forever helps no one).
_ROWID_TIEBREAK = (
    "A ROWID tie-break cannot work on a domain's table (a view with a join, DISTINCT or"
    " GROUP BY): set tiebreak to a unique column"
)
_MISCONFIGURED = {
    942: "A configured table or view does not exist, or the service may not read it",
    904: "A configured column does not exist (check the domain file's identifiers)",
    1031: "The service's database user lacks a privilege it needs",
    1410: "A tie-break value is not a valid ROWID for the domain's table",
    1445: _ROWID_TIEBREAK,
    1446: _ROWID_TIEBREAK,
    932: "A configured column has a type the service cannot compare or read",
    1722: "A configured column has a type the service cannot compare or read",
    # a LONG column where Oracle takes none (an aggregation's by, min_max or distinct)
    997: "A configured column is LONG, which Oracle cannot group, compare or count",
}
_DRIVER_MISCONFIGURED = {
    "DPY-3022": "A TIMESTAMP WITH TIME ZONE column holds a named time zone: list it under"
    " the domain's timestamptz",
}
_ORA = re.compile(r"\bORA-(\d{5})\b")


def driver_codes(exc: BaseException) -> tuple[str, frozenset[int]]:
    """The driver's full code (``DPY-4011``, ``ORA-01555``) and every ORA number it names.

    Wrapped errors (ORA-12801 from a parallel query server, ORA-06512 stacks) name the
    underlying ORA codes in their text, so the text is searched as well as ``code``.
    """
    err = exc.args[0] if isinstance(exc, oracledb.Error) and exc.args else None
    full_code = str(getattr(err, "full_code", "") or "")
    codes = {int(n) for n in _ORA.findall(str(exc))}
    code = getattr(err, "code", 0)
    if isinstance(code, int) and code > 0:
        codes.add(code)
    return full_code, frozenset(codes)


def map_error(exc: BaseException, snapshot: bool = False) -> TraceError:
    """The service's error for a driver (or socket) error; it never holds driver text.

    `snapshot`: the query read AS OF SCN, so a lost snapshot is `SnapshotTooOld` (410,
    final); without it the same codes are a transient inconsistent read (retryable).
    Transient failures (connection, timeout, busy, unreachable) are `SourceUnavailable`;
    everything else is permanent: `SourceMisconfigured` when the cause is known to be the
    configuration, `SourceError` otherwise. Neither is retryable.
    """
    if isinstance(exc, TraceError):
        return exc
    full_code, codes = driver_codes(exc)
    if snapshot and codes & _SNAPSHOT_TOO_OLD:
        return SnapshotTooOld()
    detail = _DRIVER_CODES.get(full_code)
    if detail is None and full_code.startswith("DPY-6"):  # cannot connect, listener refused
        detail = _UNREACHABLE
    if detail is None:
        detail = next((_ORACLE_CODES[c] for c in sorted(codes) if c in _ORACLE_CODES), None)
    if detail is None and codes & _READ_INCONSISTENT:
        detail = _INCONSISTENT
    if detail is None and isinstance(exc, OSError):  # includes TimeoutError
        detail = _UNREACHABLE
    if detail is None:
        err = exc.args[0] if isinstance(exc, oracledb.Error) and exc.args else None
        if getattr(err, "isrecoverable", False):  # the driver's own list of transient errors
            detail = SourceUnavailable.title
    if detail is not None:
        return SourceUnavailable(detail)
    known = _DRIVER_MISCONFIGURED.get(full_code)
    if known is None:
        known = next((_MISCONFIGURED[c] for c in sorted(codes) if c in _MISCONFIGURED), None)
    return SourceError() if known is None else SourceMisconfigured(known)


def reusable(exc: BaseException | None) -> bool:
    """Whether a connection whose query ended with `exc` may go back to the pool."""
    if exc is None:
        return True
    if not isinstance(exc, oracledb.Error):
        return False
    if getattr(exc.args[0] if exc.args else None, "is_session_dead", False):
        return False
    return driver_codes(exc)[0] not in {"DPY-1001", "DPY-4011", "DPY-4024", "DPY-4033"}
