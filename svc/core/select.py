"""A job's column selection (`select`): checked against the domain file, put in canonical
form, and the domain as such a job reads it (pure).

A job may narrow the records of each of its domains to some of their columns when it is
created, as it narrows their rows with `where`:

    "select": {"history": ["EVENTNAME", "TXNDATE"]}

Only the domain's declared columns may be named (as records name them, without quotes).
Records carry the named columns in the order given, duplicates dropped. The key column is
always carried: records are traced by it, and every position (tokens, offsets) is a key
and a tie-break; named nowhere, it comes first. A domain the selection leaves out
carries every column. The selection is part of the job, fixed at creation like `where`:
a `since` token names its job, so it can never carry a position into other columns.

`narrow` gives the `Domain` such a job reads: the selected columns only, in their order,
so every statement (`svc.core.sql`), record, `domain_start`, CSV header and export file
built from it holds them and nothing else. The tie-break is read by every page statement
anyway, after the columns. Filters, totals and aggregations stay those of the declared
domain: they are about a job's rows, not the columns its records carry. What it saves
in bytes and CPU: docs/benchmarks.md#column-selection.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from functools import lru_cache

from svc.core.domains import Domain
from svc.core.filters import refuse_other_domains
from svc.errors import InvalidSelect
from svc.protocol import MAX_COLUMN_NAME, Select

MAX_SELECT_COLUMNS = 1000  # names of all domains of a job together (Oracle: 1000 a table)

__all__ = ["MAX_SELECT_COLUMNS", "explain_wire_error", "narrow", "normalize_select", "selected"]


def selected(domain: Domain, names: list[str]) -> list[str]:
    """The columns a domain's records carry for `names`: declared ones only, in order,
    each once, the key among them (first when not named)."""
    declared = set(domain.columns)
    for name in names:
        if name not in declared:
            columns = ", ".join(domain.columns)
            raise InvalidSelect(
                f"{domain.name}.{name[:64]} is not a column of {domain.name} (its columns:"
                f" {columns[:1000]})"
            )
    chosen = list(dict.fromkeys(names))
    key = domain.columns[domain.key_index]
    if key not in chosen:
        chosen.insert(0, key)
    return chosen


def normalize_select(
    select: Select | None, domains: Mapping[str, Domain], job_domains: list[str]
) -> Select | None:
    """The canonical form of a job's `select`, domains in the job's order (None when it
    narrows nothing).

    Raises `UnknownDomain` for a domain outside the job, `InvalidSelect` for a column.
    """
    if not select:
        return None
    refuse_other_domains("select", select, job_domains)
    if sum(map(len, select.values())) > MAX_SELECT_COLUMNS:
        raise InvalidSelect(f"a job's select may name at most {MAX_SELECT_COLUMNS} columns")
    out: Select = {}
    for name in job_domains:
        names = select.get(name)
        if names is not None:
            out[name] = selected(domains[name], names)
    return out or None


@lru_cache(maxsize=256)
def narrow(domain: Domain, columns: tuple[str, ...]) -> Domain:
    """`domain` as a job selecting `columns` (canonical: `selected`) reads it."""
    at = [domain.columns.index(c) for c in columns]
    return dataclasses.replace(
        domain,
        columns=columns,
        select=tuple(domain.select[i] for i in at),
        timestamptz=frozenset(j for j, i in enumerate(at) if i in domain.timestamptz),
        types=tuple(domain.types[i] for i in at),  # typed exports (xlsx, Parquet)
        aggregations=(),  # positions in the declared columns: read from the declared domain
    )


def explain_wire_error(raw_select: object, fallback: str) -> str:
    """A detail naming the domain, for a `select` the wire types refused."""
    if isinstance(raw_select, dict):
        for domain, names in raw_select.items():
            if not isinstance(names, list) or not names:
                return f"select.{str(domain)[:64]} must be a non-empty list of column names"
            for name in names:
                if not isinstance(name, str) or not 0 < len(name) <= MAX_COLUMN_NAME:
                    return f"select.{str(domain)[:64]}: {str(name)[:64]!r} is not a column name"
    return fallback
