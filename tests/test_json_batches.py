"""Pages the database builds as JSON (`svc.engine.json_batches`) against rows encoded by the
service (`RowBatches`), on real SQLite files through the real source: the same values of
the same types, the same batches and keys, whatever the limits, range widths and resume
points; a BLOB sends the rest of a domain to rows; a stopped stream leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import math
import random
import sqlite3
import struct
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from svc import protocol as p
from svc.config import Settings
from svc.core.domains import Domain, parse_domains
from svc.core.sql.plan import Key, Plan
from svc.core.tokens import TokenCodec
from svc.engine import json_batches
from svc.engine.batches import Batch, Batches, RowBatches
from svc.engine.json_batches import JsonBatches, ReadAhead
from svc.engine.ndjson import JobStream
from svc.engine.reader import DomainReader
from svc.engine.service import Service
from svc.sources.sqlite import SqliteSource
from svc.store.embedded import EmbeddedJobStore
from tests.support import DOMAINS, all_cids
from tests.support.servers import TEST_SECRET

# --- every column type -----------------------------------------------------------------

TYPES_DOMAIN = parse_domains(
    """
[domains.types]
table = "T"
key = "CID"
tiebreak = "rowid"
columns = ["CID", "R", "I", "S", "U", "V"]
"""
)["types"]

REALS = [
    0.1 + 0.2,
    1 / 3,
    5e-324,
    1.7976931348623157e308,
    -2.2250738585072014e-308,
    2.5,
    1e16,
    123456789.12345679,
    -1.5e-300,
    0.0,
    math.inf,  # msgspec writes null: so must the database
    -math.inf,
    None,
]
INTEGERS = [0, -1, 2**53 + 1, 2**63 - 1, -(2**63), None]
TEXTS = [
    "",
    'quote " and backslash \\ and slash /',
    "controls \x01\x08\t\n\r\x1f\x7f",
    "line separators \u2028 \u2029",
    "non-BMP 😀 𝄞 and é (NFC) e\u0301 (NFD)",
    "<script>&amp;</script>",
    "'single' quotes",
    "9e999",  # text, not the infinity it spells
    "Inf",
    "   ",  # equal to "" under RTRIM: still text, not below ''
    None,
]


def _types_db(path: Path) -> list[str]:
    rng = random.Random(5)
    values: list[Any] = REALS + INTEGERS + TEXTS
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE T (CID TEXT NOT NULL, R REAL, I INTEGER, S TEXT, U TEXT COLLATE RTRIM, V)"
        )
        conn.execute("CREATE INDEX T_CID ON T (CID)")
        rows = []
        for n in range(300):
            cid = f"C{rng.randrange(40):03d}"
            rows.append(
                (
                    cid,
                    REALS[n % len(REALS)],
                    INTEGERS[n % len(INTEGERS)],
                    TEXTS[n % len(TEXTS)],
                    TEXTS[-n % len(TEXTS)],
                    values[n % len(values)],  # no affinity: any type, as stored
                )
            )
        conn.executemany("INSERT INTO T VALUES (?,?,?,?,?,?)", rows)
    return sorted({r[0] for r in rows})


def _typed(value: Any) -> Any:
    """A decoded JSON value with its type made explicit (1 and 1.0 differ; so do the bits
    of two doubles)."""
    if isinstance(value, float):
        return ("float", struct.pack("<d", value))
    if isinstance(value, list):
        return [_typed(v) for v in value]
    if isinstance(value, dict):
        return {k: _typed(v) for k, v in value.items()}
    return (type(value).__name__, value)


async def _walk(
    make: Any, limit: int, shed: frozenset[int] = frozenset()
) -> list[tuple[bytes, Key | None, bool]]:
    """Every batch of one Batches, as the line's `data` JSON, its key and `more`; after
    the batches numbered in `shed`, what was read ahead is dropped (a stalled client)."""
    batches: Batches = make()
    out = []
    try:
        while True:
            batch: Batch = await batches.next()
            out.append((msgspec.json.encode(batch.data), batch.last, batch.more))
            if not batch.more:
                return out
            if len(out) in shed:
                batches.shed()
    finally:
        batches.close()


def _reader(source: SqliteSource, domain: Domain, cids: list[str], slots: int) -> DomainReader:
    return DomainReader(source, domain, Plan(cids, slots))


@pytest.mark.parametrize("arrays", [False, True], ids=["objects", "arrays"])
def test_every_type_decodes_the_same_from_the_database_json(tmp_path: Path, arrays: bool) -> None:
    db = tmp_path / "types.sqlite3"
    cids = _types_db(db)

    async def run() -> tuple[list[Any], list[Any]]:
        source = SqliteSource(str(db))
        assert source.builds_json
        try:
            reader = _reader(source, TYPES_DOMAIN, cids, 16)
            rows = await _walk(lambda: RowBatches(reader, None, 7, arrays), 7)
            built = await _walk(lambda: JsonBatches(reader, None, 7, arrays), 7)
            return rows, built
        finally:
            await source.close()

    rows, built = asyncio.run(run())
    assert [(k, m) for _, k, m in built] == [(k, m) for _, k, m in rows]
    decoded_rows = [_typed(json.loads(d)) for d, _, _ in rows]
    decoded_built = [_typed(json.loads(d)) for d, _, _ in built]
    assert decoded_built == decoded_rows
    flat = [r for d, _, _ in rows for r in json.loads(d)]
    assert len(flat) == 300
    # The cases are really there: exact doubles, infinities as null, big integers, text.
    seen = {json.dumps(v) for r in flat for v in (r if arrays else r.values())}
    assert {"0.30000000000000004", "5e-324", "9223372036854775807", "null"} <= seen
    assert json.dumps("non-BMP 😀 𝄞 and é (NFC) e\u0301 (NFD)") in seen
    assert {'"9e999"', '"Inf"', '"   "'} <= seen


@pytest.mark.parametrize(
    ("column", "value", "written"),
    [
        ("V", b"\x00\xff\x10", '"AP8Q"'),  # base64, as rows write a BLOB
        ("V", b"\x01", '"AQ=="'),  # SQLite would read this BLOB as JSONB's `true`
        ("S", b"\x01", '"AQ=="'),  # a BLOB in a TEXT column
        ("U", b"\x00", '"AA=="'),  # ... in a collated one
        ("R", b"\x01", '"AQ=="'),  # ... in a REAL one
        ("V", -0.0, "-0.0"),  # SQLite's JSON would write 0.0
    ],
    ids=["blob", "jsonb-lookalike-blob", "blob-in-text", "blob-in-rtrim", "blob-in-real", "-0.0"],
)
def test_a_value_json_cannot_write_as_rows_do_sends_the_rest_of_the_domain_to_rows(
    tmp_path: Path, column: str, value: object, written: str
) -> None:
    db = tmp_path / "blob.sqlite3"
    cids = _types_db(db)
    with sqlite3.connect(db) as conn:  # one such value, far into the job
        conn.execute(f"UPDATE T SET {column} = ? WHERE rowid = 250", (value,))

    async def run() -> tuple[list[Any], list[Any]]:
        source = SqliteSource(str(db))
        try:
            reader = _reader(source, TYPES_DOMAIN, cids, 16)
            rows = await _walk(lambda: RowBatches(reader, None, 9, False), 9)
            built = await _walk(lambda: JsonBatches(reader, None, 9, False), 9)
            assert source.in_use == 0
            return rows, built
        finally:
            await source.close()

    rows, built = asyncio.run(run())
    assert [(k, m) for _, k, m in built] == [(k, m) for _, k, m in rows]
    assert [_typed(json.loads(d)) for d, _, _ in built] == [
        _typed(json.loads(d)) for d, _, _ in rows
    ]
    assert any(f'"{column}":{written}' in d.decode() for d, _, _ in built)


# --- the demo: batches, keys and resumes -------------------------------------------------


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    data=st.data(),
    limit=st.integers(1, 60),
    first_width=st.integers(1, 40),
    slots=st.sampled_from([7, 50, 1000]),
    arrays=st.booleans(),
    pages=st.integers(0, 3),
    shed=st.frozensets(st.integers(1, 30), max_size=6),
)
def test_batches_and_keys_equal_the_rows_path_from_any_resume_point(
    demo_db: Path,
    demo_cids: list[str],
    monkeypatch: pytest.MonkeyPatch,
    data: st.DataObject,
    limit: int,
    first_width: int,
    slots: int,
    arrays: bool,
    pages: int,
    shed: frozenset[int],
) -> None:
    """Small limits make ranges reach their page limit (2 x limit) and go on by keyset;
    small slots cap a range's width; the resume point is any batch's key. A budget of 0-3
    pages read ahead, and dropping them after some batches, changes nothing but timing."""
    monkeypatch.setattr(json_batches, "FIRST_RANGE_CIDS", first_width)
    job = sorted(data.draw(st.lists(st.sampled_from(demo_cids[:300]), min_size=1, max_size=80)))
    job = sorted(set(job))
    domain = DOMAINS[data.draw(st.sampled_from(["history", "materials"]))]

    async def run() -> None:
        source = SqliteSource(str(demo_db))
        try:
            reader = _reader(source, domain, job, slots)
            rows = await _walk(lambda: RowBatches(reader, None, limit, arrays), limit)
            budget = ReadAhead(pages)
            built = await _walk(
                lambda: JsonBatches(reader, None, limit, arrays, budget=budget), limit, shed
            )
            assert budget.free == pages  # every page taken was given back
            assert [(k, m) for _, k, m in built] == [(k, m) for _, k, m in rows]
            assert [json.loads(d) for d, _, _ in built] == [json.loads(d) for d, _, _ in rows]
            assert all(len(json.loads(d)) == limit for d, _, more in built if more)
            at = data.draw(st.integers(0, len(rows) - 1))
            after = rows[at][1]
            rest_rows = await _walk(lambda: RowBatches(reader, after, limit, arrays), limit)
            rest = await _walk(lambda: JsonBatches(reader, after, limit, arrays), limit)
            assert [json.loads(d) for d, _, _ in rest] == [json.loads(d) for d, _, _ in rest_rows]
            assert source.in_use == 0
        finally:
            await source.close()

    asyncio.run(run())


def test_a_whole_stream_is_the_same_lines_either_way(demo_db: Path, tmp_path: Path) -> None:
    """The stream's lines, tokens included, do not depend on who built the JSON."""

    async def lines(database_json: bool, arrays: bool) -> list[Any]:
        settings = Settings(batch_size=333, data_dir=tmp_path, database_json=database_json)
        store = EmbeddedJobStore(tmp_path / f"jobs-{database_json}.sqlite3", ttl=600)
        service = Service(
            settings, DOMAINS, SqliteSource(str(demo_db)), store, TokenCodec([TEST_SECRET])
        )
        try:
            spec = await service.create_job(all_cids(demo_db)[:900], None, None)
            await service.aggregation(spec)
            stream = JobStream(service, spec, None, None, arrays=arrays)
            await stream.open()
            out = [json.loads(line) async for line in stream.lines()]
            assert service.source.in_use == 0
            for line in out:  # a token names its job: compare the positions it holds
                if "since" in line:
                    cursor = service.tokens.verify(line.pop("since"), spec.job_id)
                    line["at"] = (cursor.domain, cursor.batch, cursor.cid, cursor.rid, cursor.seen)
                line.pop("job_id", None)
                line.pop("elapsed_seconds", None)
            return out
        finally:
            await service.close()

    for arrays in (False, True):
        built, rows = asyncio.run(lines(True, arrays)), asyncio.run(lines(False, arrays))
        assert built == rows
        assert sum(x["type"] == "records" for x in built) > 20


@pytest.mark.parametrize("how", ["close", "shed"])
def test_a_stream_closed_or_shed_mid_way_stops_its_reads_ahead(demo_db: Path, how: str) -> None:
    """Pages read ahead are stopped and given back to the process's budget; after `shed`
    the batches go on from the last one handed out, as the rows path would."""

    async def run() -> None:
        source = SqliteSource(str(demo_db))
        try:
            reader = _reader(source, DOMAINS["history"], all_cids(demo_db), 1000)
            budget = ReadAhead(4)
            batches = JsonBatches(reader, None, 50, False, budget=budget)
            first = await batches.next()
            assert len(first.data) == 50 and first.more
            assert batches._inflight  # the next ranges are being read
            assert budget.free < 4  # some of them ahead of the client, from the budget
            getattr(batches, how)()
            assert budget.free == 4 and not batches._inflight
            await asyncio.sleep(0.2)
            assert source.in_use == 0
            if how == "shed":
                rows = RowBatches(reader, first.last, 50, False)
                for _ in range(30):
                    got, want = await batches.next(), await rows.next()
                    assert (got.last, got.more) == (want.last, want.more)
                    assert msgspec.json.encode(got.data) == msgspec.json.encode(want.data)
            batches.close()
            assert budget.free == 4
        finally:
            await source.close()

    asyncio.run(run())


def test_many_streams_share_the_budget_of_pages_read_ahead(demo_db: Path) -> None:
    """Beyond the budget a stream asks only for the page it waits for."""

    async def run() -> None:
        source = SqliteSource(str(demo_db))
        try:
            reader = _reader(source, DOMAINS["history"], all_cids(demo_db), 1000)
            budget = ReadAhead(3)
            streams = [JsonBatches(reader, None, 50, False, budget=budget) for _ in range(5)]
            for batches in streams:
                await batches.next()
            assert budget.free == 0
            assert sum(len(b._inflight) for b in streams) <= 3 + len(streams)
            for batches in streams:
                batches.close()
            assert budget.free == 3
        finally:
            await source.close()

    asyncio.run(run())


def test_records_lines_hold_the_raw_json_the_database_built(demo_db: Path) -> None:
    """A records line is valid JSON whose data are the database's records, not strings."""

    async def run() -> bytes:
        source = SqliteSource(str(demo_db))
        try:
            reader = _reader(source, DOMAINS["materials"], all_cids(demo_db)[:50], 1000)
            batches = JsonBatches(reader, None, 10, False)
            batch = await batches.next()
            batches.close()
            return p.encode_line(p.Records("materials", 1, batch.data, "t"))
        finally:
            await source.close()

    line = json.loads(asyncio.run(run()))
    assert isinstance(line["data"][0], dict)
    assert list(line["data"][0]) == list(DOMAINS["materials"].columns)


def test_memory_maps_are_a_setting_of_the_json_lane_and_read_the_same(demo_db: Path) -> None:
    async def run(mmap_mb: int) -> tuple[int, int, list[Any]]:
        source = SqliteSource(str(demo_db), mmap_mb=mmap_mb)
        try:
            ((mapped,),) = await source.fetch("PRAGMA mmap_size", {}, lane="json")
            ((rows_mapped,),) = await source.fetch("PRAGMA mmap_size", {}, lane="read")
            reader = _reader(source, DOMAINS["history"], all_cids(demo_db)[:200], 1000)
            batches = await _walk(lambda: JsonBatches(reader, None, 500, True), 500)
            return mapped, rows_mapped, [json.loads(d) for d, _, _ in batches]
        finally:
            await source.close()

    (off, _, plain), (on, rows_on, mapped) = asyncio.run(run(0)), asyncio.run(run(16))
    assert (off, on) == (0, 16 * 1024 * 1024)
    assert rows_on == 0  # only the JSON lane maps the file: RSS counts each mapping
    assert mapped == plain and plain
