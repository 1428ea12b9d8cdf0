"""The request limits of the HTTP face, in one table: the handlers enforce them and the
OpenAPI document states them, so the two cannot drift apart.

Limits an operator sets (`max_cids`, `max_page_limit`, timeouts) live in `svc.config`;
these are fixed by the wire format.
"""

from __future__ import annotations

from typing import get_args

from svc import protocol as p
from svc.core.filters import MAX_WHERE_VALUES
from svc.core.select import MAX_SELECT_COLUMNS

MAX_CID_CHARS: int = get_args(p.Cid)[1].max_length  # the wire contract's, stated once there
BODY_BYTES_PER_CID = 80  # a quoted 64-char CID, a comma and JSON whitespace
JOB_BODY_SLACK_BYTES = 65536  # the rest of a job request: domains and a filter
EXPORT_BODY_BYTES = 4096
MAX_EXPORT_ID_CHARS = 64
MAX_OFFSET = 10**12
MAX_DIGITS = 15  # an integer parameter or Content-Length: int() of long strings is slow
DEMO_CIDS_DEFAULT = 100


def job_body_bytes(max_cids: int) -> int:
    """The largest job request body a service allowing `max_cids` CIDs reads."""
    return max_cids * BODY_BYTES_PER_CID + JOB_BODY_SLACK_BYTES


def job_body_strings(max_cids: int) -> int:
    """The most JSON strings a job request may hold: its CIDs, a filter's values, a
    selection's columns and a few hundred names. Counted before decoding, it bounds the
    memory a body of millions of tiny (or duplicate) CIDs could take to decode."""
    return max_cids + 64 + MAX_WHERE_VALUES + MAX_SELECT_COLUMNS + 1024
