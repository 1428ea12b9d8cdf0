"""svc.core.gzip_lines: Accept-Encoding negotiation, and a gzip member whose every line decodes
as soon as its bytes are out."""

from __future__ import annotations

import gzip
import random
import zlib

import pytest

from svc.config import Settings
from svc.core.gzip_lines import GzipLines, accepts_gzip, gzip_body, negotiate, off_loop


@pytest.mark.parametrize(
    ("header", "takes"),
    [
        ("gzip", True),
        ("gzip, deflate, br, zstd", True),  # browsers
        ("deflate, GZIP;q=0.5", True),
        ("x-gzip", True),
        ("*", True),
        ("br;q=1.0, *;q=0.1", True),
        ("gzip;q=0", False),
        ("gzip;q=0.000, *", False),  # a named refusal beats the wildcard
        ("*;q=0", False),
        ("identity", False),
        ("deflate, br", False),
        ("", False),
        ("gzip;q=nonsense", False),
        ("gzipx, xgzip", False),
    ],
)
def test_accept_encoding(header: str, takes: bool) -> None:
    assert accepts_gzip(header) is takes


def test_negotiate_answers_with_the_level_only_when_on_and_taken() -> None:
    assert negotiate("gzip", 6) == 6
    assert negotiate("gzip", 0) == 0  # TRACE_GZIP=off
    assert negotiate(None, 1) == 0
    assert negotiate("identity", 1) == 0


def _lines(n: int, seed: int = 3) -> list[bytes]:
    rng = random.Random(seed)
    return [
        b'{"type":"records","batch":%d,"data":[%s]}\n'
        % (i, b",".join(b'{"v":%d}' % rng.randrange(10**6) for _ in range(rng.randrange(1, 400))))
        for i in range(n)
    ]


def test_every_line_decodes_as_soon_as_it_is_written() -> None:
    gz = GzipLines(1)
    client = zlib.decompressobj(16 + zlib.MAX_WBITS)
    wire = b""
    for line in _lines(40):
        out = gz.line(line)
        wire += out
        assert client.decompress(out) == line  # all of it, nothing held back
    wire += gz.finish(b'{"type":"complete"}\n')
    assert gzip.decompress(wire) == b"".join(_lines(40)) + b'{"type":"complete"}\n'
    assert gz.gzip_bytes == len(wire) and gz.raw_bytes == len(gzip.decompress(wire))


def test_a_cut_anywhere_leaves_every_line_written_before_it() -> None:
    gz = GzipLines(6)
    ends: list[int] = []  # where each line's compressed bytes end on the wire
    wire = b""
    lines = _lines(25, seed=9)
    for line in lines:
        wire += gz.line(line)
        ends.append(len(wire))
    for cut in random.Random(1).sample(range(len(wire)), 60):
        decoded = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(wire[:cut])
        whole = sum(1 for end in ends if end <= cut)
        assert decoded.startswith(b"".join(lines[:whole]))
        assert b"".join(lines).startswith(decoded)


def test_a_whole_body_round_trips_and_shrinks() -> None:
    body = b"".join(_lines(10))
    packed = gzip_body(body, 1)
    assert gzip.decompress(packed) == body
    assert len(packed) < len(body) / 2


@pytest.mark.parametrize(("raw", "level"), [("off", 0), ("0", 0), ("1", 1), ("9", 9)])
def test_the_setting_takes_off_or_a_level(raw: str, level: int) -> None:
    assert Settings.from_env({"TRACE_GZIP": raw}).gzip_level == level


@pytest.mark.parametrize("raw", ["10", "-1", "fast", "on"])
def test_a_bad_level_is_refused_clearly(raw: str) -> None:
    with pytest.raises(ValueError, match="TRACE_GZIP: must be off or a level from 1 to 9"):
        Settings.from_env({"TRACE_GZIP": raw})


def test_only_costly_compression_leaves_the_event_loop() -> None:
    assert not off_loop(1, 10 << 20)  # level 1: ~3 ms a MB, like encoding the line
    assert off_loop(6, 200_000)
    assert not off_loop(9, 1000)
