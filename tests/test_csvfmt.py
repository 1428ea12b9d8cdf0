"""CSV text of records: RFC 4180 quoting, the same values as JSON, formula defusing."""

from __future__ import annotations

import csv
import datetime as dt
import io

from hypothesis import given
from hypothesis import strategies as st

from svc.core.csv_cells import BOM, CsvWriter, cell, complete_rows, encode
from tests.support import defused


def test_header_rows_and_crlf() -> None:
    text = encode(["A", "B"], [("x", 1), (None, 2.5)])
    assert text == "A,B\r\nx,1\r\n,2.5\r\n"


def test_quotes_only_what_needs_it() -> None:
    text = encode(["C"], [('say "hi", then\nleave',), ("plain",)])
    assert text == 'C\r\n"say ""hi"", then\nleave"\r\nplain\r\n'


def test_values_read_as_the_json_path_writes_them() -> None:
    assert cell(None) == ""
    assert cell(True) == "true"
    assert cell(2**70) == str(2**70)
    assert cell(0.1) == "0.1"
    assert cell(dt.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05"
    assert cell(b"\x00\xff") == "AP8="
    assert cell("\U0001f600 é") == "\U0001f600 é"
    assert cell(float("nan")) == cell(float("inf")) == ""  # JSON's null


def test_spreadsheet_safe_defuses_formulas_but_not_numbers() -> None:
    for text in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"):
        assert cell(text, spreadsheet_safe=True) == "'" + text
        assert cell(text) == text
    assert cell(-5, spreadsheet_safe=True) == "-5"
    assert cell("safe", spreadsheet_safe=True) == "safe"


BEFORE_FORMULA = [
    " ",
    "  ",
    "\u00a0",
    "\n",
    "\r\n",
    "\u3000",
    "\u2028",
    "\u200b",
    "\ufeff",
    " \u200b\n",
]


@given(
    st.sampled_from(BEFORE_FORMULA),
    st.sampled_from(["=", "+", "-", "@"]),
    st.text(max_size=10),
)
def test_formulas_after_whitespace_or_invisible_characters_are_defused(
    before: str, start: str, rest: str
) -> None:
    text = before + start + rest
    assert cell(text, spreadsheet_safe=True) == "'" + text
    assert cell(text) == text


@given(st.text(max_size=12))
def test_defusing_agrees_with_an_independent_rule(text: str) -> None:
    expected = "'" + text if defused(text) else text
    assert cell(text, spreadsheet_safe=True) == expected
    for safe in ("  plain", "\u00a0100 kg", "a=b", "\n", " "):
        assert cell(safe, spreadsheet_safe=True) == safe


def test_writer_takes_what_was_written_since() -> None:
    w = CsvWriter()
    w.header(["A"])
    assert w.take() == "A\r\n"
    w.rows([("x",)])
    assert w.take() == "x\r\n"
    assert w.take() == ""
    assert BOM.encode() == b"\xef\xbb\xbf"


text_cells = st.one_of(st.none(), st.text(alphabet=st.characters(exclude_categories=["Cs"])))


@given(st.lists(st.tuples(text_cells, text_cells), max_size=20))
def test_stdlib_reader_gets_the_cells_back(rows: list[tuple[str | None, str | None]]) -> None:
    back = list(csv.reader(io.StringIO(encode(["A", "B"], rows), newline="")))
    assert back[0] == ["A", "B"]
    assert back[1:] == [[v or "" for v in row] for row in rows]


@given(st.lists(st.tuples(text_cells, text_cells), max_size=8), st.data())
def test_complete_rows_of_a_cut_file(
    rows: list[tuple[str | None, str | None]], data: st.DataObject
) -> None:
    whole = [encode(["A", "B"], [])] + [encode(["A", "B"], [r])[5:] for r in rows]
    text = (BOM + "".join(whole)).encode()
    cut = data.draw(st.integers(0, len(text)))
    got, size = complete_rows(text[:cut])
    ends = [len((BOM + "".join(whole[: k + 1])).encode()) for k in range(len(whole))]
    assert got == sum(1 for end in ends if end <= cut)
    assert size == (ends[got - 1] if got else 0)
