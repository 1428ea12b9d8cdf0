"""How the Oracle source fetches each column: as JSON can carry it, TIMESTAMP WITH TIME
ZONE columns in UTC (`output_type_handler`)."""

from __future__ import annotations

import datetime as dt
import decimal
import logging
from typing import Any

import oracledb

from svc.core.sql.dialects import RID_ALIAS, UTC_ALIAS
from svc.errors import SourceMisconfigured

# The source's logger: an operator finds every Oracle source line under one name.
log = logging.getLogger("svc.sources.oracle")


def _as_utc(value: dt.datetime) -> dt.datetime:
    """A SYS_EXTRACT_UTC timestamp (naive, in UTC) marked as UTC: sent as ``...Z``."""
    return value.replace(tzinfo=dt.UTC)


_TSTZ_UNDECLARED = (
    "A TIMESTAMP WITH (LOCAL) TIME ZONE column is not listed under its domain's timestamptz"
)
_ZONED = (oracledb.DB_TYPE_TIMESTAMP_TZ, oracledb.DB_TYPE_TIMESTAMP_LTZ)


def output_type_handler(cursor: Any, metadata: Any) -> Any:
    """How each column of a page is fetched (python-oracledb asks once per column).

    - NUMBER with scale 0 (an integer type): int, the driver's default. The tie-break
      column (TRACE_RID) is always fetched as int: it goes into tokens.
    - Any other NUMBER (NUMBER(p,s>0), unconstrained NUMBER, FLOAT): decimal.Decimal,
      exact; the encoder writes it as a JSON number (``5``, ``12.50`` as ``12.5``).
    - TIMESTAMP under a TRACE_UTC_<n> alias (a TIMESTAMP WITH TIME ZONE column read with
      SYS_EXTRACT_UTC): a UTC datetime, sent as ``2025-01-01T08:00:00Z``.
    - TIMESTAMP WITH TIME ZONE reaching the driver as such: refused. Thin mode cannot
      decode named regions (DPY-3022) and drops offsets; the domain file must list the
      column under ``timestamptz``. So is TIMESTAMP WITH LOCAL TIME ZONE: it arrives in the
      session's time zone (UTC, `SESSION_SETUP`), naive, and would be sent without its zone.
    - Everything else: the driver's default (LOBs are fetched as str/bytes because every
      page executes with ``fetch_lobs=False``).
    """
    dbtype = metadata.type_code
    if dbtype is oracledb.DB_TYPE_NUMBER:
        if metadata.name == RID_ALIAS:
            return cursor.var(int, arraysize=cursor.arraysize)
        if metadata.scale == 0 and metadata.precision > 0:
            return None
        return cursor.var(decimal.Decimal, arraysize=cursor.arraysize)
    if dbtype in _ZONED:
        log.error(
            "oracle: column %s is TIMESTAMP WITH (LOCAL) TIME ZONE: add it to timestamptz",
            metadata.name,
        )
        raise SourceMisconfigured(_TSTZ_UNDECLARED)
    if dbtype is oracledb.DB_TYPE_TIMESTAMP and str(metadata.name).startswith(UTC_ALIAS):
        return cursor.var(dbtype, arraysize=cursor.arraysize, outconverter=_as_utc)
    return None
