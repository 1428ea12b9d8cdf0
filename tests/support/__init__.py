"""Helpers shared by the tests: jobs over HTTP, ground truth from SQL, CSV, problems, walks.

The servers, fakes and plugins live in their own modules here (servers, redis_server,
cutproxy, nginx, browser, frontend, oracle_fakes); this package re-exports the everyday helpers."""

from tests.support.csv_rows import (
    FORMULA_START,
    assert_rows_equal,
    defused,
    read_csv,
    same_value,
)
from tests.support.jobs import (
    Line,
    Records,
    create_job,
    iter_lines,
    last_since,
    records_of,
    records_union,
)
from tests.support.problems import assert_problem
from tests.support.truth import DOMAINS, FILTER_CASES, Row, all_cids, expected_rows, sql_truth

__all__ = [
    "DOMAINS",
    "FILTER_CASES",
    "FORMULA_START",
    "Line",
    "Records",
    "Row",
    "all_cids",
    "assert_problem",
    "assert_rows_equal",
    "create_job",
    "defused",
    "expected_rows",
    "iter_lines",
    "last_since",
    "read_csv",
    "records_of",
    "records_union",
    "same_value",
    "sql_truth",
]
