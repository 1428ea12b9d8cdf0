"""CSV: a file read back, compared with records value by value."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")  # text cells spreadsheets would run
_SKIPPED = "\u200b\u200c\u200d\u2060\ufeff"  # invisible: skipped like whitespace


def defused(text: str) -> bool:
    """Whether the spreadsheet form of a text cell gets a leading `'`: it starts a formula,
    at once or after whitespace (NBSP and line breaks included) or invisible characters."""
    rest = text
    while rest[:1] and (rest[0].isspace() or rest[0] in _SKIPPED):
        rest = rest[1:]
    return text.startswith(FORMULA_START) or rest[:1] in ("=", "+", "-", "@")


def read_csv(body: bytes, bom: bool) -> list[list[str]]:
    """The rows of a CSV download (Python's csv module), checking its BOM."""
    text = body.decode("utf-8")
    assert text.startswith("\ufeff") == bom
    return list(csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline="")))


def same_value(cell: str, value: Any, spreadsheet: bool) -> bool:
    """A CSV cell holds the record's value: NULL empty, text itself (a formula's first
    character escaped with `'` for spreadsheets), numbers and booleans as JSON writes them."""
    if value is None:
        return cell == ""
    if isinstance(value, str):
        return cell == ("'" + value if spreadsheet and defused(value) else value)
    return json.dumps(json.loads(cell)) == json.dumps(value)  # same type, same value (-0.0)


def assert_rows_equal(rows: list[list[str]], records: list[tuple[Any, ...]], sheet: bool) -> None:
    assert len(rows) == len(records)
    for row, record in zip(rows, records, strict=True):
        assert len(row) == len(record)
        for cell, value in zip(row, record, strict=True):
            assert same_value(cell, value, sheet), (cell, value)
