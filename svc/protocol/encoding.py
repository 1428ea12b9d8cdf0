"""The wire's bytes: JSON of any body, NDJSON lines that every line reader sees whole, and
records shaped as objects or arrays (pure)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import msgspec

if TYPE_CHECKING:
    from svc.protocol import Line

# Decimals (exact Oracle NUMBERs) as JSON numbers, not strings; SQLite never yields them.
_encoder = msgspec.json.Encoder(decimal_format="number")


def encode(obj: object) -> bytes:
    return _encoder.encode(obj)


# Line ends to `str.splitlines` (and so to httpx `iter_lines`) that JSON may carry raw:
# U+2028, U+2029 and NEL (U+0085); JSON escapes the others. One pattern each: a pattern that
# starts with one literal is searched fast, an alternation of two is not.
_SEPARATORS = re.compile(b"\xe2\x80[\xa8\xa9]")
_NEL = re.compile(b"\xc2\x85")


def _escaped(match: re.Match[bytes]) -> bytes:
    return b"\\u2028" if match.group() == b"\xe2\x80\xa8" else b"\\u2029"


def _nel(match: re.Match[bytes]) -> bytes:
    return b"\\u0085"


def escape_line_separators(text: bytes) -> bytes:
    """JSON text with U+2028, U+2029 and U+0085 written as `\\u2028`, `\\u2029`,
    `\\u0085`: valid JSON may carry them raw, but generic line readers (`str.splitlines`,
    httpx `iter_lines`) end a line at them. In JSON they can only occur inside strings,
    where the escape means the same character, so replacing the bytes is exact.

    A search for their last byte (memchr) rules out most lines at little cost; regular
    expressions do the rest, faster than `bytes.replace` with a multi-byte needle
    (docs/benchmarks.md#line-separators)."""
    if b"\xa8" in text or b"\xa9" in text:
        text = _SEPARATORS.sub(_escaped, text)
    if b"\x85" in text:
        text = _NEL.sub(_nel, text)
    return text


def encode_line(line: Line) -> bytes:
    """One NDJSON line, newline included; whole to any line reader (see above)."""
    return escape_line_separators(_encoder.encode(line)) + b"\n"


@lru_cache(maxsize=128)
def _record_type(columns: tuple[str, ...]) -> type[msgspec.Struct]:
    """A Struct that encodes as one JSON object with `columns` as keys, in order.

    Faster than dict(zip(...)) per row (docs/benchmarks.md#sizes-and-encoding-costs); fields
    are named f0, f1, ... so any configured column name (even `A$B`) is a valid key.
    """
    fields = [(f"f{i}", Any) for i in range(len(columns))]
    return msgspec.defstruct("Record", fields, rename={f"f{i}": c for i, c in enumerate(columns)})


def shape_records(rows: list[tuple[Any, ...]], columns: tuple[str, ...], arrays: bool) -> list[Any]:
    """Rows without their trailing tie-break column, as arrays or as objects."""
    width = len(columns)
    if arrays:
        return [row[:width] for row in rows]
    record = _record_type(columns)
    return [record(*row[:width]) for row in rows]
