"""Which bytes of a file a GET answers with, from its `Range` and `If-Range` (pure).

RFC 9110 §14: a server may ignore `Range`, so everything this module does not serve as
one range is answered with the whole file (200), which every client handles:

- no `Range`, a unit other than `bytes`, a malformed or over-long header (over 256
  characters, or numbers over 15 digits), or `first > last`: the whole file;
- several ranges (`bytes=0-9,20-29`): the whole file. A download resumes with one range;
  multipart/byteranges would cost code for no client that matters here;
- `If-Range` that is not exactly the file's strong ETag (a weak tag, an old tag, a date):
  the whole file, so a client resuming a file that changed gets the new one in full;
- `bytes=a-b`, `bytes=a-`, `bytes=-n`: that range, clipped to the file (206);
- a range that starts at or beyond the end, `bytes=-0`, or any range of an empty file:
  `RangeNotSatisfiable` (416 with `Content-Range: bytes */SIZE`).
"""

from __future__ import annotations

import re

from svc.errors import RangeNotSatisfiable

MAX_RANGE_HEADER = 256
_SPEC = re.compile(r"([0-9]{0,15})-([0-9]{0,15})")


def requested_range(
    range_header: str | None, if_range: str | None, etag: str, size: int
) -> tuple[int, int] | None:
    """(first, last), both inclusive, for a 206; None for the whole file."""
    if range_header is None or len(range_header) > MAX_RANGE_HEADER:
        return None
    if if_range is not None and if_range.strip() != etag:
        return None
    unit, eq, specs = range_header.partition("=")
    if not eq or unit.strip().lower() != "bytes" or "," in specs:
        return None
    found = _SPEC.fullmatch(specs.strip())
    if found is None or found.group(0) == "-":
        return None
    first_text, last_text = found.groups()
    if not first_text:  # a suffix: the last n bytes
        n = int(last_text)
        if n == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(0, size - n), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and first > int(last_text):
        return None  # invalid: ignored
    if first >= size:
        raise RangeNotSatisfiable(size)
    return first, min(last, size - 1)
