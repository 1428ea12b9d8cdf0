"""A domain's declared aggregations folded from the pages a stream reads anyway.

A job's first stream reads every row of every domain; computing the aggregations after it
(`DomainReader.aggregate`) read them all again, and on two cores `complete` came as long
after the last records as the records took (docs/benchmarks.md#aggregations). So a stream
that starts at a domain's beginning on the JSON path, while that domain's aggregations are
neither known nor being computed, reads `svc.core.aggregates.queries.folded_page_sql`
instead: each page also brings its rows grouped for the aggregations, and an
`AggregationFold` merges them as the pages are handed out, in order.

The fold counts each row once or not at all: a page is merged when its first record is
handed out, and anything that would read a merged row again or skip one abandons it: the
client stops reading while a page is half handed out (the pages read ahead and the rest of
that page are dropped, and read again from the last record handed out), a page JSON
cannot hold sends the domain to the rows path, the stream ends early. Only a fold that saw
the domain's last page is kept (`finish`): then `done` gets the outcome the separate pass
would compute (sums of REALs up to the order of addition). An abandoned fold leaves the
aggregations to that pass.

Whoever else wants the aggregations while a fold goes on (`GET .../aggregation`, a second
stream of the job) waits for it (`ended`) rather than reading every row again, as long as
its pages keep coming (`merged_at`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec

from svc import protocol as p
from svc.core.aggregates.merging import DomainMerger
from svc.core.aggregates.queries import aggregate_shape
from svc.core.domains import Domain
from svc.sources import Row

# The aggregations' JSON as SQLite writes it: integers and REALs (written exactly) come back
# as the same Python values the rows path reads; text as text.
_json_rows = msgspec.json.Decoder(list[tuple[Any, ...]])
_json_values = msgspec.json.Decoder(list[Any])


def _decode(decoder: msgspec.json.Decoder[Any], text: str) -> Any:
    """SQLite writes an infinite REAL as 9e999, which msgspec refuses and Python's json
    reads as the infinity the rows path reads (rare: the fast decoder first)."""
    try:
        return decoder.decode(text)
    except msgspec.ValidationError:
        return json.loads(text)


@dataclass
class PagePart:
    """A page's share of the aggregations: `aggregate_sql`'s rows and each distinct
    aggregation's values (in the domain's order), over the page's rows."""

    grouped: list[Row]
    distinct: list[list[Any]]


class AggregationFold:
    """Merges the rows of `folded_page_sql` over `declared` (the job's whole domain);
    `done` receives the outcome once the domain's last page was taken."""

    def __init__(self, declared: Domain, done: Callable[[dict[str, p.Aggregate]], None]) -> None:
        self.declared = declared
        self._merger = DomainMerger(declared)
        self._distinct = [a.name for a in declared.aggregations if a.kind == "distinct"]
        self._grouped = aggregate_shape(declared) is not None
        self._done: Callable[[dict[str, p.Aggregate]], None] | None = done
        self.ended = asyncio.Event()  # finished or abandoned
        self.merged_at = time.monotonic()  # when it last took a page (or began)

    @property
    def live(self) -> bool:
        """Still folding: neither finished nor abandoned."""
        return self._done is not None

    def split(self, rows: list[Row]) -> tuple[Row, PagePart]:
        """A page's one row: the page's own columns (its records' JSON, tie-breaks and
        count, as `json_page_sql` gives them) and its share of the aggregations, for
        `merge` once the page's first record is handed out (a page dropped before that is
        read again)."""
        ((text, rids, count, *aggregates),) = rows
        at = 0
        grouped: list[Row] = []
        if self._grouped:
            grouped, at = _decode(_json_rows, aggregates[0]), 1
        distinct = [_decode(_json_values, values) for values in aggregates[at:]]
        return (text, rids, count), PagePart(grouped, distinct)

    def merge(self, part: PagePart) -> None:
        if self._done is None:
            return
        self.merged_at = time.monotonic()
        if part.grouped:
            self._merger.add_grouped(part.grouped)
        for name, values in zip(self._distinct, part.distinct, strict=True):
            self._merger.add_distinct_values(name, values)

    def abandon(self) -> None:
        """A row would be read twice or not at all: the outcome would be wrong."""
        self._done = None
        self.ended.set()

    def finish(self) -> None:
        """The domain's last page was taken: hand the outcome on (once)."""
        done, self._done = self._done, None
        if done is not None:
            done(self._merger.result())
        self.ended.set()
