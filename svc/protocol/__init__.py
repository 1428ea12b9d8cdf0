"""Wire types: the NDJSON line union, the page body and the job request (pure).

Every line is one msgspec Struct tagged by its ``type`` field; `encode_line` frames it.
New fields get defaults and go at the end, so older clients keep decoding.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec

# The encoding and the export bodies live beside this module; both are part of the wire.
from svc.protocol.encoding import encode as encode
from svc.protocol.encoding import encode_line as encode_line
from svc.protocol.encoding import escape_line_separators as escape_line_separators
from svc.protocol.encoding import shape_records as shape_records
from svc.protocol.exports import ExportFailure as ExportFailure
from svc.protocol.exports import ExportFormat as ExportFormat
from svc.protocol.exports import ExportLinks as ExportLinks
from svc.protocol.exports import ExportRequest as ExportRequest
from svc.protocol.exports import ExportState as ExportState
from svc.protocol.exports import ExportStatus as ExportStatus


class _Line(msgspec.Struct, tag_field="type", omit_defaults=False):
    pass


# --- filters (`where`): the wire form; svc.core.filters checks them against the domain file ---

MAX_IN_VALUES = 1000  # values of one `in` list (Oracle's cap on an IN list)
MAX_FILTER_TEXT = 1000  # characters of one value

FilterText = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_FILTER_TEXT)]
FilterValue = FilterText | int | float


class Range(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """A window of a `range` column: `from` inclusive, `to` exclusive; one may be left out.
    Timestamps are ISO 8601 strings (`2025-01-31`, `2025-01-31T08:00:00Z`)."""

    from_: FilterValue | None = msgspec.field(default=None, name="from")
    to: FilterValue | None = None


InValues = Annotated[list[FilterValue], msgspec.Meta(min_length=1, max_length=MAX_IN_VALUES)]
Condition = InValues | Range  # a list: `in`; an object: `range`
DomainWhere = Annotated[dict[str, Condition], msgspec.Meta(max_length=32)]  # by column
Where = Annotated[
    dict[str, DomainWhere],
    msgspec.Meta(
        max_length=32,
        description="Per domain, per filterable column (see `GET /api/domains`): a list of "
        "values (`in`) or a `Range`. Every condition must hold.",
    ),
]


# --- column selection (`select`): svc.core.select checks it against the domain file ---

MAX_COLUMN_NAME = 130  # characters of a column's name (a quoted identifier is up to 128)
ColumnName = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_COLUMN_NAME)]
DomainSelect = Annotated[list[ColumnName], msgspec.Meta(min_length=1, max_length=1000)]
Select = Annotated[
    dict[str, DomainSelect],
    msgspec.Meta(
        max_length=32,
        description="Per domain, the columns its records carry (see `GET /api/domains`), in "
        "this order; the key column is always carried (first, unless named elsewhere). A "
        "domain left out carries every column.",
    ),
]


class Meta(_Line, tag="meta", omit_defaults=True):
    """`where`: the job's filters, present only for a job that has them."""

    job_id: str
    domains: list[str]
    cid_count: int
    resumed: bool
    where: Where | None = None


class DomainStart(_Line, tag="domain_start"):
    """`total` is None when the domain is not counted yet; the same line with the total
    follows once it is (a repeated domain_start means "continue", as after a resume)."""

    domain: str
    columns: list[str]
    total: int | None
    total_batches: int | None


class Records(_Line, tag="records"):
    domain: str
    batch: int
    data: list[Any]
    since: str


class DomainEnd(_Line, tag="domain_end"):
    domain: str
    total_records: int


class Aggregating(_Line, tag="aggregating"):
    """Sent after the last `domain_end` when the aggregations are not ready yet: the
    `aggregation` line follows once they are computed (heartbeats meanwhile). `domains`:
    those still being computed. It carries no position: keep the last `since`."""

    domains: list[str]


class Aggregation(_Line, tag="aggregation"):
    data: JobAggregation


class Complete(_Line, tag="complete"):
    """`digest`: the records digest (docs/protocol.md#digest) in lowercase hex; None when
    the stream was resumed from a token that carries no chain (an older token, or one a
    page at an offset signed)."""

    elapsed_seconds: float
    total_records: int
    digest: str | None = None


class Error(_Line, tag="error"):
    code: str
    message: str
    retryable: bool
    since: str | None


class Reconnect(_Line, tag="reconnect"):
    reason: str
    since: str | None


class Heartbeat(_Line, tag="heartbeat", omit_defaults=True):
    """Written when a stream has been silent for TRACE_HEARTBEAT_SECONDS (a slow query):
    it keeps proxies from cutting the connection. `since` (a bookmark), present when the
    stream has moved past records that matched nothing since its last records line: a
    position after them, to resume from instead of the last records line's."""

    since: str | None = None


Line = (
    Meta
    | DomainStart
    | Records
    | DomainEnd
    | Aggregating
    | Aggregation
    | Complete
    | Error
    | Reconnect
    | Heartbeat
)


class DomainTotals(msgspec.Struct, array_like=True):
    """A domain's totals for one job: counted once, kept with the job, sent in lines."""

    records: int
    containers: int  # CIDs of the job with at least one record in the domain


class Page(msgspec.Struct):
    """One REST page of a domain's records."""

    domain: str
    limit: int
    total: int
    data: list[Any]
    next: str | None
    offset: int | None = None
    columns: list[str] | None = None  # format=arrays: the names of each array's values
    # the records digest's chain after this page, in hex (docs/protocol.md#digest); None:
    # not known (the walk started at an offset, or from a token without a chain)
    digest: str | None = None


class Links(msgspec.Struct):
    self_: str = msgspec.field(name="self")
    stream: str
    result: str


class JobCreated(msgspec.Struct):
    """The body of 201 Created."""

    job_id: str
    cid_count: int
    domains: list[str]
    expires_at: str  # RFC 3339, UTC
    links: Links
    where: Where | None = None  # the job's filters, normalised; None: every record
    select: Select | None = None  # the job's columns per domain; None: every column


class DomainCount(msgspec.Struct):
    records: int
    containers: int  # CIDs of the job with at least one record in the domain


class Group(msgspec.Struct, omit_defaults=True):
    """One group of a grouped aggregation."""

    key: list[Any]  # the values of the aggregation's `by` columns, in that order
    count: int  # rows in the group
    sum: Any = None  # sum aggregations: the column's sum over the group (absent: no value)


class OtherGroups(msgspec.Struct, omit_defaults=True):
    """The groups beyond an aggregation's `top`, together."""

    groups: int
    count: int
    sum: Any = None


class _Aggregate(msgspec.Struct, tag_field="kind"):
    pass


class CountAggregate(_Aggregate, tag="count"):
    """Rows per group of `by`: the `top` largest groups (most rows first, then by key),
    and the rest in `other` (null when every group is listed)."""

    by: list[str]
    count: int  # rows in all groups
    groups: list[Group]
    other: OtherGroups | None
    exact: bool = True  # false: more groups than the service tracks (see docs/protocol.md)


class SumAggregate(_Aggregate, tag="sum"):
    """The sum of `column` (null when it holds no value), over all rows and, with `by`,
    per group as in a count."""

    column: str
    by: list[str]
    sum: Any
    count: int  # rows
    groups: list[Group]
    other: OtherGroups | None
    exact: bool = True


class MinMaxAggregate(_Aggregate, tag="min_max"):
    """The least and greatest value of `column` (null when it holds none)."""

    column: str
    min: Any
    max: Any


class DistinctAggregate(_Aggregate, tag="distinct"):
    """How many distinct non-null values `column` holds."""

    column: str
    count: int


Aggregate = CountAggregate | SumAggregate | MinMaxAggregate | DistinctAggregate


class JobAggregation(msgspec.Struct):
    """A job's totals per domain and each domain's declared aggregations, by name."""

    domains: dict[str, DomainCount]
    aggregations: dict[str, dict[str, Aggregate]] = {}


class JobDescription(msgspec.Struct):
    job_id: str
    cid_count: int
    domains: list[str]
    created_at: str  # RFC 3339, UTC
    expires_at: str
    snapshot: int | None  # Oracle snapshot mode: the SCN the job reads at
    totals: dict[str, DomainCount]  # per domain, once counted
    links: Links
    where: Where | None = None  # the job's filters, normalised; None: every record
    select: Select | None = None  # the job's columns per domain; None: every column


class FilterInfo(msgspec.Struct):
    """A column a job may narrow: `ops` of `in`, `range`; `type` of its values (`text`,
    `number`, `timestamp`, `timestamptz`: timestamps are ISO 8601 strings)."""

    ops: list[str]
    type: str


class DomainInfo(msgspec.Struct):
    name: str
    columns: list[str]  # what a job's `select` may name
    filters: dict[str, FilterInfo] = {}  # by column name
    key: str | None = None  # the key column: every record carries it, whatever the `select`


class DomainList(msgspec.Struct):
    domains: list[DomainInfo]


class DemoCids(msgspec.Struct):
    container_ids: list[str]


class Health(msgspec.Struct):
    status: str  # "ok" (liveness) or "ready" (readiness)


class Problem(msgspec.Struct):
    """An RFC 9457 problem; `code` is stable, `detail` is for people."""

    type: str
    title: str
    status: int
    code: str
    detail: str


Cid = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        description="1-64 printable characters without surrounding spaces (printable "
        "ASCII always; other printable Unicode is accepted too)",
        extra_json_schema={"pattern": "^[!-~]([ -~]*[!-~])?$"},
    ),
]


class JobRequest(msgspec.Struct, forbid_unknown_fields=True):
    """Duplicates are removed; `domains` left out or null: every configured domain.
    `where` narrows domains of the job to the records that match every condition;
    `select` narrows their records to some of their columns."""

    container_ids: Annotated[list[Cid], msgspec.Meta(min_length=1)]
    domains: Annotated[list[str], msgspec.Meta(min_length=1)] | None = None  # None: all
    where: Where | None = None
    select: Select | None = None


line_decoder: msgspec.json.Decoder[Line] = msgspec.json.Decoder(Line)
job_request_decoder = msgspec.json.Decoder(JobRequest)
