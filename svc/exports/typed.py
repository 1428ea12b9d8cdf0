"""What the typed formats (xlsx, Parquet) share: staged rows and each column's type.

Neither format can be continued once cut: a zip's central directory (xlsx) and a Parquet
footer are written last and name every part before them. So, as csv.zip does, each domain
is first staged as a plain appended file, checkpointed and cut back like any other, and
the finished file is built from the staged files in one pass by `pack`: a crash while
packing packs again, from the same staged bytes, to the same file.

A staged file holds a domain's rows as the stream sends them: one JSON array per line,
values encoded as records are (Oracle DECIMAL as a JSON number, times as ISO 8601). Each
column is then converted to its declared type (`Domain.types`, from the domain file):

- ``text``: strings as they are; a number or boolean as its JSON text (so a column
  declared text never mixes types);
- ``number``: a float (a numeric string such as SQLite may hold is parsed);
- ``integer``: an int (a float with a fraction is refused);
- ``timestamp``: a naive datetime; a value with an offset is converted to UTC first;
- ``timestamptz``: a datetime in UTC; a value without an offset is taken as UTC.

NULL stays NULL in every type. A value that does not fit its type fails the export with
`source_misconfigured`, naming the domain, column and row: the domain file's type is
wrong for the data, and guessing would change values silently. Each batch is checked as
it is staged, so such an export fails at its first bad batch.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec

from svc.core.domains import Domain
from svc.errors import SourceMisconfigured
from svc.exports.formats import ExportWriter, append_durably, cut_back
from svc.sources import Row

_encoder = msgspec.json.Encoder(decimal_format="number")
_decoder = msgspec.json.Decoder(list[Any])
_batch_decoder = msgspec.json.Decoder(list[list[Any]])
_READ_CHUNK = 1 << 20


def _text(value: Any) -> str:
    return value if isinstance(value, str) else _encoder.encode(value).decode()


def _number(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError("a boolean")
    number = float(value)  # int, float, or a numeric string
    if isinstance(value, str) and not math.isfinite(number):
        raise ValueError("not a finite number")
    return number


def _integer(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean")
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError("has a fraction")
        return int(value)
    return int(value)


def _timestamp(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError("not ISO 8601 text")
    at = dt.datetime.fromisoformat(value)
    return at if at.tzinfo is None else at.astimezone(dt.UTC).replace(tzinfo=None)


def _timestamptz(value: Any) -> dt.datetime:
    if not isinstance(value, str):
        raise ValueError("not ISO 8601 text")
    at = dt.datetime.fromisoformat(value)
    return at.replace(tzinfo=dt.UTC) if at.tzinfo is None else at.astimezone(dt.UTC)


CONVERTERS: dict[str, Callable[[Any], Any]] = {
    "text": _text,
    "number": _number,
    "integer": _integer,
    "timestamp": _timestamp,
    "timestamptz": _timestamptz,
}


def typed_columns(domain: Domain, rows: list[list[Any]]) -> list[list[Any]]:
    """`rows` (as staged) as one list per column, each value of its column's type or None."""
    columns: list[list[Any]] = []
    for at, (name, kind) in enumerate(zip(domain.columns, domain.types, strict=True)):
        convert = CONVERTERS[kind]
        out: list[Any] = []
        for n, row in enumerate(rows):
            value = row[at]
            if value is None:
                out.append(None)
                continue
            try:
                out.append(convert(value))
            except (ValueError, TypeError, OverflowError) as exc:
                key = _text(rows[n][domain.key_index])[:64]
                raise SourceMisconfigured(
                    f"{domain.name}.{name} of a record of {domain.key} {key!r}: "
                    f"{_text(value)[:60]!r} is not {kind} ({exc}); fix the column's type in "
                    "the domain file"
                ) from None
        columns.append(out)
    return columns


class StagedWriter(ExportWriter):
    """Stages each domain's rows in `EXPORT.N.rows.part`; subclasses pack them."""

    def staged(self, domain: int) -> Path:
        return self.work / f"{self.export_id}.{domain}.rows.part"

    def resume(self, domain: int, length: int) -> bool:
        earlier = all(self.staged(d).exists() for d in range(domain))
        return earlier and cut_back(self.staged(domain), length)

    def begin(self, domain: int) -> int:
        cut_back(self.staged(domain), 0)  # created empty: a resume finds it
        return 0

    def append(self, domain: int, rows: list[Row]) -> int:
        d = self.domains[domain]
        width = len(d.columns)
        cut = [r[:width] for r in rows]
        # Checked now, not only when packing: a value that does not fit its type fails the
        # export at its first batch rather than after the whole job is staged.
        typed_columns(d, _batch_decoder.decode(_encoder.encode(cut)))
        return append_durably(self.staged(domain), _encoder.encode_lines(cut))

    def staged_rows(self, domain: int, chunk: int) -> Iterator[list[list[Any]]]:
        """The staged rows of `domain`, `chunk` rows at a time (memory: one chunk)."""
        rows: list[list[Any]] = []
        with self.staged(domain).open("rb", buffering=_READ_CHUNK) as fh:
            for line in fh:
                rows.append(_decoder.decode(line))
                if len(rows) == chunk:
                    yield rows
                    rows = []
        if rows:
            yield rows

    def staged_bytes(self) -> int:
        return sum(self.staged(d).stat().st_size for d in range(len(self.domains)))
