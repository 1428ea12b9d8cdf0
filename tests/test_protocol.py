from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from svc import protocol as p


def test_lines_are_tagged_one_per_line_and_round_trip() -> None:
    lines: list[p.Line] = [
        p.Meta("j", ["history"], 3, False),
        p.DomainStart("history", ["A"], 5, 1),
        p.Records("history", 1, [{"A": 1}], "tok"),
        p.DomainEnd("history", 5),
        p.Error("source_unavailable", "retry", True, "tok"),
        p.Reconnect("draining", None),
        p.Complete(1.5, 5),
    ]
    for line in lines:
        raw = p.encode_line(line)
        assert raw.endswith(b"\n") and raw.count(b"\n") == 1
        assert json.loads(raw)["type"] == type(line).__struct_config__.tag
        assert p.line_decoder.decode(raw) == line


def test_shape_records_drops_the_tiebreak() -> None:
    rows = [("c1", 2, 99), ("c2", 3, 100)]
    assert p.shape_records(rows, ("CID", "Q"), arrays=True) == [("c1", 2), ("c2", 3)]
    objects = p.shape_records(rows, ("CID", "Q$1"), arrays=False)
    assert json.loads(p.encode(objects)) == [{"CID": "c1", "Q$1": 2}, {"CID": "c2", "Q$1": 3}]
    assert p.encode(objects).startswith(b'[{"CID":"c1","Q$1":2}')  # columns in order


@given(st.text())
def test_escaped_lines_decode_to_the_same_text_and_stay_one_line(text: str) -> None:
    line = p.encode_line(p.Records("history", 1, [text, {"k": text + "\u2029é"}], "s"))
    assert line.count(b"\n") == 1 and len(line.decode().splitlines()) == 1
    assert not any(c.encode() in line for c in "\x85\u2028\u2029")
    assert json.loads(line)["data"] == [text, {"k": text + "\u2029é"}]
    assert p.escape_line_separators("é©".encode()) == "é©".encode()  # A9 bytes, no separator
