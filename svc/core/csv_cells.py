"""CSV (RFC 4180) text of records: one encoder for pages, downloads and export files (pure).

Cells carry the same values as the JSON records: NULL is an empty cell, text is itself,
numbers are written as JSON writes them, and other types (timestamps, bytes) as the text
of their JSON string (ISO 8601, base64). Lines end in CRLF; a cell is quoted only when it
holds a comma, a quote or a line break.

`spreadsheet_safe` defuses formula injection for files people open in Excel or LibreOffice:
a text cell starting with ``= + - @``, a tab or a carriage return gets a leading ``'``
(OWASP's advice), so ``=HYPERLINK(...)`` in a comment is shown, not run. So does one whose
``= + - @`` follows leading whitespace of any kind (spaces, NBSP, line breaks) or invisible
characters (zero-width spaces, a BOM), which spreadsheets may skip before reading a formula,
and the text of any other value written as a JSON string: base64 starts with ``+`` for bytes
0xF8-0xFB (one RAW in 64, e.g. SYS_GUID keys). Numbers are never touched: ``-5`` as a number
stays ``-5``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence

import msgspec

BOM = "\ufeff"  # lets Excel read a downloaded file as UTF-8
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_INVISIBLE = "\u200b\u200c\u200d\u2060\ufeff"  # zero-width characters, the BOM
_HIDDEN_FORMULA = re.compile(f"[\\s{_INVISIBLE}]+[=+\\-@]")
_json = msgspec.json.Encoder(decimal_format="number")  # as the records write Decimals
_QUOTE_OR_END = re.compile(rb'"|\r\n')


def _formula_like(text: str) -> bool:
    """Text a spreadsheet could take as a formula (the first test decides most cells)."""
    if text.startswith(_FORMULA_START):
        return True
    first = text[:1]
    return (first.isspace() or first in _INVISIBLE) and _HIDDEN_FORMULA.match(text) is not None


def cell(value: object, spreadsheet_safe: bool = False) -> str:
    """One value as CSV cell text (before quoting)."""
    if value is None:
        return ""
    if isinstance(value, str):
        if spreadsheet_safe and _formula_like(value):
            return "'" + value
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    text = _json.encode(value).decode()
    if text == "null":  # NaN and infinities, which JSON writes as null
        return ""
    if not text.startswith('"'):
        return text  # a number
    text = msgspec.json.decode(text, type=str)  # base64, ISO 8601
    return "'" + text if spreadsheet_safe and text.startswith(_FORMULA_START) else text


class CsvWriter:
    """Encodes a header and rows to CSV text; `take()` returns what was written since."""

    def __init__(self, spreadsheet_safe: bool = False) -> None:
        self._buf = io.StringIO()
        self._writer = csv.writer(self._buf, lineterminator="\r\n")
        self._safe = spreadsheet_safe

    def header(self, columns: Sequence[str]) -> None:
        self._writer.writerow(columns)

    def rows(self, rows: Iterable[Sequence[object]]) -> None:
        safe = self._safe
        self._writer.writerows([cell(v, safe) for v in row] for row in rows)

    def take(self) -> str:
        text = self._buf.getvalue()
        self._buf.seek(0)
        self._buf.truncate()
        return text


def encode(
    columns: Sequence[str], rows: Iterable[Sequence[object]], spreadsheet_safe: bool = False
) -> str:
    """A whole CSV document: the header row, then `rows`."""
    writer = CsvWriter(spreadsheet_safe)
    writer.header(columns)
    writer.rows(rows)
    return writer.take()


def complete_rows(data: bytes) -> tuple[int, int]:
    """The whole rows at the start of `data` (a cut download of this module's CSV): how
    many, header row included, and how many bytes they take. Keep those bytes, then ask
    for the rest with `offset=rows - 1&header=0`.

    A row ends at a CRLF outside quotes: this writer quotes every cell that holds a quote,
    a CR or an LF, and a quote inside a cell is doubled, so the quotes seen so far say
    whether a CRLF is inside a cell.
    """
    rows = size = 0
    quoted = False
    for match in _QUOTE_OR_END.finditer(data):
        if match.group() == b'"':
            quoted = not quoted
        elif not quoted:
            rows, size = rows + 1, match.end()
    return rows, size
